"""Analysis tools: the harness side that explains what a backdoor did to a model.

An analysis plugin gets an `AnalysisContext` for a finished attack or defense run. Unlike a
defense it may see the truth (the attack, its target, the poison indices): it explains, it does
not defend. It returns an `AnalysisResult`: a matplotlib figure (written as PNG) and its numbers.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from bdcore.api.attack import Attack
from bdcore.config import AttackRunConfig
from bdcore.data import ImageDataset
from bdcore.errors import BdbError
from bdcore.nn.surgery import FeatureTap, classifier, get_module, last_feature_map
from bdcore.api.spec import ANALYSIS_SPLITS

if TYPE_CHECKING:
    from bdcore.runs.store import Run, RunStore

SPLITS = ANALYSIS_SPLITS
"""clean-test: the clean test set; bd-test: the backdoor test set (non-target test images with the
test trigger); clean-train: the training samples the attack left clean; bd-train: the poisoned
training samples (trigger and poison label); mixed: the poisoned training set as the victim saw it."""

PENULTIMATE = "penultimate"
"""Layer name meaning the input of the classification head."""


@dataclass
class Sample:
    """Images of one split, with labels and the truth about poison.

    x: float images in [0, 1] on the context's device; y: true (clean) classes; label: the label
    the split carries (the poison label for poisoned training samples, the attack's target on
    bd-test); poisoned: whether each image carries the trigger; index: positions in the dataset's
    train or test split."""

    x: torch.Tensor
    y: torch.Tensor
    label: torch.Tensor
    poisoned: torch.Tensor
    index: torch.Tensor
    split: str

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class AnalysisResult:
    """What an analysis returns: a figure (a matplotlib Figure, or PNG bytes) and its numbers.

    numbers: JSON-serialisable values (floats, ints, strings, lists, nested dicts)."""

    numbers: dict[str, Any]
    figure: Any = None
    png: bytes | None = None

    def to_png(self, dpi: int = 110) -> bytes:
        """The picture as PNG bytes."""
        if self.png is not None:
            return self.png
        if self.figure is None:
            raise BdbError("analysis returned neither a figure nor PNG bytes")
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        return buf.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write the PNG (parent directories are created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_png())
        return path


@dataclass
class AnalysisContext:
    """A finished run opened for analysis, with the options the user chose.

    model: the run's model (a defense run's repaired model when it stored one), eval mode;
    backdoored: the attack run's model (the same object for attack runs); attack and poison_indices
    come from the attack run; split/layer/cls/n are the user's choices (None: the tool's default)."""

    run: Run
    attack_run: Run
    model: nn.Module
    backdoored: nn.Module
    data: ImageDataset
    attack: Attack
    attack_config: AttackRunConfig
    poison_indices: torch.Tensor
    device: torch.device
    store: RunStore
    split: str | None = None
    layer: str | None = None
    cls: int | None = None
    n: int | None = None
    seed: int = 0
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def is_defense(self) -> bool:
        """Whether the analysed run is a defense run."""
        return self.run.kind == "defense"

    @property
    def target(self) -> int | None:
        """The attack's target class (None for all-to-all)."""
        return None if self.attack_config.all_to_all else self.attack_config.target

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    def poison_mask(self) -> torch.Tensor:
        """Boolean mask over the training split: True where the sample is poisoned."""
        mask = torch.zeros(len(self.data.y_train), dtype=torch.bool)
        mask[self.poison_indices] = True
        return mask

    # data -------------------------------------------------------------------------------------
    def sample(self, split: str | None = None, n: int | None = None, cls: int | None = None,
               default_split: str = "clean-test", default_n: int = 500) -> Sample:
        """Up to n samples of a split (the user's choice first, then the given defaults), drawn by
        seed, optionally only of true class cls."""
        split = split or self.split or default_split
        n = n or self.n or default_n
        cls = cls if cls is not None else self.cls
        if split not in SPLITS:
            raise BdbError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        d, attack = self.data, self.attack
        test = split.endswith("-test")
        y_all = d.y_test if test else d.y_train
        mask = self.poison_mask()
        if split == "clean-test":
            cand = torch.arange(len(y_all))
        elif split == "bd-test":
            cand = torch.nonzero(attack.target_label(y_all) != y_all).flatten()
        elif split == "clean-train":
            cand = torch.nonzero(~mask).flatten()
        elif split == "bd-train":
            cand = self.poison_indices.sort().values
        else:
            cand = torch.arange(len(y_all))
        if cls is not None:
            if not 0 <= cls < self.num_classes:
                raise BdbError(f"class {cls} is outside 0..{self.num_classes - 1}")
            cand = cand[y_all[cand] == cls]
        if len(cand) == 0:
            raise BdbError(f"split {split!r} has no samples" + (f" of class {cls}" if cls is not None else ""))
        from bdcore.nn.runtime import derive_seed

        used = self._cache.setdefault("splits", [])
        if split not in used:
            used.append(split)
        gen = torch.Generator().manual_seed(derive_seed(self.seed, f"analysis:{split}"))
        idx = cand[torch.randperm(len(cand), generator=gen)[:n]].sort().values
        x_src = d.x_test if test else d.x_train
        y = y_all[idx]
        if split == "mixed":
            poisoned = mask[idx]
        else:
            poisoned = torch.full((len(idx),), split.startswith("bd-"), dtype=torch.bool)
        x = x_src[idx].float().div(255.0)
        label = y.clone()
        if poisoned.any():
            from bdcore.data.trainset import poison_images

            pi = idx[poisoned]
            xp = poison_images(x_src[pi], pi, attack, quantize=attack.ctx.quantize, train=not test)
            x[poisoned] = xp.float().div(255.0) if xp.dtype == torch.uint8 else xp.float()
            dev = attack.ctx.device
            if test:
                label[poisoned] = attack.target_label(y[poisoned].to(dev)).cpu()
            else:
                label[poisoned] = attack.poison_y(y[poisoned].to(dev), pi.to(dev)).cpu()
        return Sample(x.to(self.device), y, label, poisoned, idx, split)

    # layers -----------------------------------------------------------------------------------
    def layer_names(self) -> list[str]:
        """Names of the model's leaf layers with parameters, plus 'penultimate'."""
        names = [n for n, m in self.model.named_modules()
                 if n and not list(m.children()) and any(True for _ in m.parameters(recurse=False))]
        return names + [PENULTIMATE]

    def module(self, name: str, model: nn.Module | None = None) -> nn.Module:
        """A layer by name (in `model`, default the run's model), with a helpful error."""
        model = model if model is not None else self.model
        try:
            return get_module(model, name)
        except BdbError:
            some = ", ".join(self.layer_names()[-12:])
            raise BdbError(f"model has no layer {name!r}; layers include: {some}") from None

    def feature_layer(self, default: str = PENULTIMATE) -> str:
        """The user's layer, else `default`."""
        return self.layer or default

    def map_layer(self) -> str:
        """The user's layer, else the module producing the last spatial feature map (the end of the
        convolutional trunk): the default of neuron-level and map-level tools."""
        if self.layer:
            return self.layer
        if "map_layer" not in self._cache:
            example = self.data.x_test[:2].float().div(255.0).to(self.device)
            self._cache["map_layer"] = last_feature_map(self.model, example)[0]
        return self._cache["map_layer"]

    @torch.no_grad()
    def features(self, x: torch.Tensor, layer: str | None = None, model: nn.Module | None = None,
                 reduce: str = "flatten", batch_size: int = 256) -> torch.Tensor:
        """A layer's output for images x, (N, F) on the CPU. layer 'penultimate' is the classifier's
        input. reduce: 'flatten' every value, or 'channel' (spatial mean per channel of a 4-D output)."""
        model = model if model is not None else self.model
        layer = layer or self.feature_layer()
        if layer == PENULTIMATE:
            mod, use_input = classifier(model)[1], True
        else:
            mod, use_input = self.module(layer, model), False
        model.eval()
        feats = []
        with FeatureTap(mod, use_input=use_input) as tap:
            for s in range(0, len(x), batch_size):
                model(x[s:s + batch_size].to(self.device))
                v = tap.value
                if reduce == "channel" and v.dim() == 4:
                    v = v.mean(dim=(2, 3))
                feats.append(v.flatten(1).float().cpu())
        return torch.cat(feats) if feats else torch.empty(0, 0)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, model: nn.Module | None = None, batch_size: int = 256) -> torch.Tensor:
        """Predicted classes (CPU) of float images x."""
        model = model if model is not None else self.model
        model.eval()
        return torch.cat([model(x[s:s + batch_size].to(self.device)).argmax(1).cpu()
                          for s in range(0, len(x), batch_size)]) if len(x) else torch.empty(0, dtype=torch.long)

    def label_of(self) -> str:
        """A short title for figures: attack, dataset/model, run id (and defense)."""
        c = self.attack_config
        text = f"{c.attack} on {c.dataset}/{c.model}"
        if self.is_defense:
            text += f" + {self.run.config.get('defense')}"
        return f"{text} ({self.run.run_id[:12]})"


class Analysis:
    """Base class of every analysis tool. Subclasses implement `run`.

    config: the tool's validated settings (its pydantic model from the spec)."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        """Analyse the run and return a figure and its numbers."""
        raise NotImplementedError


def _finite(obj: Any) -> Any:
    """JSON-safe numbers: numpy/torch scalars to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _finite(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def as_picture(x: torch.Tensor) -> Any:
    """One image (C, H, W) in [0, 1] as a numpy array matplotlib's imshow takes ((H, W) or (H, W, 3))."""
    a = x.detach().float().clamp(0, 1).cpu()
    return a[0].numpy() if a.shape[0] == 1 else a[:3].permute(1, 2, 0).numpy()
