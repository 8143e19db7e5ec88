"""The architecture as one forward pass executes it: every leaf layer in order, with its output
shape and parameter count, drawn as a flow of boxes coloured by layer type."""

from __future__ import annotations

from collections import Counter

import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from bdcore import Analysis, AnalysisContext, AnalysisResult, forward_trace


def trace_layers(model: torch.nn.Module, x: torch.Tensor) -> list[dict]:
    """(name, type, output shape, parameters) of every leaf module, in the order the forward pass runs them."""
    return [{"name": n, "type": type(m).__name__,
             "shape": list(out.shape[1:]) if isinstance(out, torch.Tensor) else [],
             "params": sum(p.numel() for p in m.parameters(recurse=False))}
            for n, m, out in forward_trace(model, x, leaves_only=True)]


class Network(Analysis):
    """Boxes in execution order, in columns of up to 24; colour = layer type."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        rows = trace_layers(ctx.model, ctx.data.x_test[:1].float().div(255.0).to(ctx.device))
        per_col = 24
        cols = max(1, (len(rows) + per_col - 1) // per_col)
        fig = Figure(figsize=(3.4 * cols, 0.36 * min(len(rows), per_col) + 1.4))
        ax = fig.add_subplot(1, 1, 1)
        types = sorted({r["type"] for r in rows})
        colour = {t: f"C{i % 10}" for i, t in enumerate(types)}
        for i, r in enumerate(rows):
            cx, cy = i // per_col, -(i % per_col)
            ax.add_patch(FancyBboxPatch((cx * 3.4, cy - 0.4), 3.1, 0.8, boxstyle="round,pad=0.02",
                                        facecolor=colour[r["type"]], alpha=0.35, edgecolor="black", lw=0.5))
            shape = "x".join(str(v) for v in r["shape"])
            label = f"{r['name']}  {r['type']}  {shape}" + (f"  {r['params']:,}p" if r["params"] else "")
            ax.text(cx * 3.4 + 0.08, cy, label, va="center", fontsize=6, family="monospace")
            if i + 1 < len(rows) and (i + 1) % per_col:
                ax.annotate("", (cx * 3.4 + 1.5, cy - 0.6), (cx * 3.4 + 1.5, cy - 0.4),
                            arrowprops={"arrowstyle": "->", "lw": 0.5})
        ax.set_xlim(-0.2, cols * 3.4)
        ax.set_ylim(-min(len(rows), per_col), 1)
        ax.axis("off")
        total = sum(p.numel() for p in ctx.model.parameters())
        fig.suptitle(f"{ctx.attack_config.model}: {len(rows)} layers, {total:,} parameters", fontsize=10)
        return AnalysisResult(figure=fig, numbers={
            "layers": len(rows), "parameters": total, "types": dict(Counter(r["type"] for r in rows)), "trace": rows})
