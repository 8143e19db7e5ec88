"""Issue 31's messages: each bad input is one `error:` line that says what to do (exit 2), and the
help and info texts speak the user's words, not Python's."""

import json
import re
import socket
import time

import pytest
from typer.testing import CliRunner

import bdcore_cli.main as cli
from bdcore_cli.main import app
from bdcore.testing import assert_one_line_error

runner = CliRunner()


def bdb(*args, env=None):
    return runner.invoke(app, list(args), env=env)


def _grid(tmp_path, text):
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return str(path)


# 1 -----------------------------------------------------------------------------------------
def test_grid_keys_get_suggestions(tmp_path):
    grid = _grid(tmp_path, 'attacks = ["badnet"]\ndefences = ["ft"]\npratio = [0.1]\n')
    assert_one_line_error(bdb("bench", grid, "--runs", str(tmp_path)),
                   "defences: unknown setting (did you mean 'defenses'?)", "pratio: unknown setting (did you mean 'pratios'?)")
    grid = _grid(tmp_path, 'attacks = ["badnet"]\n[train]\nlearning_rate = 0.1\nbs = 32\n')
    assert_one_line_error(bdb("bench", grid, "--runs", str(tmp_path)),
                   "train.learning_rate: unknown setting (did you mean 'lr'?)",
                   "train.bs: unknown setting (did you mean 'batch_size'?)")
    assert not (tmp_path / "runs").exists()


# 2 -----------------------------------------------------------------------------------------
def test_an_option_that_is_a_method_setting_points_to_set(tmp_path):
    line = assert_one_line_error(bdb("defend", "ft", "--epochs", "2", "--attack-run", "a-0"))
    assert line == "error: bdb defend has no --epochs; a defense's settings go in --set (e.g. --set epochs=2); see 'bdb info ft'"
    assert_one_line_error(bdb("attack", "badnet", "--patch-size=5"),
                   "bdb attack has no --patch-size; an attack's settings go in --set (e.g. --set patch_size=5)")
    assert_one_line_error(bdb("defend", "strip", "--attack-run", "a-0", "--lr", "0.1"),
                   "strip has no setting 'lr'", "--set key=value", "see 'bdb info strip'")
    assert_one_line_error(bdb("bench", _grid(tmp_path, 'attacks = ["badnet"]\n'), "--epochs", "3"),
                   "bdb bench has no --epochs; the victim recipe goes in the grid file's [train] table (e.g. epochs = 3)")
    # other usage errors are one line too
    assert_one_line_error(bdb("defend", "ft", "--attack-run", "a-0", "--wat"), "no such option: --wat", "see 'bdb defend --help'")
    assert_one_line_error(bdb("defend", "ft"), "missing option '--attack-run'")
    assert_one_line_error(bdb("nosuch"), "no such command 'nosuch'")
    assert_one_line_error(bdb("--nope"), "no such option: --nope; see 'bdb --help'")
    assert_one_line_error(bdb("analyze", "tsne", "--run", "a-0", "--out", "x.png", "--split"),
                   "option '--split' requires an argument; see 'bdb analyze --help'")


# 3 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_a_missing_dataset_file_names_bdb_download(tmp_path, dataset):
    root = tmp_path / "data"
    root.mkdir()
    assert_one_line_error(bdb("attack", "badnet", "--dataset", dataset, "--data-root", str(root), "--runs", str(tmp_path)),
                   f"{dataset}: missing", f"or run 'bdb download {dataset} --data-root {root}'")


def test_a_dataset_bdb_download_does_not_fetch_gets_no_download_hint(tmp_path):
    line = assert_one_line_error(bdb("attack", "badnet", "--dataset", "imagefolder:16", "--data-root",
                              str(tmp_path / "none"), "--runs", str(tmp_path)), "imagefolder: missing folder")
    assert "bdb download" not in line


