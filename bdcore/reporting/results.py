"""Results of stored runs: selection by filters, the settings that tell runs apart, seed aggregation
and exports (Markdown, CSV, JSON, Parquet). Light: reads the index, never torch.

A run's settings are its fully resolved config flattened to one level: the attack run's fields
(`dataset`, `model`, `attack`, `pratio`, `target`, `preset`, `quantize`, ...), its recipe as
`train.<field>` and its attack's settings as `<attack>.<setting>`; a defense run adds `defense`,
`defense_preset`, `reserve_ratio`, `val_fraction` and `<defense>.<setting>`, and takes the attack
run's settings from its parent. Seeds are `seed` (the attack run's) and `defense_seed`. Runs whose
settings are equal except for the seeds form one group (one cell of a table).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from bdcore.errors import BdbError
from bdcore.errors import warn
from bdcore.runs.store import RunStore

METRICS = ("cacc", "asr", "ra", "der", "auroc", "tpr", "fpr", "psnr", "ssim")
"""Metrics of a results table, in column order; detection metrics (auroc, tpr, fpr) come from a
defense's training-data or input detection."""
LABELS = {"cacc": "C-ACC %", "asr": "ASR %", "ra": "RA %", "der": "DER", "auroc": "AUROC", "tpr": "TPR",
          "fpr": "FPR", "psnr": "PSNR", "ssim": "SSIM"}
PERCENT = frozenset({"cacc", "asr", "ra"})
DIGITS = {"der": 3, "auroc": 3, "tpr": 3, "fpr": 3, "psnr": 2, "ssim": 4}
CORE = ("dataset", "model", "attack", "pratio", "defense")
"""Settings every table and export carries as columns (the others only when they vary)."""
SEEDS = ("seed", "defense_seed")
FORMATS = ("md", "csv", "json", "parquet")
_ATTACK_TOP = ("dataset", "model", "attack", "pratio", "target", "all_to_all", "poison_pool", "quantize", "preset",
               "data_fingerprint", "input_files")
_DEFENSE_TOP = (("preset", "defense_preset"), ("reserve_ratio", "reserve_ratio"), ("val_fraction", "val_fraction"))


# runs -----------------------------------------------------------------------------------------
@dataclass
class RunRecord:
    """One stored run as a results row: flattened settings (seeds included) and its metrics."""

    run_id: str
    kind: str
    parent: str | None
    settings: dict[str, Any]
    metrics: dict[str, float | None]
    created: str = ""
    broken: bool = False
    """The victim (the attack run's model) never learned its task: C-ACC near chance (metrics.broken_victim)."""
    detector: bool = False
    """A defense run that scored detection and left the model as it was (an input detector, or a data
    detector that only flags): judged by AUROC, TPR and FPR, not by DER (always 0.5 there)."""

    def key(self) -> tuple:
        """What the run is, seeds left out: runs with equal keys are repeats over seeds."""
        return tuple(sorted((k, _hashable(v)) for k, v in self.settings.items() if k not in SEEDS))


