"""`bdb report`: one self-contained HTML file about a selection of stored runs.

Sections (each an HTML section with a fixed id): `summary`, `der-heatmap` (DER, attack x
defense), `ratio` (C-ACC and ASR against the poisoning ratio, one panel per defense, one line per
attack), `models` (per-model comparison), `detection` (detection AUROC, TPR, FPR), `triggers`
(each attack's clean / poisoned / difference strip, from bdcore.reporting.preview) and `results` (the
results table). Plots are drawn with matplotlib's object API (no pyplot state) and embedded as
base64 PNG; there are no external assets. A section without the data it needs says so instead
of drawing an empty plot.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from bdcore.reporting.results import (LABELS, Filters, ResultsTable, RunRecord, aggregate, build_table, display_columns,
                            display_rows, fmt_metric, select, varying_settings, write_atomic)
from bdcore.errors import require
from bdcore.runs.store import RunStore

SECTIONS = ("summary", "methods", "der-heatmap", "trade-off", "ratio", "models", "detection", "triggers", "results")
PANELS_PER_FIGURE = 6
"""Defenses per ratio figure (more defenses make more figures, not unreadable ones)."""
PREVIEW_IMAGES = 6

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1200px;
padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.2rem .45rem}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
p.note{color:#555;font-style:italic}p.caption{color:#444;font-size:.85rem}img{max-width:100%}
figure{margin:.8rem 0}figcaption{font-size:.85rem;color:#444}
th.sortable{cursor:pointer}th.sortable:after{content:" \\2195";color:#999}td.ids{font-size:.7rem;color:#666}
.strip{display:flex;align-items:stretch;gap:.4rem}.strip .rows{display:flex;flex-direction:column;
justify-content:space-around;font-size:.8rem;color:#444;text-align:right}
"""
_SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (t) {
  t.querySelectorAll('th').forEach(function (th, i) {
    th.classList.add('sortable');
    th.addEventListener('click', function () {
      var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
      var key = function (r) { var v = r.cells[i].textContent.trim(); var f = parseFloat(v);
        return isNaN(f) ? v.toLowerCase() : f; };
      rows.sort(function (a, b) { var x = key(a), y = key(b);
        if (typeof x !== typeof y) { return typeof x === 'number' ? -dir : dir; }
        return x < y ? -dir : x > y ? dir : 0; });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""
"""Click a header of a table with class 'sortable' to sort by it (numbers as numbers); inline, no assets."""


# helpers --------------------------------------------------------------------------------------
def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(data_b64: str, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data_b64}">'


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _html_table(header: list[str], rows: list[list[str]], numeric: list[bool], cls: str = "",
                last_small: bool = False) -> str:
    out = [f'<table class="{cls}">' if cls else "<table>", "<thead><tr>"]
    out += [f"<th>{_e(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for r in rows:
        cells = [f'<td class="num">{_e(c)}</td>' if num else f"<td>{_e(c)}</td>" for c, num in zip(r, numeric)]
        if last_small and cells:
            cells[-1] = f'<td class="ids">{_e(r[-1])}</td>'
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _ordered(values: set, first: str | None = None) -> list:
    rest = sorted((v for v in values if v != first), key=lambda v: (isinstance(v, str), v))
    return ([first] if first in values else []) + rest


def _mean_by(recs: list[RunRecord], keys: Callable[[RunRecord], tuple], metric: str) -> dict[tuple, Any]:
    """Stat of a metric over the runs sharing keys(run) (seeds and every other setting pooled)."""
    vals: dict[tuple, list] = defaultdict(list)
    for r in recs:
        vals[keys(r)].append(r.metrics.get(metric))
    return {k: aggregate(v) for k, v in vals.items()}


def _pooled_note(recs: list[RunRecord], axes: tuple[str, ...]) -> str:
    """What a plot pools at each point: the settings that vary but are not its axes, and seeds ('' if none)."""
    varying, _ = varying_settings(recs)
    parts = []
    for k in varying:
        if k not in axes:
            n = len({json.dumps(r.settings[k], sort_keys=True) for r in recs if k in r.settings})
            parts.append(f"{k} ({n} values)")
    seeds = {r.settings.get("seed") for r in recs} - {None}
    if len(seeds) > 1:
        parts.append(f"{len(seeds)} seeds")
    return f"Each value pools the runs that differ in {', '.join(parts)}." if parts else ""


def _figure(w: float, h: float):
    Figure = require("matplotlib.figure", "report", "the report's figures").Figure

    return Figure(figsize=(w, h), layout="constrained")


# sections -------------------------------------------------------------------------------------
def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_e(title)}</h2>{body}</section>'


def der_heatmap(recs: list[RunRecord]) -> str:
    """DER of every attack x defense pair (mean over the runs), as a heat-map and a table. Runs on a broken
    victim (C-ACC near chance) and detectors (which leave the model as it is: DER 0.5 by construction) are
    left out, and the note says how many."""
    scored = [r for r in recs if r.kind == "defense" and r.metrics.get("der") is not None]
    runs = [r for r in scored if not r.broken and not r.detector]
    left_out = []
    if any(r.broken for r in scored):
        left_out.append(f"{sum(r.broken for r in scored)} run(s) on a victim that never learned its task "
                        "(C-ACC under 3x chance: a defense that retrains it 'wins' by learning the task)")
    detectors = sorted({r.settings["defense"] for r in scored if r.detector and not r.broken})
    if detectors:
        left_out.append(f"the detectors {', '.join(detectors)} (they leave the model as it is, so DER is 0.5 by "
                        "construction: see Detection for their AUROC)")
    dropped = _note("Left out of the heat-map: " + "; ".join(left_out) + ".") if left_out else ""
    if not runs:
        return dropped + _note("No defense runs with a meaningful DER in this selection: the heat-map needs at least "
                               "one defense run that repairs a working victim.")
    attacks = _ordered({r.settings["attack"] for r in runs})
    defenses = _ordered({r.settings["defense"] for r in runs})
    stats = _mean_by(runs, lambda r: (r.settings["attack"], r.settings["defense"]), "der")
    import numpy as np

    grid = np.full((len(attacks), len(defenses)), np.nan)
    for (a, d), st in stats.items():
        if st is not None:
            grid[attacks.index(a), defenses.index(d)] = st.mean
    fig = _figure(max(4.0, 1.1 * len(defenses) + 2), max(2.5, 0.55 * len(attacks) + 1.5))
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(defenses)), labels=defenses, rotation=30, ha="right")
    ax.set_yticks(range(len(attacks)), labels=attacks)
    ax.set_xlabel("defense")
    ax.set_ylabel("attack")
    for i in range(len(attacks)):
        for j in range(len(defenses)):
            if not np.isnan(grid[i, j]):
                st = stats[(attacks[i], defenses[j])]
                spread = f"\n±{st.sd:.2f}, n={st.n}" if st.sd is not None else f"\nn={st.n}"
                ax.text(j, i, f"{grid[i, j]:.3f}{spread}", ha="center", va="center", fontsize=8,
                        color="black" if 0.25 < grid[i, j] < 0.8 else "white")
    fig.colorbar(im, ax=ax, label="DER")

    def cell(st):
        if not st:
            return "-"
        return fmt_metric("der", st.mean) + (f" ±{st.sd:.3f}" if st.sd is not None else "") + f" (n={st.n})"

    rows = [[a] + [cell(stats.get((a, d))) for d in defenses] for a in attacks]
    note = _pooled_note(runs, ("attack", "defense"))
    return (dropped + f"<figure>{_img(_png(fig), 'DER heat-map, attack x defense')}<figcaption>DER = (max(0, ΔASR) − "
            f"max(0, ΔACC) + 1) / 2; 1 is best; each cell: mean ±sd over its n runs. {_e(note)}</figcaption></figure>"
            + _html_table(["attack \\ defense", *defenses], rows, [False] + [True] * len(defenses), "der"))


def ratio_curves(recs: list[RunRecord]) -> str:
    """C-ACC and ASR against the poisoning ratio: a panel per defense, a line per attack."""
    runs = [r for r in recs if r.settings.get("attack") != "none" and r.settings.get("pratio") is not None]
    ratios = sorted({r.settings["pratio"] for r in runs})
    if len(ratios) < 2:
        which = f"poisoning ratio {ratios[0]:g}" if ratios else "no poisoning ratio"
        return _note(f"Every run here uses {which}: C-ACC and ASR against the ratio need runs at two ratios or more "
                     "(list several in the grid's pratios).")
    defenses = _ordered({r.settings["defense"] for r in runs}, "none")
    attacks = _ordered({r.settings["attack"] for r in runs})
    parts = []
    for start in range(0, len(defenses), PANELS_PER_FIGURE):
        chunk = defenses[start:start + PANELS_PER_FIGURE]
        fig = _figure(3.3 * len(chunk) + 0.8, 5.6)
        axes = fig.subplots(2, len(chunk), squeeze=False, sharex=True, sharey="row")
        for j, d in enumerate(chunk):
            for i, metric in enumerate(("cacc", "asr")):
                ax = axes[i][j]
                for a in attacks:
                    pts = []
                    for pr in ratios:
                        st = aggregate(r.metrics.get(metric) for r in runs
                                       if r.settings["attack"] == a and r.settings["defense"] == d
                                       and r.settings["pratio"] == pr)
                        if st is not None:
                            pts.append((pr, 100 * st.mean, 100 * (st.sd or 0.0)))
                    if pts:
                        xs, ys, es = zip(*pts)
                        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=a)
                ax.set_ylim(-2, 102)
                ax.grid(alpha=0.3)
                if i == 0:
                    ax.set_title("no defense" if d == "none" else d)
                else:
                    ax.set_xlabel("poisoning ratio")
                if j == 0:
                    ax.set_ylabel(LABELS[metric])
        handles, labels = axes[0][0].get_legend_handles_labels()
        for ax in axes.flat:
            h, lab = ax.get_legend_handles_labels()
            for hh, ll in zip(h, lab):
                if ll not in labels:
                    handles.append(hh)
                    labels.append(ll)
        fig.legend(handles, labels, loc="outside right upper", title="attack")
        parts.append(f"<figure>{_img(_png(fig), 'C-ACC and ASR against the poisoning ratio')}</figure>")
    note = _pooled_note(runs, ("attack", "defense", "pratio"))
    return "".join(parts) + (f'<p class="caption">Mean of the runs at each ratio; bars: ±1 sd of those runs. '
                             f"{_e(note)}</p>")


def model_comparison(recs: list[RunRecord]) -> str:
    """C-ACC and ASR of each attack (and defense) on each model, as grouped bars."""
    models = _ordered({r.settings.get("model") for r in recs} - {None})
    if len(models) < 2:
        which = f"model {models[0]}" if models else "no model"
        return _note(f"Every run here uses {which}: a per-model comparison needs runs on two models or more "
                     "(list several in the grid's models).")
    import numpy as np

    pairs = sorted({(r.settings["attack"], r.settings["defense"]) for r in recs},
                   key=lambda p: (p[0], p[1] != "none", p[1]))
    labels = [a if d == "none" else f"{a} + {d}" for a, d in pairs]
    fig = _figure(min(28.0, max(6.0, 0.45 * len(pairs) * len(models) + 2)), 6.0)
    axes = fig.subplots(2, 1, sharex=True)
    width = 0.8 / len(models)
    x = np.arange(len(pairs))
    rows = []
    for i, metric in enumerate(("cacc", "asr")):
        stats = _mean_by(recs, lambda r: (r.settings["model"], r.settings["attack"], r.settings["defense"]), metric)
        for k, m in enumerate(models):
            means = [stats.get((m, a, d)) for a, d in pairs]
            ys = [100 * s.mean if s else np.nan for s in means]
            es = [100 * (s.sd or 0.0) if s else 0.0 for s in means]
            axes[i].bar(x + (k - (len(models) - 1) / 2) * width, ys, width, yerr=es, capsize=2, label=m)
        axes[i].set_ylabel(LABELS[metric])
        axes[i].set_ylim(0, 105)
        axes[i].grid(axis="y", alpha=0.3)
    axes[1].set_xticks(x, labels=labels, rotation=35, ha="right")
    fig.legend(*axes[0].get_legend_handles_labels(), title="model", loc="outside right upper", fontsize=8)
    for a, d in pairs:
        row = [a, d]
        for m in models:
            sel = [r for r in recs if r.settings["model"] == m and r.settings["attack"] == a and r.settings["defense"] == d]
            c = aggregate(r.metrics.get("cacc") for r in sel)
            s = aggregate(r.metrics.get("asr") for r in sel)
            row.append(f"{fmt_metric('cacc', c.mean if c else None)} / {fmt_metric('asr', s.mean if s else None)}")
        rows.append(row)
    note = _pooled_note(recs, ("attack", "defense", "model"))
    return (f"<figure>{_img(_png(fig), 'C-ACC and ASR per model')}<figcaption>Bars: mean, whiskers: ±1 sd of the runs. "
            f"{_e(note)}</figcaption></figure>"
            + _html_table(["attack", "defense", *[f"{m}: C-ACC % / ASR %" for m in models]], rows,
                          [False, False] + [True] * len(models), "models"))


def detection_section(recs: list[RunRecord]) -> str:
    """Detection AUROC, TPR and FPR of every defense that flags samples or inputs."""
    runs = [r for r in recs if any(r.metrics.get(k) is not None for k in ("auroc", "tpr", "fpr"))]
    if not runs:
        return _note("No run in this selection has detection results: they come from defenses that flag training "
                     "samples or test inputs.")
    pairs = sorted({(r.settings["defense"], r.settings["attack"]) for r in runs})
    rows = []
    aurocs = []
    for d, a in pairs:
        sel = [r for r in runs if r.settings["defense"] == d and r.settings["attack"] == a]
        st = {k: aggregate(r.metrics.get(k) for r in sel) for k in ("auroc", "tpr", "fpr")}
        rows.append([d, a, str(len(sel))] + [fmt_metric(k, st[k].mean if st[k] else None) for k in ("auroc", "tpr", "fpr")])
        aurocs.append(st["auroc"].mean if st["auroc"] else None)
    body = ""
    if any(v is not None for v in aurocs):
        fig = _figure(max(5.0, 0.6 * len(pairs) + 2), 3.4)
        ax = fig.subplots()
        ax.bar(range(len(pairs)), [v if v is not None else 0.0 for v in aurocs], color="#4c72b0")
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(pairs)), labels=[f"{d} / {a}" for d, a in pairs], rotation=35, ha="right")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("AUROC")
        body += (f"<figure>{_img(_png(fig), 'detection AUROC per defense and attack')}<figcaption>Mean AUROC over the "
                 "runs; the dashed line is chance.</figcaption></figure>")
    return body + _html_table(["defense", "attack", "runs", "AUROC", "TPR", "FPR"], rows,
                              [False, False, True, True, True, True], "detection")


