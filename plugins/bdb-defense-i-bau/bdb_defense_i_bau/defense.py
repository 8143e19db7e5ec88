"""I-BAU: Implicit Backdoor Adversarial Unlearning (Zeng et al., ICLR 2022).

Minimax:  min_theta max_{||delta|| <= C}  H(delta, theta) = (1/n) sum_i L(f_theta(x_i + delta), y_i)
over the clean reserve, with one universal perturbation delta.

Inner problem: delta*(theta) is a fixed point of the map
    Phi(delta, theta) = delta - eta * grad_delta G(delta, theta),   G = -L(x + delta) + lambda * ||delta||^2,
approached by SGD on G (step `inner_lr`) with projection on the norm ball.

Outer problem: psi(theta) = H(delta*(theta), theta) has the hypergradient (implicit function theorem)
    grad psi = d_theta H + (d_theta Phi)^T (I - d_delta Phi^T)^{-1} d_delta H,
where the inverse-vector product is approximated by K fixed-point iterations
    v_0 = 0,  v_{k+1} = (d_delta Phi)^T v_k + d_delta H,
all products computed as vector-Jacobian products with autograd (second order through the network).
The model then takes an Adam step along the hypergradient. This is not plain adversarial training:
the second term accounts for how the worst-case perturbation moves with the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput, accuracy_on

from bdb_defense_i_bau.config import IBAUConfig


def project(delta: torch.Tensor, norm: str, radius: float) -> torch.Tensor:
    """Projection of a perturbation onto the norm ball."""
    if norm == "l2":
        n = delta.norm()
        return delta * (radius / n) if n > radius else delta
    if norm == "linf":
        return delta.clamp(-radius, radius)
    return delta


def inner_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor, ridge: float) -> torch.Tensor:
    """G(delta, theta) = -L(x + delta) + ridge * ||delta||^2 (minimised by the inner player)."""
    return -F.cross_entropy(model(x + delta), y) + ridge * delta.pow(2).sum()


def universal_perturbation(model: nn.Module, data, c: IBAUConfig, gen: torch.Generator) -> torch.Tensor:
    """Inner maximisation: SGD over the reserve's mini-batches on one shared perturbation.

    As the reference implementation: the loss is taken against the model's own predictions on the
    clean images (`inner_labels="predicted"`) and the perturbation is projected on the norm ball
    once after each pass (`project_every_step=False`); the settings give the variant that uses the
    true labels and projects after every step.
    """
    x0, _ = data.batch(torch.arange(1))
    delta = torch.zeros_like(x0)
    for _ in range(c.inner_passes):
        order = torch.randperm(len(data), generator=gen)
        for s in range(0, len(data), c.batch_size):
            x, y = data.batch(order[s:s + c.batch_size])
            if c.inner_labels == "predicted":
                with torch.no_grad():
                    y = model(x).argmax(1)
            delta.requires_grad_(True)
            g, = torch.autograd.grad(inner_objective(model, x, y, delta, c.ridge), delta)
            delta = delta.detach() - c.inner_lr * g
            if c.project_every_step:
                delta = project(delta, c.norm, c.radius)
        delta = project(delta, c.norm, c.radius)
    return delta.detach()


def implicit_hypergradient(model: nn.Module, params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                           delta: torch.Tensor, carries: torch.Tensor, c: IBAUConfig) -> list[torch.Tensor]:
    """grad psi(theta) at the inner solution `delta`, by K fixed-point iterations (see module doc).

    carries: (B, 1, 1, 1) 0/1, which samples of the outer batch carry the perturbation.
    """
    d = delta.detach().requires_grad_(True)
    outer = F.cross_entropy(model(x + carries * d), y)
    g_delta, *g_theta = torch.autograd.grad(outer, [d] + params, allow_unused=True)
    g_inner, = torch.autograd.grad(inner_objective(model, x, y, d, c.ridge), d, create_graph=True)
    phi = d - c.fp_step * g_inner
    v = torch.zeros_like(d)
    for _ in range(c.K):
        jv, = torch.autograd.grad(phi, d, grad_outputs=v, retain_graph=True)
        v = jv + g_delta
    indirect = torch.autograd.grad(phi, params, grad_outputs=v, allow_unused=True)
    return [(gt if gt is not None else torch.zeros_like(p)) + (ind if ind is not None else 0)
            for p, gt, ind in zip(params, g_theta, indirect)]


@torch.no_grad()
def perturbed_accuracy(model: nn.Module, data, delta: torch.Tensor, batch_size: int = 512) -> float:
    """Accuracy on data + delta (how strong the universal perturbation is)."""
    correct = 0
    for x, y in data.iter_batches(batch_size):
        correct += int((model(x + delta).argmax(1) == y).sum())
    return correct / max(1, len(data))


class IBAU(Defense):
    """Implicit-hypergradient adversarial unlearning on the clean reserve."""

    config: IBAUConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model.eval()  # BN keeps its running statistics, as in the reference implementation
        data = inputs.reserve
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=c.lr)
        gen = torch.Generator().manual_seed(self.ctx.seed)
        history = []
        val_before = accuracy_on(model, inputs.val)
        for r in range(c.rounds):
            delta = universal_perturbation(model, data, c, gen)
            record = {"round": r, "delta_norm": round(float(delta.norm()), 4),
                      "val_acc_perturbed_before": perturbed_accuracy(model, inputs.val, delta)}
            order = torch.randperm(len(data), generator=gen)
            for s in range(0, len(data), c.batch_size):
                x, y = data.batch(order[s:s + c.batch_size])
                k = max(1, round(c.outer_fraction * len(y)))
                carries = torch.zeros(len(y), 1, 1, 1, device=x.device)
                carries[torch.randperm(len(y), generator=gen)[:k].to(x.device)] = 1.0
                grads = implicit_hypergradient(model, params, x, y, delta, carries, c)
                opt.zero_grad(set_to_none=True)
                for p, g in zip(params, grads):
                    p.grad = g.detach()
                opt.step()
            record["val_acc"] = accuracy_on(model, inputs.val)
            record["val_acc_perturbed_after"] = perturbed_accuracy(model, inputs.val, delta)
            history.append(record)
        return DefenseOutput(model=model, info={
            "val_acc_before": val_before, "val_acc_after": accuracy_on(model, inputs.val), "rounds": history,
        })
