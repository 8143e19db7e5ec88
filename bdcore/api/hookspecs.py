"""The pluggy hook specifications every bdb plugin implements one or more of.

Each hook returns a list of specs (bdcore.api.spec). The module that implements them is the
plugin's entry point (group ``bdb``) and must stay light: no torch at import time. Examples of
every hook, each runnable as it stands: docs/hooks.md.
"""

from __future__ import annotations

import pluggy

# bdcore.api.spec is light (dataclasses and the standard library only: no torch, no pydantic), so the
# return types are imported at runtime: typing.get_type_hints() and the API reference resolve them.
from bdcore.api.spec import AnalysisSpec, AttackSpec, DatasetSpec, DefenseSpec, ModelSpec

PROJECT = "bdb"
ENTRY_POINT_GROUP = "bdb"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def bdb_register_attacks() -> list[AttackSpec]:
    """Return the attacks this plugin provides."""


@hookspec
def bdb_register_defenses() -> list[DefenseSpec]:
    """Return the defenses this plugin provides."""


@hookspec
def bdb_register_datasets() -> list[DatasetSpec]:
    """Return the datasets this plugin provides."""


@hookspec
def bdb_register_models() -> list[ModelSpec]:
    """Return the models (or model families, names ending in ':') this plugin provides."""


@hookspec
def bdb_register_analyses() -> list[AnalysisSpec]:
    """Return the analysis tools this plugin provides (``bdb analyze <name>``)."""


HOOKS = {
    "attack": "bdb_register_attacks",
    "defense": "bdb_register_defenses",
    "dataset": "bdb_register_datasets",
    "model": "bdb_register_models",
    "analysis": "bdb_register_analyses",
}
