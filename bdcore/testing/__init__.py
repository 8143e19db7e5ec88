"""The conformance kit: checks every attack and defense plugin must pass, and test helpers.

Loaded by pytest through the `pytest11` entry point (fixtures in bdcore.testing.plugin); the
checks here are plain functions so that plugin tests and the core's suite share them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bdcore.errors import BdbError

TINY_EPOCHS = 1
"""Epochs of the conformance kit's tiny runs."""

TINY_DATASET = "digits"
"""Dataset of the conformance kit's tiny runs: scikit-learn's 1,797 8x8 digits. Every attack and defense
runs on it, and a tiny run costs 0.1-1.5 s there against 4-41 s on mnist5k (session 10: the
reproducibility and sealed-input checks went from ~575 s of CPU to ~55 s); the checks test
determinism and plumbing, which do not depend on the image size."""

SHORT_EPOCHS = 10
"""Victim epochs an attack's miniature test may train instead of the miniature recipe's 15
(`bdcore.testing.plugin.MINIATURE`) where its backdoor and clean accuracy hold, measured: a third
less suite time (session 9). The fixture `clean_run_short` is the clean model trained that long."""

def tiny_recipe(**overrides: Any):
    """A training recipe for fast tests on the embedded data: the 'quick' preset (SGD, lr 0.1, cosine)
    for TINY_EPOCHS epochs, with overrides."""
    from bdcore.config import TrainRecipe
    from bdcore.bench.presets import victim_recipe

    base = {**victim_recipe("quick", "mnist5k"), "epochs": TINY_EPOCHS}
    base.update(overrides)
    return TrainRecipe(**base)


def attack_config(attack: str, *, dataset: str = "mnist5k", model: str = "small-cnn", pratio: float = 0.1,
                  epochs: int = TINY_EPOCHS, seed: int = 0, settings: dict[str, Any] | None = None, **train: Any):
    """An AttackRunConfig with the test recipe."""
    from bdcore.config import AttackRunConfig

    return AttackRunConfig(attack=attack, attack_config=settings or {}, dataset=dataset, model=model, preset="quick",
                           pratio=pratio, seed=seed, train=tiny_recipe(epochs=epochs, **train))


def _context_artifacts(fields: dict[str, Any]) -> None:
    from bdcore.runs.artifacts import ArtifactCache

    art = fields.get("artifacts")
    if isinstance(art, (str, os.PathLike)):
        fields["artifacts"] = ArtifactCache(art)


def attack_context(**overrides: Any):
    """An `AttackContext` for unit tests: pass only the fields that differ from these defaults.

    Defaults: num_classes=10, shape=(1, 28, 28), target=0, pratio=0.1, all_to_all=False, seed=0,
    device=cpu, dataset="mnist5k", model="small-cnn" (the surrogate attacks train ctx.model) and
    artifacts=None (no cache: an attack whose prepare step caches needs one; pass an ArtifactCache, any
    object with its `get_or_build`, or a directory, which becomes `ArtifactCache(directory)`). Every other
    field keeps the dataclass's own default (mean=(), std=(), hflip=True, poison_pool="all",
    quantize="truncate", progress=None, batch_size=128). device may be given as a string ("cpu", "cuda").
    Plugin tests build contexts here rather than with a copied factory, so a field added to the
    context breaks none of them."""
    import torch

    from bdcore.api.attack import AttackContext

    fields: dict[str, Any] = dict(num_classes=10, shape=(1, 28, 28), target=0, pratio=0.1, all_to_all=False, seed=0,
                                  device=torch.device("cpu"), dataset="mnist5k", model="small-cnn", artifacts=None)
    fields.update(overrides)
    fields["device"] = torch.device(fields["device"])
    _context_artifacts(fields)
    return AttackContext(**fields)


def defense_context(**overrides: Any):
    """A `DefenseContext` for unit tests: pass only the fields that differ from these defaults.

    Defaults: num_classes=10, shape=(1, 28, 28), mean=(0.5,), std=(0.5,), hflip=False (mnist5k's
    normalisation and augmentation), seed=0, device=cpu, artifacts=None (no cache; pass an ArtifactCache
    or a directory, which becomes `ArtifactCache(directory)`), progress=None. device may be given as a
    string. Plugin tests build contexts here rather than with a copied factory, so a field added to the
    context breaks none of them."""
    import torch

    from bdcore.api.defense import DefenseContext

    fields: dict[str, Any] = dict(num_classes=10, shape=(1, 28, 28), mean=(0.5,), std=(0.5,), hflip=False, seed=0,
                                  device=torch.device("cpu"), artifacts=None)
    fields.update(overrides)
    fields["device"] = torch.device(fields["device"])
    _context_artifacts(fields)
    return DefenseContext(**fields)


