"""Speed measurements of bdb; prints measured numbers (no assertions).

    python benchmarks/bench.py            # everything
    python benchmarks/bench.py listing    # or: trainer, demo

- listing: `bdb list attacks` wall time against `python -c "import torch"` (target: < 1/4).
- trainer: images/s of the shared trainer (BadNets poisoning + augmentation, mnist5k) for
  small-cnn and preact-resnet18, as a share of a bare forward/backward/step loop on random
  tensors of the same shape and batch (target: >= 90%); also channels_last and torch.compile.
- demo: total wall time of the demo benchmark from scratch.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def _wall(cmd: list[str], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def listing() -> None:
    bdb = str(BIN / "bdb")
    t_list = _wall([bdb, "list", "attacks"])
    t_help = _wall([bdb, "--help"])
    t_torch = _wall([sys.executable, "-c", "import torch"])
    print(f"listing: bdb list attacks {t_list * 1000:.0f} ms, bdb --help {t_help * 1000:.0f} ms, "
          f"import torch {t_torch * 1000:.0f} ms -> list/torch = {t_list / t_torch:.2f} (target < 0.25)")


def _bare(model, shape, batch: int, steps: int, channels_last: bool) -> float:
    import torch
    import torch.nn.functional as F

    x = torch.rand(batch, *shape)
    y = torch.randint(0, 10, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(2):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t)


def _trainer(model, data, attack, pidx, batch: int, steps: int, channels_last: bool, compile_: bool) -> float:
    import torch

    from bdcore.config import TrainRecipe
    from bdcore.data.trainset import TrainSet
    from bdcore.nn.trainer import train

    n = batch * steps
    keep = torch.zeros(len(data.y_train), dtype=torch.bool)
    keep[:n] = True
    ts = TrainSet(data.x_train, data.y_train, hflip=data.hflip, attack=attack, poison_idx=pidx).subset(keep)
    warm = TrainSet(data.x_train, data.y_train, hflip=data.hflip, attack=attack, poison_idx=pidx).subset(
        torch.arange(len(data.y_train)) < 2 * batch)
    recipe = TrainRecipe(epochs=1, batch_size=batch, lr=0.01, channels_last=channels_last, compile=compile_)
    train(model, warm, recipe, seed=0)  # warm-up (and compilation)
    stats = train(model, ts, recipe, seed=1)
    return stats.images_per_second


def trainer() -> None:
    import torch

    from bdcore.config import AttackRunConfig
    from bdcore.api.resolve import build_model, load_dataset
    from bdcore.bench.harness import make_attack
    from bdcore.runs.store import RunStore

    data = load_dataset("mnist5k")
    with tempfile.TemporaryDirectory() as tmp:
        attack = make_attack(AttackRunConfig(attack="badnet"), data, RunStore(tmp), torch.device("cpu"))
        pidx = attack.poison_indices(data.y_train, torch.Generator().manual_seed(0))
        print(f"trainer: torch {torch.__version__}, {torch.get_num_threads()} threads, mnist5k 1x28x28, batch 128, "
              "BadNets 10% + crop augmentation")
        for name, steps in (("small-cnn", 30), ("preact-resnet18", 8)):
            for cl, comp in ((False, False), (True, False), (True, True)):
                torch.manual_seed(0)
                t_rate = _trainer(build_model(name, data), data, attack, pidx, 128, steps, cl, comp)
                torch.manual_seed(0)
                bare_model = build_model(name, data)
                if comp:
                    bare_model = torch.compile(bare_model)
                b_rate = _bare(bare_model, data.shape, 128, steps, cl)
                print(f"  {name:16s} channels_last={cl!s:5s} compile={comp!s:5s} trainer {t_rate:8.1f} img/s, "
                      f"bare loop {b_rate:8.1f} img/s -> {100 * t_rate / b_rate:5.1f}% (target >= 90%)")


def demo() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([str(BIN / "bdb"), "demo", "--runs", tmp], check=True, capture_output=True)
        first = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run([str(BIN / "bdb"), "demo", "--runs", tmp], check=True, capture_output=True)
        again = time.perf_counter() - t
    print(f"demo: {first:.1f} s from scratch (2 attacks x 15 epochs + 2 FT runs), {again:.1f} s again (all reused)")


if __name__ == "__main__":
    which = sys.argv[1:] or ["listing", "trainer", "demo"]
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    for w in which:
        {"listing": listing, "trainer": trainer, "demo": demo}[w]()