def trigger_previews(store: RunStore, recs: list[RunRecord], device: str = "cpu") -> str:
    """Each attack's clean / poisoned / amplified-difference strip, from one of its stored attack runs."""
    chosen: dict[str, str] = {}
    for r in recs:
        a = r.settings.get("attack")
        if a in (None, "none") or a in chosen:
            continue
        rid = r.run_id if r.kind == "attack" else r.parent
        if rid:
            chosen[a] = rid
    if not chosen:
        return _note("No attack in this selection has a trigger to show (only clean runs).")
    parts = []
    for a in sorted(chosen):
        try:
            b64 = base64.b64encode(_preview_png(store, chosen[a], device)).decode("ascii")
        except Exception as exc:  # one attack's preview failing must not lose the report
            first = (str(exc).splitlines() or [""])[0]
            parts.append(_note(f"{a}: no preview ({type(exc).__name__}: {first})"))
            continue
        parts.append(f'<figure class="trigger" data-attack="{_e(a)}"><div class="strip"><div class="rows">'
                     "<span>clean</span><span>with trigger</span><span>difference</span></div>"
                     f'{_img(b64, f"{a} trigger preview")}</div><figcaption>{_e(a)} (run {_e(chosen[a])}): '
                     "clean test images, the same with the test-time trigger, and their difference scaled to full "
                     "range.</figcaption></figure>")
    return "".join(parts)