def spec_of(kind: str, name: str):
    from bdcore.api.registry import registry

    return registry().get(kind, name)


def check_metadata(kind: str, name: str) -> None:
    """Name, summary, paper, kind/stage, package and version are all filled in."""
    spec = spec_of(kind, name)
    spec.check()
    assert spec.package and spec.version, f"{name}: package/version unknown (not installed through an entry point?)"
    assert len(spec.summary) >= 10, f"{name}: summary too short"
    if kind in ("attack", "defense"):
        assert len(spec.paper) >= 10, f"{name}: paper reference too short"


def check_config_roundtrip(kind: str, name: str) -> None:
    """Defaults validate, dump to JSON and validate back equal; unknown keys are rejected; schema exports."""
    from pydantic import ValidationError

    model = spec_of(kind, name).config_model()
    cfg = model()
    again = model.model_validate(json.loads(json.dumps(cfg.model_dump(mode="json"))))
    assert again == cfg, f"{name}: config does not round-trip through JSON"
    model.model_json_schema()
    try:
        model.model_validate({"definitely_not_a_setting": 1})
    except ValidationError:
        pass
    else:
        raise AssertionError(f"{name}: config accepts unknown keys (use bdcore.config.MethodConfig)")
    for fname, field in model.model_fields.items():
        assert field.description, f"{name}: setting {fname!r} has no description"


def check_light_import(kind: str, name: str) -> None:
    """The entry-point module (and an attack's or defense's config module) import without torch."""
    spec = spec_of(kind, name)
    config = getattr(spec, "config", None)
    modules = [config.split(":")[0]] if isinstance(config, str) else []
    from bdcore.api.registry import registry

    for p in registry().plugins:
        if p.package == spec.package:
            modules.append(p.module.split(":")[0])
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "print('torch' if bad else 'ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"{name}: importing {modules} failed: {res.stderr.strip()[-500:]}"
    assert res.stdout.strip() == "ok", f"{name}: importing {modules} imports torch; keep entry point and config light"


def tiny_attack_run(name: str, store, *, seed: int = 0, force: bool = False, dataset: str = TINY_DATASET, **kw: Any):
    """A one-epoch attack run on TINY_DATASET (or `dataset`) with the spec's test settings."""
    from bdcore.bench.harness import run_attack

    spec = spec_of("attack", name)
    settings = dict(spec.test_settings)
    settings.update(kw.pop("settings", {}) or {})
    return run_attack(attack_config(name, dataset=dataset, seed=seed, settings=settings, **kw), store=store, force=force,
                      device="cpu")


def tiny_defense_run(name: str, attack_run_id: str, store, *, seed: int = 0, force: bool = False,
                     settings: dict[str, Any] | None = None, reg: Any = None):
    """A defense run with the spec's test settings on a finished attack run (`reg`: another registry than
    the installed plugins', as in the kit's own tests)."""
    from bdcore.config import DefenseRunConfig
    from bdcore.bench.harness import run_defense

    spec = (reg or _registry()).get("defense", name)
    merged = dict(spec.test_settings)
    merged.update(settings or {})
    cfg = DefenseRunConfig(defense=name, defense_config=merged, attack_run=attack_run_id, seed=seed, preset="quick")
    return run_defense(cfg, store=store, force=force, device="cpu", reg=reg)


def _snapshot(store, run) -> tuple[str, dict, dict]:
    weights = store.load_tensors(run, "model.safetensors") if run.file("model.safetensors").is_file() else {}
    return run.run_id, dict(run.metrics), weights


TIMING_KEYS = {"train_seconds", "images_per_second", "defense_seconds", "retrain_seconds"}


