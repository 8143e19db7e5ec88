"""Result commands: results, report, analyze."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from bdcore.errors import BdbError
from bdcore_cli.app import out, err, RunsOpt, app, cli_errors, _store
from bdcore_cli.render import _print_json, _results_table


def _filters(grid: Optional[str], attack: Optional[list[str]], defense: Optional[list[str]],
             dataset: Optional[list[str]], model: Optional[list[str]], seed: Optional[list[int]],
             pratio: Optional[list[float]] = None):
    from bdcore.reporting.results import Filters

    return Filters(attack=attack or [], defense=defense or [], dataset=dataset or [], model=model or [],
                   seed=seed or [], grid=grid, pratio=pratio or [])


GridOpt = typer.Option(None, "--grid", help="only the runs of this grid (as recorded by 'bdb bench' / 'bdb demo')")


AttackOpt = typer.Option(None, "--attack", help="only runs of this attack (repeatable)")


DefenseOpt = typer.Option(None, "--defense", help="only runs of this defense; 'none' for attack runs (repeatable)")


DatasetOpt = typer.Option(None, "--dataset", help="only runs on this dataset (repeatable)")


ModelOpt = typer.Option(None, "--model", help="only runs of this model (repeatable)")


SeedOpt = typer.Option(None, "--seed", help="only runs of this seed (repeatable)")


PratioOpt = typer.Option(None, "--pratio", help="only runs at this poisoning ratio (repeatable)")


GroupOpt = typer.Option(None, "--group/--no-group", help="one row per group of runs that differ only in their seeds, "
                        "with mean and sd [default: group when some runs differ only in their seeds]")


@app.command("results")
@cli_errors
def results_cmd(
    runs: Optional[str] = RunsOpt,
    grid: Optional[str] = GridOpt,
    attack: Optional[list[str]] = AttackOpt,
    defense: Optional[list[str]] = DefenseOpt,
    dataset: Optional[list[str]] = DatasetOpt,
    model: Optional[list[str]] = ModelOpt,
    seed: Optional[list[int]] = SeedOpt,
    pratio: Optional[list[float]] = PratioOpt,
    group: Optional[bool] = GroupOpt,
    sort: Optional[str] = typer.Option(None, "--sort", help="order rows by a metric (cacc, asr, ra, der, auroc, ...), "
                                       "'-' first for descending: --sort=-der [default: by settings]"),
    ci: bool = typer.Option(False, "--ci", help="grouped cells add the 95% CI (n >= 3) or the range (n = 2) to "
                            "mean ±sd"),
    fmt: Optional[str] = typer.Option(None, "--format", help="md, csv, json or parquet [default: a table; with "
                                      "--out: from the file's suffix]"),
    out_path: Optional[Path] = typer.Option(None, "--out", help="write to this file instead of stdout"),
    as_json: bool = typer.Option(False, "--json", help="print JSON (as --format json)"),
    reindex: bool = typer.Option(False, "--reindex", help="rebuild the index from the run directories first"),
) -> None:
    """Stored runs with their metrics: filter, group over seeds, export."""
    from bdcore.reporting.results import build_table, check_format, check_out_path, export, format_for, select

    fmt = format_for(fmt, out_path, as_json)
    if fmt is not None:
        check_format(fmt, out_path)
    if out_path is not None:
        check_out_path(out_path)
    store = _store(runs)
    if reindex:
        n = store.reindex()
        err.print(f"indexed {n} runs", markup=False)
    filters = _filters(grid, attack, defense, dataset, model, seed, pratio)
    table = build_table(select(store, filters), group, sort=sort, intervals=ci)
    what = f"{table.runs} runs" + (f" in {len(table.records)} groups" if table.grouped else "")
    title = f"{what} in {store.root}" + (f" ({filters.describe()})" if filters.describe() else "")
    if fmt is None:
        out.print(_results_table(table, title, bool(filters.describe())))
        return
    text = export(table, fmt, out_path, title)
    if text is not None:
        sys.stdout.write(text)
    else:
        err.print(f"wrote {out_path} ({len(table.records)} rows)", markup=False)


@app.command("report")
@cli_errors
def report_cmd(
    out_path: Path = typer.Option(..., "--out", help="HTML file to write"),
    runs: Optional[str] = RunsOpt,
    grid: Optional[str] = GridOpt,
    attack: Optional[list[str]] = AttackOpt,
    defense: Optional[list[str]] = DefenseOpt,
    dataset: Optional[list[str]] = DatasetOpt,
    model: Optional[list[str]] = ModelOpt,
    seed: Optional[list[int]] = SeedOpt,
    pratio: Optional[list[float]] = PratioOpt,
    group: Optional[bool] = GroupOpt,
    title: Optional[str] = typer.Option(None, "--title", help="the report's title"),
    device: str = typer.Option("cpu", help="device of the trigger previews: cpu, auto or cuda[:N]"),
) -> None:
    """One self-contained HTML report: DER heat-map, ratio curves, models, detection, triggers, results."""
    from bdcore.reporting.report import write_report
    from bdcore.reporting.results import check_out_path

    if out_path.suffix.lower() not in (".html", ".htm"):
        raise BdbError(f"--out must end in .html, got {out_path.name}")
    check_out_path(out_path)
    path = write_report(_store(runs), out_path, _filters(grid, attack, defense, dataset, model, seed, pratio), title,
                        device, group)
    out.print(f"wrote {path}", markup=False, soft_wrap=True)


@app.command("analyze")
@cli_errors
def analyze_cmd(
    tool: str = typer.Argument(..., help="analysis id (see 'bdb list analyses')"),
    run: str = typer.Option(..., "--run", help="id (or unique prefix) of a finished attack or defense run"),
    out_path: Path = typer.Option(..., "--out", help="PNG file to write"),
    split: Optional[str] = typer.Option(None, "--split", help="clean-test, bd-test, clean-train, bd-train or mixed "
                                        "[default: the tool's]"),
    layer: Optional[str] = typer.Option(None, "--layer", help="layer name, or 'penultimate' [default: the tool's]"),
    cls: Optional[int] = typer.Option(None, "--class", help="only samples of this true class"),
    n: Optional[int] = typer.Option(None, "--n", min=1, help="number of samples [default: the tool's]"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="tool setting key=value (repeatable)"),
    seed: int = typer.Option(0, help="seed of the sample drawn and of any randomness in the tool"),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]"),
    runs: Optional[str] = RunsOpt,
    as_json: bool = typer.Option(False, "--json", help="print the numbers as JSON"),
) -> None:
    """Explain a run with an analysis tool: write a PNG and print its numbers."""
    from bdcore.reporting.analysis import run_analysis
    from bdcore.config import parse_set

    result = run_analysis(tool, run, store=_store(runs), out=out_path, split=split, layer=layer, cls=cls, n=n,
                          settings=parse_set(set_), seed=seed, device=device)
    if as_json:
        _print_json({"out": str(out_path), **result.numbers})
        return
    t = Table(title=f"{tool} on {result.numbers['run_id']}")
    t.add_column("number")
    t.add_column("value", justify="right", overflow="fold")
    for k, v in result.numbers.items():
        if k in ("tool", "run_id"):
            continue
        t.add_row(k, f"{v:.4g}" if isinstance(v, float) else "-" if v is None else json.dumps(v, default=str)[:200])
    out.print(t)
    out.print(f"wrote {out_path}", markup=False, soft_wrap=True)