def _preview_png(store: RunStore, run_id: str, device: str) -> bytes:
    import torch

    from bdcore.config import AttackRunConfig
    from bdcore.bench.harness import check_fingerprint, make_attack
    from bdcore.api.resolve import load_dataset
    from bdcore.nn.runtime import pick_device
    from bdcore.reporting.preview import png_bytes, preview_grid

    run = store.load(run_id)
    cfg = AttackRunConfig.model_validate(run.config)
    dev = pick_device(device)
    data = load_dataset(cfg.dataset)
    check_fingerprint(cfg.data_fingerprint, data, run.run_id)
    attack = make_attack(cfg, data, store, dev)
    if run.file("attack_state.safetensors").is_file():
        attack.load_state({k: v.to(dev) for k, v in store.load_tensors(run, "attack_state.safetensors").items()})
    else:
        attack.prepare(data)
    with torch.no_grad():
        return png_bytes(preview_grid(attack, data, n=PREVIEW_IMAGES))


def results_section(table: ResultsTable) -> str:
    """The results table (as `bdb results` shows it, sortable by any column; grouped rows name their runs),
    with its caption."""
    if not table.records:
        return _note("No runs.")
    cols = display_columns(table)
    numeric = [k not in table.settings or k == "pratio" for k, _ in cols]
    rows = display_rows(table, cols)
    caption = table.caption((k for k, _ in cols), settings=False)
    header = [h for _, h in cols]
    if table.grouped:
        header.append("runs")
        numeric.append(False)
        rows = [r + [rec["run_ids"]] for r, rec in zip(rows, table.records)]
    return (_html_table(header, rows, numeric, "results sortable", last_small=table.grouped)
            + f'<p class="caption">{_e(caption)}{". " if caption else ""}'
            + "The settings that are the same in every run: see Summary. Click a column header to sort.</p>")


