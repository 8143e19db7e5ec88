"""The runner of analysis tools: open a finished run as an AnalysisContext and run a tool on it.

`bdb analyze` and the report call `run_analysis`; the tools themselves implement
`bdcore.Analysis` (bdcore.api.analysis).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bdcore.api.analysis import PENULTIMATE, SPLITS, Analysis, AnalysisContext, AnalysisResult, _finite
from bdcore.config import build_config
from bdcore.errors import BdbError, require
from bdcore.runs.store import RunStore


def open_run(run_id: str, store: RunStore, device: torch.device, reg: Any = None, **options: Any) -> AnalysisContext:
    """An AnalysisContext for a finished attack or defense run (a defense run: its stored repaired
    model, or the attack run's model when the defense stored none, with the attack of its attack run);
    reg: the registry the run's attack and model come from (default: the installed plugins')."""
    from bdcore.bench.harness import load_attack_run, load_run_model

    run = store.load(run_id)
    attack_run_id = run.run_id if run.kind == "attack" else run.config["attack_run"]
    arun, acfg, data, attack, backdoored, pidx = load_attack_run(attack_run_id, store, device, reg=reg)
    model = backdoored
    if run.kind == "defense" and run.file("model.safetensors").is_file():
        model = load_run_model(run, store, acfg.model, data, device, reg)
    return AnalysisContext(run=run, attack_run=arun, model=model, backdoored=backdoored, data=data, attack=attack,
                           attack_config=acfg, poison_indices=pidx, device=device, store=store, **options)


def run_analysis(tool: str, run_id: str, *, store: RunStore | None = None, out: str | Path | None = None,
                 split: str | None = None, layer: str | None = None, cls: int | None = None, n: int | None = None,
                 settings: dict[str, Any] | None = None, seed: int = 0, device: str = "auto",
                 reg: Any = None) -> AnalysisResult:
    """Run an analysis tool on a finished run; write its PNG to `out` when given.

    The result's numbers carry the tool's numbers plus 'tool', 'run_id' and 'split' (the split, or
    list of splits, the tool drew samples from; None for tools that use no data)."""
    matplotlib = require("matplotlib", "report", "an analysis tool's figure")
    matplotlib.use("Agg", force=True)
    from bdcore.nn.runtime import keep_threads, pick_device, seed_all
    from bdcore.api.registry import registry

    reg = reg or registry()
    if out is not None:
        from bdcore.reporting.preview import check_png_path

        check_png_path(out)
    store = store or RunStore()
    spec = reg.get("analysis", tool)
    cfg = build_config(spec.config_model(), settings or {}, f"analysis {tool} settings")
    if split is not None and split not in SPLITS:
        raise BdbError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    dev = pick_device(device)
    ctx = open_run(run_id, store, dev, reg, split=split, layer=layer, cls=cls, n=n, seed=seed)
    if layer and layer != PENULTIMATE:
        ctx.module(layer)  # a wrong name fails before any work
    cls_ = spec.load()
    tool_obj = cls_(cfg)
    if not isinstance(tool_obj, Analysis):
        raise BdbError(f"analysis {tool!r} from {spec.package} is not a bdcore.api.analysis.Analysis")
    seed_all(seed)
    with keep_threads():  # umap-learn's numba kernels reset the process's OpenMP thread count
        result = tool_obj.run(ctx)
    if not isinstance(result, AnalysisResult):
        raise BdbError(f"analysis {tool!r} returned {type(result).__name__}, expected AnalysisResult")
    used = ctx._cache.get("splits", [])
    result.numbers = {"tool": tool, "run_id": ctx.run.run_id,
                      "split": used[0] if len(used) == 1 else (used or None), **_finite(result.numbers)}
    if out is not None:
        result.save(out)
    return result
