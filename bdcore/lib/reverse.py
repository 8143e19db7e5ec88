"""Trigger reverse engineering: mask-and-pattern triggers optimised against a model.

A trigger is a mask m in [0, 1]^(H x W) and a pattern p in [0, 1]^(C x H x W), stamped as
x' = (1 - m) * x + m * p (the form of Neural Cleanse, Wang et al., IEEE S&P 2019). Both live in
an unconstrained space through tanh, m = (tanh(w_m) + 1) / 2, so Adam can optimise them freely.
Triggers come in stacks of K (one per candidate target class), so that all classes are reversed
together in one batched forward pass: the classes never interact (their losses are summed and
Adam is element-wise), so this equals K separate runs at a fraction of the overhead.

Two searches share that machinery:
- `reverse_engineer`: Neural Cleanse's targeted search. For every candidate class t, find the
  smallest mask that flips inputs of the other classes to t, minimising CE(f(x'), t) + c_t |m|_1
  with the paper's adaptive cost c_t (start at 0, set to the initial cost once the attack
  succeeds, multiply up while it succeeds, divide while it fails), keeping the smallest mask that
  reached the success threshold, with early stopping.
- `worst_case_trigger`: an untargeted universal trigger with |m|_1 <= bound that maximises the
  loss of the model on the true labels (the inner maximisation of adversarial weight masking).

`anomaly_index` is the MAD outlier score Neural Cleanse applies to the reversed mask norms.
Every function works on any device; images are float tensors in [0, 1], shape (B, C, H, W).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bdcore.config import ReverseSettings
from bdcore.data.trainset import TrainSet

MAD_CONSISTENCY = 1.4826
"""Scales the median absolute deviation to the standard deviation of a normal distribution."""


def stamp(x: torch.Tensor, mask: torch.Tensor, pattern: torch.Tensor) -> torch.Tensor:
    """x' = (1 - m) * x + m * p, broadcasting mask (B|1, 1, H, W) and pattern (B|1, C, H, W)."""
    mask = mask.to(device=x.device, dtype=x.dtype)
    return x * (1 - mask) + pattern.to(device=x.device, dtype=x.dtype) * mask


