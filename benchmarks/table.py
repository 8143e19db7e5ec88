"""The method tables of the closing notes, in miniature: attacks, and defenses x attacks, on mnist5k.

    python benchmarks/table.py attacks lc lf ssba ...          # C-ACC ASR RA PSNR SSIM, prepare time, artifact size
    python benchmarks/table.py attacks 'lc[surrogate_epochs=5,surrogate_lr=0.1]'   # settings on top of the defaults
    python benchmarks/table.py defenses --attacks badnet blended wanet -- ft nad anp ...
    python benchmarks/table.py defenses -- cd[steps=10] strip strip[mode=data]   # settings on top of the preset

Every run uses the miniature recipe of the tests (quick preset: small-cnn, 15 epochs, lr 0.1,
pratio 0.1, target 0, seed 0, the attack's default settings) and each defense's quick preset (the
same run ids as the tests' `backdoored_run(...)`); runs go to --runs (default a
fresh temporary store, or BDB_RUNS) so a second call reuses them. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def _method(name: str) -> tuple[str, dict]:
    """'cd[steps=10,k=1]' -> ('cd', {'steps': 10, 'k': 1}): the items are `--set` items (bdcore.config.parse_set)."""
    from bdcore.config import parse_set

    if "[" not in name:
        return name, {}
    ident, _, rest = name.partition("[")
    items, depth, cur = [], 0, ""
    for ch in rest[:-1] if rest.endswith("]") else rest:  # split on the commas outside brackets (lists)
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return ident, parse_set([i for i in items if i])


def _cfg(name: str):
    from bdcore.config import AttackRunConfig, TrainRecipe
    from bdcore.bench.presets import victim_recipe

    attack, settings = _method(name)
    return AttackRunConfig(attack=attack, attack_config=settings, dataset="mnist5k", model="small-cnn", pratio=0.1,
                           preset="quick", train=TrainRecipe.model_validate(victim_recipe("quick", "mnist5k")))


def _pct(v):
    return "" if v is None else f"{100 * v:.1f}"


def attacks(names: list[str], store) -> None:
    from bdcore.bench.harness import run_attack

    print("| attack | C-ACC | ASR | RA | PSNR | SSIM | prepare s | artifacts MiB | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for a in names:
        t = time.perf_counter()
        run = run_attack(_cfg(a), store=store, device="cpu")
        wall = time.perf_counter() - t
        m, meta = run.metrics, run.meta
        prep = sum(u.get("seconds", 0.0) for u in meta.get("artifacts", []))
        files = [next(store.artifacts_dir.rglob(u["file"]), None) for u in meta.get("artifacts", [])]
        size = sum(f.stat().st_size for f in files if f is not None) / 2**20
        psnr, ssim = m.get("psnr"), m.get("ssim")
        print(f"| {a} | {_pct(m['cacc'])} | {_pct(m['asr'])} | {_pct(m['ra'])} | "
              f"{'' if psnr is None else f'{psnr:.1f}'} | {'' if ssim is None else f'{ssim:.3f}'} | {prep:.0f} | "
              f"{size:.2f} | {meta.get('wall_seconds', wall):.0f} |", flush=True)


def defenses(names: list[str], attack_names: list[str], store) -> None:
    from bdcore.config import DefenseRunConfig
    from bdcore.bench.harness import run_attack, run_defense

    print("| defense | attack | C-ACC | ASR | RA | DER | AUROC | TPR | FPR | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for a in attack_names:
        arun = run_attack(_cfg(a), store=store, device="cpu")
        m = arun.metrics
        print(f"| (none) | {a} | {_pct(m['cacc'])} | {_pct(m['asr'])} | {_pct(m['ra'])} | | | | | |", flush=True)
        for d in names:
            ident, settings = _method(d)
            t = time.perf_counter()
            try:
                run = run_defense(DefenseRunConfig(defense=ident, defense_config=settings, attack_run=arun.run_id,
                                                   preset="quick"), store=store, device="cpu")
            except Exception as exc:  # a table row, not a crash
                print(f"| {d} | {a} | failed: {str(exc).splitlines()[0][:80]} |||||||||", flush=True)
                continue
            wall = run.meta.get("wall_seconds", time.perf_counter() - t)
            dm = run.metrics
            det = dm.get("detection") or dm.get("input_detection") or {}
            auroc, tpr, fpr = det.get("auroc"), det.get("tpr"), det.get("fpr")
            der = dm.get("der")
            print(f"| {d} | {a} | {_pct(dm.get('cacc'))} | {_pct(dm.get('asr'))} | {_pct(dm.get('ra'))} | "
                  f"{'' if der is None else f'{100 * der:.1f}'} | {'' if auroc is None else f'{auroc:.3f}'} | "
                  f"{_pct(tpr)} | {_pct(fpr)} | {wall:.0f} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["attacks", "defenses"])
    p.add_argument("names", nargs="+")
    p.add_argument("--attacks", nargs="+", default=["badnet", "blended", "wanet"])
    p.add_argument("--runs", default=os.environ.get("BDB_RUNS"))
    args = p.parse_args()
    from bdcore.runs.store import RunStore

    store = RunStore(args.runs or tempfile.mkdtemp(prefix="bdb-table-"))
    print(f"<!-- runs in {store.root}; threads {os.environ.get('OMP_NUM_THREADS', 'default')} -->")
    if args.what == "attacks":
        attacks(args.names, store)
    else:
        defenses(args.names, args.attacks, store)


if __name__ == "__main__":
    main()
