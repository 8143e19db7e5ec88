"""Plugin discovery: entry points -> pluggy -> a registry of specs, one failure per plugin.

Nothing here imports torch. A plugin that fails to import, implements an unknown hook, raises in
a hook or returns a bad spec is recorded as broken and skipped; the others still load.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable

import pluggy

from bdcore import hookspecs
from bdcore.errors import BdbError
from bdcore.spec import SPEC_TYPES, _Spec


@dataclass
class PluginInfo:
    """One installed distribution's entry point and what it registered."""

    entry_point: str
    package: str
    version: str
    module: str
    registered: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Registry:
    """Everything the installed plugins registered, by kind and name."""

    specs: dict[str, dict[str, _Spec]] = field(default_factory=lambda: {k: {} for k in SPEC_TYPES})
    plugins: list[PluginInfo] = field(default_factory=list)
    conflicts: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def names(self, kind: str) -> list[str]:
        return sorted(self.specs[kind])

    def all(self, kind: str) -> list[_Spec]:
        return [self.specs[kind][n] for n in self.names(kind)]

    def get(self, kind: str, name: str) -> Any:
        """The spec registered under name, or a one-line error listing what is installed."""
        if (kind, name) in self.conflicts:
            pkgs = " and ".join(self.conflicts[(kind, name)])
            raise BdbError(f"{kind} {name!r} is registered by both {pkgs}; uninstall one of them")
        specs = self.specs[kind]
        if name in specs:
            return specs[name]
        if kind == "model" and ":" in name:
            prefix = name.split(":", 1)[0] + ":"
            if prefix in specs:
                return specs[prefix]
        known = ", ".join(self.names(kind)) or "none"
        close = difflib.get_close_matches(name, list(specs), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise BdbError(f"unknown {kind} {name!r}.{hint} Installed: {known} (see 'bdb list {kind}s')")

    def find(self, name: str) -> tuple[str, Any]:
        """Look a name up across kinds (for 'bdb info')."""
        hits = [(k, self.specs[k][name]) for k in self.specs if name in self.specs[k]]
        if not hits:
            everything = sorted({n for k in self.specs for n in self.specs[k]})
            close = difflib.get_close_matches(name, everything, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise BdbError(f"no attack, defense, dataset, model or analysis is called {name!r}.{hint} See 'bdb list attacks'")
        if len(hits) > 1:
            kinds = ", ".join(k for k, _ in hits)
            raise BdbError(f"{name!r} names several things ({kinds}); use 'bdb info <kind>/{name}'")
        return hits[0]

    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)


def load_registry(extra_plugins: Iterable[tuple[str, object]] = ()) -> Registry:
    """Discover installed plugins (entry-point group 'bdb') and collect their specs.

    extra_plugins: (name, module-or-object) pairs registered as if installed (used in tests).
    """
    reg = Registry()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)

    candidates: list[tuple[PluginInfo, Any]] = []
    seen: set[str] = set()
    for ep in sorted(_entry_points(), key=lambda e: (e.dist.name if e.dist else "", e.name)):
        dist = ep.dist
        pkg = dist.name if dist else "?"
        key = f"{pkg}:{ep.name}"
        if key in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(key)
        info = PluginInfo(ep.name, pkg, dist.version if dist else "?", ep.value)
        reg.plugins.append(info)
        try:
            candidates.append((info, ep.load()))
        except Exception as exc:
            info.error = f"import failed: {type(exc).__name__}: {exc}"
    for name, obj in extra_plugins:
        info = PluginInfo(name, name, "0", getattr(obj, "__name__", repr(obj)))
        reg.plugins.append(info)
        candidates.append((info, obj))

    owners: dict[tuple[str, str], list[_Spec]] = {}
    for info, obj in candidates:
        try:
            pm.register(obj, name=f"{info.package}:{info.entry_point}")
        except Exception as exc:
            info.error = f"registration failed: {type(exc).__name__}: {exc}"
            continue
        unknown = [
            impl.function.__name__
            for caller in pm.get_hookcallers(obj) or []
            for impl in caller.get_hookimpls()
            if impl.plugin is obj and not caller.has_spec()
        ]
        if unknown:
            info.error = f"implements unknown hook(s) {', '.join(unknown)} (misspelt? see bdcore.hookspecs)"
            pm.unregister(obj)
            continue
        collected: list[tuple[str, _Spec]] = []
        try:
            for kind, hook_name in hookspecs.HOOKS.items():
                caller = getattr(pm.hook, hook_name)
                for impl in caller.get_hookimpls():
                    if impl.plugin is not obj:
                        continue
                    result = impl.function() or []
                    for spec in result:
                        want = SPEC_TYPES[kind]
                        if not isinstance(spec, want):
                            raise BdbError(f"{hook_name} returned {type(spec).__name__}, expected {want.__name__}")
                        spec.package, spec.version = info.package, info.version
                        spec.check()
                        collected.append((kind, spec))
        except Exception as exc:
            info.error = f"{type(exc).__name__}: {exc}"
            pm.unregister(obj)
            continue
        for kind, spec in collected:
            info.registered.setdefault(kind, []).append(spec.name)
            owners.setdefault((kind, spec.name), []).append(spec)
    pm.check_pending()

    for (kind, name), specs in owners.items():
        reg.specs[kind][name] = specs[0]
        if len(specs) > 1:
            reg.conflicts[(kind, name)] = [s.package for s in specs]
    return reg


_CACHE: Registry | None = None


def registry(refresh: bool = False) -> Registry:
    """The process-wide registry of installed plugins (loaded once)."""
    global _CACHE
    if _CACHE is None or refresh:
        _CACHE = load_registry()
    return _CACHE
