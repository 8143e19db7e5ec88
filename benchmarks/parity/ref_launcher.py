"""Run one of the reference benchmark's scripts on the parity data, without editing its files.

Runs inside the reference's virtual environment, from the root of its checkout:

    cd <checkout> && <ref-venv>/bin/python <bdb>/benchmarks/parity/ref_launcher.py attack/badnet.py --yaml_path ...

Before the script is run (as __main__, with the remaining arguments as its argv) three things of
the reference are patched in memory:

1. torchvision's MNIST gives 3-channel images (the grey value in each channel, mode RGB): the
   reference's MNIST path breaks on its 3-channel triggers (BadNets' trigger image, Blended's
   hello-kitty, ...) and models;
2. the reference's `get_input_shape('mnist')` says (28, 28, 3) to match, and its MNIST normalisation
   is given per channel (mean and std 0.5 three times instead of its one-element lists, which its
   own `get_dataset_denormalization` cannot negate);
3. its model factory `generate_cls_model` knows one more name, `bdb_small_cnn`: the same
   architecture as bdb's `small-cnn` (bdcore.nn.models.SmallCNN, width 32; restated below, since this
   runs where bdcore is not installed), so a run takes seconds.

Everything else is the reference's own code. The patches are applied to the modules before the
script imports its names from them (`from ... import generate_cls_model` binds at import time).

`python ref_launcher.py --first-batch OUT.npz --dataset_path DATA [--n N]` instead writes the
first N training images and labels as the reference's data pipeline gives them before
augmentation (its test-time transform: Resize, ToTensor, Normalize), for the equality check;
`--poisoned OUT.npz --bd_yaml_path YAML --dataset_path DATA [--n N]` writes the same images
through the attack's train-time and test-time trigger transforms (uint8).
"""

from __future__ import annotations

import os
import runpy
import sys

MODEL_NAME = "bdb_small_cnn"


def _small_cnn(num_classes: int = 10, in_channels: int = 3, image_size: int = 28, width: int = 32):
    """bdb's small-cnn (bdcore.nn.models.SmallCNN): three conv-BN-ReLU blocks and a linear head."""
    from torch import nn

    class SmallCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = width
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                nn.MaxPool2d(2) if image_size >= 16 else nn.Identity(),
                nn.Conv2d(w, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
                nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(inplace=True),
            )
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(4 * w, num_classes)

        def forward(self, x):
            import torch

            return self.fc(torch.flatten(self.pool(self.features(x)), 1))

    return SmallCNN()