def assert_same_snapshot(a: tuple[str, dict, dict], b: tuple[str, dict, dict]) -> None:
    """Two runs have the same id, identical metrics (timings aside) and identical weights."""
    (id_a, m_a, w_a), (id_b, m_b, w_b) = a, b
    assert id_a == id_b, "same config gave different run ids"

    def clean(m: dict) -> dict:
        return {k: v for k, v in m.items() if k not in TIMING_KEYS}

    assert clean(m_a) == clean(m_b), f"metrics differ: {m_a} vs {m_b}"
    assert w_a.keys() == w_b.keys()
    for k in w_a:
        assert (w_a[k] == w_b[k]).all(), f"weights differ at {k}"


def check_attack_runs(name: str, store) -> None:
    """A tiny run completes with sane metrics, and rerunning it (--force) gives identical results."""
    first = tiny_attack_run(name, store, force=True)
    for k in ("cacc", "asr", "ra"):
        assert 0.0 <= first.metrics[k] <= 1.0, f"{name}: {k} out of range"
    snap = _snapshot(store, first)
    again = tiny_attack_run(name, store, force=True)
    assert_same_snapshot(snap, _snapshot(store, again))


def check_defense_runs(name: str, store, attack: str = "badnet") -> None:
    """A tiny defense run on a tiny attack run completes, does something (`check_defense_acts`), and rerunning
    it gives identical results.

    The attack run is a one-epoch run (so a defense that retrains or trains its own model does so for
    one epoch) with its own seed: not the run that check_attack_runs replaces with --force, which a
    parallel test session may be doing at the same time."""
    arun = tiny_attack_run(attack, store, seed=1)
    first = tiny_defense_run(name, arun.run_id, store, force=True)
    for k in ("cacc", "asr", "ra", "der"):
        assert 0.0 <= first.metrics[k] <= 1.0, f"{name}: {k} out of range"
    check_defense_acts(name, store, first)
    snap = _snapshot(store, first)
    again = tiny_defense_run(name, arun.run_id, store, force=True)
    assert_same_snapshot(snap, _snapshot(store, again))


_SECRET_WORDS = ("poison", "mask", "target", "attack", "trigger", "truth")


def _reachable(root: Any, limit: int = 10_000) -> list[tuple[str, Any]]:
    """(path, object) for everything reachable from root through attributes, dataclass fields,
    dicts, lists and closures (modules' parameters and buffers are not walked: they are weights)."""
    import dataclasses

    import torch
    from torch import nn

    seen: set[int] = set()
    out: list[tuple[str, Any]] = []
    todo: list[tuple[str, Any]] = [("inputs", root)]
    while todo and len(out) < limit:
        path, obj = todo.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (str, int, float, bool, torch.Tensor, torch.device)):
            if isinstance(obj, torch.Tensor):
                out.append((path, obj))
            continue
        seen.add(id(obj))
        out.append((path, obj))
        if isinstance(obj, nn.Module):
            children = [(f"{path}.{k}", v) for k, v in vars(obj).items() if not k.startswith("_")]
            children += [(f"{path}.{n}", m) for n, m in obj.named_children()]
            children += [(f"{path}._forward_hooks", h) for h in obj._forward_hooks.values()]
            children += [(f"{path}._forward_pre_hooks", h) for h in obj._forward_pre_hooks.values()]
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            children = [(f"{path}.{f.name}", getattr(obj, f.name)) for f in dataclasses.fields(obj)]
        elif isinstance(obj, dict):
            children = [(f"{path}[{k!r}]", v) for k, v in obj.items()]
        elif isinstance(obj, (list, tuple, set)):
            children = [(f"{path}[{i}]", v) for i, v in enumerate(obj)]
        elif callable(obj) and getattr(obj, "__closure__", None):
            children = [(f"{path}.<closure {i}>", c.cell_contents) for i, c in enumerate(obj.__closure__)
                        if c.cell_contents is not None]
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            children = [(f"{path}.{k}", v) for k, v in vars(obj).items()]
        else:
            children = []
        todo.extend(children)
    return out


def _tiny_defense_setup(name: str, store, attack: str, reg: Any = None):
    """The harness's defense setup (threat-model inputs and the built defense) on a tiny attack run."""
    import torch

    from bdcore.config import DefenseRunConfig
    from bdcore.bench.harness import _resolve_method, defense_setup

    reg = reg or _registry()
    arun = tiny_attack_run(attack, store, epochs=1)
    spec = reg.get("defense", name)
    cfg = DefenseRunConfig(defense=name, defense_config=dict(spec.test_settings), attack_run=arun.run_id,
                           preset="quick")
    _, dcfg = _resolve_method(reg, "defense", name, cfg.defense_config, "quick")
    return spec, defense_setup(cfg, spec, dcfg, store, torch.device("cpu"), reg=reg)


