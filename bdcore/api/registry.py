"""Plugin discovery: entry points -> pluggy -> a registry of specs, one failure per plugin.

Nothing here imports torch. A plugin that fails to import, implements an unknown hook, raises in
a hook or returns a bad spec is recorded as broken and skipped; the others still load.
"""

from __future__ import annotations

import difflib
import os
import threading
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Iterable

import pluggy

from bdcore.api import hookspecs
from bdcore.errors import BdbError
from bdcore.api.spec import SPEC_TYPES, _Spec, describe_failure


@dataclass
class PluginInfo:
    """One installed distribution's entry point and what it registered."""

    entry_point: str
    package: str
    version: str
    module: str
    registered: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    """The full traceback of the failure (shown with BDB_DEBUG=1)."""

    def guessed_kind(self) -> str:
        """'attack', 'defense', ... from a bdb-<kind>-<name> package name, else 'plugin'."""
        parts = self.package.split("-")
        return parts[1] if len(parts) > 2 and parts[0] == "bdb" and parts[1] in SPEC_TYPES else "plugin"

    def may_provide(self, name: str) -> bool:
        """Whether a failed plugin is likely the one that registers `name` (entry point or package name)."""
        return name in (self.entry_point, self.package) or self.package.endswith(f"-{name}")


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
        if kind == "model" and "@" in name:  # a model with local pretrained weights: <model>@<path>
            return self.get(kind, name.split("@", 1)[0])
        if ":" in name:  # a name family, e.g. timm:resnet18 or imagefolder:64
            prefix = name.split(":", 1)[0] + ":"
            if prefix in specs:
                return specs[prefix]
        self._raise_if_failed(name, kind)
        if f"{name}:" in specs:  # a family named without its options, e.g. imagefolder
            raise BdbError(family_usage(f"{name}:"))
        known = ", ".join(self.names(kind)) or "none"
        hint = did_you_mean(name, list(specs.values()))
        raise BdbError(f"unknown {kind} {name!r}.{hint} Installed: {known} (see 'bdb list {plural(kind)}')")

    def find(self, name: str) -> tuple[str, Any]:
        """Look a name up across kinds (for 'bdb info')."""
        hits = [(k, self.specs[k][name]) for k in self.specs if name in self.specs[k]]
        for k, _ in hits:
            if (k, name) in self.conflicts:
                self.get(k, name)  # raises the duplicate-name error
        if not hits:
            self._raise_if_failed(name, None)
            families = [k for k in self.specs if f"{name}:" in self.specs[k]]
            if families:
                raise BdbError(family_usage(f"{name}:"))
            hint = did_you_mean(name, [s for k in self.specs for s in self.all(k)])
            raise BdbError(f"no attack, defense, dataset, model or analysis is called {name!r}.{hint} "
                           "See 'bdb list attacks' (or defenses, datasets, models, analyses)")
        if len(hits) > 1:
            kinds = ", ".join(k for k, _ in hits)
            raise BdbError(f"{name!r} names several things ({kinds}); use 'bdb info <kind>/{name}'")
        return hits[0]

    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def _raise_if_failed(self, name: str, kind: str | None) -> None:
        """A name that only a broken plugin could provide gets that plugin's failure, not 'unknown'."""
        for p in self.broken:
            guessed = p.guessed_kind()
            if p.may_provide(name) and (kind is None or guessed in (kind, "plugin")):
                label = kind or guessed
                raise BdbError(f"{label} {name!r} from package {p.package} failed to load: {p.error} "
                               "(see 'bdb plugins'; BDB_DEBUG=1 shows the traceback)")


def plural(kind: str) -> str:
    """'attacks', 'defenses', ..., 'analyses': the word `bdb list` takes for a kind."""
    return "analyses" if kind == "analysis" else f"{kind}s"


FAMILY_USAGE = {
    "imagefolder:": ("a size", "imagefolder:<size>[:gray]", "imagefolder:32"),
    "timm:": ("a model name", "timm:<name>", "timm:resnet18"),
    "torchvision:": ("a model name", "torchvision:<name>", "torchvision:resnet18"),
}
"""The built-in name families (a prefix ending in ':'): what follows the prefix, its syntax, an example."""