def patch_reference() -> None:
    """Apply the three in-memory patches (see the module docstring), and NumPy's removed aliases that the
    reference still uses, as they were: `np.float` (removed in 1.24; FTrojan's transform), `np.infty`
    (removed in 2.0; `general_plot_for_epoch`, which CLP and others call), `np.lib.pad` (removed in 2.0;
    Refool's `blend_images`), and their kin."""
    sys.path.insert(0, os.getcwd())
    import numpy as np

    for name, value in {"float": float, "int": int, "bool": bool, "object": object, "infty": np.inf,
                        "Inf": np.inf, "NaN": np.nan, "float_": np.float64, "round_": np.round}.items():
        if name not in np.__dict__:
            setattr(np, name, value)
    if not hasattr(np.lib, "pad"):  # removed in 2.0; Refool's blend_images pads with it
        np.lib.pad = np.pad

    # I-BAU asks for device='cuda' in one torch.zeros_like (defense/i-bau.py:490) whatever --device says:
    # without CUDA, such a call gets the input's own device
    import torch

    if not torch.cuda.is_available():
        zeros_like = torch.zeros_like

        def zeros_like_here(input, *args, **kwargs):
            if str(kwargs.get("device", "")).startswith("cuda"):
                kwargs["device"] = input.device
            return zeros_like(input, *args, **kwargs)

        torch.zeros_like = zeros_like_here
    import torchvision.datasets
    from PIL import Image

    base = torchvision.datasets.MNIST

    class MNIST3(base):
        """MNIST whose images are 3-channel (RGB, the grey value in each channel)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.data = self.data.unsqueeze(-1).repeat(1, 1, 1, 3)  # (N, 28, 28, 3) uint8

        def __getitem__(self, index):
            img, target = self.data[index], int(self.targets[index])
            img = Image.fromarray(img.numpy(), mode="RGB")
            if self.transform is not None:
                img = self.transform(img)
            if self.target_transform is not None:
                target = self.target_transform(target)
            return img, target

        # torchvision looks for raw/processed files under root/<class name>: keep MNIST's folder
        @property
        def raw_folder(self) -> str:
            return os.path.join(self.root, "MNIST", "raw")

        @property
        def processed_folder(self) -> str:
            return os.path.join(self.root, "MNIST", "processed")

    torchvision.datasets.MNIST = MNIST3
    torchvision.datasets.mnist.MNIST = MNIST3

    import utils.aggregate_block.dataset_and_transform_generate as dtg

    shape = dtg.get_input_shape

    def get_input_shape(dataset_name):
        if dataset_name == "mnist":
            return 28, 28, 3
        return shape(dataset_name)

    dtg.get_input_shape = get_input_shape

    # MNIST's normalisation as one value per channel of the 3-channel images (the same 0.5 / 0.5): the
    # reference's one-element lists ([0.5], [0.5]) break its own get_dataset_denormalization ('- mean' on a
    # list), which WaNet, BPP, InputAware, LIRA and others call
    norm = dtg.get_dataset_normalization

    def get_dataset_normalization(dataset_name):
        if dataset_name == "mnist":
            from torchvision import transforms

            return transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
        return norm(dataset_name)

    dtg.get_dataset_normalization = get_dataset_normalization

    import utils.aggregate_block.model_trainer_generate as mtg

    factory = mtg.generate_cls_model

    def generate_cls_model(model_name, num_classes=10, image_size=32, **kwargs):
        if model_name == MODEL_NAME:
            return _small_cnn(num_classes=num_classes, in_channels=3, image_size=28)
        return factory(model_name, num_classes, image_size, **kwargs)

    mtg.generate_cls_model = generate_cls_model

    # NC (defense/nc.py) defines its own Normalize/Denormalize classes with MNIST's one-element lists
    # ([0.5], [0.5]) and asserts one value per input channel (nc.py:93, :158, :171). The classes live in the
    # script, so they are adapted as they are built: a one-element list becomes one value per channel (the same
    # 0.5 / 0.5 the 3-channel normalisation above uses). Nothing else is touched.
    import builtins

    build_class = builtins.__build_class__

    def build_class_here(func, name, *bases, **kwargs):
        cls = build_class(func, name, *bases, **kwargs)
        if name in ("Normalize", "Denormalize") and getattr(func, "__module__", "") == "__main__":
            init = cls.__init__

            def __init__(self, opt, expected_values, variance, _init=init):
                n = getattr(opt, "input_channel", len(expected_values))
                if len(expected_values) == 1 and n > 1:
                    expected_values, variance = list(expected_values) * n, list(variance) * n
                _init(self, opt, expected_values, variance)

            cls.__init__ = __init__
        return cls

    builtins.__build_class__ = build_class_here


def first_batch(out: str, dataset_path: str, n: int) -> None:
    """The first n training images and labels through the reference's test-time transform."""
    import numpy as np
    import torch

    from utils.aggregate_block.dataset_and_transform_generate import dataset_and_transform_generate

    class Args:
        dataset = "mnist"
        img_size = (28, 28, 3)

    args = Args()
    args.dataset_path = f"{dataset_path}/mnist"
    train, _, _, _, test_tf, _ = dataset_and_transform_generate(args)
    xs, ys = zip(*(train[i] for i in range(n)))
    x = torch.stack([test_tf(img) for img in xs]).numpy()
    raw = np.stack([np.asarray(img) for img in xs])  # the PIL images themselves, (n, 28, 28, 3) uint8
    np.savez(out, x=x, y=np.asarray(ys), raw=raw, normalize=repr(test_tf))
    print(f"reference first batch: {x.shape} {x.dtype} -> {out}")


def poisoned(out: str, bd_yaml: str, dataset_path: str, n: int) -> None:
    """The first n training images through the reference's train-time and test-time trigger (uint8)."""
    import numpy as np
    import yaml

    from utils.aggregate_block.bd_attack_generate import bd_attack_img_trans_generate
    from utils.aggregate_block.dataset_and_transform_generate import dataset_and_transform_generate

    class Args:
        dataset = "mnist"
        img_size = (28, 28, 3)

    args = Args()
    args.dataset_path = f"{dataset_path}/mnist"
    with open(bd_yaml) as fh:
        args.__dict__.update(yaml.safe_load(fh))
    train, *_ = dataset_and_transform_generate(args)
    train_tf, test_tf = bd_attack_img_trans_generate(args)
    items = [train[i] for i in range(n)]
    res = {}
    for split, tf in (("train", train_tf), ("test", test_tf)):
        res[split] = np.stack([np.asarray(tf(img, target=y, image_serial_id=i)) for i, (img, y) in enumerate(items)])
    np.savez(out, **res)
    print(f"reference poisoned images: {res['train'].shape} -> {out}")


def main() -> None:
    argv = sys.argv[1:]
    if not argv:
        raise SystemExit(__doc__)
    patch_reference()
    if argv[0] == "--first-batch":
        import argparse

        ap = argparse.ArgumentParser()
        ap.add_argument("--first-batch", dest="out", required=True)
        ap.add_argument("--dataset_path", required=True)
        ap.add_argument("--n", type=int, default=128)
        a = ap.parse_args(argv)
        first_batch(a.out, a.dataset_path, a.n)
        return
    if argv[0] == "--poisoned":
        import argparse

        ap = argparse.ArgumentParser()
        ap.add_argument("--poisoned", dest="out", required=True)
        ap.add_argument("--bd_yaml_path", required=True)
        ap.add_argument("--dataset_path", required=True)
        ap.add_argument("--n", type=int, default=64)
        a = ap.parse_args(argv)
        poisoned(a.out, a.bd_yaml_path, a.dataset_path, a.n)
        return
    script = argv[0]
    sys.argv = [script] + argv[1:]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