def check_sealed_inputs(name: str, store, attack: str = "badnet") -> None:
    """A defense's inputs hold images and labels only: no attack object (so no trigger and no
    target), no poison mask or indices; its artifact cache is its own namespace, outside the run store."""
    import torch

    from bdcore.api.attack import Attack

    spec, setup = _tiny_defense_setup(name, store, attack)
    for path, obj in _reachable(setup.inputs):
        assert not isinstance(obj, Attack), f"{name}: the attack is reachable from the defense's inputs at {path}"
        leaf = path.rsplit(".", 1)[-1].lower()
        assert not any(w in leaf for w in _SECRET_WORDS), f"{name}: defense inputs expose {path}"
        if isinstance(obj, torch.Tensor) and obj.dtype == torch.int64 and obj.dim() == 1 and len(obj) == len(setup.pidx):
            assert not torch.equal(obj.cpu(), setup.pidx), f"{name}: the poison indices are reachable at {path}"
    if setup.inputs.train is not None:
        assert set(vars(setup.inputs.train)) <= {"device", "x", "y", "hflip"}, f"{name}: training set holds more than data"
    root = setup.defense.ctx.artifacts.root
    assert root.parts[-2:] == ("defense", name), f"{name}: artifact cache {root} is not the defense's own"
    store_root = store.root.resolve()
    assert store_root != root.resolve() and store_root not in root.resolve().parents, \
        f"{name}: artifact cache {root} lies inside the run store {store.root} (it would lead to the attack runs)"
    for path, obj in _reachable(setup.defense.ctx):
        assert not isinstance(obj, Attack), f"{name}: the attack is reachable from the defense's context at {path}"


def check_defense_acts(name: str, store, run: Any = None, *, attack: str = "badnet", reg: Any = None,
                       allow_unchanged: bool = True) -> None:
    """A defense does something (checked on a finished defense run; by default the tiny run on a tiny `attack`
    run, made or reused): a post- or in-training defense stores a model that differs from the backdoored
    one; a data filter's or detector's scores are not all equal (AUROC not exactly 0.5) or its flags not all
    the same; an input detector likewise on the test inputs. A defense that, by its own rule, leaves the model
    as it is (e.g. it detected nothing) says why in `info["unchanged"]`; with allow_unchanged=False that is a
    failure too (a test that a backdoor survives a defense asserts with it that the defense did act)."""
    import torch

    reg = reg or _registry()
    spec = reg.get("defense", name)
    if run is None:
        arun = tiny_attack_run(attack, store, seed=1)
        run = tiny_defense_run(name, arun.run_id, store, reg=reg)
    m = run.metrics
    why = (m.get("info") or {}).get("unchanged")
    if why is not None:
        assert allow_unchanged, f"{name}: left the model unchanged ({why})"
        assert isinstance(why, str) and len(why) >= 10, f"{name}: info['unchanged'] must say why, in words"
        return

    def decides(det: dict | None) -> bool:
        if not det:
            return False
        flags_vary = 0 < det["tp"] + det["fp"] < det["tp"] + det["fp"] + det["tn"] + det["fn"]
        return flags_vary or ("auroc" in det and det["auroc"] != 0.5)

    if spec.stage in ("post", "in"):
        assert run.file("model.safetensors").is_file(), f"{name}: a {spec.stage} defense returned no model"
        after = store.load_tensors(run, "model.safetensors")
        before = store.load_tensors(store.load(run.config["attack_run"]), "model.safetensors")
        same = before.keys() == after.keys() and all(
            before[k].shape == after[k].shape and torch.equal(before[k], after[k]) for k in before)
        assert not same, (f"{name}: returned the backdoored model unchanged; a defense that decides to change "
                          "nothing says why in info['unchanged']")
    elif spec.stage in ("pre", "detect-data"):
        assert decides(m.get("detection")), f"{name}: every training sample got the same score and verdict"
    elif spec.stage == "detect-input":
        assert decides(m.get("input_detection")), f"{name}: every test input got the same score and verdict"