def _hashable(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v


def _scalar(v: Any) -> Any:
    """A setting's value as one table cell: scalars stay, lists and objects become compact JSON."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def attack_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The flattened settings of an attack run's config (seed included)."""
    s: dict[str, Any] = {k: _scalar(cfg.get(k)) for k in _ATTACK_TOP if k in cfg}
    if not s.get("input_files"):
        s.pop("input_files", None)
    for k, v in sorted((cfg.get("train") or {}).items()):
        s[f"train.{k}"] = _scalar(v)
    name = cfg.get("attack") or "attack"
    for k, v in sorted((cfg.get("attack_config") or {}).items()):
        s[f"{name}.{k}"] = _scalar(v)
    s["seed"] = cfg.get("seed")
    return s


def defense_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The flattened settings of a defense run's own config (its attack run's are added separately)."""
    name = cfg.get("defense") or "defense"
    s: dict[str, Any] = {"defense": name}
    for src, dst in _DEFENSE_TOP:
        if src in cfg:
            s[dst] = _scalar(cfg[src])
    for k, v in sorted((cfg.get("defense_config") or {}).items()):
        s[f"{name}.{k}"] = _scalar(v)
    s["defense_seed"] = cfg.get("seed")
    return s


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def run_metrics(m: dict[str, Any]) -> dict[str, float | None]:
    """The table's metrics of one run's metrics.json (detection from either kind of detector)."""
    out = {k: _num(m.get(k)) for k in ("cacc", "asr", "ra", "der", "psnr", "ssim")}
    det = m.get("detection") if isinstance(m.get("detection"), dict) else m.get("input_detection")
    det = det if isinstance(det, dict) else {}
    out.update({k: _num(det.get(k)) for k in ("auroc", "tpr", "fpr")})
    return out


def is_detector(m: dict[str, Any]) -> bool:
    """A defense run's metrics.json: it scored detection and left the model as it was."""
    before, det = m.get("before"), m.get("detection") or m.get("input_detection")
    if not isinstance(before, dict) or not isinstance(det, dict):
        return False
    return all(before.get(k) == m.get(k) for k in ("cacc", "asr", "ra"))


def records(store: RunStore, rows: list[dict[str, Any]] | None = None) -> list[RunRecord]:
    """Every indexed run (or the given index rows) as a RunRecord.

    A defense run takes its attack run's settings from the attack run's row, else from its own
    meta.json; if neither can be read it keeps the indexed attack, dataset, model and ratio.
    """
    rows = store.rows() if rows is None else rows
    by_id = {r["run_id"]: r for r in rows}
    out = []
    for r in rows:
        if r["kind"] == "attack":
            s = {**attack_settings(r["config"]), "defense": "none"}
        else:
            parent = by_id.get(r["parent"]) if r["parent"] else None
            acfg: dict[str, Any] | None = parent["config"] if parent else None
            if acfg is None:
                try:
                    acfg = store.load(r["run_id"]).meta.get("attack_config")
                except BdbError:
                    acfg = None
            if not isinstance(acfg, dict):
                acfg = {k: r[k] for k in ("attack", "dataset", "model", "pratio")}
            s = {**attack_settings(acfg), **defense_settings(r["config"])}
        m = r["metrics"] if isinstance(r["metrics"], dict) else {}
        broken = m.get("victim_broken")
        if broken is None and r["kind"] == "defense":  # older defense runs: their attack run says
            parent = by_id.get(r["parent"]) if r["parent"] else None
            broken = (parent["metrics"] or {}).get("victim_broken") if parent else None
        out.append(RunRecord(r["run_id"], r["kind"], r["parent"], s, run_metrics(m), r.get("created") or "",
                             broken=bool(broken), detector=r["kind"] == "defense" and is_detector(m)))
    return out


# selection ------------------------------------------------------------------------------------
@dataclass
class Filters:
    """Which runs a table or report holds: each list allows any of its values; empty = no restriction."""

    attack: list[str] = field(default_factory=list)
    defense: list[str] = field(default_factory=list)
    dataset: list[str] = field(default_factory=list)
    model: list[str] = field(default_factory=list)
    seed: list[int] = field(default_factory=list)
    grid: str | None = None
    pratio: list[float] = field(default_factory=list)

    def describe(self) -> str:
        """The filters in words ('' when none)."""
        parts = [f"grid {self.grid}"] if self.grid else []
        for k in ("attack", "defense", "dataset", "model", "pratio", "seed"):
            vals = getattr(self, k)
            if vals:
                parts.append(f"{k} {'|'.join(str(v) for v in vals)}")
        return ", ".join(parts)