def to_unconstrained(v: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The inverse of (tanh(w) + 1) / 2 for values in [0, 1] (clipped just inside the interval)."""
    return torch.atanh((2 * v - 1).clamp(-1 + eps, 1 - eps))


class MaskPatternTrigger(nn.Module):
    """K mask-and-pattern triggers held through tanh: masks (K, 1, H, W), patterns (K, C, H, W).

    bound: an optional L1 budget per mask; a mask whose L1 norm exceeds it is scaled down to it
    (m * min(1, bound / |m|_1)), inside the forward pass so gradients see the constraint.
    """

    def __init__(self, k: int, shape: Sequence[int], *, gen: torch.Generator | None = None,
                 device: torch.device | str = "cpu", bound: float | None = None) -> None:
        super().__init__()
        c, h, w = shape
        # random start in [0, 1] as in the reference implementation
        mask0 = torch.rand(k, 1, h, w, generator=gen)
        pattern0 = torch.rand(k, c, h, w, generator=gen)
        self.mask_param = nn.Parameter(to_unconstrained(mask0).to(device))
        self.pattern_param = nn.Parameter(to_unconstrained(pattern0).to(device))
        self.bound = bound

    def masks(self) -> torch.Tensor:
        """(K, 1, H, W) masks in [0, 1], scaled to the L1 bound when one is set."""
        m = (torch.tanh(self.mask_param) + 1) / 2
        if self.bound is not None:
            norm = m.flatten(1).sum(1).clamp_min(1e-12)
            m = m * (self.bound / norm).clamp(max=1.0).view(-1, 1, 1, 1)
        return m

    def patterns(self) -> torch.Tensor:
        """(K, C, H, W) patterns in [0, 1]."""
        return (torch.tanh(self.pattern_param) + 1) / 2

    def norms(self) -> torch.Tensor:
        """L1 norm of each mask, shape (K,)."""
        return self.masks().flatten(1).sum(1)

    def forward(self, x: torch.Tensor, which: torch.Tensor | None = None) -> torch.Tensor:
        """Stamp every trigger (or those indexed by `which`) on x: (K' * B, C, H, W), trigger-major."""
        m, p = self.masks(), self.patterns()
        if which is not None:
            m, p = m[which], p[which]
        k, b = m.shape[0], x.shape[0]
        out = stamp(x.unsqueeze(0), m.unsqueeze(1), p.unsqueeze(1))  # (K', B, C, H, W)
        return out.reshape(k * b, *x.shape[1:])


@contextmanager
def frozen(model: nn.Module, channels_last: bool = False) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients while optimising inputs; restores both afterwards.

    channels_last: also switch the weights to channels-last memory (same numbers, faster convs
    on CPU and CUDA), back to contiguous on exit, as the trainer does.
    """
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    try:
        yield model
    finally:
        if channels_last:
            model.to(memory_format=torch.contiguous_format)
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)

CHUNK_IMAGES = 512
"""The most stamped images one forward pass of the trigger search takes (classes are grouped to fit)."""


def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=gen)
    return [order[s:s + batch_size] for s in range(0, n, batch_size)]


@dataclass
class ReversedTriggers:
    """Result of `reverse_engineer` for K candidate classes (row k is targets[k])."""

    targets: list[int]
    masks: torch.Tensor
    """(K, 1, H, W): the smallest successful mask per class (the last one where none succeeded)."""
    patterns: torch.Tensor
    """(K, C, H, W): the matching patterns."""
    norms: torch.Tensor
    """(K,): L1 norms of the masks."""
    success: torch.Tensor
    """(K,): attack success rate of the kept trigger in the epoch it was recorded."""
    found: torch.Tensor
    """(K,) bool: whether the success threshold was ever reached."""
    epochs: torch.Tensor
    """(K,): epochs each class ran before it stopped (early stop or the budget)."""


class _CostSchedule:
    """Neural Cleanse's adaptive balance between attack loss and mask norm, one entry per class."""

    def __init__(self, k: int, init_cost: float, up: float, down: float, patience: int, threshold: float) -> None:
        self.init_cost, self.up, self.down, self.patience, self.threshold = init_cost, up, down, patience, threshold
        z = torch.zeros(k, dtype=torch.long)
        self.cost = torch.zeros(k, dtype=torch.float64)  # starts at 0, as in the reference code
        self.set_counter, self.up_counter, self.down_counter = z.clone(), z.clone(), z.clone()
        self.up_flag = torch.zeros(k, dtype=torch.bool)
        self.down_flag = torch.zeros(k, dtype=torch.bool)

    def update(self, success: torch.Tensor, active: torch.Tensor) -> None:
        """One epoch's success rate per class; only active classes change."""
        ok = (success >= self.threshold) & active
        fail = (success < self.threshold) & active
        # cost 0 -> init_cost after `patience` successful epochs (counters restart)
        at_zero = self.cost == 0
        self.set_counter = torch.where(at_zero & ok, self.set_counter + 1, torch.where(active, 0, self.set_counter))
        init = at_zero & (self.set_counter >= self.patience)
        self.cost[init] = self.init_cost
        self.up_counter[init] = 0
        self.down_counter[init] = 0
        self.up_flag[init] = False
        self.down_flag[init] = False
        self.up_counter = torch.where(ok, self.up_counter + 1, torch.where(active, 0, self.up_counter))
        self.down_counter = torch.where(fail, self.down_counter + 1, torch.where(active, 0, self.down_counter))
        raise_ = active & (self.up_counter >= self.patience)
        lower = active & ~raise_ & (self.down_counter >= self.patience)
        self.cost[raise_] *= self.up
        self.up_counter[raise_] = 0
        self.up_flag |= raise_
        self.cost[lower] /= self.down
        self.down_counter[lower] = 0
        self.down_flag |= lower


def reverse_engineer(
    model: nn.Module,
    data: TrainSet,
    targets: Sequence[int],
    settings: ReverseSettings | None = None,
    *,
    seed: int = 0,
    report: Callable[[str, int, int], None] | None = None,
    early_stop: bool = True,
    betas: tuple[float, float] = (0.5, 0.9),
    **overrides: Any,
) -> ReversedTriggers:
    """Neural Cleanse: for each class in `targets`, the minimal trigger flipping other-class inputs to it.

    Per class t and epoch (a pass over `data` in mini-batches), Adam minimises
    ``CE(f(x'), t) + c_t * |m|_1`` over the samples whose label is not t. The cost c_t starts at 0,
    becomes `init_cost` once the attack succeeds (success rate >= `success_threshold`) for
    `patience` epochs, then is multiplied by `cost_multiplier_up` after `patience` successful
    epochs and divided by `cost_multiplier_down` after `patience` failing ones. The smallest mask
    of a successful epoch is kept. A class stops early once its cost went both up and down and its
    best norm has not dropped below `early_stop_threshold` x the best so far for
    `early_stop_patience` epochs. Only `data` (a clean reserve) is used. `report(what, epoch, epochs)`
    hears after every epoch how many classes are still searching (e.g. `Defense.report`).

    settings: a `ReverseSettings` (a defense's config that subclasses it passes itself); keyword
    overrides replace single fields of it (`reverse_engineer(model, data, targets, epochs=10)`).
    """
    rs = ReverseSettings.model_validate({**(settings or ReverseSettings()).model_dump(
        include=set(ReverseSettings.model_fields)), **overrides})
    epochs, batch_size, lr, init_cost = rs.epochs, rs.batch_size, rs.lr, rs.init_cost
    cost_multiplier_up, cost_multiplier_down, patience = rs.cost_multiplier_up, rs.cost_multiplier_down, rs.patience
    success_threshold, early_stop_threshold, early_stop_patience = (rs.success_threshold, rs.early_stop_threshold,
                                                                    rs.early_stop_patience)
    device = data.device
    targets = [int(t) for t in targets]
    k = len(targets)
    gen = torch.Generator().manual_seed(seed)
    trig = MaskPatternTrigger(k, data.x.shape[1:], gen=gen, device=device)
    opt = torch.optim.Adam(trig.parameters(), lr=lr, betas=betas)
    tgt = torch.tensor(targets, device=device)
    sched = _CostSchedule(k, init_cost, cost_multiplier_up, cost_multiplier_down, patience, success_threshold)

    best_norm = torch.full((k,), math.inf, dtype=torch.float64)
    best_mask = trig.masks().detach().clone()
    best_pattern = trig.patterns().detach().clone()
    best_success = torch.zeros(k, dtype=torch.float64)
    es_counter = torch.zeros(k, dtype=torch.long)
    es_best = torch.full((k,), math.inf, dtype=torch.float64)
    active = torch.ones(k, dtype=torch.bool)
    ran = torch.zeros(k, dtype=torch.long)

    fast = device.type in ("cpu", "cuda")
    with frozen(model, channels_last=fast):
        for epoch in range(epochs):
            if report is not None:
                report(f"reversing triggers: {int(active.sum())} of {k} classes searching", epoch, epochs)
            idx_active = active.nonzero().flatten()
            ka = len(idx_active)
            hits = torch.zeros(ka, dtype=torch.float64)
            counts = torch.zeros(ka, dtype=torch.float64)
            norm_sum = torch.zeros(ka, dtype=torch.float64)
            cost = sched.cost[idx_active].to(device=device, dtype=torch.float32)
            which = idx_active.to(device)
            for bidx in _batches(len(data), batch_size, gen):
                x, y = data.batch(bidx)
                b = len(y)
                opt.zero_grad(set_to_none=True)
                # the classes' losses are independent (each trigger only moves its own loss; BN is frozen), so
                # the step's gradient is accumulated over groups of classes: at most CHUNK_IMAGES stamped images
                # go through the model at once, whatever the number of classes (the same step, bounded memory)
                per = max(1, CHUNK_IMAGES // max(b, 1))
                for g0 in range(0, ka, per):
                    sl = slice(g0, min(ka, g0 + per))
                    wg = which[sl]
                    kg = len(wg)
                    t = tgt[wg]
                    valid = (y.unsqueeze(0) != t.unsqueeze(1)).float()  # (k, B): other-class samples only
                    xs = trig(x, wg)
                    logits = model(xs.contiguous(memory_format=torch.channels_last) if fast else xs).view(kg, b, -1)
                    ce = F.cross_entropy(logits.flatten(0, 1), t.repeat_interleave(b), reduction="none").view(kg, b)
                    ce = (ce * valid).sum(1) / valid.sum(1).clamp_min(1)
                    norms = trig.masks()[wg].flatten(1).sum(1)
                    (ce + cost[sl] * norms).sum().backward()
                    with torch.no_grad():
                        hit = (logits.argmax(2) == t.unsqueeze(1)).float() * valid
                        hits[sl] += hit.sum(1).double().cpu()
                        counts[sl] += valid.sum(1).double().cpu()
                        norm_sum[sl] += norms.detach().double().cpu() * b
                opt.step()
            ran[idx_active] += 1
            success = torch.zeros(k, dtype=torch.float64)
            success[idx_active] = hits / counts.clamp_min(1)
            norm_epoch = torch.full((k,), math.inf, dtype=torch.float64)
            norm_epoch[idx_active] = norm_sum / len(data)
            better = active & (success >= success_threshold) & (norm_epoch < best_norm)
            if bool(better.any()):
                with torch.no_grad():
                    bi = better.nonzero().flatten().to(device)
                    best_mask[bi] = trig.masks()[bi].detach()
                    best_pattern[bi] = trig.patterns()[bi].detach()
                best_norm[better] = norm_epoch[better]
                best_success[better] = success[better]
            if early_stop:
                tracked = active & torch.isfinite(best_norm)
                stalled = best_norm >= early_stop_threshold * es_best
                es_counter = torch.where(tracked, torch.where(stalled, es_counter + 1, 0), es_counter)
                es_best = torch.where(active, torch.minimum(best_norm, es_best), es_best)
                done = active & sched.up_flag & sched.down_flag & (es_counter >= early_stop_patience)
                active &= ~done
            sched.update(success, active)
            if not bool(active.any()):
                break

    found = torch.isfinite(best_norm)
    with torch.no_grad():  # classes that never succeeded keep their last trigger
        last = (~found).nonzero().flatten().to(device)
        best_mask[last] = trig.masks()[last].detach()
        best_pattern[last] = trig.patterns()[last].detach()
    norms = best_mask.flatten(1).sum(1).double().cpu()
    return ReversedTriggers(targets, best_mask, best_pattern, norms, best_success, found, ran)


def median(v: torch.Tensor) -> torch.Tensor:
    """The median with an even count averaging the two middle values (torch.median takes the lower)."""
    return torch.quantile(v, 0.5)


def anomaly_index(values: torch.Tensor, consistency: float = MAD_CONSISTENCY) -> torch.Tensor:
    """``|v - median| / (consistency * median(|v - median|))`` per value (MAD outlier score).

    A zero MAD (all values equal or nearly so) gives 0 for values at the median and inf otherwise.
    """
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    med = median(v)
    dev = (v - med).abs()
    mad = consistency * median(dev)
    if float(mad) == 0.0:
        return torch.where(dev == 0, torch.zeros_like(dev), torch.full_like(dev, math.inf))
    return dev / mad


def flag_outliers(norms: torch.Tensor, threshold: float = 2.0) -> torch.Tensor:
    """Neural Cleanse's decision: norms below the median whose anomaly index exceeds `threshold`."""
    v = torch.as_tensor(norms, dtype=torch.float64).flatten()
    return (v < median(v)) & (anomaly_index(v) > threshold)


def worst_case_trigger(
    forward: Callable[[torch.Tensor], torch.Tensor],
    data: TrainSet,
    *,
    bound: float,
    steps: int,
    batch_size: int = 128,
    lr: float = 0.1,
    gen: torch.Generator,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> MaskPatternTrigger:
    """A universal trigger with ``|m|_1 <= bound`` maximising ``CE(forward(x'), y)`` on `data`.

    forward: maps images to logits (e.g. a masked model); it is not modified. Adam (lr) takes
    `steps` steps over random mini-batches; `transform` (e.g. augmentation) is applied to each
    batch before stamping. Returns the trigger (masks()/patterns() have K = 1).
    """
    device = data.device
    trig = MaskPatternTrigger(1, data.x.shape[1:], gen=gen, device=device, bound=bound)
    opt = torch.optim.Adam(trig.parameters(), lr=lr)
    order: list[torch.Tensor] = []
    for _ in range(steps):
        if not order:
            order = _batches(len(data), batch_size, gen)
        x, y = data.batch(order.pop(0))
        if transform is not None:
            x = transform(x)
        loss = -F.cross_entropy(forward(trig(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return trig
