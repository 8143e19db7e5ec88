"""The fifth plugin kind, `analysis`: registration, listing without torch, the context a tool gets
(splits, poison truth, layers), the runner's errors, and `bdb analyze`."""

import json
import subprocess
import sys
import types

import pytest
import torch

from bdcore import AnalysisSpec, hookimpl
from bdcore.errors import BdbError
from bdcore.api.registry import load_registry
from bdcore.testing import analysis_context


def _plugin():
    mod = types.ModuleType("third_party")

    @hookimpl
    def bdb_register_analyses():
        return [AnalysisSpec(name="my-tool", summary="a third party's analysis tool", reference="tsne",
                             factory="tests.nowhere:Tool")]

    mod.bdb_register_analyses = bdb_register_analyses
    return mod


def test_a_plugin_registers_an_analysis_and_bad_names_are_caught():
    reg = load_registry([("third-party", _plugin())])
    spec = reg.get("analysis", "my-tool")
    assert spec.category == "analysis" and spec.paper == "reference tool: tsne"
    assert spec.config_model()().model_dump() == {}
    assert reg.find("my-tool")[0] == "analysis"
    with pytest.raises(BdbError, match="unknown analysis 'my-tol'. Did you mean 'my-tool'"):
        reg.get("analysis", "my-tol")


def test_list_analyses_does_not_import_torch():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom bdcore_cli.main import app\n"
            "r = CliRunner().invoke(app, ['list', 'analyses', '--json'])\n"
            "print(r.output)\nprint('TORCH' if any(m == 'torch' for m in sys.modules) else 'LIGHT')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = res.stdout.strip().splitlines()
    assert out[-1] == "LIGHT"
    names = {r["name"] for r in json.loads("\n".join(out[:-1]))}
    assert {"metrics", "confusion-matrix", "tsne", "tac", "lipschitz", "hessian"} <= names


@pytest.fixture(scope="module")
def attack(backdoored_run):
    return backdoored_run("badnet")


def test_splits_carry_the_truth(attack, bdb_store):
    ctx = analysis_context(attack.run_id, bdb_store)
    pidx = set(ctx.poison_indices.tolist())
    bd = ctx.sample("bd-train", n=10_000)
    assert set(bd.index.tolist()) == pidx and bd.poisoned.all() and (bd.label == 0).all()
    mixed = ctx.sample("mixed", n=10_000)
    assert len(mixed) == len(ctx.data.y_train)
    assert set(mixed.index[mixed.poisoned].tolist()) == pidx
    assert torch.equal(mixed.x[mixed.poisoned].cpu(), bd.x.cpu())
    clean = ctx.sample("clean-train", n=10_000)
    assert not clean.poisoned.any() and not (set(clean.index.tolist()) & pidx)
    test = ctx.sample("bd-test", n=10_000)
    assert (test.y != 0).all() and (test.label == 0).all() and len(test) == (ctx.data.y_test != 0).sum()
    three = ctx.sample("clean-test", n=20, cls=3)
    assert len(three) == 20 and (three.y == 3).all()
    assert torch.equal(three.index, ctx.sample("clean-test", n=20, cls=3).index)  # drawn by seed
    assert ctx.map_layer() == "net.features" and "penultimate" in ctx.layer_names()
    assert ctx.features(three.x).shape == (20, 128)
    assert ctx.features(three.x, "net.features.4", reduce="channel").shape == (20, 64)


def test_runner_errors_are_one_line(attack, bdb_store, tmp_path):
    from bdcore.reporting.analysis import run_analysis

    with pytest.raises(BdbError, match="unknown split 'test'"):
        run_analysis("confusion-matrix", attack.run_id, store=bdb_store, split="test", device="cpu")
    with pytest.raises(BdbError, match="no layer 'net.nope'; layers include"):
        run_analysis("tsne", attack.run_id, store=bdb_store, layer="net.nope", device="cpu")
    with pytest.raises(BdbError, match="unknown analysis"):
        run_analysis("nope", attack.run_id, store=bdb_store, device="cpu")
    with pytest.raises(BdbError, match="unknown key|Extra inputs|not permitted|nope"):
        run_analysis("tsne", attack.run_id, store=bdb_store, settings={"nope": 1}, device="cpu")


def test_bdb_analyze_writes_a_png_and_prints_numbers(attack, bdb_store, tmp_path):
    from typer.testing import CliRunner

    from bdcore_cli.main import app

    out = tmp_path / "cm.png"
    r = CliRunner().invoke(app, ["analyze", "confusion-matrix", "--run", attack.run_id[:10], "--split", "bd-test",
                                 "--class", "3", "--out", str(out), "--json", "--runs", str(bdb_store.root)])
    assert r.exit_code == 0, r.output
    nums = json.loads(r.output)
    assert nums["split"] == "bd-test" and nums["tool"] == "confusion-matrix"
    assert sum(nums["matrix"][3]) == nums["n"] == 100
    assert out.read_bytes()[:4] == b"\x89PNG"
    r = CliRunner().invoke(app, ["analyze", "confusion-matrix", "--run", attack.run_id, "--out", str(out),
                                 "--runs", str(bdb_store.root)])
    assert r.exit_code == 0 and "accuracy" in r.output
    r = CliRunner().invoke(app, ["analyze", "tsne", "--run", "a-nothing", "--out", str(out), "--runs",
                                 str(bdb_store.root)])
    assert r.exit_code == 2 and "no finished run" in r.output


def test_every_installed_analysis_has_metadata_and_light_modules():
    from bdcore.api.registry import registry
    from bdcore.testing import check_metadata, installed

    reg = registry()
    modules = set()
    for name in installed("analysis"):
        check_metadata("analysis", name)
        spec = reg.get("analysis", name)
        assert spec.reference, f"{name}: no reference tool"
        model = spec.config_model()
        for fname, field in model.model_fields.items():
            assert field.description, f"{name}: setting {fname!r} has no description"
        if isinstance(spec.config, str):
            modules.add(spec.config.split(":")[0])
        modules.update(p.module.split(":")[0] for p in reg.plugins if p.package == spec.package)
    code = (f"import importlib, sys\nfor m in {sorted(modules)!r}: importlib.import_module(m)\n"
            "print('torch' if 'torch' in sys.modules or 'matplotlib' in sys.modules else 'ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-500:] + res.stdout