def select(store: RunStore, filters: Filters | None = None) -> list[RunRecord]:
    """The stored runs that pass the filters; a value no selected run has is a one-line error."""
    filters = filters or Filters()
    recs = records(store)
    where = f"the run store {store.root}"
    if filters.grid is not None:
        from bdcore.runs.grid_membership import grid_run_ids

        ids = grid_run_ids(store, filters.grid)
        have = {r.run_id for r in recs}
        missing = [i for i in ids if i not in have]
        if missing:
            warn(f"{len(missing)} run(s) of grid {filters.grid!r} are no longer in the store "
                 f"(e.g. {missing[0]}); rerun the grid to redo them")
        wanted = set(ids)
        recs = [r for r in recs if r.run_id in wanted]
        where = f"grid {filters.grid!r}"
    for key in ("attack", "defense", "dataset", "model", "pratio", "seed"):
        wanted_vals = getattr(filters, key)
        if not wanted_vals:
            continue
        present = {r.settings.get(key) for r in recs} - {None}
        for v in wanted_vals:
            if v not in present:
                listed = ", ".join(str(p) for p in sorted(present, key=str)) or "none"
                raise BdbError(f"no run in {where} has {key} {v!r} (there: {listed}); "
                               f"pass one of those to --{key}, or see 'bdb results'")
        recs = [r for r in recs if r.settings.get(key) in wanted_vals]
    return recs


# aggregation ----------------------------------------------------------------------------------
def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz's method)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):  # the fraction converges fast below the mean; use the symmetry above it
        return 1.0 - _betainc(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-15:
            break
    return front * (f - 1.0)


def t_cdf(x: float, df: int) -> float:
    """P(T <= x) for Student's t with df degrees of freedom: 1 - I_{df/(df+x^2)}(df/2, 1/2) / 2 for x >= 0."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + x * x))
    return 1.0 - tail if x >= 0 else tail


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t distribution with df degrees of freedom (scipy's t.ppf to ~1e-12; by
    bisection on t_cdf, so that the results table needs no scipy)."""
    if not 0.0 < p < 1.0 or df < 1:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df >= 1, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation and 95% confidence interval (Student t) of n values."""

    n: int
    mean: float
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    low: float | None = None
    """The smallest value (the range is what a table shows for n < 3, where a t interval is meaningless)."""
    high: float | None = None

    @property
    def half_width(self) -> float | None:
        """Half the width of the 95% confidence interval."""
        return None if self.ci_high is None else self.ci_high - self.mean


BOUNDS = {"cacc": (0.0, 1.0), "asr": (0.0, 1.0), "ra": (0.0, 1.0), "der": (0.0, 1.0), "auroc": (0.0, 1.0),
          "tpr": (0.0, 1.0), "fpr": (0.0, 1.0), "ssim": (-1.0, 1.0), "psnr": (0.0, math.inf)}
"""The range each metric lives in: a confidence interval is clipped to it."""


def aggregate(values: Iterable[float | None], level: float = 0.95,
              bounds: tuple[float, float] = (-math.inf, math.inf)) -> Stat | None:
    """Stat of the finite values (None when there are none; no sd or interval for one value); the
    interval is clipped to `bounds` (a rate's CI over 2 seeds can otherwise read [-126%, 277%])."""
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(vals)
    if n == 0:
        return None
    mean = math.fsum(vals) / n
    if n == 1:
        return Stat(1, mean, None, None, None, mean, mean)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1))
    half = t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    lo, hi = bounds
    return Stat(n, mean, sd, max(lo, mean - half), min(hi, mean + half), min(vals), max(vals))


@dataclass
class Group:
    """Runs whose settings differ only in their seeds, and the statistics of each metric over them."""

    settings: dict[str, Any]
    runs: list[RunRecord]
    stats: dict[str, Stat | None]


def group_runs(recs: list[RunRecord]) -> list[Group]:
    """Runs grouped over seeds, in the order their first run appears."""
    groups: dict[tuple, list[RunRecord]] = {}
    for r in recs:
        groups.setdefault(r.key(), []).append(r)
    out = []
    for runs in groups.values():
        settings = {k: v for k, v in runs[0].settings.items() if k not in SEEDS}
        stats = {m: aggregate((r.metrics.get(m) for r in runs), bounds=BOUNDS[m]) for m in METRICS}
        out.append(Group(settings, runs, stats))
    return out


