"""Speed and scale measurements for grids (issue 12); prints measured numbers, asserts nothing.

    python benchmarks/scale.py anchor       # BadNets then FT, PreAct-ResNet18, 5 epochs, mnist5k: fp32 vs bf16
    python benchmarks/scale.py precision    # C-ACC/ASR of fp32 vs bf16 training (small-cnn and preact-resnet18)
    python benchmarks/scale.py executors    # grid throughput: 1 worker x N threads vs N workers x 1 thread; Ray
    python benchmarks/scale.py evaluation   # bdb's predict against a bare model(x) loop, img/s (issue 30)
    python benchmarks/scale.py              # all four

Take timings with nothing else running. Every run goes to a fresh temporary store.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

ANCHOR = dict(epochs=5, lr=0.01, batch_size=128)


def _attack(store, attack="badnet", model="preact-resnet18", precision="fp32", seed=0, **recipe):
    from bdcore.config import AttackRunConfig, TrainRecipe
    from bdcore.bench.harness import run_attack
    from bdcore.bench.presets import victim_recipe

    r = {**victim_recipe("reference", "mnist5k"), **recipe, "precision": precision}
    cfg = AttackRunConfig(attack=attack, dataset="mnist5k", model=model, pratio=0.1, seed=seed,
                          train=TrainRecipe.model_validate(r))
    t = time.perf_counter()
    run = run_attack(cfg, store=store, device="cpu")
    return run, time.perf_counter() - t


def _defend(store, run, defense="ft", preset="reference"):
    from bdcore.config import DefenseRunConfig
    from bdcore.bench.harness import run_defense

    t = time.perf_counter()
    d = run_defense(DefenseRunConfig(defense=defense, attack_run=run.run_id, preset=preset), store=store, device="cpu")
    return d, time.perf_counter() - t


def anchor() -> None:
    """The anchor cell of the issue: BadNets then FT with the reference recipe at 5 epochs."""
    import torch

    from bdcore.runs.store import RunStore

    print(f"anchor cell: BadNets + FT, preact-resnet18, mnist5k, {ANCHOR}, threads {torch.get_num_threads()}")
    for precision in ("fp32", "bf16"):
        store = RunStore(tempfile.mkdtemp())
        run, ta = _attack(store, precision=precision, **ANCHOR)
        m = run.metrics
        print(f"  {precision}: attack {ta:6.1f} s ({m['images_per_second']:.0f} img/s) C-ACC {m['cacc']:.4f} "
              f"ASR {m['asr']:.4f}", flush=True)
        # FT's reference setting is 100 epochs over the 200-image reserve (as many images as the attack's
        # 5 epochs); the quick preset's 20 epochs is what the first bdb figure (17 s) used
        for preset in ("quick", "reference"):
            d, td = _defend(store, run, preset=preset)
            dm = d.metrics
            print(f"        FT ({preset}) {td:5.1f} s C-ACC {dm['cacc']:.4f} ASR {dm['asr']:.4f} | "
                  f"attack + FT {ta + td:6.1f} s", flush=True)


def precision() -> None:
    """Accuracy and ASR of fp32 against bf16 training, over seeds."""
    from bdcore.runs.store import RunStore

    cases = [("small-cnn", "badnet", dict(epochs=15, lr=0.1)), ("small-cnn", "blended", dict(epochs=15, lr=0.1)),
             ("preact-resnet18", "badnet", ANCHOR)]
    for model, attack, recipe in cases:
        for precision in ("fp32", "bf16"):
            rows = []
            for seed in (0, 1):
                run, t = _attack(RunStore(tempfile.mkdtemp()), attack, model, precision, seed, **recipe)
                rows.append((run.metrics["cacc"], run.metrics["asr"], t))
            cells = "  ".join(f"seed {s}: C-ACC {c:.4f} ASR {a:.4f} ({t:.0f} s)" for s, (c, a, t) in enumerate(rows))
            print(f"{model:16s} {attack:8s} {precision}: {cells}")


GRID = """
name = "throughput"
datasets = ["mnist5k"]
preset = "quick"
attacks = ["badnet", "blended", "sig", "wanet"]
defenses = ["none", "ft", "fp"]
seeds = [0]
[train]
epochs = 3
"""


def executors() -> None:
    """Runs per hour of a small grid (4 attacks x 2 defenses, small-cnn, 3 epochs) per executor setting."""
    import tomllib

    from bdcore.bench.executor import plan_grid, run_grid
    from bdcore.bench.grid import Grid
    from bdcore.bench.preflight import check_attack
    from bdcore.api.registry import registry

    grid = Grid.model_validate(tomllib.loads(GRID))
    plan = plan_grid([check_attack(c, registry(), None) for c in grid.attack_runs()], grid.defense_runs)
    cores = os.cpu_count() or 1
    n = len(plan.tasks)
    settings = [("local", 1, cores), ("local", cores, 1), ("ray", cores, 1)]
    for executor, workers, threads in settings:
        root = tempfile.mkdtemp()
        t = time.perf_counter()
        out = run_grid(plan, root, device="cpu", workers=workers, threads=threads, executor=executor)
        wall = time.perf_counter() - t
        busy = sum(o.seconds for o in out)
        print(f"{executor:5s} {workers} worker(s) x {threads} thread(s): {n} runs in {wall:6.1f} s = "
              f"{3600 * n / wall:5.0f} runs/h; sum of run times {busy:6.1f} s; "
              f"statuses {sorted({o.status for o in out})}")
    # Ray's overhead per task: tasks that find their run already stored do no work
    t = time.perf_counter()
    run_grid(plan, root, device="cpu", workers=cores, threads=1, executor="ray")
    print(f"ray, every run already stored: {time.perf_counter() - t:.1f} s for {n} tasks "
          f"(including starting and stopping a local Ray instance)")


def evaluation() -> None:
    """Inference throughput of bdcore.nn.trainer.predict (what every evaluation runs) against the plainest loop
    over the same 1,900 images (mnist5k's test set and its triggered copy, as one evaluation sees them):
    `model(x).argmax(1)` under no_grad in batches of 1,024, contiguous, fp32. Target: predict >= 90% of it."""
    import torch

    from bdcore.api.resolve import build_model, load_dataset
    from bdcore.nn.trainer import predict

    data = load_dataset("mnist5k")
    x = torch.cat([data.x_test, data.x_test[:900]]).float().div(255)
    for name in ("small-cnn", "preact-resnet18"):
        torch.manual_seed(0)
        model = build_model(name, data).eval()

        def bare() -> None:
            with torch.no_grad():
                for s in range(0, len(x), 1024):
                    model(x[s:s + 1024]).argmax(1)

        rates = {}
        for label, fn in (("bare loop", bare), ("predict fp32", lambda: predict(model, x)),
                          ("predict bf16", lambda: predict(model, x, precision="bf16"))):
            fn()  # warm-up (oneDNN primitives, allocator)
            t = time.perf_counter()
            reps = 3
            for _ in range(reps):
                fn()
            rates[label] = reps * len(x) / (time.perf_counter() - t)
        base = rates["bare loop"]
        print(f"{name:16s} " + "  ".join(f"{k} {v:7.0f} img/s ({v / base:4.2f}x)" for k, v in rates.items())
              + f"  [{torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}]")


if __name__ == "__main__":
    which = sys.argv[1:] or ["anchor", "precision", "executors", "evaluation"]
    for name in which:
        {"anchor": anchor, "precision": precision, "executors": executors, "evaluation": evaluation}[name]()
