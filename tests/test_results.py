"""Results: filters, the settings that vary, seed aggregation (pinned by hand), exports, the HTML report."""

import csv
import io
import json
import math
import sys
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from bdcore.config import AttackRunConfig, DefenseRunConfig
from bdcore.errors import BdbError
from bdcore.runs.grid_membership import grid_run_ids, record_grid, recorded_grids
from bdcore.reporting.results import Filters, aggregate, build_table, export, select, varying_settings
from bdcore.runs.store import RunStore
from bdcore_cli.main import app
from bdcore.testing import assert_one_line_error

runner = CliRunner()

# attack -> (seed -> (cacc, asr)) at pratio 0.1 on small-cnn; hand-picked so the statistics are exact
KNOWN = {"badnet": {0: (0.9, 0.99), 1: (0.8, 0.97), 2: (0.7, 0.95)}}
T_975_2 = 4.302652729911275  # Student t, 97.5% quantile, 2 degrees of freedom


def _attack(store, attack, seed, cacc, asr, pratio=0.1, model="small-cnn", settings=None):
    cfg = AttackRunConfig(attack=attack, attack_config=settings or {}, pratio=pratio, seed=seed, model=model,
                          preset="quick")
    rid = cfg.run_id()
    with store.write(rid) as w:
        w.json("config.json", cfg.model_dump(mode="json"))
        w.json("meta.json", {"finished": f"2026-01-01T00:00:{len(store.complete_ids()):02d}"})
        w.json("metrics.json", {"cacc": cacc, "asr": asr, "ra": 1 - asr, "psnr": 25.0, "ssim": 0.9})
    return rid, cfg


def _defense(store, defense, attack_rid, acfg, seed, cacc, asr, der, detection=None):
    cfg = DefenseRunConfig(defense=defense, defense_config={"epochs": 2}, attack_run=attack_rid, seed=seed,
                           preset="quick")
    rid = cfg.run_id()
    metrics = {"cacc": cacc, "asr": asr, "ra": 1 - asr, "der": der, "rir": der}
    if detection:
        metrics["detection"] = detection
    with store.write(rid) as w:
        w.json("config.json", cfg.model_dump(mode="json"))
        w.json("meta.json", {"finished": "2026-01-02T00:00:00", "attack_config": acfg.model_dump(mode="json")})
        w.json("metrics.json", metrics)
    return rid


@pytest.fixture(scope="module")
def known_store(tmp_path_factory):
    """Runs with known numbers (no training): badnet x 3 seeds (+ ft on each), blended at two
    alphas and two ratios, one run on a second model, one detection defense."""
    store = RunStore(tmp_path_factory.mktemp("known-runs"))
    ids = {}
    for seed, (cacc, asr) in KNOWN["badnet"].items():
        rid, cfg = _attack(store, "badnet", seed, cacc, asr)
        ids[("badnet", seed)] = rid
        ids[("ft", seed)] = _defense(store, "ft", rid, cfg, seed, cacc - 0.05, asr / 10, 0.9 + seed / 100)
    for alpha, pratio, asr in ((0.1, 0.1, 0.6), (0.2, 0.1, 0.8), (0.2, 0.2, 0.9)):
        rid, cfg = _attack(store, "blended", 0, 0.85, asr, pratio=pratio, settings={"alpha_train": alpha})
        ids[("blended", alpha, pratio)] = rid
    rid, cfg = _attack(store, "badnet", 0, 0.6, 0.5, model="preact-resnet18")
    ids[("badnet-preact",)] = rid
    ids[("ac",)] = _defense(store, "ac", ids[("blended", 0.2, 0.1)], AttackRunConfig.model_validate(
        store.load(ids[("blended", 0.2, 0.1)]).config), 0, 0.84, 0.3, 0.75,
        detection={"tpr": 0.8, "fpr": 0.1, "auroc": 0.875, "f1": 0.5})
    record_grid(store, "seeds", [ids[("badnet", s)] for s in range(3)] + [ids[("ft", s)] for s in range(3)])
    return store, ids


def bdb(store, *args):
    return runner.invoke(app, [*args, "--runs", str(store.root)])


