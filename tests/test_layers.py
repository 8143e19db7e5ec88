"""The core's layers, read from the source: no import goes up a layer, no two modules import each other.

Layers, bottom to top (each subpackage's docstring says what it holds):

    0 base       bdcore (the lazy public API), bdcore.errors, bdcore.config, bdcore._moved
    1 data       bdcore.data
    2 nn         bdcore.nn
    3 api        bdcore.api        (the plugin protocol)
    4 runs       bdcore.runs       (the run store)
    5 lib        bdcore.lib        (method building blocks)
    6 bench      bdcore.bench      (running attacks, defenses, grids)
    7 reporting  bdcore.reporting
    8 kits       bdcore.builtin, bdcore.testing
    9 cli        bdcore_cli

An import inside `if TYPE_CHECKING:` is for type checkers only and does not count; an import inside a
function counts (it runs). A module of bdcore, bdcore_cli, the plugins, the tests and the benchmarks
never imports an old flat path (bdcore.harness, ...): those stay importable for one release only.
"""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"bdcore": 0, "bdcore.errors": 0, "bdcore.config": 0, "bdcore._moved": 0, "bdcore.data": 1, "bdcore.nn": 2,
          "bdcore.api": 3, "bdcore.runs": 4, "bdcore.lib": 5, "bdcore.bench": 6, "bdcore.reporting": 7,
          "bdcore.builtin": 8, "bdcore.testing": 8, "bdcore_cli": 9}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> int:
    """The layer of a module: that of its longest listed prefix."""
    best = None
    for prefix in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best):
                best = prefix
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return LAYERS[best]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every runtime import of bdcore or bdcore_cli in a file."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree)
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] in ("bdcore", "bdcore_cli")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] in ("bdcore", "bdcore_cli"):
            for a in node.names:  # `from bdcore.api import hookspecs` imports the submodule
                sub = f"{node.module}.{a.name}"
                is_sub = (ROOT / (sub.replace(".", "/") + ".py")).is_file() or (ROOT / sub.replace(".", "/")).is_dir()
                out.append((node.lineno, sub if is_sub else node.module))
    return out


def core_files() -> list[Path]:
    return sorted(p for d in ("bdcore", "bdcore_cli") for p in (ROOT / d).rglob("*.py"))


def test_every_core_module_is_in_a_layer():
    for p in core_files():
        layer(module_name(p))


def test_no_import_goes_up_a_layer():
    bad = []
    for p in core_files():
        me = module_name(p)
        for line, mod in imports(p):
            if mod == "bdcore" and me != "bdcore":
                continue  # the package itself (its version, its lazy public names) is the base
            if layer(mod) > layer(me):
                bad.append(f"{p.relative_to(ROOT)}:{line} ({me}, layer {layer(me)}) imports {mod} (layer {layer(mod)})")
    assert not bad, "imports that go up a layer:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    for p in core_files():
        me = module_name(p)
        graph[me] = {m for _, m in imports(p) if m != me and m != "bdcore"}
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"modules that import each other: {cycles}"


def test_nothing_imports_an_old_path():
    from bdcore._moved import new_home

    files = core_files() + sorted(p for d in ("plugins", "tests", "benchmarks", "plugin_template")
                                  for p in (ROOT / d).rglob("*.py") if "build" not in p.parts)
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in files if p.name != "test_layers.py"
           for line, mod in imports(p) if new_home(mod)]
    assert not bad, "old module paths (use the new ones, or `from bdcore import ...`):\n" + "\n".join(bad)


@pytest.mark.parametrize("old, new", [("bdcore.trainer", "bdcore.nn.trainer"), ("bdcore.modules", "bdcore.nn.surgery"),
                                      ("bdcore.datasets.mnist", "bdcore.data.datasets.mnist"),
                                      ("bdcore.poison", "bdcore.data.trainset")])
def test_an_old_path_still_imports_with_a_warning(old, new):
    import sys

    for name in (old, old.rpartition(".")[0]):
        if name != "bdcore":
            sys.modules.pop(name, None)
    with pytest.warns(DeprecationWarning, match=r"moved to bdcore\.(nn|data)"):
        mod = importlib.import_module(old)
    assert mod is importlib.import_module(new)  # the same module: patching one patches the other


def test_a_split_module_finds_each_name_in_its_new_home():
    import sys

    sys.modules.pop("bdcore.harness", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = importlib.import_module("bdcore.harness")
    from bdcore.api.resolve import build_model
    from bdcore.bench.harness import run_attack
    from bdcore.nn.runtime import seed_all

    assert (old.run_attack, old.build_model, old.seed_all) == (run_attack, build_model, seed_all)
    with pytest.raises(AttributeError):
        old.no_such_name


def test_each_layer_says_what_it_holds_and_may_import():
    for pkg in ("api", "data", "nn", "lib", "runs", "bench", "reporting"):
        doc = importlib.import_module(f"bdcore.{pkg}").__doc__ or ""
        assert "layer" in doc and "import" in doc, f"bdcore.{pkg} needs a docstring: what it holds, what it may import"
