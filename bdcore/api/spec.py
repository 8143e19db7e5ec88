"""Light descriptions of what a plugin registers.

A plugin's entry-point module returns these from its hooks. They hold metadata and *import
paths* ("package.module:Name") to the heavy code, so that listing methods never imports torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bdcore.errors import BdbError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]*$")

ATTACK_KINDS = ("DP dirty-label", "DP clean-label", "TC")
DEFENSE_STAGES = ("post", "pre", "in", "detect-data", "detect-input")

SpecKind = Literal["attack", "defense", "dataset", "model", "analysis"]


def resolve(ref: Any) -> Any:
    """Import "package.module:Name" lazily; objects pass through unchanged."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    if not attr:
        raise BdbError(f"bad import path {ref!r}: expected 'package.module:Name'")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _plugin_root(module: str) -> Path | None:
    """The directory (or file) holding a plugin's top-level module, found without importing it."""
    try:
        spec = importlib.util.find_spec(module.split(".")[0])
    except Exception:
        return None
    if spec is None or not spec.origin:
        return None
    origin = Path(spec.origin)
    return origin.parent if spec.submodule_search_locations else origin


def describe_failure(exc: BaseException, module: str) -> str:
    """'Type: message (at file:line)', the location being the plugin's own last frame."""
    text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    where = None
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{exc.filename}:{exc.lineno}"
    else:
        root = _plugin_root(module)
        frames = traceback.extract_tb(exc.__traceback__)
        core = str(Path(__file__).resolve().parents[1])  # the bdcore package
        mine = [f for f in frames if root is not None and str(Path(f.filename).resolve()).startswith(str(root))]
        outside = [f for f in frames if not f.filename.startswith("<") and not f.filename.startswith(core)
                   and "importlib" not in f.filename]
        pick = (mine or outside or [None])[-1]
        if pick is not None:
            where = f"{pick.filename}:{pick.lineno}"
    return f"{text} (at {where})" if where else text


def _where(exc: BaseException, ref: Any) -> str:
    """The failure as 'Type: message (at the plugin's file:line)'."""
    module = ref.partition(":")[0] if isinstance(ref, str) else getattr(ref, "__module__", "")
    return describe_failure(exc, module)


@dataclass
class _Spec:
    name: str
    summary: str
    factory: Any
    """Import path or object: the class/function that builds the method."""
    package: str = ""
    version: str = ""

    kind_label = ""

    def check(self) -> None:
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise BdbError(f"invalid {self.kind_label} name {self.name!r}: use lower-case letters, digits and '-'")
        if not self.summary:
            raise BdbError(f"{self.kind_label} {self.name!r} has no summary")

    def load(self) -> Any:
        """The heavy object behind this spec (imports its module)."""
        try:
            return resolve(self.factory)
        except BdbError:
            raise
        except (Exception, SystemExit) as exc:  # a broken plugin: report it in one line
            raise BdbError(
                f"{self.kind_label} {self.name!r} from {self.package or 'unknown package'} failed to load "
                f"({_where(exc, self.factory)}); reinstall it or run 'bdb plugins'"
            ) from exc


TUNED_ON = ("mnist5k", "small-cnn")
"""The miniature (dataset, model) every `MethodSpec.tuned` setting was tuned on."""