# aggregation ----------------------------------------------------------------------------------
def test_aggregate_matches_the_hand_computed_interval():
    st = aggregate([0.9, 0.8, 0.7])
    assert st.n == 3 and st.mean == pytest.approx(0.8) and st.sd == pytest.approx(0.1)
    half = T_975_2 * 0.1 / math.sqrt(3)  # 4.303 * 0.0577 = 0.2484
    assert half == pytest.approx(0.2484, abs=1e-4)
    assert st.half_width == pytest.approx(half) and st.ci_low == pytest.approx(0.8 - half)
    assert st.ci_high == pytest.approx(0.8 + half)
    one = aggregate([0.5, None])
    assert one.n == 1 and one.mean == 0.5 and one.sd is None and one.ci_low is None
    assert aggregate([None]) is None


def test_groups_over_seeds_with_exact_statistics(known_store):
    store, ids = known_store
    table = build_table(select(store, Filters(attack=["badnet"], model=["small-cnn"])))
    assert table.grouped and table.runs == 6
    rows = {r["defense"]: r for r in table.records}
    assert set(rows) == {"none", "ft"} and rows["none"]["n"] == 3
    none = rows["none"]
    assert none["cacc_mean"] == pytest.approx(0.8) and none["cacc_sd"] == pytest.approx(0.1)
    # 0.8 +- t(0.975, 2) x 0.1 / sqrt 3 = [0.552, 1.048]: a rate's interval is clipped to [0, 1]
    assert none["cacc_mean"] - none["cacc_ci_low"] == pytest.approx(T_975_2 * 0.1 / math.sqrt(3))
    assert none["cacc_ci_high"] == 1.0
    assert (none["cacc_min"], none["cacc_max"]) == (pytest.approx(0.7), pytest.approx(0.9))
    assert none["asr_mean"] == pytest.approx(0.97) and none["asr_sd"] == pytest.approx(0.02)
    assert rows["ft"]["der_mean"] == pytest.approx(0.91)
    assert set(none["run_ids"].split()) == {ids[("badnet", s)] for s in range(3)}
    single = build_table(select(store, Filters(attack=["badnet"], model=["small-cnn"])), group=False)
    assert not single.grouped and len(single.records) == 6 and {r["seed"] for r in single.records} == {0, 1, 2}


def test_no_grouping_when_no_two_runs_differ_only_in_seed(known_store):
    store, _ = known_store
    table = build_table(select(store, Filters(attack=["blended"], defense=["none"])))
    assert not table.grouped and len(table.records) == 3


# filters and settings -------------------------------------------------------------------------
def test_filters_and_grid_membership(known_store):
    store, ids = known_store
    assert {r.run_id for r in select(store, Filters(defense=["ft"]))} == {ids[("ft", s)] for s in range(3)}
    assert {r.run_id for r in select(store, Filters(seed=[2]))} == {ids[("badnet", 2)], ids[("ft", 2)]}
    assert len(select(store, Filters(model=["preact-resnet18"]))) == 1
    assert len(select(store, Filters(attack=["badnet", "blended"], defense=["none"]))) == 7
    grid = select(store, Filters(grid="seeds"))
    assert {r.run_id for r in grid} == set(grid_run_ids(store, "seeds")) and len(grid) == 6
    with pytest.raises(BdbError, match=r"no run in grid 'seeds' has attack 'blended' \(there: badnet\)"):
        select(store, Filters(grid="seeds", attack=["blended"]))
    with pytest.raises(BdbError, match="no grid 'nope'.*recorded grids: seeds"):
        select(store, Filters(grid="nope"))
    # a rerun replaces the list; a run shared by two grids belongs to both
    record_grid(store, "other grid/x", [ids[("badnet", 0)]])
    assert grid_run_ids(store, "other grid/x") == [ids[("badnet", 0)]] and ids[("badnet", 0)] in grid_run_ids(store, "seeds")
    assert set(recorded_grids(store)) == {"seeds", "other grid/x"}


def test_varying_settings_are_columns_and_constant_ones_the_caption(known_store):
    store, _ = known_store
    recs = select(store, Filters(attack=["blended"], defense=["none"]))
    varying, constant = varying_settings(recs)
    assert varying == ["pratio", "blended.alpha_train"]
    assert constant["train.epochs"] == 100 and constant["preset"] == "quick" and "seed" not in constant
    table = build_table(recs)
    assert "blended.alpha_train" in table.columns and "train.epochs" not in table.columns
    md = export(table, "md")
    header = md.splitlines()[0]
    assert header.startswith("| attack | ratio | defense | blended.alpha_train |") and "train.epochs" not in header
    assert "train.epochs=100" in md and "dataset=mnist5k" in md and "model=small-cnn" in md


