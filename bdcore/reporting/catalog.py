"""What `bdb info` shows about one installed method, dataset, model or analysis tool, as a document.

`describe(reg, name)` assembles it: name, type, package, version, summary, kind or stage, and for
methods their paper, known limit, settings (type, default, description), presets, what was tuned,
and for attacks the victim recipes of every preset; for analysis tools their reference tool and
defaults. The CLI renders it (or prints it as JSON with the settings' JSON schema).
"""

from __future__ import annotations

from typing import Any

from bdcore.api.registry import Registry

KINDS = ("attack", "defense", "dataset", "model", "analysis")


def describe(reg: Registry, name: str) -> tuple[str, Any, dict[str, Any], Any]:
    """(kind, spec, document, settings model or None) of `name` or `kind/name`; BdbError if unknown."""
    from bdcore.config import schema_rows

    if "/" in name and name.split("/", 1)[0] in KINDS:
        kind, name = name.split("/", 1)
        spec = reg.get(kind, name)
    else:
        kind, spec = reg.find(name)
    doc: dict[str, Any] = {"name": spec.name, "type": kind, "package": spec.package, "version": spec.version,
                           "summary": spec.summary, "kind": spec.category}
    model = None
    if kind in ("attack", "defense"):
        from bdcore.bench.presets import PRESETS, describe as recipes

        doc["paper"] = spec.paper
        doc["caveat"] = spec.caveat
        model = spec.config_model()
        doc["settings"] = schema_rows(model)
        doc["presets"] = {p: dict((spec.presets or {}).get(p, {})) for p in PRESETS}
        doc["tuned"] = dict(getattr(spec, "tuned", {}) or {})
        if kind == "attack":
            doc["victim_recipes"] = recipes()
    elif kind == "analysis":
        doc["reference"] = spec.reference
        doc["defaults"] = dict(spec.defaults)
        model = spec.config_model()
        doc["settings"] = schema_rows(model)
    return kind, spec, doc, model
