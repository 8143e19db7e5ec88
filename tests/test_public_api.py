"""The one public plugin API: plugins import only `bdcore` (and `bdcore.testing` in tests), every
public name is documented, importing bdcore stays torch-free, and the API reference builds."""

import ast
import inspect
import pathlib
import subprocess
import sys

import pytest

import bdcore

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _plugin_sources():
    for base in ("plugins", "plugin_template"):
        for p in sorted((ROOT / base).rglob("*")):
            if p.suffix in (".py", ".tmpl") and ".venv" not in p.parts and p.is_file():
                yield p


def _bdcore_imports(path: pathlib.Path):
    text = path.read_text()
    if path.suffix == ".tmpl":  # templates are Python with {{placeholders}}: check import lines only
        text = "\n".join(line for line in text.splitlines() if line.lstrip().startswith(("from bdcore", "import bdcore")))
        text = "\n".join(line.strip() for line in text.splitlines())
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "bdcore":
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "bdcore":
                    yield a.name, []


def test_plugins_import_only_the_public_api():
    bad = []
    for path in _plugin_sources():
        in_tests = "tests" in path.parts
        for module, names in _bdcore_imports(path):
            ok = module == "bdcore" and all(n in bdcore.__all__ or n == "testing" for n in names)
            ok = ok or (in_tests and module == "bdcore.testing")
            if not ok:
                bad.append(f"{path.relative_to(ROOT)}: {module} {names}")
    assert not bad, "plugins must import from `bdcore` (tests also `bdcore.testing`) only:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", [n for n in bdcore.__all__ if n != "__version__"])
def test_every_public_name_resolves_and_is_documented(name):
    obj = getattr(bdcore, name)
    if isinstance(obj, (tuple, str, int, float)):
        return  # constants are documented in the module that defines them
    doc = inspect.getdoc(obj)
    assert doc and len(doc) > 15, f"bdcore.{name} has no docstring"


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        bdcore.Nope  # noqa: B018


def test_light_names_import_without_torch():
    code = ("import sys\nfrom bdcore import hookimpl, AttackSpec, DefenseSpec, DatasetSpec, ModelSpec, MethodConfig, "
            "BdbError, TrainRecipe\nprint('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


def test_api_reference_builds_with_warnings_as_errors(tmp_path):
    res = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                          str(ROOT / "docs" / "api"), str(tmp_path / "html")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    html = (tmp_path / "html" / "index.html").read_text()
    for name in ("fine_tune", "penultimate", "accuracy_on", "TrainSet", "spectral_trigger", "api.hookspecs.bdb_register_attacks"):
        assert f"bdcore.{name}" in html, f"{name} missing from the API reference"
