"""The attack API: what a data-poisoning or training-controlled attack plugin implements.

A data-poisoning attack chooses which training indices to poison and maps a batch of float
images in [0, 1] to poisoned ones (vectorised, any device); the core poisons batches on the fly.
A training-controlled attack also returns a TrainHook that rewrites batches or the loss inside
the shared trainer's step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch

if TYPE_CHECKING:
    from bdcore.runs.artifacts import ArtifactCache
    from bdcore.data import ImageDataset
    from bdcore.nn.trainer import TrainHook


@dataclass(kw_only=True)
class AttackContext:
    """What an attack knows about the run it is part of.

    Keyword-only, so that a field added later breaks no construction; tests build one with
    `bdcore.testing.attack_context(**overrides)`."""

    num_classes: int
    shape: tuple[int, int, int]
    target: int
    pratio: float
    all_to_all: bool
    seed: int
    device: torch.device
    dataset: str
    model: str
    artifacts: "ArtifactCache"
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    hflip: bool = True
    poison_pool: str = "all"
    """Dirty-label poison is drawn from 'all' training samples (the reference; a target-class sample
    drawn keeps its label but carries the trigger) or only from 'non-target' ones."""
    quantize: str = "truncate"
    """How poisoned images are cast to uint8 levels (bdcore.data.images.quantize): the reference truncates."""
    progress: Callable[[str, int, int], None] | None = None
    """Where a long prepare step reports how far it is: progress(what, done, total) (the CLI shows a
    bar); None: nobody listens. Plugins call `Attack.report`."""
    batch_size: int = 128
    """The victim's training mini-batch size (a training-controlled attack that poisons a share of each
    batch sizes its materialised poisoned set by it)."""


class Attack:
    """Base class of every attack. Subclasses implement `apply_trigger` at least."""

    clean_label: bool = False
    """True: poison only target-class samples and keep their labels."""

    training_controlled: bool = False
    """True: the poison is made inside the trainer's step by `train_hook` (the victim trains on clean
    data). After training the harness still materialises a poisoned training set with the final
    trigger (`poison_indices`, `poison_x`, `poison_y`), so data-side defenses and detection metrics
    see poison, as in the reference."""

    def __init__(self, config: Any, ctx: AttackContext) -> None:
        self.config = config
        self.ctx = ctx

    # resources -------------------------------------------------------------------------------
    def prepare(self, data: "ImageDataset") -> None:
        """Build what the attack needs (surrogate models, patterns); use ctx.artifacts to cache."""

    def report(self, what: str, done: int, total: int) -> None:
        """Report the progress of a long prepare step (e.g. 'encoder', step 120 of 5000) to the CLI's bar."""
        if self.ctx.progress is not None:
            self.ctx.progress(what, done, total)

    # which samples -----------------------------------------------------------------------------
    def poison_count(self, n_train: int) -> int:
        """Number of poisoned training samples: the ratio of the whole training set."""
        return int(round(self.ctx.pratio * n_train))

    def poison_indices(self, y_train: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Sorted indices of the training samples to poison.

        Dirty-label: drawn from every sample (ctx.poison_pool 'all', the reference) or from samples
        whose label the mapping changes ('non-target'); clean-label: from the target class only
        (capped at its size).
        """
        y = y_train.cpu()
        if self.clean_label:
            pool = torch.nonzero(y == self.ctx.target).flatten()
        else:
            pool = self.dirty_pool(y)
        k = min(self.poison_count(len(y)), len(pool))
        pick = pool[torch.randperm(len(pool), generator=gen)[:k]]
        return pick.sort().values

    def dirty_pool(self, y: torch.Tensor) -> torch.Tensor:
        """Indices dirty-label poison is drawn from, by ctx.poison_pool."""
        if self.ctx.poison_pool == "non-target":
            return torch.nonzero(self.target_label(y) != y).flatten()
        return torch.arange(len(y))

    # labels and images ----------------------------------------------------------------------
    def target_label(self, y: torch.Tensor) -> torch.Tensor:
        """All-to-one: the target class; all-to-all: (y + 1) mod C."""
        if self.ctx.all_to_all:
            return (y + 1) % self.ctx.num_classes
        return torch.full_like(y, self.ctx.target)

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Stamp the trigger on float images in [0, 1], shape (B, C, H, W).

        train: training-time poison (True) or test-time trigger (False); idx: the samples'
        indices in their split, for per-sample triggers.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement apply_trigger")

    def poison_x(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Poisoned training images for the given poison indices."""
        return self.apply_trigger(x, train=True, idx=idx)

    def poison_y(self, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Labels of poisoned training samples (clean-label attacks keep them)."""
        return y.clone() if self.clean_label else self.target_label(y)

    def test_trigger(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The trigger as applied to the backdoor test set."""
        return self.apply_trigger(x, train=False, idx=idx)

    # training-controlled attacks --------------------------------------------------------------
    def train_hook(self) -> "TrainHook | None":
        """A hook into the shared trainer's step (training-controlled attacks), or None."""
        return None

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors needed to rebuild the trigger later (e.g. a trained generator's weights)."""
        return {}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what `state` returned (before evaluation or a defense run)."""


class NoAttack(Attack):
    """The clean baseline: no poison, identity trigger."""

    def poison_count(self, n_train: int) -> int:
        return 0

    def apply_trigger(self, x: torch.Tensor, *, train: bool, idx: torch.Tensor | None = None) -> torch.Tensor:
        return x


class CoverSampleAttack(Attack):
    """An attack with conservatism ("cover") samples: they carry the trigger but keep their label.

    Payload samples (pratio of the training set, from the dirty-label pool) get the target label; cover samples (cover_ratio, disjoint, from the whole set) keep theirs. The
    config needs a `cover_ratio: float | None` field (None: equal to pratio). Both count as poisoned.
    """

    def __init__(self, config: Any, ctx: AttackContext) -> None:
        super().__init__(config, ctx)
        self.cover_idx = torch.empty(0, dtype=torch.long)
        """Training indices of the cover samples (set by poison_indices; save it with state())."""

    @property
    def cover_ratio(self) -> float:
        return self.ctx.pratio if self.config.cover_ratio is None else self.config.cover_ratio

    def payload_count(self, n_train: int) -> int:
        return int(round(self.ctx.pratio * n_train))

    def cover_count(self, n_train: int) -> int:
        return int(round(self.cover_ratio * n_train))

    def poison_count(self, n_train: int) -> int:
        return self.payload_count(n_train) + self.cover_count(n_train)

    def poison_indices(self, y_train: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        y = y_train.cpu()
        n = len(y)
        pool = self.dirty_pool(y)
        payload = pool[torch.randperm(len(pool), generator=gen)[: min(self.payload_count(n), len(pool))]]
        rest = torch.ones(n, dtype=torch.bool)
        rest[payload] = False
        rest_idx = torch.nonzero(rest).flatten()
        cover = rest_idx[torch.randperm(len(rest_idx), generator=gen)[: min(self.cover_count(n), len(rest_idx))]]
        self.cover_idx = cover.sort().values
        return torch.cat([payload, cover]).sort().values

    def poison_y(self, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Payload samples get the target label; cover samples keep their own."""
        is_cover = torch.isin(idx, self.cover_idx.to(idx.device))
        return torch.where(is_cover, y, self.target_label(y))