# 4 -----------------------------------------------------------------------------------------
def _fake_attack_run(store, run_id, attack, plugins):
    d = store / "runs" / run_id
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"attack": attack, "attack_config": {}, "dataset": "digits"}))
    (d / "meta.json").write_text(json.dumps({"versions": {"plugins": plugins, "bdcore": "0.1.0"}}))
    (d / "metrics.json").write_text(json.dumps({"cacc": 0.9, "asr": 0.9, "ra": 0.1}))
    (d / "COMPLETE").write_text("")


def test_defending_a_run_whose_attack_is_not_installed_says_what_to_install(tmp_path):
    _fake_attack_run(tmp_path, "a-0123456789ab", "gone-attack", {"bdb-attack-gone-attack": "0.3.1", "bdcore": "0.1.0"})
    line = assert_one_line_error(bdb("defend", "ft", "--attack-run", "a-0123", "--set", "epochs=1", "--runs", str(tmp_path)))
    assert line == ("error: attack 'gone-attack' of run a-0123456789ab is not installed: bdb install gone-attack "
                    "--kind attack (the run was made with bdb-attack-gone-attack 0.3.1)")
    # a third-party package of another name: pip install it
    _fake_attack_run(tmp_path, "a-abcdef012345", "mine", {"acme-backdoors": "2.0", "bdcore": "0.1.0"})
    assert_one_line_error(bdb("defend", "ft", "--attack-run", "a-abcdef", "--runs", str(tmp_path)),
                   "attack 'mine' of run a-abcdef012345 is not installed: pip install acme-backdoors")
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("d-")]


# 5 -----------------------------------------------------------------------------------------
def test_a_family_named_without_its_options_gets_the_syntax(tmp_path):
    line = assert_one_line_error(bdb("attack", "badnet", "--dataset", "imagefolder", "--runs", str(tmp_path)))
    assert line == "error: imagefolder needs a size: imagefolder:<size>[:gray], e.g. imagefolder:32"
    assert_one_line_error(bdb("attack", "badnet", "--model", "timm", "--runs", str(tmp_path)),
                   "timm needs a model name: timm:<name>, e.g. timm:resnet18")
    assert_one_line_error(bdb("info", "imagefolder"), "imagefolder needs a size")


# 6 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,meant", [
    ("fine-tune", "ft"), ("fine-pruning", "fp"), ("neural-cleanse", "nc"), ("activation-clustering", "ac"),
    ("spectral-signatures", "spectral"),  # words of its paper's title
])
def test_method_names_match_initials_and_paper_titles(name, meant):
    assert_one_line_error(bdb("info", name), f"called {name!r}. Did you mean {meant!r}?")


def test_unknown_defense_spelt_out_suggests_its_id():
    assert_one_line_error(bdb("defend", "fine-tune", "--attack-run", "a-0"), "unknown defense 'fine-tune'. Did you mean 'ft'?")


# 7 -----------------------------------------------------------------------------------------
def test_analysis_plural_is_analyses():
    line = assert_one_line_error(bdb("analyze", "tsen", "--run", "a-0", "--out", "x.png"), "unknown analysis 'tsen'")
    assert "see 'bdb list analyses'" in line and "analysiss" not in line
    assert_one_line_error(bdb("list", "widgets"), "choose attacks, defenses, datasets, models or analyses")


# 8 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["analyze", "tsne", "--run", "a-0123456789ab"],
    ["preview", "badnet", "--attack-run", "a-0123456789ab"],
])
def test_a_picture_out_of_another_suffix_is_refused_before_any_work(tmp_path, command):
    out = tmp_path / "x.jpg"
    assert_one_line_error(bdb(*command, "--out", str(out), "--runs", str(tmp_path)),
                   "--out must end in .png (bdb writes PNG images only), got x.jpg")
    assert not out.exists()


# 9 -----------------------------------------------------------------------------------------
def test_install_prints_one_line_per_outcome(tmp_path):
    bad = bdb("install", "nothing-like-it", "--kind", "attack", "--no-index", "--find-links", str(tmp_path))
    assert_one_line_error(bad, "pip could not install bdb-attack-nothing-like-it: No matching distribution found",
                   "BDB_DEBUG=1")
    assert not bad.stdout
    loud = bdb("install", "nothing-like-it", "--kind", "attack", "--no-index", "--find-links", str(tmp_path),
               env={"BDB_DEBUG": "1"})
    assert loud.exit_code == 2 and "running:" in loud.stderr and "Looking in links" in loud.stderr
    ok = bdb("install", "badnet", "--kind", "attack", "--no-index", "--find-links", str(tmp_path))
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.strip() == "already installed: bdb-attack-badnet 0.1.0; 'bdb list attacks' shows it"
    assert not ok.stderr.strip()


