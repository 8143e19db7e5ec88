"""NAB: Beating Backdoor Attack at Its Own Game (Liu, Sangiovanni-Vincentelli & Yue, ICCV 2023).

Fight a backdoor with a backdoor. Suspicious training samples are detected (here, as in the
paper's main setting, by ABL's LGA isolation: the lowest losses of a model trained with
sign(L - gamma) * L). Each detected sample gets a defensive trigger and a "true" label from a
labeller that the attack did not touch; a fresh model trained on this set learns a non-adversarial
backdoor: defensive trigger -> true label. At test time every input is stamped with the defensive
trigger, which takes precedence over the attack's trigger on poisoned inputs and changes little on
clean ones. The returned model does the stamping itself (`Stamped`).
"""

from __future__ import annotations

import torch
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput, TrainSet, accuracy_on, fine_tune, lga_isolate, predict

from bdb_defense_nab.config import NABConfig


def defensive_mask(shape: tuple[int, int, int], patch: int) -> torch.Tensor:
    """(1, H, W) mask of the defensive trigger: a patch x patch square in the top-left corner."""
    _, h, w = shape
    m = torch.zeros(1, h, w)
    m[:, :patch, :patch] = 1.0
    return m


def trigger_colour(kind: str, mean: tuple[float, ...]) -> torch.Tensor:
    """(C, 1, 1) colour of the defensive square in [0, 1]: white, or the dataset's per-channel mean."""
    values = [1.0] * len(mean) if kind == "white" else list(mean)
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1)


class Stamped(nn.Module):
    """A model that stamps the defensive trigger (`colour`, default white, where mask is 1) on every input first."""

    def __init__(self, net: nn.Module, mask: torch.Tensor, colour: torch.Tensor | None = None) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mask", mask.clone())
        self.register_buffer("colour", torch.ones(1, 1, 1) if colour is None else colour.clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * (1 - self.mask) + self.colour * self.mask)


def relabelled(train: TrainSet, detected: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
               colour: torch.Tensor | None = None, only_changed: bool = False) -> TrainSet:
    """The training set with the detected samples' labels replaced and the defensive trigger on them (only where
    the label changes when `only_changed`); colour (C, 1, 1) in [0, 1], default white; uint8 images get it
    rounded to the nearest level."""
    x, y = train.x.clone(), train.y.clone()
    idx = detected.nonzero().flatten().to(x.device)
    new = labels.to(y.device)
    stamp = idx[new != y[idx]] if only_changed else idx
    m = mask.to(x.device)
    col = (torch.ones(1, 1, 1) if colour is None else colour.float()).to(x.device)
    if x.dtype == torch.uint8:
        x[stamp] = (x[stamp] * (1 - m) + torch.round(col * 255) * m).round().to(x.dtype)
    else:
        x[stamp] = (x[stamp] * (1 - m) + col * m).to(x.dtype)
    y[idx] = new
    return TrainSet(x, y, hflip=train.hflip, device=train.device)


class NAB(Defense):
    """LGA detection, defensive trigger with stand-in labels, training, stamping at test time."""

    config: NABConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c, seed, train = self.config, self.ctx.seed, inputs.train
        torch.manual_seed(seed)
        probe = inputs.new_model()
        detected, losses = lga_isolate(probe, train, inputs.recipe, seed, batch_size=c.batch_size, **c.lga_options())
        k = int(detected.sum())

        # stand-in for the paper's self-supervised labeller: a model trained on the clean reserve only
        labeller = inputs.new_model()
        fine_tune(labeller, inputs.reserve_fit or inputs.reserve, inputs.recipe, seed + 1, epochs=c.relabel_epochs)
        x_det, y_det = train.batch(detected.nonzero().flatten())
        labels = predict(labeller, x_det, c.batch_size)

        mask = defensive_mask(train.shape, c.patch)
        colour = trigger_colour(c.trigger_value, self.ctx.mean)
        if train.x.dtype == torch.uint8:
            colour = torch.round(colour * 255) / 255  # the level the stored training images get
        net = inputs.new_model()
        fine_tune(net, relabelled(train, detected, labels, mask, colour, only_changed=c.stamp == "changed"),
                  inputs.recipe, seed + 2, epochs=c.train_epochs or inputs.recipe.epochs)
        model = Stamped(net, mask, colour).to(self.ctx.device).eval()
        changed = int((labels.cpu() != y_det.cpu()).sum())
        info = {"detected": k, "relabelled_changed": changed, "stamped": changed if c.stamp == "changed" else k,
                "labeller_val_acc": accuracy_on(labeller, inputs.val), "val_acc_plain": accuracy_on(net, inputs.val),
                "val_acc": accuracy_on(model, inputs.val), "flag_count": k}
        return DefenseOutput(model=model, flagged=detected, scores=-losses, info=info)