# exports --------------------------------------------------------------------------------------
def test_exports_round_trip(known_store, tmp_path):
    store, ids = known_store
    args = ("results", "--attack", "badnet", "--model", "small-cnn")
    as_json = json.loads(bdb(store, *args, "--format", "json").stdout)
    assert len(as_json) == 2 and {r["n"] for r in as_json} == {3}
    assert json.loads(bdb(store, *args, "--json").stdout) == as_json

    res = bdb(store, *args, "--format", "csv")
    back = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["defense"] for r in back] == [r["defense"] for r in as_json]
    assert float(back[0]["cacc_mean"]) == pytest.approx(as_json[0]["cacc_mean"])
    assert float(back[0]["cacc_ci_low"]) == pytest.approx(0.8 - T_975_2 * 0.1 / math.sqrt(3))

    out = tmp_path / "r.parquet"
    res = bdb(store, *args, "--out", str(out))
    assert res.exit_code == 0, res.stderr
    import pyarrow.parquet as pq

    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 2 and rows[0]["cacc_mean"] == pytest.approx(as_json[0]["cacc_mean"])
    assert rows[0]["run_ids"] == as_json[0]["run_ids"]

    md = tmp_path / "r.md"
    assert bdb(store, *args, "--out", str(md)).exit_code == 0
    text = md.read_text()
    assert "80.00 ±10.00 [55.16, 100.00]" in text and "| n |" in text  # the CI, clipped to 100%

    single = json.loads(bdb(store, "results", "--no-group", "--seed", "1", "--json").stdout)
    assert [r["run_id"] for r in single] == [ids[("badnet", 1)], ids[("ft", 1)]]
    assert single[0]["asr"] == 0.97

    table = bdb(store, "results", "--grid", "seeds")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()  # 80 columns: no borders, one line a row, cells 'mean±sd'
    header = next(ln.split() for ln in lines if ln.split()[:2] == ["attack", "defense"])
    rows = [ln.split() for ln in lines if ln.startswith("badnet")]
    n, cacc = header.index("n"), header.index("C-ACC")
    assert [(r[1], r[n], r[cacc]) for r in rows] == [("none", "3", "80.00±10.00"), ("ft", "3", "75.00±10.00")]
    assert max(len(ln) for ln in lines) <= 80


@pytest.mark.parametrize("args,fragments", [
    (["--format", "xml"], ["unknown format 'xml'", "md, csv, json, parquet"]),
    (["--format", "parquet"], ["pass --out FILE.parquet"]),
    (["--out", "/nonexistent-dir/r.csv"], ["directory /nonexistent-dir does not exist"]),
    (["--out", "r.txt"], ["cannot tell the format of r.txt"]),
    (["--attack", "wanet"], ["has attack 'wanet'", "there: badnet, blended"]),
    (["--dataset", "cifar10"], ["has dataset 'cifar10'"]),
    (["--grid", "nope"], ["no grid 'nope'"]),
    (["--json", "--format", "csv"], ["disagree"]),
])
def test_bad_results_input_is_one_line(known_store, args, fragments):
    store, _ = known_store
    assert_one_line_error(bdb(store, "results", *args), *fragments)


def test_missing_pyarrow_names_the_extra_and_writes_nothing(known_store, tmp_path, monkeypatch):
    store, _ = known_store
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert_one_line_error(bdb(store, "results", "--out", str(tmp_path / "r.parquet")), "pip install 'bdcore[parquet]'")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_nothing(known_store, tmp_path, monkeypatch):
    store, _ = known_store
    (tmp_path / "file").write_text("x")
    assert_one_line_error(bdb(store, "results", "--out", str(tmp_path / "file" / "r.csv")), "is not a directory")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("bdcore.reporting.results.os.replace", refuse)
    assert_one_line_error(bdb(store, "results", "--out", str(tmp_path / "r.json")), "cannot write", "Permission denied")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# the report -----------------------------------------------------------------------------------
