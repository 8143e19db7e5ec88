"""The metrics overview (radar chart of the attack run and every defense run on it) and the
confusion matrix of a split."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from bdcore import Analysis, AnalysisContext, AnalysisResult

AXES = ("cacc", "asr", "ra", "der", "rir")
LABELS = ("C-ACC", "ASR", "RA", "DER", "RIR")


def _row(m: dict) -> dict[str, float | None]:
    """The scores on the axes; a missing one (DER and RIR of an undefended model, any score of a
    diverged run) stays None."""
    return {k: None if m.get(k) is None else float(m[k]) for k in AXES}


class Metrics(Analysis):
    """The stored metrics (computed by the harness) of the attack run and of every defense run on it
    in the store; the analysed run is drawn bold, a missing score is marked n/a."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        arun = ctx.attack_run
        rows = {"no defense": _row(arun.metrics)}
        ids = {"no defense": arun.run_id}
        for r in ctx.store.rows(kind="defense"):
            if r.get("parent") == arun.run_id:
                label = f"{r['defense']} ({r['run_id'][:8]})"
                rows[label], ids[label] = _row(r["metrics"]), r["run_id"]
        current = next(label for label, rid in ids.items() if rid == ctx.run.run_id) if ctx.run.run_id in ids.values() \
            else "no defense"
        if ctx.is_defense and current == "no defense":  # not indexed (a store without index): use the run itself
            current = f"{ctx.run.config.get('defense')} ({ctx.run.run_id[:8]})"
            rows[current], ids[current] = _row(ctx.run.metrics), ctx.run.run_id
        fig = Figure(figsize=(11, 4.8))
        ax = fig.add_subplot(1, 2, 1, projection="polar")
        angles = np.linspace(0, 2 * np.pi, len(AXES), endpoint=False)
        closed = np.r_[angles, angles[:1]]
        for i, (label, m) in enumerate(rows.items()):
            vals = np.array([np.nan if m[k] is None else m[k] for k in AXES])
            missing = [name for name, v in zip(LABELS, vals) if np.isnan(v)]
            bold = label == current
            ax.plot(closed, np.r_[vals, vals[:1]], lw=2.6 if bold else 1.2, marker="o", ms=3, color=f"C{i}",
                    label=f"{label} ({', '.join(missing)} n/a)" if missing else label)
            if not missing:  # an outline with a gap encloses nothing
                ax.fill(closed, np.r_[vals, vals[:1]], alpha=0.18 if bold else 0.05, color=f"C{i}")
        ax.set_xticks(angles, LABELS)
        ax.set_ylim(0, 1)
        ax.set_yticks([0.25, 0.5, 0.75, 1.0], ["", "0.5", "", "1"])
        ax.legend(loc="upper right", bbox_to_anchor=(1.45, 1.12), fontsize=8)
        bx = fig.add_subplot(1, 2, 2)
        width = 0.8 / len(rows)
        for i, (label, m) in enumerate(rows.items()):
            xs = np.arange(len(AXES)) + i * width - 0.4 + width / 2
            shown = [j for j, k in enumerate(AXES) if m[k] is not None]
            bx.bar(xs[shown], [m[AXES[j]] for j in shown], width, color=f"C{i}",
                   edgecolor="black" if label == current else "none")
            for x, k in zip(xs, AXES):
                if m[k] is None:
                    bx.text(x, 0.02, "n/a", ha="center", va="bottom", rotation=90, fontsize=7, color=f"C{i}")
        bx.set_xticks(np.arange(len(AXES)), LABELS)
        bx.set_ylim(0, 1.05)
        bx.axhline(0.5, color="grey", lw=0.6, ls=":")
        fig.suptitle(f"metrics: {ctx.label_of()}")
        return AnalysisResult(numbers={**rows[current], "runs": rows, "run_ids": ids}, figure=fig)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


class ConfusionMatrix(Analysis):
    """Rows are true classes (before any trigger), columns the model's predictions; on bd-test a
    working backdoor puts most mass in the target column."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        s = ctx.sample(default_split="clean-test", default_n=100_000)
        pred = ctx.predict(s.x).numpy()
        y = s.y.numpy()
        k = ctx.num_classes
        m = confusion(y, pred, k)
        numbers = {"n": int(len(y)), "accuracy": float((pred == y).mean()), "matrix": m.tolist()}
        if ctx.target is not None:
            numbers["target"] = ctx.target
            numbers["target_column_share"] = float((pred == ctx.target).mean())
        fig = Figure(figsize=(6.5, 5.6) if k <= 20 else (9, 8))
        ax = fig.add_subplot(1, 1, 1)
        share = m / np.maximum(m.sum(1, keepdims=True), 1)
        im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        fig.colorbar(im, ax=ax, fraction=0.046, label="share of the row")
        if k <= 20:
            names = [str(c)[:10] for c in ctx.data.classes]
            ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
            ax.set_yticks(range(k), names, fontsize=8)
            for i in range(k):
                for j in range(k):
                    if m[i, j]:
                        ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if share[i, j] > 0.5 else "black")
        if ctx.target is not None:
            ax.add_patch(Rectangle((ctx.target - 0.5, -0.5), 1, k, fill=False, edgecolor="red", lw=1.5, clip_on=False))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true class")
        ax.set_title(f"{s.split}, n={len(y)}, accuracy {numbers['accuracy']:.3f}\n{ctx.label_of()}", fontsize=9)
        return AnalysisResult(numbers=numbers, figure=fig)
