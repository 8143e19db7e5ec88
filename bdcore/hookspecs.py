"""The pluggy hook specifications every bdb plugin implements one or more of.

Each hook returns a list of specs (bdcore.spec). The module that implements them is the
plugin's entry point (group ``bdb``) and must stay light: no torch at import time.
"""

from __future__ import annotations

import pluggy

PROJECT = "bdb"
ENTRY_POINT_GROUP = "bdb"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def bdb_register_attacks() -> list:  # list[AttackSpec]
    """Return the attacks this plugin provides."""


@hookspec
def bdb_register_defenses() -> list:  # list[DefenseSpec]
    """Return the defenses this plugin provides."""


@hookspec
def bdb_register_datasets() -> list:  # list[DatasetSpec]
    """Return the datasets this plugin provides."""


@hookspec
def bdb_register_models() -> list:  # list[ModelSpec]
    """Return the models (or model families, names ending in ':') this plugin provides."""


@hookspec
def bdb_register_analyses() -> list:  # list[AnalysisSpec]
    """Return the analysis tools this plugin provides (``bdb analyze <name>``)."""


HOOKS = {
    "attack": "bdb_register_attacks",
    "defense": "bdb_register_defenses",
    "dataset": "bdb_register_datasets",
    "model": "bdb_register_models",
    "analysis": "bdb_register_analyses",
}
