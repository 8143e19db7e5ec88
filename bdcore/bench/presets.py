"""Named recipe presets: the one place where run defaults come from (no torch here).

`reference` is the reference benchmark's recipe (CATALOG.md): the victim trained for 100 epochs
with SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 128, cosine schedule, crop + flip; each
defense's own defaults (its pydantic config) are the paper column. `quick` is the miniature used
by the tests and the demo: 15 epochs at lr 0.1 (small-cnn on the embedded MNIST sample reaches
about 97% in 20 s on one CPU thread), and each defense's `presets["quick"]` settings from its spec.

A run records the preset's name and the fully resolved recipe and settings it produced.
"""

from __future__ import annotations

from typing import Any

from bdcore.errors import BdbError

DEFAULT_PRESET = "reference"

_REFERENCE = {"epochs": 100, "batch_size": 128, "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
              "optimizer": "sgd", "schedule": "cosine", "augment": True}

VICTIM: dict[str, dict[str, dict[str, Any]]] = {
    # preset -> dataset ("*" = any dataset without an entry of its own) -> TrainRecipe fields
    # The reference's per-dataset prototype recipes: CIFAR-10/100 100 epochs with a cosine schedule,
    # GTSRB 50 epochs, Tiny-ImageNet 200 epochs with ReduceLROnPlateau; SGD lr 0.01, momentum 0.9,
    # wd 5e-4, batch 128 and fp32 (amp off) everywhere. Other datasets (MNIST, the embedded ones,
    # image folders) take the CIFAR recipe.
    "reference": {
        "*": _REFERENCE,
        "gtsrb": {**_REFERENCE, "epochs": 50},
        "tiny-imagenet": {**_REFERENCE, "epochs": 200, "schedule": "plateau"},
    },
    "quick": {
        "*": {"epochs": 15, "batch_size": 128, "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
              "optimizer": "sgd", "schedule": "cosine", "augment": True},
    },
}
"""Victim training recipes per preset and dataset."""

PRESETS: tuple[str, ...] = tuple(VICTIM)


def check_preset(name: str) -> str:
    """The preset's name, or a BdbError listing the presets."""
    if name not in VICTIM:
        raise BdbError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}")
    return name


def victim_recipe(preset: str, dataset: str) -> dict[str, Any]:
    """The victim's TrainRecipe fields under a preset for a dataset."""
    table = VICTIM[check_preset(preset)]
    return dict(table.get(dataset, table["*"]))


def method_settings(spec: Any, preset: str) -> dict[str, Any]:
    """A method's settings under a preset: the spec's `presets[preset]` (empty: its config defaults)."""
    check_preset(preset)
    return dict((getattr(spec, "presets", None) or {}).get(preset, {}))


def describe() -> dict[str, Any]:
    """Every preset's victim recipes (for 'bdb info' and docs)."""
    return {p: {d: dict(r) for d, r in table.items()} for p, table in VICTIM.items()}
