"""The defense API: what a defense receives (the threat model) and what it returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import torch
from torch import nn

from bdcore.config import TrainRecipe
from bdcore.data.trainset import TrainSet

if TYPE_CHECKING:
    from bdcore.runs.artifacts import ArtifactCache


@dataclass(kw_only=True)
class DefenseContext:
    """Facts about the run a defense may use.

    Keyword-only, so that a field added later breaks no construction; tests build one with
    `bdcore.testing.defense_context(**overrides)`."""

    num_classes: int
    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool
    seed: int
    device: torch.device
    artifacts: ArtifactCache
    """This defense's own artifact cache (never shared with attacks or other defenses; outside the run store,
    under `bdcore.runs.store.cache_root()`)."""
    progress: Callable[[str, int, int], None] | None = None
    """Where a long defense reports its phase: progress(what, done, total) (the CLI shows it with an ETA);
    None: nobody listens. Plugins call `Defense.report` or pass `Defense.training_progress(what)` to train."""


@dataclass
class DefenseInputs:
    """What the harness grants a defense (CATALOG.md threat model) and nothing else.

    Attributes:
        model: a copy of the backdoored model, eval mode, on ctx.device.
        reserve: the whole clean reserve (5% of the training set), for defenses that select
            nothing (as in the reference).
        val: the validation split carved from the reserve (20% of it), for any model selection.
        train: the poisoned training set (images and labels as poisoned, nothing else) for pre-,
            in-training and detect-data defenses and defenses that declare `needs_train_set`;
            None otherwise.
        recipe: the victim's training recipe (for retraining or in-training defenses).
        new_model: builds a freshly initialised model of the victim's architecture.
        reserve_fit: the reserve minus the validation split: what a defense that selects on
            `val` trains on.
    """

    model: nn.Module
    reserve: TrainSet
    val: TrainSet
    train: TrainSet | None
    recipe: TrainRecipe
    new_model: Callable[[], nn.Module]
    reserve_fit: TrainSet | None = None


@dataclass
class DefenseOutput:
    """What a defense returns; its stage says which fields it fills.

    model: a repaired or newly trained model (post / in).
    keep: bool per training sample; the harness retrains on the kept ones (pre).
    scores: suspicion per training sample, higher = more likely poisoned (detect-data, pre).
    flagged: bool per training sample judged poisoned (detect-data); default from keep.
    input_detector: maps float images to suspicion scores (detect-input); with `threshold`.
    info: anything worth recording (e.g. NC's anomaly index and flagged classes).
    """

    model: nn.Module | None = None
    keep: torch.Tensor | None = None
    scores: torch.Tensor | None = None
    flagged: torch.Tensor | None = None
    input_detector: Callable[[torch.Tensor], torch.Tensor] | None = None
    threshold: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Defense:
    """Base class of every defense."""

    needs_train_set: bool = False
    """A post-training defense that uses the poisoned training set (e.g. D-BR) sets this; the
    harness reads it from the instance, so it may depend on the config (a property, e.g. STRIP's
    data mode)."""

    def __init__(self, config: Any, ctx: DefenseContext) -> None:
        self.config = config
        self.ctx = ctx

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        """Apply the defense."""
        raise NotImplementedError(f"{type(self).__name__} must implement run")

    def report(self, what: str, done: int, total: int) -> None:
        """Report the phase of a long defense (e.g. 'unlearning', epoch 3 of 5) to the CLI's bar."""
        if self.ctx.progress is not None:
            self.ctx.progress(what, done, total)

    def training_progress(self, what: str) -> Callable[[int, int, float], None] | None:
        """A `train(..., progress=...)` callback that reports the training steps as phase `what`."""
        if self.ctx.progress is None:
            return None
        return lambda done, total, loss: self.report(what, done, total)


def fine_tune(model: nn.Module, data: TrainSet, recipe: TrainRecipe, seed: int, *, hooks: Sequence[Any] = (),
              params: Iterable[torch.Tensor] | None = None, progress: Callable[[int, int, float], None] | None = None,
              **overrides: Any) -> nn.Module:
    """Fine-tune `model` in place with the shared trainer; overrides change recipe fields.

    hooks: trainer hooks (e.g. `SAM`, a loss); params: the tensors to optimise (default: all);
    progress: e.g. `Defense.training_progress('fine-tuning')`.
    """
    from bdcore.nn.trainer import train

    train(model, data, recipe.model_copy(update=overrides), seed=seed, hooks=hooks, params=params, progress=progress)
    return model


@torch.no_grad()
def accuracy_on(model: nn.Module, data: TrainSet, batch_size: int = 512) -> float:
    """Top-1 accuracy of `model` on a TrainSet (e.g. the validation split)."""
    model.eval()
    correct = 0
    for x, y in data.iter_batches(batch_size):
        correct += int((model(x).argmax(1) == y).sum())
    return correct / max(1, len(data))


@torch.no_grad()
def sample_losses(model: nn.Module, data: TrainSet, batch_size: int = 512) -> torch.Tensor:
    """Cross-entropy of every sample of `data` (eval mode, no augmentation), in order, on the CPU."""
    import torch.nn.functional as F

    model.eval()
    out = [F.cross_entropy(model(x).float(), y, reduction="none").cpu() for x, y in data.iter_batches(batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def threshold_at_frr(scores: torch.Tensor, frr: float) -> float:
    """A detection threshold from clean scores: at most floor(frr * n) of `scores` are > it.

    An input detector flags `score > threshold`; calibrated on the clean reserve's scores, the
    threshold rejects a share `frr` of clean inputs (e.g. 0.05: STRIP's 5% false rejections).
    """
    s = torch.sort(torch.as_tensor(scores).flatten().double(), descending=True).values
    if len(s) == 0:
        return math.inf
    return float(s[min(len(s) - 1, math.floor(frr * len(s)))])
