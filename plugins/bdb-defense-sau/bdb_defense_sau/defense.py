"""SAU: Shared Adversarial Unlearning (Wei et al., NeurIPS 2023).

The backdoor risk of a purified model is bounded by its risk on *shared* adversarial examples:
perturbations that send the purified model theta and the frozen backdoored model theta_0 to the
same wrong class (a trigger is one). Each mini-batch of the clean reserve:

1. PGD (L-inf, `eps`, `pgd_steps` signed steps from +eps) minimises
   beta1 * L_adv + beta2 * L_share, where L_adv = -(CE of the samples either model still
   classifies as on the clean image) / 2 and L_share = the Jensen-Shannon divergence of the two
   models' predictions on the samples not yet shared adversarial;
2. the model takes one Adam step on
   lambda1 * CE(clean) + lambda2 * CE(perturbed) + lambda3 * L_sar, where L_sar pushes, on every
   sample the backdoored model misclassifies under the perturbation, the purified model's
   probability of theta_0's adversarial class down: -(log(1 - p_k) + log(sum_{j != k} p_j)) / 2.

Both models stay in eval mode (frozen BN statistics), as in the reference. Perturbations are in
[0, 1] pixel units, as in the reference (it adds them to the de-normalised image; until session 8 we
read them as normalised units, a budget 1/std smaller: 0.06 instead of 0.2 on MNIST).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput, StepInfo, TrainHook, accuracy_on, fine_tune

from bdb_defense_sau.config import SAUConfig


def js_divergence(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Per-sample Jensen-Shannon divergence of two softmax predictions (natural log)."""
    p, q = F.softmax(logits_a, 1).clamp(min=1e-8), F.softmax(logits_b, 1).clamp(min=1e-8)
    m = 0.5 * (p + q)
    return 0.5 * (p * (p.log() - m.log())).sum(1) + 0.5 * (q * (q.log() - m.log())).sum(1)


def shared_pgd(model: nn.Module, ref: nn.Module, x: torch.Tensor, y: torch.Tensor, c: SAUConfig) -> torch.Tensor:
    """Shared adversarial perturbation of x (pixel units) for `model` and the frozen reference `ref`."""
    eps, step = c.eps, c.pgd_step_size
    init = {"max": 1.0, "zero": 0.0, "min": -1.0}[c.pgd_init]
    delta = (torch.ones_like(x) * eps * init).requires_grad_(True)
    with torch.no_grad():
        clean, clean_ref = model(x).argmax(1), ref(x).argmax(1)
    for _ in range(c.pgd_steps):
        out, out_ref = model(x + delta), ref(x + delta)
        lab, lab_ref = out.argmax(1), out_ref.argmax(1)
        fooled, fooled_ref = lab != clean, lab_ref != clean_ref
        shared = fooled & fooled_ref & (lab == lab_ref)
        ce = F.cross_entropy(out, y, reduction="none")[~fooled].sum()
        ce_ref = F.cross_entropy(out_ref, y, reduction="none")[~fooled_ref].sum()
        loss_adv = -(ce + ce_ref) / 2 / len(x)
        loss_share = js_divergence(out, out_ref)[~shared].sum() / len(x)
        (g,) = torch.autograd.grad(c.beta1 * loss_adv + c.beta2 * loss_share, delta)
        with torch.no_grad():
            delta = (delta - step * g.sign()).clamp(-eps, eps)
        delta.requires_grad_(True)
        if bool(shared.all()):
            break
    return delta.detach()


def shared_risk(per_logits: torch.Tensor, y: torch.Tensor, ref_clean: torch.Tensor, ref_pert: torch.Tensor) -> torch.Tensor:
    """L_sar: on samples the reference misclassifies under the perturbation (label != y and changed), lower the
    model's probability of the reference's adversarial class k: -(log(1 - p_k) + log(sum_{j != k} p_j)) / 2, summed
    and divided by the batch size (the two terms are equal in exact arithmetic; their mean is numerically safer)."""
    k = ref_pert.argmax(1)
    poison = (k != y) & (k != ref_clean.argmax(1))
    if not bool(poison.any()):
        return per_logits.sum() * 0
    p = F.softmax(per_logits, 1)
    pos = p.gather(1, k[:, None]).squeeze(1)[poison]
    neg = (p.sum(1) - p.gather(1, k[:, None]).squeeze(1))[poison]
    loss = -torch.log(1e-6 + neg.clamp(max=0.999)).sum() - torch.log(1 + 1e-6 - pos.clamp(min=0.001)).sum()
    return loss / 2 / len(y)


class SAULoss(TrainHook):
    """The trainer step of SAU: shared PGD on the batch, then the unlearning loss (models in eval mode)."""

    def __init__(self, ref: nn.Module, c: SAUConfig) -> None:
        self.ref, self.c = ref, c
        self.shared_share: list[float] = []

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        c = self.c
        model.eval()
        delta = shared_pgd(model, self.ref, x, y, c)
        both = model(torch.cat([x, x + delta]))
        logits, per_logits = both[:len(x)], both[len(x):]
        with torch.no_grad():
            ref_clean, ref_pert = self.ref(x), self.ref(x + delta)
            shared = (per_logits.argmax(1) != y) & (ref_pert.argmax(1) != y) & (per_logits.argmax(1) == ref_pert.argmax(1))
            self.shared_share.append(float(shared.float().mean()))
        loss = c.clean_weight * F.cross_entropy(logits, y) + c.shared_weight * shared_risk(per_logits, y, ref_clean, ref_pert)
        if c.adv_weight:
            loss = loss + c.adv_weight * F.cross_entropy(per_logits, y)
        return loss


class SAU(Defense):
    """Shared adversarial unlearning on the clean reserve."""

    config: SAUConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model
        ref = copy.deepcopy(model).eval()
        for p in ref.parameters():
            p.requires_grad_(False)
        val_before = accuracy_on(model, inputs.val)
        hook = SAULoss(ref, c)
        fine_tune(model, inputs.reserve, inputs.recipe, self.ctx.seed, hooks=[hook], epochs=c.rounds, lr=c.lr,
                  batch_size=c.batch_size, weight_decay=0.0, augment=c.augment, optimizer="adam", schedule="constant")
        n = max(1, len(hook.shared_share) // c.rounds)
        return DefenseOutput(model=model.eval(), info={
            "val_acc_before": val_before, "val_acc_after": accuracy_on(model, inputs.val),
            "shared_share_per_round": [round(sum(hook.shared_share[i:i + n]) / n, 4)
                                       for i in range(0, len(hook.shared_share), n)],
        })