# tables ---------------------------------------------------------------------------------------
def _sort_value(v: Any) -> tuple:
    if v is None:
        return (0, 0, "")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (1, float(v), "")
    return (2, 0, str(v))


def _row_order(settings: dict[str, Any], varying: list[str]) -> tuple:
    s = settings
    head = [s.get("dataset"), s.get("model"), s.get("attack"), s.get("pratio"), s.get("defense") != "none",
            s.get("defense")]
    return tuple(_sort_value(v) for v in [*head, *(s.get(k) for k in varying), s.get("seed"), s.get("defense_seed")])


def _setting_order(key: str) -> tuple:
    top = list(_ATTACK_TOP)
    if key in CORE:
        return (0, CORE.index(key), key)
    if key in top:
        return (1, top.index(key), key)
    if key.startswith("train."):
        return (2, 0, key)
    if key in ("defense_preset", "reserve_ratio", "val_fraction"):
        return (4, 0, key)
    return (3, 0, key)  # method settings


def varying_settings(recs: list[RunRecord]) -> tuple[list[str], dict[str, Any]]:
    """The settings (seeds aside) whose values differ between the runs that have them, and the
    constant ones with their value."""
    values: dict[str, set] = {}
    first: dict[str, Any] = {}
    for r in recs:
        for k, v in r.settings.items():
            if k in SEEDS:
                continue
            values.setdefault(k, set()).add(_hashable(v))
            first.setdefault(k, v)
    varying = sorted((k for k, vs in values.items() if len(vs) > 1), key=_setting_order)
    constant = {k: first[k] for k in sorted(values, key=_setting_order) if len(values[k]) == 1}
    return varying, constant


@dataclass
class ResultsTable:
    """A results table: flat records (one per run, or per group of seeds) plus what is constant.

    columns: every key of the records, in order; settings: the setting columns among them;
    metrics: the metrics any row has; constant: settings equal for every run (the caption).
    """

    records: list[dict[str, Any]]
    columns: list[str]
    settings: list[str]
    metrics: list[str]
    constant: dict[str, Any]
    grouped: bool
    runs: int
    intervals: bool = False
    """Grouped cells show mean ±sd; with intervals, also the 95% CI (n >= 3) or the range (n = 2)."""

    def same_for_every_run(self) -> list[tuple[str, Any]]:
        """The settings whose value is one and the same in every row (core settings included)."""
        same = [(k, self.records[0][k]) for k in CORE
                if self.records and len({_hashable(r[k]) for r in self.records}) == 1]
        return same + [(k, v) for k, v in self.constant.items() if k not in ("data_fingerprint", "input_files")]

    def caption(self, shown: Iterable[str] | None = None, settings: bool = True) -> str:
        """Settings equal for every run that are not among the shown columns (settings=False: left out)
        and what a cell and a mark mean."""
        shown = set(CORE if shown is None else shown)
        parts = []
        same = [(k, v) for k, v in self.same_for_every_run() if k not in shown]
        if same and settings:
            parts.append("same for every run: " + ", ".join(f"{k}={_fmt_setting(v)}" for k, v in same))
        if self.grouped:
            parts.append("each row: the runs that differ only in their seeds (n); cells: mean ±sd"
                         + (" [95% CI, Student t, n >= 3] or (range, n = 2)" if self.intervals else ""))
        if any(_row_broken(r) for r in self.records):
            parts.append("! after C-ACC: the victim never learned its task (C-ACC under 3x chance): its ASR, RA "
                         "and a defense's DER on it mean nothing")
        if any(r.get("detector") for r in self.records) and "der" in self.metrics:
            parts.append("DER '-': a detector that leaves the model as it is, judged by AUROC/TPR/FPR")
        return "; ".join(parts)