# 10 ----------------------------------------------------------------------------------------
def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_ray_address_without_a_cluster_fails_in_seconds(tmp_path):
    from bdcore.errors import BdbError
    from bdcore.bench.executor import check_ray_address

    port = _closed_port()
    with pytest.raises(BdbError, match=rf"no Ray cluster answers at 127.0.0.1:{port} \(.*\); start one with "
                                       r"'ray start --head' or leave out --address"):
        check_ray_address(f"127.0.0.1:{port}")
    with pytest.raises(BdbError, match="no Ray cluster answers"):
        check_ray_address(f"ray://127.0.0.1:{port}")
    with socket.socket() as listening:  # something answers: no error
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_ray_address(f"127.0.0.1:{listening.getsockname()[1]}")
    check_ray_address("auto")  # left to Ray

    pytest.importorskip("ray")
    grid = _grid(tmp_path, 'attacks = ["badnet"]\ndatasets = ["digits"]\n')
    t0 = time.monotonic()
    res = bdb("bench", grid, "--executor", "ray", "--address", f"127.0.0.1:{port}", "--runs", str(tmp_path))
    assert_one_line_error(res, f"no Ray cluster answers at 127.0.0.1:{port}", "leave out --address")
    assert time.monotonic() - t0 < 30


# 11 ----------------------------------------------------------------------------------------
def test_help_and_info_show_user_facing_types(monkeypatch):
    assert cli.type_label("int | None") == "integer or none"
    assert cli.type_label("list[int] | None") == "list of integers or none"
    assert cli.type_label("constant|cosine") == "constant|cosine"
    assert cli.default_label(None) == "none"

    monkeypatch.setattr(cli.out, "width", 200)  # the one console every command prints to
    helptext = bdb("attack", "--help").stdout
    assert "--set <key=value>" in helptext and "--epochs <integer>" in helptext and "--lr <number>" in helptext
    assert "list[str]" not in helptext and "<str>" not in helptext and "<int>" not in helptext

    info = bdb("info", "abl")
    assert info.exit_code == 0, info.stderr
    assert "int | None" not in info.stdout and "integer or none" in info.stdout
    row = next(line for line in info.stdout.splitlines() if re.match(r"\W+lr\s", line))
    assert [c.strip() for c in row.split("│")[1:4]] == ["lr", "number or none", "none"], row


def test_attack_kinds_and_defense_stages_are_explained(monkeypatch):
    monkeypatch.setattr(cli.out, "width", 200)  # the one console every command prints to
    listing = bdb("list", "attacks").stdout
    assert "DP = data poisoning" in listing and "TC = training-controlled" in listing
    assert "post = repairs the trained model" in bdb("list", "defenses").stdout
    assert "kind TC: training-controlled" in bdb("info", "wanet").stdout
    assert "stage in: trains its own model on the poisoned set" in bdb("info", "abl").stdout


def test_a_tuned_preset_off_its_miniature_says_so_once(capsys):
    # rnp's quick threshold was picked by the ASR of its mnist5k test victim: elsewhere it is unvalidated
    from bdcore.bench.harness import warn_tuned
    from bdcore.testing import spec_of

    spec = spec_of("defense", "rnp")
    warn_tuned(spec, "quick", "mnist5k", "small-cnn")
    warn_tuned(spec, "reference", "cifar10", "preact-resnet18")
    assert capsys.readouterr().err == ""
    warn_tuned(spec, "quick", "cifar10", "preact-resnet18")
    warn_tuned(spec, "quick", "cifar10", "preact-resnet18")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: rnp's quick preset was tuned in miniature")
    assert "--preset reference" in err[0]
