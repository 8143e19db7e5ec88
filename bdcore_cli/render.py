"""Rendering for the terminal: tables, progress bars and the grid view (nothing here computes results)."""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Optional

from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bdcore_cli.app import out, err


def _cells(*values: Any) -> list[Text]:
    """Table cells as plain text: names and messages from plugins or run files are never markup."""
    return [v if isinstance(v, Text) else Text("" if v is None else str(v)) for v in values]


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def _print_json(obj: Any) -> None:
    from bdcore.runs.store import to_json

    sys.stdout.write(json.dumps(to_json(obj)[0], indent=2, allow_nan=False) + "\n")


# running --------------------------------------------------------------------------------------
def _progress(label: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[loss]}"), TimeRemainingColumn(), console=err, transient=True)
    task = prog.add_task(label, total=None, loss="")  # no 'loss nan' before the first step or in a phase without one

    def update(done: int, total: int, loss: float) -> None:
        prog.update(task, completed=done, total=total, loss=f"loss {loss:.3f}" if math.isfinite(loss) else "")

    return prog, update


def _metrics_table(title: str, rows: list[tuple[str, dict]], der: Optional[float] = None) -> Table:
    t = Table(title=escape(title))
    for col in ("", "C-ACC %", "ASR %", "RA %"):
        t.add_column(col, justify="right")
    for label, m in rows:
        t.add_row(*_cells(label, _pct(m.get("cacc")), _pct(m.get("asr")), _pct(m.get("ra"))))
    return t


DECISIONS = ("flagged_classes", "target_classes", "detected", "trigger_found", "anomaly_index", "flag_count",
             "threshold", "unchanged")


"""What a defense decided, from its info, in the order `bdb defend` prints them."""


def _defense_lines(m: dict) -> list[str]:
    """The lines under `bdb defend`'s table: a detector by its detection metrics (its DER is 0.5 by
    construction), a repair by DER and RIR; what it decided; a warning on a broken victim."""
    from bdcore.reporting.results import is_detector

    def num(v: Any) -> str:
        return "-" if not isinstance(v, (int, float)) else f"{v:.3f}"

    lines = []
    if is_detector(m):
        lines.append("a detector: the model is left as it is (DER means nothing here)")
    else:
        lines.append(f"DER {m['der']:.4f}  RIR {m['rir']:.4f}")
    for key, what in (("detection", "training-data detection"), ("input_detection", "input detection")):
        d = m.get(key)
        if isinstance(d, dict):
            lines.append(f"{what}: AUROC {num(d.get('auroc'))}  TPR {num(d.get('tpr'))} at FPR {num(d.get('fpr'))}  "
                         f"F1 {num(d.get('f1'))}")
    info = m.get("info") if isinstance(m.get("info"), dict) else {}
    decided = [f"{k} {json.dumps(info[k]) if not isinstance(info[k], str) else info[k]}" for k in DECISIONS if k in info]
    if decided:
        lines.append("decided: " + "; ".join(decided))
    if m.get("victim_broken"):
        lines.append(BROKEN_WARNING)
    return lines


BROKEN_WARNING = ("warning: the victim never learned its task (C-ACC under 3x chance): its ASR, RA and any DER "
                  "mean nothing; train it longer or with another lr (e.g. --epochs, --lr, --preset)")


LEADERBOARD_COLUMNS = (("dataset", "left"), ("model", "left"), ("attack", "left"), ("ratio", "right"),
                       ("seed", "right"), ("defense", "left"), ("C-ACC %", "right"), ("ASR %", "right"),
                       ("RA %", "right"), ("DER", "right"), ("AUROC", "right"), ("PSNR", "right"), ("SSIM", "right"),
                       ("run", "left"))


WIDE = 110


"""Below this terminal width the leaderboard drops PSNR/SSIM and its borders, and cells fold."""