class _Sections(HTMLParser):
    """Section ids, the text of each section, and the image sources."""

    def __init__(self):
        super().__init__()
        self.text, self.current, self.images, self.triggers = {}, None, [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.current = a["id"]
            self.text[self.current] = ""
        if tag == "img":
            self.images.append((self.current, a["src"]))
        if tag == "figure" and a.get("data-attack"):
            self.triggers.append(a["data-attack"])

    def handle_data(self, data):
        if self.current:
            self.text[self.current] += data


def _parse(html):
    p = _Sections()
    p.feed(html)
    return p


def test_report_of_known_runs_has_every_section_and_degrades(known_store, tmp_path):
    store, ids = known_store
    out = tmp_path / "report.html"
    res = bdb(store, "report", "--out", str(out))
    assert res.exit_code == 0, res.stderr
    html = out.read_text()
    p = _parse(html)
    assert list(p.text) == ["summary", "methods", "der-heatmap", "trade-off", "ratio", "models", "detection", "triggers",
                            "results"]
    # self-contained: no external asset; the one script (sorting the results table) is inline
    assert "http" not in "".join(src for _, src in p.images) and "<link" not in html
    assert html.count("<script") == 1 and "<script src" not in html
    assert "Gu et al., BadNets" in p.text["methods"] and "https://pypi.org/project/bdb-defense-ft/" in html
    assert 'class="results sortable"' in html and ids[("badnet", 0)] in p.text["results"]  # grouped rows name runs
    assert "trade-off" in {s for s, _ in p.images}
    assert all(src.startswith("data:image/png;base64,") for _, src in p.images)
    sections_with_images = {s for s, _ in p.images}
    assert {"der-heatmap", "ratio", "models", "detection"} <= sections_with_images
    assert "0.910" in p.text["der-heatmap"]  # mean DER of ft on badnet: (0.90 + 0.91 + 0.92) / 3
    assert "0.875" in p.text["detection"] and "0.800" in p.text["detection"]
    assert p.triggers == ["badnet", "blended"]  # data-poisoning triggers need no training
    assert "80.00 ±10.00 [55.16, 100.00]" in p.text["results"]

    one = tmp_path / "one.html"
    assert bdb(store, "report", "--grid", "seeds", "--out", str(one)).exit_code == 0
    q = _parse(one.read_text())
    assert "poisoning ratio 0.1" in q.text["ratio"] and "need runs at two ratios" in q.text["ratio"]
    assert "model small-cnn" in q.text["models"] and "No run in this selection has detection" in q.text["detection"]
    assert not any(s in ("ratio", "models", "detection") for s, _ in q.images)


def test_report_names_the_known_limits_of_its_methods(tmp_path):
    store = RunStore(tmp_path / "runs")
    rid, cfg = _attack(store, "badnet", 0, 0.97, 0.99)
    _defense(store, "ft", rid, cfg, 0, 0.95, 0.5, 0.7)
    _defense(store, "dbd", rid, cfg, 0, 0.57, 0.46, 0.56)
    out = tmp_path / "r.html"
    assert bdb(store, "report", "--out", str(out)).exit_code == 0
    summary = " ".join(_parse(out.read_text()).text["summary"].split())
    assert "known limit" in summary and "dbd: fails in the mnist5k miniature" in summary
    assert "ft:" not in summary and "badnet:" not in summary
    only = tmp_path / "b.html"
    assert bdb(store, "report", "--defense", "ft", "--out", str(only)).exit_code == 0
    assert "known limit" not in _parse(only.read_text()).text["summary"]


@pytest.mark.parametrize("args,fragments", [
    (["--out", "r.png"], ["--out must end in .html"]),
    (["--out", "/nonexistent-dir/r.html"], ["does not exist"]),
    (["--out", "r.html", "--attack", "nope"], ["has attack 'nope'"]),
])
def test_bad_report_input_is_one_line(known_store, args, fragments):
    store, _ = known_store
    assert_one_line_error(bdb(store, "report", *args), *fragments)


# what a reader must not be misled by ----------------------------------------------------------
@pytest.fixture(scope="module")
def misleading_store(tmp_path_factory):
    """A working victim over 2 seeds with FT and an input detector (DER 0.5 by construction), and a victim
    that never learned (C-ACC 0.2) with an FT that 'repairs' it by learning the task."""
    store = RunStore(tmp_path_factory.mktemp("misleading"))
    ids = {}
    for seed, cacc in ((0, 0.96), (1, 0.94)):
        rid, cfg = _attack(store, "badnet", seed, cacc, 0.99)
        ids[("badnet", seed)] = rid
        ids[("ft", seed)] = _defense(store, "ft", rid, cfg, seed, cacc - 0.02, 0.1, 0.93)
        det = DefenseRunConfig(defense="strip", attack_run=rid, seed=seed, preset="quick")
        with store.write(det.run_id()) as w:
            w.json("config.json", det.model_dump(mode="json"))
            w.json("meta.json", {"attack_config": cfg.model_dump(mode="json")})
            w.json("metrics.json", {"before": {"cacc": cacc, "asr": 0.99, "ra": 0.01}, "cacc": cacc, "asr": 0.99,
                                    "ra": 0.01, "der": 0.5, "rir": 0.5,
                                    "input_detection": {"auroc": 0.91, "tpr": 0.7, "fpr": 0.05, "f1": 0.8}})
        ids[("strip", seed)] = det.run_id()
    rid, cfg = _attack(store, "blended", 0, 0.2, 0.9, pratio=0.05)
    with store.write(rid) as w:  # as the harness writes it
        w.json("config.json", cfg.model_dump(mode="json"))
        w.json("meta.json", {})
        w.json("metrics.json", {"cacc": 0.2, "asr": 0.9, "ra": 0.05, "victim_broken": True, "num_classes": 10})
    ids[("blended", 0)] = rid
    ids[("ft-on-broken",)] = _defense(store, "ft", rid, cfg, 0, 0.75, 0.1, 0.95)
    return store, ids


def test_broken_victims_and_detectors_are_marked_in_tables(misleading_store):
    store, ids = misleading_store
    table = build_table(select(store), group=True)
    from bdcore.reporting.results import display_columns, display_rows

    cols = display_columns(table)
    cells = {(r["attack"], r["defense"]): dict(zip([k for k, _ in cols], c))
             for r, c in zip(table.records, display_rows(table, cols))}
    assert cells[("blended", "none")]["cacc"].endswith(" !") and cells[("blended", "ft")]["cacc"].endswith(" !")
    assert not cells[("badnet", "ft")]["cacc"].endswith("!")
    assert cells[("badnet", "strip")]["der"] == "-" and cells[("badnet", "ft")]["der"] != "-"
    cap = table.caption(k for k, _ in cols)
    assert "never learned its task" in cap and "a detector" in cap
    # over 2 seeds: mean ±sd, and with intervals the range, never a t interval ([-126%, 277%] in the issue)
    assert cells[("badnet", "none")]["cacc"] == "95.00 ±1.41"
    from dataclasses import replace
    assert display_rows(replace(table, intervals=True), cols)[0][[k for k, _ in cols].index("cacc")] \
        == "95.00 ±1.41 (94.00-96.00)"
    from bdcore.reporting.leaderboard import leaderboard

    rows = leaderboard(store)
    by = {(r["attack"], r["defense"], r["seed"]): r for r in rows}
    assert by[("blended", "ft", 0)]["victim_broken"] and by[("badnet", "strip", 1)]["detector"]
    assert by[("badnet", "strip", 1)]["auroc"] == 0.91 and len(rows) == 8


def test_results_sort_and_ratio_filter(misleading_store):
    store, ids = misleading_store
    rows = json.loads(bdb(store, "results", "--no-group", "--defense", "ft", "--sort=-cacc", "--json").stdout)
    assert [r["cacc"] for r in rows] == sorted((r["cacc"] for r in rows), reverse=True)
    only = json.loads(bdb(store, "results", "--pratio", "0.05", "--json").stdout)
    assert {r["pratio"] for r in only} == {0.05} and len(only) == 2
    assert_one_line_error(bdb(store, "results", "--sort", "speed"), "cannot sort by 'speed'")
    assert_one_line_error(bdb(store, "results", "--pratio", "0.3"), "no run in the run store")


def test_report_heatmap_leaves_out_broken_victims_and_detectors_and_names_what_varies(misleading_store, tmp_path):
    store, ids = misleading_store
    out = tmp_path / "r.html"
    assert bdb(store, "report", "--out", str(out)).exit_code == 0
    p = _parse(out.read_text())
    der = " ".join(p.text["der-heatmap"].split())
    assert "1 run(s) on a victim that never learned its task" in der and "the detectors strip" in der
    assert "0.950" not in der and "0.930 ±0.000 (n=2)" in der  # ft on the broken victim is not in the colours
    summary = " ".join(p.text["summary"].split())
    assert "Settings that vary: attack, pratio, defense" in summary
    assert "attack=badnet" not in summary and "defense=none" not in summary  # they vary: never 'the same'


def test_t_quantile_without_scipy_hand_values():
    # Student t quantiles from the tables (scipy.stats.t.ppf agrees to 1e-10): 0.975 at df 1, 2, 4, 30
    from bdcore.reporting.results import t_cdf, t_quantile

    for df, q in ((1, 12.706204736), (2, 4.302652730), (4, 2.776445105), (30, 2.042272456)):
        assert t_quantile(0.975, df) == pytest.approx(q, abs=1e-8)
    assert t_quantile(0.025, 4) == pytest.approx(-2.776445105, abs=1e-8)
    assert t_cdf(0.0, 3) == 0.5 and t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-12)  # Cauchy: 1/2 + atan(1)/pi
