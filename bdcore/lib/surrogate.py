"""A clean surrogate model for attacks that craft their poison against one (LC, LF, TrojanNN,
Narcissus, HTBA): trained once through the shared trainer and cached as an artifact."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from bdcore.config import TrainRecipe

if TYPE_CHECKING:
    from bdcore.api.attack import AttackContext
    from bdcore.data import ImageDataset


def data_fingerprint(data: "ImageDataset") -> str:
    """A short content hash of a dataset (the one run identities use; cached per dataset object)."""
    from bdcore.runs.identity import dataset_fingerprint

    return dataset_fingerprint(data)


def train_surrogate(ctx: "AttackContext", data: "ImageDataset", *, model: str | None = None,
                    recipe: TrainRecipe | dict[str, Any] | None = None, seed: int = 0,
                    adversarial: dict[str, float] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """A clean model trained on the attacker's (clean) training data, in eval mode on ctx.device.

    model: a registered model name (default: the victim's, ctx.model); recipe: how to train it
    (default: TrainRecipe's defaults, the reference victim recipe); seed: its init and data order;
    adversarial: {"eps", "step_size", "steps"} (eps and step in [0, 1] units) trains it robust, by
    PGD adversarial training (`bdcore.lib.adversarial.AdversarialTraining`); None: standard training.
    The weights are cached in ctx.artifacts under a key of the dataset (name, fingerprint), model,
    recipe and seed, so every attack and setting that asks for the same surrogate reuses it.
    Returns the model and that key (for keying what an attack derives from it).
    """
    from bdcore.api.resolve import build_model
    from bdcore.data.trainset import TrainSet
    from bdcore.nn.trainer import train

    name = model or ctx.model
    rec = recipe if isinstance(recipe, TrainRecipe) else TrainRecipe(**(recipe or {}))
    key = {"dataset": data.name, "fingerprint": data_fingerprint(data), "shape": list(data.shape),
           "model": name, "recipe": rec.model_dump(mode="json"), "seed": seed}
    if adversarial:  # only then, so that every standard surrogate keeps its key
        key["adversarial"] = {k: adversarial[k] for k in ("eps", "step_size", "steps")}

    def fresh() -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_model(name, data)

    def build() -> dict[str, torch.Tensor]:
        net = fresh()
        report = ctx.progress
        hooks = []
        if adversarial:
            from bdcore.lib.adversarial import AdversarialTraining

            hooks.append(AdversarialTraining(**key["adversarial"]))
        progress = None if report is None else lambda done, total, _loss: report("surrogate", done, total)
        train(net, TrainSet(data.x_train, data.y_train, hflip=data.hflip, device=ctx.device), rec, seed=seed,
              hooks=hooks, progress=progress)
        return net.state_dict()

    net = fresh()
    net.load_state_dict(ctx.artifacts.get_or_build("surrogate", key, build))
    net.to(ctx.device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, key
