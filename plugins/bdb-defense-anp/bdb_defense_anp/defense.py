"""ANP: Adversarial Neuron Pruning (Wu & Wang, NeurIPS 2021).

Every BN neuron k (scale gamma_k, shift beta_k) gets a mask m_k in [0, 1] and relative adversarial
perturbations delta_k (on the scale) and xi_k (on the shift), |delta|, |xi| <= eps. The masks solve

    min_m  alpha * L(m * gamma, beta) + (1 - alpha) * max_{delta, xi} L((m + delta) * gamma, (1 + xi) * beta)

on the clean reserve: per mini-batch, delta and xi start uniform in [-eps, eps] and take
`perturb_steps` ascent steps of size eps / steps (clipped back to the budget); then the masks take one
SGD step on the weighted loss and are clipped to [0, 1]. Finally the neurons whose mask is below the
threshold are pruned (their BN scale is zeroed; shifts are kept, as the mask only acts on the scale);
all other neurons keep their original weights. The perturbed network is evaluated by substituting
BN affine parameters (torch.func.functional_call), so any backbone with BatchNorm2d layers works.
As in the reference implementation, BN normalises with batch statistics while the masks are learnt
(bn_mode 'train'; the running statistics are restored afterwards) and the reserve batches are augmented
with the victim's crop/flip; the pruned model is evaluated with its running statistics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import augment
from bdcore import Defense, DefenseInputs, DefenseOutput, accuracy_on
from bdcore import BdbError
from bdcore import batchnorms, prune_bn_below

from bdb_defense_anp.config import ANPConfig


class NeuronPerturbedForward:
    """Runs a model with its BN scales multiplied by `scale` and shifts by `shift` (flat, all BN neurons)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.layers = batchnorms(model)
        if not self.layers:
            raise BdbError(f"ANP needs BatchNorm2d layers; {type(model).__name__} has none")
        self.sizes = [bn.num_features for _, bn in self.layers]
        self.n = sum(self.sizes)

    def __call__(self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        params = {}
        for (name, bn), s, t in zip(self.layers, scale.split(self.sizes), shift.split(self.sizes)):
            params[name + ".weight"] = bn.weight * s
            params[name + ".bias"] = bn.bias * t
        return torch.func.functional_call(self.model, params, (x,))


def optimise_masks(fwd: NeuronPerturbedForward, data, c: ANPConfig, gen: torch.Generator) -> torch.Tensor:
    """The ANP min-max over masks; returns the final mask values (flat, in [0, 1])."""
    device = data.device
    mask = torch.ones(fwd.n, device=device, requires_grad=True)
    opt = torch.optim.SGD([mask], lr=c.lr, momentum=c.momentum)
    ones = torch.ones(fwd.n, device=device)
    step = c.eps / c.perturb_steps
    n = len(data)
    order, pos = torch.randperm(n, generator=gen), 0
    for _ in range(c.iterations):
        if pos + c.batch_size > n and pos > 0:  # next epoch over the reserve
            order, pos = torch.randperm(n, generator=gen), 0
        x, y = data.batch(order[pos:pos + c.batch_size])
        pos += c.batch_size
        if c.augment:
            x = augment(x, gen, data.hflip)
        delta = xi = None
        if c.eps > 0:
            delta = ((torch.rand(fwd.n, generator=gen) * 2 - 1) * c.eps).to(device)
            xi = ((torch.rand(fwd.n, generator=gen) * 2 - 1) * c.eps).to(device)
            m0 = mask.detach()
            for _ in range(c.perturb_steps):
                delta.requires_grad_(True)
                xi.requires_grad_(True)
                loss = F.cross_entropy(fwd(x, m0 + delta, ones + xi), y)
                gd, gx = torch.autograd.grad(loss, [delta, xi])
                if c.perturb_update == "sign":
                    gd, gx = gd.sign(), gx.sign()
                delta = (delta.detach() + step * gd).clamp(-c.eps, c.eps)
                xi = (xi.detach() + step * gx).clamp(-c.eps, c.eps)
        loss = F.cross_entropy(fwd(x, mask, ones), y)
        if delta is not None:
            loss = c.alpha * loss + (1 - c.alpha) * F.cross_entropy(fwd(x, mask + delta, ones + xi), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            mask.clamp_(0, 1)
    return mask.detach()


def prune_below(fwd: NeuronPerturbedForward, mask: torch.Tensor, threshold: float) -> dict[str, list[int]]:
    """Zero the BN scale of every neuron whose mask is below `threshold`; returns the pruned indices."""
    return prune_bn_below(fwd.layers, mask.split(fwd.sizes), threshold)


class ANP(Defense):
    """Adversarial neuron pruning on the clean reserve; any threshold choice uses the validation split."""

    config: ANPConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model
        fwd = NeuronPerturbedForward(model)
        requires = [p.requires_grad for p in model.parameters()]
        buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
        for p in model.parameters():
            p.requires_grad_(False)
        model.train(c.bn_mode == "train")
        try:
            # a threshold chosen on the validation split: optimise on the rest of the reserve
            data = inputs.reserve_fit if c.selection == "val" else inputs.reserve
            mask = optimise_masks(fwd, data, c, torch.Generator().manual_seed(self.ctx.seed))
        finally:
            model.eval()
            with torch.no_grad():
                for n, b in model.named_buffers():
                    b.copy_(buffers[n])
            for p, r in zip(model.parameters(), requires):
                p.requires_grad_(r)
        original = {n: bn.weight.detach().clone() for n, bn in fwd.layers}
        val_before = accuracy_on(model, inputs.val)
        info: dict = {"val_acc_before": val_before, "mask_quantiles": {
            str(q): round(float(mask.quantile(q)), 4) for q in (0.0, 0.01, 0.05, 0.1, 0.5)}}
        threshold = c.threshold
        if c.selection == "val":
            trials = {}
            threshold = 0.0
            for t in sorted(c.val_thresholds):
                prune_below(fwd, mask, t)
                acc = accuracy_on(model, inputs.val)
                trials[str(t)] = {"pruned": int((mask < t).sum()), "val_acc": acc}
                if acc >= val_before - c.max_val_drop:
                    threshold = t
                with torch.no_grad():
                    for n, bn in fwd.layers:
                        bn.weight.copy_(original[n])
            info["val_trials"] = trials
        pruned = prune_below(fwd, mask, threshold)
        info.update({
            "threshold": threshold, "pruned": pruned, "pruned_count": sum(len(v) for v in pruned.values()),
            "neurons": fwd.n, "val_acc_after": accuracy_on(model, inputs.val),
        })
        if not info["pruned_count"]:
            info["unchanged"] = f"no neuron's mask fell below the pruning threshold {threshold}"
        return DefenseOutput(model=model, info=info)
