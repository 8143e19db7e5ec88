"""The plugin protocol (layer 3 of 7): what a plugin implements and how the core finds it.

Holds the hook specifications, the spec records a plugin registers (AttackSpec, DefenseSpec, ...),
the registry that loads plugins from entry points, `bdb install`'s resolution, the Attack, Defense
and Analysis base classes with their contexts, and `resolve` (registry names to datasets and
models). May import bdcore.errors, bdcore.config, bdcore.data and bdcore.nn; nothing above.
Plugins import these names from `bdcore` itself, not from here.
"""
