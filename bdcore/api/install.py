"""Mapping a method id to the plugin package that provides it (for 'bdb install')."""

from __future__ import annotations

import re
from pathlib import Path

from bdcore.errors import BdbError

KINDS = ("attack", "defense")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _wheel_names(find_links: str | None) -> set[str]:
    """Normalised project names of the wheels and sdists in a local --find-links directory."""
    if not find_links or not Path(find_links).is_dir():
        return set()
    names = set()
    for p in Path(find_links).iterdir():
        if p.suffix == ".whl" or p.name.endswith(".tar.gz"):
            names.add(re.split(r"-\d", p.name, maxsplit=1)[0].replace("_", "-").lower())
    return names


def package_for(method: str, kind: str | None = None, find_links: str | None = None) -> str:
    """The package of a method id: bdb-<kind>-<id>, disambiguated by --kind, the installed methods
    or the wheels in a local --find-links directory; an error names both candidates otherwise."""
    if not _ID_RE.match(method):
        raise BdbError(f"{method!r} is not a method id (lower-case letters, digits and '-'), e.g. 'wanet'")
    if kind is not None and kind not in KINDS:
        raise BdbError(f"--kind must be attack or defense, not {kind!r}")
    candidates = {k: f"bdb-{k}-{method}" for k in ((kind,) if kind else KINDS)}
    if len(candidates) == 1:
        return next(iter(candidates.values()))
    from bdcore.api.registry import registry

    reg = registry()
    installed = [k for k in KINDS if method in reg.specs[k]]
    local = _wheel_names(find_links)
    found = [k for k in KINDS if candidates[k] in local] or installed
    if len(found) == 1:
        return candidates[found[0]]
    both = " or ".join(candidates.values())
    raise BdbError(f"{method!r} could be {both}; say which with --kind attack or --kind defense")
