"""The result store: atomic runs, corrupt runs, the SQLite index."""

import json

import pytest
import torch

from bdcore.errors import BdbError
from bdcore.runs.store import RunStore


def _write(store, run_id, metrics=None):
    with store.write(run_id) as w:
        w.json("config.json", {"attack": "badnet", "dataset": "digits", "model": "small-cnn", "pratio": 0.1, "seed": 0})
        w.json("meta.json", {"finished": "2026-01-01T00:00:00"})
        w.json("metrics.json", metrics or {"cacc": 0.9, "asr": 0.95, "ra": 0.05})
        w.tensors("model.safetensors", {"w": torch.arange(4.0)})


def test_a_failed_write_leaves_nothing_that_looks_complete(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(RuntimeError):
        with store.write("a-123") as w:
            w.json("config.json", {})
            raise RuntimeError("killed mid-run")
    assert not store.is_complete("a-123")
    assert list((tmp_path / "runs").iterdir()) == []
    assert store.rows() == []


def test_round_trip_index_and_prefix(tmp_path):
    store = RunStore(tmp_path)
    _write(store, "a-abc111")
    _write(store, "a-abd222")
    run = store.load("a-abc")
    assert run.run_id == "a-abc111" and run.metrics["asr"] == 0.95
    assert torch.equal(store.load_tensors(run, "model.safetensors")["w"], torch.arange(4.0))
    with pytest.raises(BdbError, match="ambiguous"):
        store.load("a-ab")
    assert [r["run_id"] for r in store.rows()] == ["a-abc111", "a-abd222"]
    (tmp_path / "index.sqlite").unlink()
    assert store.reindex() == 2 and len(store.rows("attack")) == 2


def test_rewriting_a_run_replaces_it(tmp_path):
    store = RunStore(tmp_path)
    _write(store, "a-1", {"cacc": 0.1, "asr": 0.2, "ra": 0.3})
    _write(store, "a-1", {"cacc": 0.5, "asr": 0.6, "ra": 0.7})
    assert store.load("a-1").metrics["cacc"] == 0.5 and len(store.rows()) == 1


def test_a_run_replaced_while_being_read_is_read_again(tmp_path, monkeypatch):
    # a --force writer swaps the run directory away (under the run's lock) between a reader's check of a
    # file and its read: the race test_faults' concurrent writers hit once (a raw FileNotFoundError). The
    # reader must wait for the swap and read the new run.
    import os
    import shutil
    import threading
    import time
    from pathlib import Path

    store = RunStore(tmp_path)
    _write(store, "a-1", {"cacc": 0.1, "asr": 0.2, "ra": 0.3})
    _write(store, "a-2", {"cacc": 0.5, "asr": 0.6, "ra": 0.7})  # the replacement's files
    final, mid_swap = store.path("a-1"), threading.Event()

    def writer():
        with store.lock("a-1"):
            os.replace(final, tmp_path / "old")
            mid_swap.set()
            time.sleep(0.3)
            shutil.copytree(store.path("a-2"), final)

    real = Path.read_text

    def read_text(self, *args, **kwargs):
        if self.name == "meta.json" and not mid_swap.is_set():
            threading.Thread(target=writer).start()
            mid_swap.wait(5)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    run = store.load("a-1")
    assert mid_swap.is_set() and run.metrics["cacc"] == 0.5


def test_weights_read_during_a_swap_wait_for_it(tmp_path):
    # a reader that loaded the run before a --force writer swapped the directory away reads the
    # replacement's weights once the swap is done, not a "missing; rerun it" error
    import os
    import shutil
    import threading
    import time

    store = RunStore(tmp_path)
    _write(store, "a-1")
    run = store.load("a-1")
    with store.write("a-2") as w:
        w.json("config.json", {})
        w.json("meta.json", {})
        w.json("metrics.json", {})
        w.tensors("model.safetensors", {"w": torch.ones(4)})
    mid_swap = threading.Event()

    def writer():
        with store.lock("a-1"):
            os.replace(store.path("a-1"), tmp_path / "old")
            mid_swap.set()
            time.sleep(0.3)
            shutil.copytree(store.path("a-2"), store.path("a-1"))

    threading.Thread(target=writer).start()
    mid_swap.wait(5)
    assert torch.equal(store.load_tensors(run, "model.safetensors")["w"], torch.ones(4))
    shutil.rmtree(store.path("a-1"))
    with pytest.raises(BdbError, match="model.safetensors is missing"):  # truly gone: still the one-line error
        store.load_tensors(run, "model.safetensors")


def test_corrupt_weights_are_one_line_errors(tmp_path):
    store = RunStore(tmp_path)
    _write(store, "a-1")
    run = store.load("a-1")
    run.file("model.safetensors").write_bytes(b"garbage")
    with pytest.raises(BdbError, match="corrupt: model.safetensors is unreadable"):
        store.load_tensors(run, "model.safetensors")
    run.file("meta.json").unlink()
    with pytest.raises(BdbError, match="meta.json is missing"):
        store.load("a-1")


def test_store_never_pickles(tmp_path):
    store = RunStore(tmp_path)
    _write(store, "a-1")
    for f in (tmp_path / "runs" / "a-1").iterdir():
        assert f.suffix in (".json", ".safetensors", "") and f.name in (
            "config.json", "meta.json", "metrics.json", "model.safetensors", "COMPLETE")
    json.loads((tmp_path / "runs" / "a-1" / "config.json").read_text())


def test_artifact_is_built_once_by_concurrent_askers(tmp_path):
    import threading
    import time as _time

    import torch

    from bdcore.runs.artifacts import ArtifactCache

    builds = []

    def build():
        builds.append(1)
        _time.sleep(0.3)  # long enough for the other asker to arrive while this one builds
        return {"w": torch.arange(3.0)}

    caches = [ArtifactCache(tmp_path), ArtifactCache(tmp_path)]
    out = [None, None]

    def ask(i):
        out[i] = caches[i].get_or_build("surrogate", {"k": 1}, build)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and all(torch.equal(o["w"], torch.arange(3.0)) for o in out)
    assert sorted(u["built"] for c in caches for u in c.used) == [False, True]


def test_run_ids_of_fixed_configs_never_move():
    # a run id hashes the config as saved: a new recipe field (precision, nesterov, ...) is saved only when set, so
    # stored runs keep their ids across releases (these were the same at c6484f8, session 11, and every refactor
    # of the core must keep them)
    from bdcore.config import AttackRunConfig, DefenseRunConfig, TrainRecipe

    assert AttackRunConfig(attack="badnet").run_id() == "a-41f0bf032ecd"
    assert AttackRunConfig(attack="blended", pratio=0.05, seed=3, dataset="cifar10",
                           model="preact-resnet18").run_id() == "a-8609fde53296"
    assert AttackRunConfig(attack="wanet", train=TrainRecipe(epochs=15, lr=0.1, precision="bf16")).run_id() \
        == "a-dea9e3e0f2ba"
    assert DefenseRunConfig(defense="ft", attack_run="a-0123456789ab").run_id() == "d-b480f9f6a072"
    assert DefenseRunConfig(defense="nc", attack_run="a-0123456789ab", defense_config={"epochs": 3},
                            preset="quick").run_id() == "d-6acf629a2289"
    assert AttackRunConfig(attack="badnet", train=TrainRecipe(nesterov=True)).run_id() != "a-41f0bf032ecd"