@dataclass
class MethodSpec(_Spec):
    """Shared by attacks and defenses: a paper and a pydantic config model."""

    paper: str = ""
    config: Any = None
    """Import path or class of the method's pydantic config (a light module: no torch)."""
    test_settings: dict[str, Any] = field(default_factory=dict)
    """Settings that make the conformance kit's tiny runs fast (e.g. fewer optimisation steps)."""
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Settings per recipe preset (bdcore.bench.presets), e.g. {"quick": {"epochs": 20}}; the config's
    defaults are the reference (the paper column), so `reference` needs no entry."""
    caveat: str = ""
    """A known limit of the implementation, in one line, shown by `bdb list` and `bdb info` (e.g. a
    method that is faithful to its paper but not shown to work in the miniature tests); empty: none."""
    tuned: dict[str, str] = field(default_factory=dict)
    """Preset -> one line saying which of its settings were tuned and on what (e.g. {"quick": "threshold 0.1,
    chosen by the ASR of the mnist5k / small-cnn BadNets miniature"}). Using that preset on another dataset
    or model than TUNED_ON prints the line once: the value was never validated there."""

    def check(self) -> None:
        super().check()
        if not self.paper:
            raise BdbError(f"{self.kind_label} {self.name!r} names no paper")
        if self.config is None:
            raise BdbError(f"{self.kind_label} {self.name!r} declares no config model")
        if not isinstance(self.caveat, str) or "\n" in self.caveat:
            raise BdbError(f"{self.kind_label} {self.name!r}: caveat must be one line of text")

    def config_model(self) -> Any:
        try:
            return resolve(self.config)
        except (Exception, SystemExit) as exc:
            raise BdbError(
                f"config of {self.kind_label} {self.name!r} failed to load ({_where(exc, self.config)})"
            ) from exc


@dataclass
class AttackSpec(MethodSpec):
    """An attack. kind: 'DP dirty-label', 'DP clean-label' or 'TC'. A 'DP clean-label' attack keeps every
    label, so the harness refuses it with all-to-all (one error line) before anything is trained."""

    kind: str = "DP dirty-label"
    kind_label = "attack"

    def check(self) -> None:
        super().check()
        if self.kind not in ATTACK_KINDS:
            raise BdbError(f"attack {self.name!r}: kind {self.kind!r} is not one of {', '.join(ATTACK_KINDS)}")

    @property
    def category(self) -> str:
        return self.kind


@dataclass
class DefenseSpec(MethodSpec):
    """A defense. stage: one of DEFENSE_STAGES."""

    stage: str = "post"
    kind_label = "defense"

    def check(self) -> None:
        super().check()
        if self.stage not in DEFENSE_STAGES:
            raise BdbError(f"defense {self.name!r}: stage {self.stage!r} is not one of {', '.join(DEFENSE_STAGES)}")

    @property
    def category(self) -> str:
        return self.stage


@dataclass
class DatasetSpec(_Spec):
    """A dataset: factory(root: str | None) -> bdcore.data.ImageDataset.

    A name ending in ':' is a family (e.g. 'imagefolder:'): factory(options_after_prefix, root).
    """

    kind_label = "dataset"
    source: str = ""

    @property
    def category(self) -> str:
        return "dataset"


@dataclass
class ModelSpec(_Spec):
    """A model: factory(num_classes, in_channels, image_size) -> nn.Module.

    A name ending in ':' is a prefix family (e.g. 'timm:'): factory(name_after_prefix, ...).
    """

    kind_label = "model"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def category(self) -> str:
        return "family" if self.name.endswith(":") else "model"


ANALYSIS_SPLITS = ("clean-test", "bd-test", "clean-train", "bd-train", "mixed")
"""The splits an analysis tool samples from (bdcore.api.analysis.AnalysisContext.sample)."""

ANALYSIS_LAYERS = {"penultimate": "the classification head's input",
                   "map": "the end of the convolutional trunk (the last spatial feature map)"}
"""What an analysis tool's default layer may be (`AnalysisSpec.defaults['layer']`)."""


@dataclass
class AnalysisSpec(_Spec):
    """An analysis tool: factory(config) -> bdcore.api.analysis.Analysis; `bdb analyze <name>`.

    reference: the tool of the reference benchmark it corresponds to (e.g. 'tsne'); config: import
    path or class of its pydantic settings (a light module), None for a tool without settings;
    defaults: what the tool uses when the user gives no --split/--n/--layer (shown by `bdb info`):
    'split' (a split name, or a list of the splits it draws from), 'n' (samples per split) and
    'layer' ('penultimate' or 'map', see ANALYSIS_LAYERS); leave out what the tool does not use."""

    kind_label = "analysis"
    reference: str = ""
    config: Any = None
    defaults: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        super().check()
        d = self.defaults
        bad = set(d) - {"split", "n", "layer"}
        if bad:
            raise BdbError(f"analysis {self.name!r}: unknown defaults {sorted(bad)}; use split, n, layer")
        splits = [d["split"]] if isinstance(d.get("split"), str) else list(d.get("split") or [])
        if any(s not in ANALYSIS_SPLITS for s in splits):
            raise BdbError(f"analysis {self.name!r}: default split {d['split']!r} is not among "
                           f"{', '.join(ANALYSIS_SPLITS)}")
        if "n" in d and not (isinstance(d["n"], int) and d["n"] >= 1):
            raise BdbError(f"analysis {self.name!r}: default n {d['n']!r} is not a positive integer")
        if "layer" in d and d["layer"] not in ANALYSIS_LAYERS:
            raise BdbError(f"analysis {self.name!r}: default layer {d['layer']!r} is not one of "
                           f"{', '.join(ANALYSIS_LAYERS)}")

    @property
    def category(self) -> str:
        return "analysis"

    @property
    def paper(self) -> str:
        """Shown in listings where methods show their paper: the reference tool it reproduces."""
        return f"reference tool: {self.reference}" if self.reference else ""

    def config_model(self) -> Any:
        if self.config is None:
            from bdcore.config import NoSettings

            return NoSettings
        try:
            return resolve(self.config)
        except Exception as exc:
            raise BdbError(f"config of analysis {self.name!r} failed to load ({type(exc).__name__}: {exc})") from exc


SPEC_TYPES: dict[str, type[_Spec]] = {
    "attack": AttackSpec,
    "defense": DefenseSpec,
    "dataset": DatasetSpec,
    "model": ModelSpec,
    "analysis": AnalysisSpec,
}
