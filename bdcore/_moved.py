"""Old module paths of bdcore (before the layer subpackages), kept importable for one release.

`import bdcore.harness` still works and gives the module now at `bdcore.bench.harness` (the same
module object, so patching one patches the other), with a DeprecationWarning naming the new path.
Where an old module was split (`bdcore.harness`, `bdcore.analysis`), the old path gives a module
that looks a name up in each new home in turn. Plugins should import from `bdcore` itself.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

REMOVED_IN = "0.3"

# old module (under bdcore.) -> its new home(s)
MOVED: dict[str, tuple[str, ...]] = {
    "hookspecs": ("bdcore.api.hookspecs",),
    "spec": ("bdcore.api.spec",),
    "registry": ("bdcore.api.registry",),
    "install": ("bdcore.api.install",),
    "attack": ("bdcore.api.attack",),
    "defense": ("bdcore.api.defense",),
    "analysis": ("bdcore.api.analysis", "bdcore.reporting.analysis"),
    "poison": ("bdcore.data.trainset",),
    "images": ("bdcore.data.images",),
    "augmentation": ("bdcore.data.augmentation",),
    "sampling": ("bdcore.data.sampling",),
    "datasets": ("bdcore.data.datasets",),
    "models": ("bdcore.nn.models",),
    "backbones": ("bdcore.nn.backbones",),
    "modules": ("bdcore.nn.surgery",),
    "trainer": ("bdcore.nn.trainer",),
    **{m: (f"bdcore.lib.{m}",) for m in ("reverse", "frequency", "contrastive", "sensitivity", "isolation",
                                          "sharpness", "adversarial", "surrogate", "stealth")},
    "store": ("bdcore.runs.store",),
    "index": ("bdcore.runs.index",),
    "artifacts": ("bdcore.runs.artifacts",),
    "identity": ("bdcore.runs.identity",),
    "membership": ("bdcore.runs.grid_membership",),
    "harness": ("bdcore.bench.harness", "bdcore.api.resolve", "bdcore.nn.runtime"),
    "evaluate": ("bdcore.bench.evaluate",),
    "metrics": ("bdcore.bench.metrics",),
    "executor": ("bdcore.bench.executor",),
    "grid": ("bdcore.bench.grid",),
    "presets": ("bdcore.bench.presets",),
    "plan": ("bdcore.bench.preflight",),
    "results": ("bdcore.reporting.results",),
    "leaderboard": ("bdcore.reporting.leaderboard",),
    "report": ("bdcore.reporting.report",),
    "preview": ("bdcore.reporting.preview",),
}


def new_home(fullname: str) -> tuple[str, ...] | None:
    """The new module(s) of an old dotted name (a submodule of a moved package moves with it)."""
    parts = fullname.split(".")
    if len(parts) < 2 or parts[0] != "bdcore" or parts[1] not in MOVED:
        return None
    homes = MOVED[parts[1]]
    rest = ".".join(parts[2:])
    return tuple(f"{h}.{rest}" for h in homes[:1]) if rest else homes


class _Split(types.ModuleType):
    """An old module that was split: each attribute comes from the first new home that has it."""

    def __init__(self, name: str, homes: tuple[str, ...]) -> None:
        super().__init__(name, f"moved to {', '.join(homes)}")
        self.__homes = [importlib.import_module(h) for h in homes]

    def __getattr__(self, attr: str):
        for m in self.__homes:
            if hasattr(m, attr):
                return getattr(m, attr)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if new_home(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        homes = new_home(spec.name)
        warnings.warn(f"{spec.name} moved to {' and '.join(homes)} (the old path goes in bdcore {REMOVED_IN}); "
                      "plugins import from bdcore itself", DeprecationWarning, stacklevel=2)
        if len(homes) == 1:
            return importlib.import_module(homes[0])
        return _Split(spec.name, homes)

    def exec_module(self, module) -> None:
        pass


def install() -> None:
    """Put the finder on sys.meta_path (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())  # before the path finder: a moved package's submodules alias too