def _row_broken(row: dict[str, Any]) -> bool:
    return bool(row.get("victim_broken") or row.get("broken"))


def _unify(column: list[Any]) -> list[Any]:
    """One type per column (for CSV and Parquet): ints with floats become floats, anything mixed text."""
    kinds = {type(v) for v in column if v is not None}
    if kinds <= {int, float} and float in kinds:
        return [None if v is None else float(v) for v in column]
    if len(kinds) > 1:
        return [None if v is None else (json.dumps(v) if isinstance(v, bool) else str(v)) for v in column]
    return column


def build_table(recs: list[RunRecord], group: bool | None = None, sort: str | None = None,
                intervals: bool = False) -> ResultsTable:
    """The table of these runs: grouped over seeds when group is True, or (None) when any two runs
    differ only in their seeds; columns: the core settings, every varying setting, then metrics.
    sort: a metric to order the rows by (ascending; '-asr' descending), else by settings."""
    varying, constant = varying_settings(recs)
    for k in CORE:
        constant.pop(k, None)
    settings = list(CORE) + [k for k in varying if k not in CORE]
    if group is None:  # group when two runs differ only in their seeds
        keys = [r.key() for r in recs]
        group = len(set(keys)) < len(keys)
    metrics = [m for m in METRICS if m in ("cacc", "asr", "ra", "der")
               or any(r.metrics.get(m) is not None for r in recs)]
    out: list[dict[str, Any]] = []
    if group:
        groups = sorted(group_runs(recs), key=lambda g: _row_order(g.settings, varying))
        for g in groups:
            row = {k: g.settings.get(k) for k in settings}
            row["n"] = len(g.runs)
            for m in metrics:
                st = g.stats[m]
                row[f"{m}_mean"] = st.mean if st else None
                row[f"{m}_sd"] = st.sd if st else None
                row[f"{m}_ci_low"] = st.ci_low if st else None
                row[f"{m}_ci_high"] = st.ci_high if st else None
                row[f"{m}_min"] = st.low if st else None
                row[f"{m}_max"] = st.high if st else None
            row["broken"] = sum(r.broken for r in g.runs)
            row["detector"] = all(r.detector for r in g.runs)
            row["run_ids"] = " ".join(r.run_id for r in g.runs)
            out.append(row)
        tail = ["n", *[f"{m}_{s}" for m in metrics for s in ("mean", "sd", "ci_low", "ci_high", "min", "max")],
                "broken", "detector", "run_ids"]
    else:
        seeds = [k for k in SEEDS if any(r.settings.get(k) is not None for r in recs)]
        for r in sorted(recs, key=lambda r: _row_order(r.settings, varying)):
            row = {k: r.settings.get(k) for k in [*settings, *seeds]}
            row.update({m: r.metrics.get(m) for m in metrics})
            row["victim_broken"] = r.broken
            row["detector"] = r.detector
            row["run_id"] = r.run_id
            row["parent"] = r.parent
            out.append(row)
        settings = settings + seeds
        tail = [*metrics, "victim_broken", "detector", "run_id", "parent"]
    columns = settings + tail
    for k in settings:
        vals = _unify([row[k] for row in out])
        for row, v in zip(out, vals):
            row[k] = v
    if sort:
        metric = sort.lstrip("-")
        if metric not in METRICS:
            raise BdbError(f"cannot sort by {sort!r}: pass a metric ({', '.join(METRICS)}), '-' first for "
                           "descending (e.g. --sort=-asr)")
        key = f"{metric}_mean" if group else metric
        have = [r for r in out if r.get(key) is not None]
        have.sort(key=lambda r: r[key], reverse=sort.startswith("-"))  # stable: ties keep the settings order
        out = have + [r for r in out if r.get(key) is None]
    return ResultsTable(out, columns, settings, metrics, constant, group, len(recs), intervals)