def _leaderboard_table(rows: list[dict], title: str, limits: dict[str, str] | None = None) -> Table:
    """limits: method name -> its known limit (MethodSpec.caveat); those methods are marked '*'."""
    def num(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    def name(v: str) -> str:
        return f"{v} *" if limits and v in limits else v

    cells = [{"dataset": r["dataset"], "model": r["model"], "attack": name(r["attack"]),
              "ratio": num(r["pratio"], "g"), "seed": num(r.get("seed"), "d"), "defense": name(r["defense"]),
              "C-ACC %": _pct(r["cacc"]) + (" !" if r.get("victim_broken") else ""),
              "ASR %": _pct(r["asr"]), "RA %": _pct(r["ra"]),
              "DER": "-" if r.get("detector") else num(r["der"], ".3f"), "AUROC": num(r.get("auroc"), ".3f"),
              "PSNR": num(r.get("psnr"), ".2f"), "SSIM": num(r.get("ssim"), ".4f"),
              "run": r["run_id"]} for r in rows]
    columns = list(LEADERBOARD_COLUMNS)
    if len({c["seed"] for c in cells}) < 2:  # one seed: no column for it
        columns = [(c, j) for c, j in columns if c != "seed"]
    if not any(r.get("auroc") is not None for r in rows):
        columns = [(c, j) for c, j in columns if c != "AUROC"]
    notes = []
    if any(r.get("victim_broken") for r in rows):
        notes.append("!: victim never learned its task (C-ACC under 3x chance): its ASR and DER mean nothing")
    if any(r.get("detector") for r in rows):
        notes.append("DER -: a detector, judged by AUROC")
    if out.width >= WIDE:
        t = Table(title=escape(title), caption=escape("; ".join(notes)) or None, caption_justify="left")
    else:  # narrow: no borders, no PSNR/SSIM, and a dataset/model/ratio shared by every row goes to the title
        shared = [c for c in ("dataset", "model", "ratio") if rows and len({str(x[c]) for x in cells}) == 1]
        drop = {"PSNR", "SSIM", *shared}
        columns = [(c, j) for c, j in columns if c not in drop]
        note = ", ".join(str(cells[0][c]) for c in shared)
        for c in cells:  # a unique prefix is enough for every command that takes a run id
            c["run"] = c["run"][:12]
        t = Table(title=escape(title + (f" ({note})" if note else "")),
                  caption=escape("; ".join(["C-ACC, ASR, RA in %; PSNR/SSIM: wider terminal or --json", *notes])),
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for col, just in columns:
        t.add_column(col if t.box is not box.SIMPLE_HEAD else col.removesuffix(" %"), justify=just, overflow="fold",
                     no_wrap=col in ("run", "defense"))
    for c in cells:
        t.add_row(*_cells(*(c[col] for col, _ in columns)))
    return t


class _GridView:
    """The rich view of a grid: one overall bar, a row per run in flight, a line per finished run."""

    def __init__(self, serial: bool) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.serial = serial
        self.prog = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True)
        self.rows: dict[int, Any] = {}
        self.total = None

    def start(self, plan) -> None:
        self.total = self.prog.add_task("grid", total=len(plan.tasks))
        self.prog.start()

    def started(self, task) -> None:
        what = task.label if task.kind == "attack" else f"  defense {task.cfg.defense} on {task.label.split(' + ')[0]}"
        self.rows[task.index] = self.prog.add_task(what, total=None)
        if not self.prog.console.is_terminal:  # no live bars in a log: say what runs now, so a long run is not silent
            self.prog.console.print(f"started {what.strip()}", markup=False, highlight=False)

    def run_progress(self, task):
        row = self.rows.get(task.index)
        if row is None:
            return None

        def update(done: int, total: int, loss: float) -> None:
            self.prog.update(row, completed=done, total=total)

        return update

    def finished(self, task, o) -> None:
        row = self.rows.pop(task.index, None)
        if row is not None:
            self.prog.remove_task(row)
        self.prog.advance(self.total)
        name = task.label if task.kind == "attack" else f"  defense {task.cfg.defense}"
        if o.status in ("failed", "skipped"):
            self.prog.console.print(f"{'failed' if o.status == 'failed' else 'skipped'} {name}: {o.error}",
                                    markup=False, highlight=False)
        elif o.status == "diverged":
            self.prog.console.print(f"{name}: diverged {o.run_id} (non-finite loss or weights; try a lower lr)",
                                    markup=False, highlight=False)
        else:
            secs = f" in {o.seconds:.0f} s" if o.status == "done" else ""
            self.prog.console.print(f"{name}: {o.status} {o.run_id}{secs}", markup=False, highlight=False)

    def stop(self) -> None:
        self.prog.stop()


def _results_table(table, title: str, filtered: bool) -> Table:
    from bdcore.reporting.results import METRICS, display_columns, display_rows

    wide = out.width >= WIDE
    # narrow: the metrics a decision rests on, 'mean±sd' cells, no borders; settings that vary stay ahead of
    # metrics (a dropped ratio column made two 'badnet none' rows look the same)
    metrics = None if wide else [m for m in table.metrics if m in ("cacc", "asr", "ra", "der", "auroc")]
    cols = display_columns(table, metrics)
    rows = display_rows(table, cols, compact=not wide)
    keep = {"attack", "defense", "pratio", "n", "cacc", "asr", "run_id"}
    drop_first = ["fpr", "tpr", "ssim", "psnr", "ra"]
    cols, rows, hidden = _fit_columns(cols, rows, out.width, keep=keep, first=drop_first, border=3 if wide else 1)
    if not table.records:
        caption = "no runs match these filters" if filtered else "no runs stored yet"
    else:
        shown = {k for k, _ in cols + hidden}
        parts = [table.caption(shown, settings=wide)]
        same = [(k, v) for k, v in table.same_for_every_run() if k not in shown]
        if same and not wide:
            core = [f"{k}={v}" for k, v in same if k in ("dataset", "model", "pratio", "attack", "defense")]
            parts.insert(0, "same for every run: " + ", ".join(core + [f"{len(same) - len(core)} more (--format md)"]))
        if hidden:
            parts.append(f"not shown: {', '.join(h for _, h in hidden)} (a wider terminal or --format md/csv)")
        caption = "; ".join(p for p in parts if p)
    if wide:
        t = Table(title=escape(title), caption=escape(caption) or None, caption_justify="left")
    else:
        t = Table(title=escape(title), caption=escape(caption) or None, caption_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for k, header in cols:
        t.add_column(header, justify="right" if k in METRICS or k in ("n", "pratio") else "left", overflow="fold",
                     no_wrap=k in METRICS or k == "run_id")
    for cells in rows:
        t.add_row(*_cells(*cells))
    return t


def _fit_columns(cols: list[tuple[str, str]], rows: list[list[str]], width: int, keep: set[str],
                 first: list[str] = (), border: int = 3):
    """Drop columns until every column fits `width` at its natural width, instead of folding them all to one
    character: those named in `first` (in that order), then the other settings (the last first); the columns
    in `keep` always stay. border: the characters a column adds (padding and rule).
    Returns (columns, rows, dropped columns)."""
    need = [max([len(header), *(len(r[i]) for r in rows)]) + border for i, (_, header) in enumerate(cols)]
    total, dropped = sum(need) + 1, set()
    keys = [k for k, _ in cols]
    order = [keys.index(k) for k in first if k in keys] + [i for i in reversed(range(len(cols)))
                                                           if keys[i] not in first]
    for i in order:
        if total <= width:
            break
        if keys[i] not in keep:
            dropped.add(i)
            total -= need[i]
    idx = [i for i in range(len(cols)) if i not in dropped]
    return [cols[i] for i in idx], [[r[i] for i in idx] for r in rows], [cols[i] for i in sorted(dropped)]
