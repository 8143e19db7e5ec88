"""docs/hooks.md: every ```python block runs as it stands, and every hook has its example.

Each block is executed as a module of its own (fresh namespace, its own imports) in a temporary
working directory, with the run store and the defenses' cache pointed there too, so the examples
on the page can never rot. Tracebacks point at the page's own line numbers.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from bdcore.api.hookspecs import HOOKS

DOC = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks() -> list[tuple[int, str]]:
    """(line of the block's first code line, code) of every ```python block of the page."""
    text = DOC.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in FENCE.finditer(text)]


def hook_of(code: str) -> str:
    """The hook a block implements ('def <hook>(' in it), or '?'."""
    found = [h for h in HOOKS.values() if re.search(rf"\bdef {h}\(", code)]
    return found[0] if len(found) == 1 else "?"


BLOCKS = python_blocks()


def test_one_example_per_hook():
    implemented = [hook_of(code) for _, code in BLOCKS]
    assert "?" not in implemented, f"a python block implements no hook, or several: {implemented}"
    assert sorted(implemented) == sorted(HOOKS.values()), \
        f"docs/hooks.md needs exactly one example per hook; blocks implement {implemented}"


@pytest.mark.parametrize("line,code", BLOCKS, ids=[hook_of(code) for _, code in BLOCKS])
def test_example_runs(line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BDB_RUNS", str(tmp_path / "bdb-runs"))
    monkeypatch.setenv("BDB_CACHE", str(tmp_path / "cache"))
    name = f"hooks_md_example_{line}"
    module = types.ModuleType(name)  # a real module: classes defined in the block get a resolvable __module__
    module.__file__ = str(DOC)
    monkeypatch.setitem(sys.modules, name, module)
    # padded with blank lines, so that a traceback names the line of docs/hooks.md
    exec(compile("\n" * (line - 1) + code, str(DOC), "exec"), module.__dict__)