# cells ----------------------------------------------------------------------------------------
def _fmt_setting(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return format(v, "g")
    return str(v)


def fmt_metric(metric: str, v: float | None) -> str:
    """One metric value as shown: C-ACC, ASR, RA in percent with 2 decimals, the others as decimals."""
    if v is None:
        return "-"
    if metric in PERCENT:
        return f"{100 * v:.2f}"
    return f"{v:.{DIGITS.get(metric, 3)}f}"


def metric_cell(table: ResultsTable, row: dict[str, Any], metric: str, compact: bool = False) -> str:
    """A metric cell: the value, or for a group of several runs 'mean ±sd' (with table.intervals, then
    '[ci_low, ci_high]' for n >= 3 and '(min-max)' for n = 2). C-ACC of a broken victim ends in '!';
    a detector's DER is '-'. compact: 'mean±sd' without a space (narrow terminals)."""
    if metric == "der" and row.get("detector"):
        return "-"
    mark = " !" if metric == "cacc" and _row_broken(row) else ""
    if not table.grouped:
        return fmt_metric(metric, row.get(metric)) + mark
    mean = row.get(f"{metric}_mean")
    if mean is None or row.get(f"{metric}_sd") is None:
        return fmt_metric(metric, mean) + mark
    sd = row[f"{metric}_sd"]
    sd_txt = f"{100 * sd:.2f}" if metric in PERCENT else f"{sd:.{DIGITS.get(metric, 3)}f}"
    cell = f"{fmt_metric(metric, mean)}{'' if compact else ' '}±{sd_txt}"
    if table.intervals:
        if row.get("n", 0) >= 3:
            cell += f" [{fmt_metric(metric, row[f'{metric}_ci_low'])}, {fmt_metric(metric, row[f'{metric}_ci_high'])}]"
        else:
            cell += f" ({fmt_metric(metric, row[f'{metric}_min'])}-{fmt_metric(metric, row[f'{metric}_max'])})"
    return cell + mark


def display_columns(table: ResultsTable, metrics: list[str] | None = None) -> list[tuple[str, str]]:
    """(key, header) of the columns a person reads: attack and defense, every other setting that
    varies, seeds or n, the metrics, and the run id of single runs."""
    def differs(k: str) -> bool:
        vals = {_hashable(r[k]) for r in table.records}
        if k in SEEDS:  # a seed column only where seeds differ (a defense seed is absent from attack runs)
            vals.discard(None)
        return len(vals) > 1

    shown = [k for k in table.settings if k in ("attack", "defense") or differs(k)]
    cols = [(k, "ratio" if k == "pratio" else k) for k in shown]
    if table.grouped:
        cols.append(("n", "n"))
    cols += [(m, LABELS[m]) for m in (metrics or table.metrics) if m in table.metrics]
    if not table.grouped:
        cols.append(("run_id", "run"))
    return cols


def display_rows(table: ResultsTable, columns: list[tuple[str, str]], compact: bool = False) -> list[list[str]]:
    """The text cells of the displayed columns."""
    rows = []
    for r in table.records:
        rows.append([metric_cell(table, r, k, compact) if k in METRICS else _fmt_setting(r.get(k))
                     for k, _ in columns])
    return rows


# exports --------------------------------------------------------------------------------------
SUFFIXES = {".md": "md", ".markdown": "md", ".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


def format_for(fmt: str | None, out: str | os.PathLike | None, as_json: bool = False) -> str | None:
    """The export format asked for: --format, else --json, else the --out file's suffix; None: a
    table for a person."""
    if as_json and fmt not in (None, "json"):
        raise BdbError(f"--json and --format {fmt} disagree: pass one of them")
    if fmt is not None:
        return fmt
    if as_json:
        return "json"
    if out is not None:
        found = SUFFIXES.get(Path(out).suffix.lower())
        if found is None:
            raise BdbError(f"cannot tell the format of {Path(out).name} from its suffix: "
                           f"pass --format ({', '.join(FORMATS)})")
        return found
    return None


def check_format(fmt: str, out: str | os.PathLike | None) -> None:
    """A one-line error for an unknown format, or Parquet without a file to write."""
    if fmt not in FORMATS:
        raise BdbError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)} (e.g. --format csv)")
    if fmt == "parquet" and out is None:
        raise BdbError("--format parquet writes a binary file: pass --out FILE.parquet")


