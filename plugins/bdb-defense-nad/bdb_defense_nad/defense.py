"""Neural Attention Distillation.

1. Teacher: a copy of the backdoored model fine-tuned on the clean reserve.
2. Student: the backdoored model, trained on the reserve with
       L = CE(student(x), y) + sum_i beta_i * D(A(F_s^i), A(F_t^i)),
   where A(F) = vec(mean_c |F_c|^p) / || vec(mean_c |F_c|^p) ||_2 is the normalised attention map of
   a feature map F (B, C, H, W). The paper prints D as || A_s - A_t ||_2; its reference weights
   (beta = 500, 1000, 1000) are calibrated for the mean squared difference over the batch and the
   H*W map positions, which is the default here ('distance' setting; see README). With the plain
   L2 norm those weights give gradients of constant size ~beta that never shrink near the optimum,
   and the student's clean accuracy collapses (measured, README).

Which feature maps (backbone-agnostic rule, found with forward hooks on one batch): the paper taps
the outputs of the last three residual groups. For each spatial resolution the network passes
through after its first convolution, we take the *outermost* module whose input and output both
have that resolution (a residual group or block where one exists, else the last plain layer at
that resolution, e.g. the ReLU closing a conv-BN-ReLU block), and keep the last three resolutions
with more than one pixel (a 1x1 attention map is constant once normalised). small-cnn: the three
conv-BN-ReLU blocks; PreAct-ResNet18: its residual groups (or their last blocks) at the three
deepest resolutions above 1x1; timm ResNets: their layer groups, or the stem at tiny inputs.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from bdcore import Defense, DefenseInputs, DefenseOutput, accuracy_on
from bdcore import BdbError
from bdcore import StepInfo, TrainHook, train

from bdb_defense_nad.config import NADConfig


@torch.no_grad()
def stage_outputs(model: nn.Module, x: torch.Tensor, count: int = 3) -> list[tuple[str, nn.Module]]:
    """The modules whose outputs close the last `count` spatial stages (see module docstring)."""
    records: list[tuple[int, str, nn.Module, tuple[int, int]]] = []
    handles = []
    sizes = {n: sum(1 for _ in m.modules()) for n, m in model.named_modules()}

    seen_conv = [False]

    def hook(name: str):
        def fn(mod: nn.Module, inp: tuple, out: object) -> None:
            if isinstance(mod, nn.Conv2d):
                seen_conv[0] = True
            if not seen_conv[0]:  # input preprocessing (e.g. Normalize) is not a feature map
                return
            if not inp or not isinstance(inp[0], torch.Tensor) or not isinstance(out, torch.Tensor):
                return
            if inp[0].dim() == 4 and out.dim() == 4 and inp[0].shape[-2:] == out.shape[-2:]:
                records.append((len(records), name, mod, tuple(out.shape[-2:])))
        return fn

    for name, mod in model.named_modules():
        if name:
            handles.append(mod.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        model(x[:2])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    best: dict[tuple[int, int], tuple[int, int, str, nn.Module]] = {}
    first_seen: dict[tuple[int, int], int] = {}
    for order, name, mod, res in records:
        if res[0] * res[1] <= 1:
            continue
        first_seen.setdefault(res, order)
        key = (sizes[name], order)  # outermost first, then the latest to finish
        if res not in best or key > best[res][:2]:
            best[res] = (sizes[name], order, name, mod)
    stages = sorted(best, key=lambda r: first_seen[r])
    return [(best[r][2], best[r][3]) for r in stages[-count:]]


def attention_map(feat: torch.Tensor, p: float) -> torch.Tensor:
    """A(F): mean over channels of |F|^p, flattened per sample and L2-normalised, shape (B, H*W)."""
    return F.normalize(feat.float().abs().pow(p).mean(1).flatten(1), dim=1)


def attention_loss(f_student: torch.Tensor, f_teacher: torch.Tensor, p: float, distance: str = "mse") -> torch.Tensor:
    """Distance of the attention maps: 'l2' = || A(F_s) - A(F_t) ||_2 averaged over the batch;
    'mse' = the squared difference averaged over the batch and the H*W map positions."""
    diff = attention_map(f_student, p) - attention_map(f_teacher, p)
    if distance == "l2":
        return diff.norm(dim=1).mean()
    return diff.pow(2).mean()


class _Taps:
    """Keeps the latest outputs (with their graph) of the given modules."""

    def __init__(self, modules: list[nn.Module]) -> None:
        self.values: list[torch.Tensor | None] = [None] * len(modules)
        self.handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(modules)]

    def _hook(self, i: int):
        def fn(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            self.values[i] = out
        return fn

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


class AttentionDistillation(TrainHook):
    """Loss hook: CE of the student + sum_i beta_i * attention loss to the (frozen) teacher."""

    def __init__(self, student_taps: _Taps, teacher: nn.Module, teacher_taps: _Taps,
                 betas: list[float], p: float, distance: str) -> None:
        self.s, self.teacher, self.t, self.betas, self.p = student_taps, teacher, teacher_taps, betas, p
        self.distance = distance
        self.last_at = float("nan")

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: StepInfo) -> torch.Tensor:
        logits = model(x)
        with torch.no_grad():
            self.teacher(x)
        at = sum(b * attention_loss(fs, ft.detach(), self.p, self.distance)
                 for b, fs, ft in zip(self.betas, self.s.values, self.t.values))
        self.last_at = float(at.detach())
        return F.cross_entropy(logits, y) + at


class NAD(Defense):
    """Fine-tune a teacher on the reserve, then distil its attention into the backdoored model."""

    config: NADConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        student = inputs.model
        info: dict = {"val_acc_before": accuracy_on(student, inputs.val)}
        recipe = inputs.recipe.model_copy(update={
            "lr": c.lr, "batch_size": c.batch_size, "weight_decay": c.weight_decay, "augment": c.augment,
            "optimizer": "sgd", "schedule": "cosine", "compile": False,  # the taps are Python hooks
        })
        teacher = copy.deepcopy(student)
        train(teacher, inputs.reserve, recipe.model_copy(update={"epochs": c.teacher_epochs}), seed=self.ctx.seed)
        teacher.eval()
        info["val_acc_teacher"] = accuracy_on(teacher, inputs.val)

        x0, _ = inputs.reserve.batch(torch.arange(min(2, len(inputs.reserve))))
        layers = stage_outputs(student, x0)
        if not layers:
            raise BdbError("NAD found no feature map larger than 1x1 to distil in this model")
        betas = list(c.betas)[-len(layers):]
        layers = layers[-len(betas):]
        names = [n for n, _ in layers]
        t_modules = dict(teacher.named_modules())
        s_taps = _Taps([m for _, m in layers])
        t_taps = _Taps([t_modules[n] for n in names])
        hook = AttentionDistillation(s_taps, teacher, t_taps, betas, c.p, c.distance)
        try:
            train(student, inputs.reserve, recipe.model_copy(update={"epochs": c.epochs}),
                  seed=self.ctx.seed + 1, hooks=[hook])
        finally:
            s_taps.remove()
            t_taps.remove()
        info.update({"layers": names, "betas": betas, "final_at_loss": hook.last_at,
                     "val_acc_after": accuracy_on(student, inputs.val)})
        return DefenseOutput(model=student.eval(), info=info)