def family_usage(prefix: str) -> str:
    """What a family name like 'imagefolder' needs after its prefix, in one sentence."""
    what, syntax, example = FAMILY_USAGE.get(prefix, ("options", f"{prefix}<options>", None))
    eg = f", e.g. {example}" if example else f" (see 'bdb info {prefix}')"
    return f"{prefix[:-1]} needs {what}: {syntax}{eg}"


def _words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in text.lower()).split()


def did_you_mean(name: str, specs: list[_Spec]) -> str:
    """' Did you mean 'x'?' for an unknown name, or ''. Tried in order: a name that is the initials
    of the given words (fine-tune -> ft, activation-clustering -> ac); a name spelt alike; names
    whose paper title or summary holds the given words in sequence (spectral-signatures ->
    spectral), at most three, the earliest mention first."""
    names = sorted({s.name for s in specs})
    words = _words(name)
    initials = "".join(w[0] for w in words)
    if len(words) > 1 and initials in names:
        return f" Did you mean {initials!r}?"
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f" Did you mean {close[0]!r}?"
    if len(words) > 1:
        hits: dict[str, tuple[int, int]] = {}
        n = len(words)
        for s in specs:
            for rank, text in enumerate((getattr(s, "paper", "") or "", s.summary or "")):
                ws = _words(text)
                at = next((i for i in range(len(ws) - n + 1) if ws[i:i + n] == words), None)
                if at is not None:
                    hits[s.name] = min(hits.get(s.name, (rank, at)), (rank, at))
        if hits:
            best = sorted(hits, key=lambda k: (hits[k], len(k), k))[:3]
            return f" Did you mean {' or '.join(repr(b) for b in best)}?"
    return ""


PLUGIN_TIMEOUT_S = 5.0
"""Default bound on one plugin's entry-point import ($BDB_PLUGIN_TIMEOUT overrides it)."""


def plugin_timeout() -> float:
    """Seconds a plugin's light entry-point import may take: $BDB_PLUGIN_TIMEOUT, default 5."""
    try:
        return max(0.01, float(os.environ.get("BDB_PLUGIN_TIMEOUT", PLUGIN_TIMEOUT_S)))
    except ValueError:
        return PLUGIN_TIMEOUT_S


def call_bounded(fn: Callable[[], Any], timeout: float) -> Any:
    """fn() run in a daemon thread for at most `timeout` seconds.

    Returns its value, raises TimeoutError if it is still running, or re-raises what it raised
    (SystemExit included, so that the caller can record it instead of exiting).
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # SystemExit too: a plugin must not end the command
            box["error"] = exc

    t = threading.Thread(target=target, name="bdb-plugin-import", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"import took longer than {timeout:g} s (BDB_PLUGIN_TIMEOUT); is it hanging?")
    if "error" in box:
        raise box["error"]
    return box["value"]


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
            candidates.append((info, call_bounded(ep.load, plugin_timeout())))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            info.error = f"import failed: {describe_failure(exc, ep.value.split(':')[0])}"
            info.traceback = "".join(traceback.format_exception(exc))
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
            info.error = f"implements unknown hook(s) {', '.join(unknown)} (misspelt? see bdcore.api.hookspecs)"
            pm.unregister(obj)
            continue
        collected: list[tuple[str, _Spec]] = []
        try:
            for kind, hook_name in hookspecs.HOOKS.items():
                caller = getattr(pm.hook, hook_name)
                for impl in caller.get_hookimpls():
                    if impl.plugin is not obj:
                        continue
                    result = call_bounded(impl.function, plugin_timeout()) or []
                    for spec in result:
                        want = SPEC_TYPES[kind]
                        if not isinstance(spec, want):
                            raise BdbError(f"{hook_name} returned {type(spec).__name__}, expected {want.__name__}")
                        spec.package, spec.version = info.package, info.version
                        spec.check()
                        collected.append((kind, spec))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            info.error = f"{type(exc).__name__}: {exc}"
            info.traceback = "".join(traceback.format_exception(exc))
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