def methods_section(recs: list[RunRecord]) -> str:
    """Each attack and defense of the selection: its paper (a scholar search for the title), its package's
    page (where its README is) and its known limit."""
    from bdcore.api.registry import registry

    reg = registry()
    names = {"attack": sorted({r.settings.get("attack") for r in recs} - {None, "none"}),
             "defense": sorted({r.settings.get("defense") for r in recs} - {None, "none"})}
    rows = []
    for kind, ns in names.items():
        for n in ns:
            try:
                spec = reg.get(kind, n)
            except Exception:  # a run of a plugin that is no longer installed
                rows.append(f"<tr><td>{kind}</td><td><code>{_e(n)}</code></td><td colspan=3>not installed here "
                            f"(bdb install {_e(n)})</td></tr>")
                continue
            paper = spec.paper
            q = urllib.parse.quote_plus(paper)
            rows.append(f"<tr><td>{kind}</td><td><code>{_e(n)}</code></td>"
                        f'<td><a href="https://scholar.google.com/scholar?q={q}">{_e(paper)}</a></td>'
                        f'<td><a href="https://pypi.org/project/{_e(spec.package)}/">{_e(spec.package)}</a> '
                        f"(<code>bdb info {_e(n)}</code>)</td><td>{_e(spec.caveat or '-')}</td></tr>")
    if not rows:
        return _note("No attack or defense in this selection.")
    return ('<table class="methods"><thead><tr><th>kind</th><th>id</th><th>paper</th><th>package and README</th>'
            "<th>known limit</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def tradeoff_section(recs: list[RunRecord]) -> str:
    """C-ACC against ASR: each attack's victim (no defense) and, joined to it by an arrow, each defense's
    result on it; a defense is good where its point lies top left. Broken victims and detectors are left out."""
    runs = [r for r in recs if not r.broken and not r.detector and r.metrics.get("cacc") is not None
            and r.metrics.get("asr") is not None]
    defended = [r for r in runs if r.kind == "defense"]
    if not defended:
        return _note("No defense run on a working victim here: the trade-off plot needs at least one.")
    cacc = _mean_by(runs, lambda r: (r.settings["attack"], r.settings["defense"]), "cacc")
    asr = _mean_by(runs, lambda r: (r.settings["attack"], r.settings["defense"]), "asr")
    defenses = _ordered({r.settings["defense"] for r in defended})
    attacks = _ordered({r.settings["attack"] for r in runs})
    fig = _figure(6.4, 4.6)
    ax = fig.subplots()
    colours = {d: f"C{i % 10}" for i, d in enumerate(defenses)}
    markers = {a: "osD^vP*Xh<>p"[i % 12] for i, a in enumerate(attacks)}
    for a in attacks:
        bx, by = asr.get((a, "none")), cacc.get((a, "none"))
        base = (100 * bx.mean, 100 * by.mean) if bx is not None and by is not None else None  # the victim's point
        if base is not None:
            ax.scatter([base[0]], [base[1]], marker=markers[a], color="black", zorder=3)
        for d in defenses:
            x, y = asr.get((a, d)), cacc.get((a, d))
            if x is None or y is None:
                continue
            ax.scatter([100 * x.mean], [100 * y.mean], marker=markers[a], color=colours[d], zorder=3)
            if base is not None:
                ax.annotate("", xy=(100 * x.mean, 100 * y.mean), xytext=base,
                            arrowprops={"arrowstyle": "->", "color": colours[d], "alpha": 0.6})
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colours[d], marker="o", linestyle="", label=d) for d in defenses]
    handles += [Line2D([], [], color="black", marker=markers[a], linestyle="", label=f"{a} (no defense)")
                for a in attacks]
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set_xlabel("ASR % (lower is better)")
    ax.set_ylabel("C-ACC % (higher is better)")
    ax.grid(alpha=0.3)
    note = _pooled_note(runs, ("attack", "defense"))
    return (f"<figure>{_img(_png(fig), 'C-ACC against ASR per defense')}<figcaption>Each black marker is an "
            "attack's victim; an arrow leads to the same victim after a defense (colour), mean over its runs. "
            f"Top left is best. {_e(note)}</figcaption></figure>")


