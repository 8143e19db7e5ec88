"""D-ST: secure training by the sensitivity of poisoned samples (Chen, Wu & Wang, NeurIPS 2022).

Sample distinguishment (`bdcore.distinguish`) splits the poisoned training set by FCT into trusted
clean (lowest FCT), suspected poison (highest) and uncertain samples. Secure training then builds
a model from scratch in two stages:

1. the feature extractor (the victim architecture up to its classification head, with a
   projection head) learns by semi-supervised contrastive learning on every training image: a
   trusted anchor's positives are all views of trusted-or-not images with its label, an
   untrusted anchor's only positive is its other view, so the poisoned labels never pull a
   trigger towards the target class;
2. the classification head learns on the frozen extractor from the trusted clean samples
   (cross-entropy) while pushing away from the suspected poison (minus a small weight times its
   cross-entropy); optionally on the plain images and on standardised features
   (`LinearProbe.standardized`, folded into the model's last layer afterwards), which the miniature
   preset needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import (ContrastiveHook, Defense, DefenseInputs, DefenseOutput, LinearProbe, Projected, TrainHook,
                    TrainSet, accuracy_on, distinguish, mark_untrusted, read_trust, simclr_augment, train)

from bdb_defense_d_st.config import DSTConfig


def mixed_cross_entropy(logits: torch.Tensor, y: torch.Tensor, weight: float) -> torch.Tensor:
    """CE over the trusted samples minus weight x CE over the untrusted ones (labels as `mark_untrusted`
    writes them; each term a batch mean, 0 when the batch has none)."""
    labels, trusted = read_trust(y)
    zero = logits.sum() * 0
    ce_t = F.cross_entropy(logits[trusted], labels[trusted]) if trusted.any() else zero
    ce_u = F.cross_entropy(logits[~trusted], labels[~trusted]) if (~trusted).any() else zero
    return ce_t - weight * ce_u


class MixedCE(TrainHook):
    """The stage-2 loss on one SimCLR view of the batch (augment=False: on the batch as it is)."""

    def __init__(self, weight: float, augment: bool = True) -> None:
        self.weight, self.augment, self.hflip = weight, augment, True

    def on_train_start(self, model: nn.Module, trainset) -> None:
        self.hflip = trainset.hflip

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step) -> torch.Tensor:
        if self.augment:
            x = simclr_augment(x, step.gen, self.hflip)
        return mixed_cross_entropy(model(x), y, self.weight)


class DST(Defense):
    """FCT separation, semi-supervised contrastive extractor, linear classifier on the trusted samples."""

    config: DSTConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c, seed, data = self.config, self.ctx.seed, inputs.train
        torch.manual_seed(seed)
        sep = distinguish(inputs.new_model, data, inputs.recipe, seed, warm_epochs=c.warm_epochs,
                          intra_epochs=c.intra_epochs, clean_ratio=c.clean_ratio, poison_ratio=c.poison_ratio,
                          lr=c.sd_lr, degrees=c.degrees, translate=c.translate, batch_size=c.score_batch_size)
        info = {"clean": int(sep.clean.sum()), "poison": int(sep.poison.sum()),
                "fct_median": float(sep.scores.median()), "probe_val_acc": accuracy_on(sep.probe, inputs.val)}
        del sep.probe

        model = inputs.new_model()
        marked = TrainSet(data.x, mark_untrusted(data.y, ~sep.clean), hflip=data.hflip, device=data.device)
        extractor = Projected(model, c.projection_dim)
        stats = train(extractor, marked, inputs.recipe.model_copy(update={
            "epochs": c.extractor_epochs, "lr": c.extractor_lr, "batch_size": c.extractor_batch_size,
            "optimizer": "sgd", "momentum": 0.9, "weight_decay": c.extractor_weight_decay, "schedule": "cosine",
            "augment": False}), seed=seed + 3,
            hooks=[ContrastiveHook(c.temperature, c.base_temperature, supervised=True)])
        info["extractor_loss"] = stats.final_loss

        keep = sep.clean | sep.poison
        stage2 = TrainSet(data.x[keep.to(data.device)], mark_untrusted(data.y, sep.poison)[keep.to(data.device)],
                          hflip=data.hflip, device=data.device)
        if c.standardize_features:
            probe = LinearProbe.standardized(model, stage2, c.score_batch_size)
        else:
            probe = LinearProbe(model)
        stats = train(probe, stage2, inputs.recipe.model_copy(update={
            "epochs": c.classifier_epochs, "lr": c.classifier_lr, "batch_size": c.classifier_batch_size,
            "optimizer": "sgd", "momentum": 0.9, "weight_decay": 0.0, "schedule": "constant", "augment": False}),
            seed=seed + 4, params=probe.head_parameters(), hooks=[MixedCE(c.unlearn_weight, c.classifier_augment)])
        probe.fold()
        info["classifier_loss"] = stats.final_loss
        info["val_acc"] = accuracy_on(model, inputs.val)
        info["flag_count"] = int(sep.poison.sum())
        return DefenseOutput(model=model.eval(), flagged=sep.poison, scores=sep.scores, info=info)