def assert_one_line_error(result: Any, *fragments: str) -> str:
    """A CLI call (a click/typer `Result`) failed as bad input must: exit code 2 and exactly one `error:` line
    on stderr holding every fragment. Returns that line."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def _registry():
    from bdcore.api.registry import registry

    return registry()


def load_attack_run(run_id: str, store):
    """Rebuild a finished attack run on the CPU: (run, config, dataset, attack, model, poison indices)."""
    import torch

    from bdcore.bench.harness import load_attack_run as _load

    return _load(run_id, store, torch.device("cpu"))


def poison_train_set(x, y, attack, pidx, **kw: Any):
    """The poisoned training set the harness would build (see bdcore.data.trainset.poison_train_set)."""
    from bdcore.data.trainset import poison_train_set as _poison

    return _poison(x, y, attack, pidx, **kw)


def analysis_context(run_id: str, store, **options: Any):
    """The AnalysisContext `bdb analyze` would give a tool for a stored run, on the CPU."""
    import torch

    from bdcore.reporting.analysis import open_run

    return open_run(run_id, store, torch.device("cpu"), **options)


def check_analysis(tool: str, run_id: str, store, out_dir, **options: Any) -> dict[str, Any]:
    """Run an analysis tool on a stored run (CPU) and check what it gives: a PNG that decodes to a
    non-trivial picture and JSON-serialisable numbers whose floats are finite. Returns the numbers.

    options: split, layer, cls, n, settings, seed (as `bdb analyze`). Without a split (or a layer)
    option, the splits it drew from (and a penultimate layer) must be those its spec's `defaults` declare."""
    import math
    from pathlib import Path

    from bdcore.reporting.analysis import run_analysis

    out = Path(out_dir) / f"{tool}.png"
    result = run_analysis(tool, run_id, store=store, out=out, device="cpu", **options)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{tool}: {out} is not a PNG"
    import matplotlib.image

    img = matplotlib.image.imread(out)
    assert img.shape[0] >= 100 and img.shape[1] >= 100, f"{tool}: picture too small {img.shape}"
    assert float(img.std()) > 0.01, f"{tool}: picture is blank"
    json.dumps(result.numbers)

    def walk(v: Any, path: str) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, f"{path}.{k}")
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, f"{path}[{i}]")
        elif isinstance(v, float):
            assert math.isfinite(v), f"{tool}: number {path} is not finite"

    walk(result.numbers, tool)
    from bdcore.api.registry import registry

    declared = registry().get("analysis", tool).defaults
    if options.get("split") is None:  # the splits the spec declares (shown by `bdb info`) are those it drew
        used = result.numbers["split"]
        want = declared.get("split")
        assert set([used] if isinstance(used, str) else used or []) == \
            set([want] if isinstance(want, str) else want or []), \
            f"{tool}: drew samples from {used!r}, its spec declares defaults split {want!r}"
    if options.get("layer") is None and declared.get("layer") == "penultimate" and "layer" in result.numbers:
        assert result.numbers["layer"] == "penultimate", f"{tool}: default layer is not the declared penultimate"
    return result.numbers


def check_plugins_load(reg: Any = None) -> None:
    """Every installed plugin distribution loaded (a plugin that fails to import gets no other
    conformance test, so this is where it fails loudly)."""
    from bdcore.api.registry import registry

    broken = (reg or registry()).broken
    assert not broken, "plugin(s) failed to load: " + "; ".join(f"{p.package} ({p.entry_point}): {p.error}"
                                                             for p in broken)


def installed(kind: str) -> list[str]:
    """Names of the installed methods of a kind."""
    from bdcore.api.registry import registry

    return registry().names(kind)


__all__ = [
    "BdbError", "TINY_EPOCHS", "TINY_DATASET", "SHORT_EPOCHS", "tiny_recipe", "attack_config",
    "attack_context", "defense_context",
    "check_metadata", "check_config_roundtrip", "check_light_import", "tiny_attack_run", "tiny_defense_run",
    "assert_same_snapshot", "check_attack_runs", "check_defense_runs", "check_sealed_inputs", "check_defense_acts",
    "check_plugins_load", "assert_one_line_error",
    "check_analysis", "analysis_context", "installed", "load_attack_run", "poison_train_set",
]