def _require_pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise BdbError("--format parquet needs pyarrow: pip install 'bdcore[parquet]'") from None
    return pyarrow


def to_markdown(table: ResultsTable, title: str = "") -> str:
    """A Markdown table of the displayed columns, with the caption below it (grouped cells with their
    intervals: a file is read closer than a terminal)."""
    from dataclasses import replace

    table = replace(table, intervals=True)
    cols = display_columns(table)

    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = [f"**{esc(title)}**", ""] if title else []
    lines.append("| " + " | ".join(esc(h) for _, h in cols) + " |")
    lines.append("|" + "|".join("---:" if k in METRICS or k in ("n", "pratio") else "---" for k, _ in cols) + "|")
    for cells in display_rows(table, cols):
        lines.append("| " + " | ".join(esc(c) for c in cells) + " |")
    cap = table.caption(k for k, _ in cols)
    if cap:
        lines += ["", esc(cap)]
    return "\n".join(lines) + "\n"


def to_csv(table: ResultsTable) -> str:
    """Every column of the records as CSV (empty cell = no value)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=table.columns, lineterminator="\n")
    w.writeheader()
    for r in table.records:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in table.columns})
    return buf.getvalue()


def to_json(table: ResultsTable) -> str:
    """The records as a JSON array of objects."""
    return json.dumps(table.records, indent=2, allow_nan=False) + "\n"


def to_parquet_bytes(table: ResultsTable) -> bytes:
    """The records as a Parquet file (needs pyarrow, the 'parquet' extra)."""
    pa = _require_pyarrow()
    import pyarrow.parquet as pq

    cols = {k: [r.get(k) for r in table.records] for k in table.columns}
    arrow = pa.table(cols) if table.records else pa.table({k: pa.array([], pa.string()) for k in table.columns})
    sink = io.BytesIO()
    pq.write_table(arrow, sink)
    return sink.getvalue()


def check_out_path(path: str | os.PathLike) -> Path:
    """A one-line error now (before any work) if a file cannot be written at path."""
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        raise BdbError(f"cannot write {path}: it is a directory; pass a file name to --out")
    if parent.exists() and not parent.is_dir():
        raise BdbError(f"cannot write {path}: {parent} is not a directory; pass another --out")
    if not parent.is_dir():
        raise BdbError(f"cannot write {path}: directory {parent} does not exist; create it or pass another --out")
    if not os.access(parent, os.W_OK):
        raise BdbError(f"cannot write {path}: directory {parent} is not writable; pass --out in a writable directory")
    return path


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write a file whole or not at all (a temporary file in the same directory, then renamed)."""
    path = check_out_path(path)
    parent = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=parent)
    except OSError as exc:
        raise BdbError(f"cannot write {path}: {exc.strerror or exc}; pass --out in a writable directory") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise BdbError(f"cannot write {path}: {exc.strerror or exc}; pass --out in a writable directory") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def export(table: ResultsTable, fmt: str, out: str | os.PathLike | None = None, title: str = "") -> str | None:
    """The table in a format: written to out (atomically), or returned as text when out is None."""
    check_format(fmt, out)
    data: str | bytes
    if fmt == "parquet":
        data = to_parquet_bytes(table)
    elif fmt == "csv":
        data = to_csv(table)
    elif fmt == "json":
        data = to_json(table)
    else:
        data = to_markdown(table, title)
    if out is None:
        return data if isinstance(data, str) else None
    write_atomic(out, data)
    return None
