"""HTBA in the paper's threat model, in miniature: a pretrained feature extractor, a head-only victim.

    python benchmarks/htba_transfer.py                         # all sources, 200 steps, eps 16
    python benchmarks/htba_transfer.py src=8 iters=1000 npois=200
    python benchmarks/htba_transfer.py src=8 iters=500 npois=200 eps=64

A small-cnn trained on clean mnist5k (sur_ep epochs, lr 0.1) is both the attacker's feature
extractor and the victim's pretrained network; the poisons are made with the plugin's own
`optimise_poisons`; the victim re-initialises its last layer and retrains only it (head_ep epochs,
lr 0.01) on the training set whose target images are replaced by the poisons. Prints the feature
distances, and C-ACC / ASR of the head-only victim and of a head retrained on clean data.
ASR: patched source test images (patch at a random place) classified as the target; "no patch":
clean source test images classified as the target. Single-threaded, seed 0.
"""

from __future__ import annotations

import copy
import sys
import time

import torch

from bdcore import classifier
from bdcore.config import TrainRecipe
from bdcore.api.resolve import build_model, load_dataset
from bdcore.data.trainset import TrainSet
from bdcore.nn.trainer import predict, train
from bdb_attack_htba.attack import features, optimise_poisons, paste, patch_image, place_for, random_places
from bdb_attack_htba.config import HTBAConfig

TARGET = 0
CPU = torch.device("cpu")


def head_only(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> torch.nn.Module:
    """A copy of net whose last layer is re-initialised and retrained alone on (x in [0,1], y)."""
    v = copy.deepcopy(net)
    head = classifier(v)[1]
    torch.manual_seed(0)
    head.reset_parameters()
    for p in head.parameters():
        p.requires_grad_(True)
    data = TrainSet((x * 255).round().to(torch.uint8), y, hflip=False, device=CPU)
    train(v, data, TrainRecipe(epochs=epochs, lr=0.01, augment=False), seed=0, params=list(head.parameters()))
    return v.eval()


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    a = dict(kv.split("=", 1) for kv in argv)
    sur_ep, iters, lr = int(a.get("sur_ep", 15)), int(a.get("iters", 200)), float(a.get("lr", 0.01))
    src, npois, head_ep, eps = int(a.get("src", -1)), int(a.get("npois", 400)), int(a.get("head_ep", 10)), \
        float(a.get("eps", 16))
    data = load_dataset("mnist5k")
    torch.manual_seed(0)
    net = build_model("small-cnn", data)
    t0 = time.time()
    train(net, TrainSet(data.x_train, data.y_train, hflip=data.hflip, device=CPU), TrainRecipe(epochs=sur_ep, lr=0.1),
          seed=0)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    xt, yt = data.x_test.float() / 255, data.y_test
    print(f"pretrained small-cnn: {time.time() - t0:.0f} s, C-ACC {(predict(net, xt) == yt).float().mean():.3f}")

    cfg = HTBAConfig(iterations=iters, lr=lr, eps=eps)
    patch = patch_image(cfg, (1, 28, 28))
    ytr = data.y_train
    sources = data.x_train[(ytr != TARGET) if src < 0 else (ytr == src)].float() / 255
    idx = torch.nonzero(ytr == TARGET).flatten()[:npois]
    gen = torch.Generator().manual_seed(0)
    t0 = time.time()
    z = torch.cat([optimise_poisons(net, data.x_train[idx[s:s + 100]].float() / 255, sources, patch, cfg, gen)
                   for s in range(0, len(idx), 100)])
    print(f"poisons: {len(z)} in {time.time() - t0:.0f} s")
    with torch.no_grad():
        s = sources[:500]
        r, c = random_places(len(s), patch.shape[-1], 28, 28, torch.Generator().manual_seed(1))
        fs, fsp = features(net, s), features(net, paste(s, patch, r, c))
        ft, fz = features(net, data.x_train[idx].float() / 255), features(net, z)
        print(f"patch moves a source's features by {(fsp - fs).norm(dim=1).mean():.2f} (|f| {fs.norm(dim=1).mean():.2f})")
        print(f"nearest patched source: poison {torch.cdist(fz, fsp).min(1).values.mean():.2f}, "
              f"target before {torch.cdist(ft, fsp).min(1).values.mean():.2f}; "
              f"nearest clean source: poison {torch.cdist(fz, fs).min(1).values.mean():.2f}")

    xtr = data.x_train.float() / 255
    poisoned = xtr.clone()
    poisoned[idx] = z
    xs = xt[(yt != TARGET) if src < 0 else (yt == src)]
    r, c = place_for(torch.arange(len(xs)), 0, patch.shape[-1], 28, 28)
    xp = paste(xs, patch, r, c)
    for name, v in [("head-only victim", head_only(net, poisoned, ytr, head_ep)),
                    ("head on clean data", head_only(net, xtr, ytr, head_ep))]:
        cacc = (predict(v, xt) == yt).float().mean()
        asr = (predict(v, xp) == TARGET).float().mean()
        base = (predict(v, xs) == TARGET).float().mean()
        print(f"{name}: C-ACC {cacc:.3f}  ASR {asr:.3f}  no patch {base:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