def known_limits(names: set[str]) -> dict[str, str]:
    """The one-line caveats (`MethodSpec.caveat`) of the installed attacks and defenses among `names`."""
    from bdcore.api.registry import registry

    reg = registry()
    return {s.name: s.caveat for kind in ("attack", "defense") for s in reg.all(kind)
            if s.name in names and s.caveat}


def _settings_fold(table: ResultsTable) -> str:
    """What is truly the same in every run (the varying settings are named), the long list folded away."""
    same = table.same_for_every_run()
    varying = [k for k in table.settings if k not in dict(same) and k not in ("seed", "defense_seed")]
    head = "Settings that vary: " + (", ".join(varying) if varying else "none") + f". {len(same)} settings are the same in every run"
    body = "".join(f"<li><code>{_e(k)}</code> = {_e(v)}</li>" for k, v in same)
    return f'<details class="caption"><summary>{_e(head)}</summary><ul>{body}</ul></details>'


# the report -----------------------------------------------------------------------------------
def build_report(store: RunStore, filters: Filters | None = None, title: str | None = None,
                 device: str = "cpu", group: bool | None = None) -> str:
    """The report of the selected runs as one HTML document (a BdbError if a filter matches nothing known)."""
    filters = filters or Filters()
    recs = select(store, filters)
    title = title or (f"bdb report: grid {filters.grid}" if filters.grid else "bdb report")
    table = build_table(recs, group, intervals=True)
    attacks = sorted({r.settings.get("attack") for r in recs} - {None})
    defenses = sorted({r.settings.get("defense") for r in recs} - {None, "none"})
    seeds = sorted({r.settings.get("seed") for r in recs} - {None})
    summary = (f"<p>{len(recs)} runs from the run store <code>{_e(store.root)}</code>"
               + (f" ({_e(filters.describe())})" if filters.describe() else "")
               + f"; attacks: {_e(', '.join(attacks) or '-')}; defenses: {_e(', '.join(defenses) or '-')}; "
               f"seeds: {_e(', '.join(map(str, seeds)) or '-')}. Written {_e(time.strftime('%Y-%m-%d %H:%M'))}.</p>"
               + (_settings_fold(table) if recs else "")
               + "<nav>" + " · ".join(f'<a href="#{s}">{s}</a>' for s in SECTIONS[1:]) + "</nav>")
    limits = known_limits(set(attacks) | set(defenses))
    if limits:
        summary += ('<div class="limits"><p><b>Methods here with a known limit</b> (their tests do not show them '
                    "working in miniature; read their numbers with that in mind):</p><ul>"
                    + "".join(f"<li><code>{_e(n)}</code>: {_e(c)}</li>" for n, c in sorted(limits.items()))
                    + "</ul></div>")
    if not recs:
        sections = [_section("summary", "Summary", summary + _note("No runs match: nothing to plot."))]
        sections += [_section(s, s, _note("No runs.")) for s in SECTIONS[1:]]
    else:
        sections = [
            _section("summary", "Summary", summary),
            _section("methods", "Methods", methods_section(recs)),
            _section("der-heatmap", "Defense effectiveness (DER), attack x defense", der_heatmap(recs)),
            _section("trade-off", "Clean accuracy against attack success, per defense", tradeoff_section(recs)),
            _section("ratio", "C-ACC and ASR against the poisoning ratio", ratio_curves(recs)),
            _section("models", "Per-model comparison", model_comparison(recs)),
            _section("detection", "Detection", detection_section(recs)),
            _section("triggers", "Triggers", trigger_previews(store, recs, device)),
            _section("results", "Results", results_section(table)),
        ]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>" + "".join(sections)
            + f"<script>{_SORT_JS}</script></body></html>\n")


def write_report(store: RunStore, out: str | Path, filters: Filters | None = None, title: str | None = None,
                 device: str = "cpu", group: bool | None = None) -> Path:
    """Build the report and write it to out atomically; returns the path."""
    from bdcore.reporting.results import check_out_path

    check_out_path(out)
    return write_atomic(out, build_report(store, filters, title, device, group))
