"""Run commands: attack, defend, preview, bench, demo, download (torch is imported when one runs)."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Optional

import typer

from bdcore.errors import BdbError
from bdcore_cli.app import out, err, RunsOpt, app, cli_errors, _registry, _store
from bdcore_cli.render import _print_json, _progress, _metrics_table, _defense_lines, BROKEN_WARNING, _leaderboard_table, _GridView


def _run_attack_cfg(resolved, store, force: bool, device: str, data_root: Optional[str]):
    """Run (or reuse) one resolved attack config; warns in one line if training diverged."""
    from bdcore.bench.harness import run_attack

    reused = not force and store.is_complete(resolved.run_id())
    label = f"attack {resolved.attack}"
    prog, update = _progress(label)
    task = prog.task_ids[0]

    def prepare(what: str, done: int, total: int) -> None:  # the attack's prepare step, then the training
        prog.update(task, description=f"{label}: {what}", completed=done, total=total)

    def training(done: int, total: int, loss: float) -> None:
        prog.update(task, description=label)
        update(done, total, loss)

    with prog:
        run = run_attack(resolved, store=store, force=force, device=device, data_root=data_root, progress=training,
                         prepare_progress=prepare)
    if run.diverged:
        err.print(f"warning: run {run.run_id} diverged (non-finite loss or weights); stored marked "
                  "\"diverged\": true with null C-ACC/ASR/RA; try a lower --lr", markup=False)
    return run, reused


@app.command("attack")
@cli_errors
def attack_cmd(
    name: str = typer.Argument(..., help="attack id (see 'bdb list attacks')"),
    dataset: str = typer.Option("mnist5k", help="dataset name"),
    model: str = typer.Option("small-cnn", help="model name (also timm:<name>, torchvision:<name>)"),
    pratio: float = typer.Option(0.1, help="poisoning ratio of the whole training set, in (0, 1]"),
    target: int = typer.Option(0, help="target class"),
    all_to_all: bool = typer.Option(False, "--all-to-all", help="label mapping y -> (y+1) mod C"),
    preset: str = typer.Option("reference", help="recipe preset: reference (the reference benchmark's) or quick"),
    epochs: Optional[int] = typer.Option(None, help="training epochs [default: the preset's]"),
    lr: Optional[float] = typer.Option(None, help="peak learning rate [default: the preset's]"),
    batch_size: Optional[int] = typer.Option(None, help="mini-batch size [default: the preset's]"),
    quantize: str = typer.Option("truncate", help="poisoned images to uint8 levels: truncate (reference), round, none"),
    poison_pool: str = typer.Option("all", help="dirty-label poison from all samples (reference) or non-target"),
    seed: int = typer.Option(0, help="seed of everything random in the run"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="attack setting key=value (repeatable)"),
    train_set: Optional[list[str]] = typer.Option(None, "--train-set", help="training recipe key=value "
                                                  "(repeatable)"),
    force: bool = typer.Option(False, "--force", help="retrain even if this exact run is stored"),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]"),
    data_root: Optional[str] = typer.Option(None, help="directory of dataset files (for datasets that need them)"),
    runs: Optional[str] = RunsOpt,
    as_json: bool = typer.Option(False, "--json", help="print the run's metrics as JSON"),
) -> None:
    """Train a backdoored model and print C-ACC, ASR, RA and the run id."""
    from pydantic import ValidationError

    from bdcore.config import AttackRunConfig, TrainRecipe, format_validation_error, parse_set
    from bdcore.bench.presets import victim_recipe

    given = {k: v for k, v in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size)) if v is not None}
    recipe = {**victim_recipe(preset, dataset), **given, **parse_set(train_set)}
    try:
        cfg = AttackRunConfig(attack=name, attack_config=parse_set(set_), dataset=dataset, model=model,
                              pratio=pratio, target=target, all_to_all=all_to_all, seed=seed, preset=preset,
                              quantize=quantize, poison_pool=poison_pool, train=TrainRecipe.model_validate(recipe))
    except ValidationError as exc:
        raise BdbError(format_validation_error(exc, "run settings")) from None
    from bdcore.bench.preflight import check_run_plan

    store = _store(runs)
    [resolved] = check_run_plan(store, device, [cfg], data_root=data_root)
    run, reused = _run_attack_cfg(resolved, store, force, device, data_root)
    if as_json:
        _print_json({"run_id": run.run_id, "reused": reused, **run.metrics})
        return
    out.print(_metrics_table(f"{name} on {dataset}/{model}, pratio {pratio}", [("backdoored", run.metrics)]))
    if run.metrics.get("victim_broken"):
        out.print(BROKEN_WARNING, markup=False, highlight=False, style="yellow")
    out.print(f"run {run.run_id}{' (reused; --force retrains)' if reused else ''}  {run.path}", markup=False,
              soft_wrap=True)


@app.command("defend")
@cli_errors
def defend_cmd(
    name: str = typer.Argument(..., help="defense id (see 'bdb list defenses')"),
    attack_run: str = typer.Option(..., "--attack-run", help="id (or unique prefix) of a finished attack run"),
    seed: int = typer.Option(0, help="seed of the reserve split and the defense"),
    preset: str = typer.Option("reference", help="settings preset: reference (the method's paper defaults) or quick"),
    reserve_ratio: float = typer.Option(0.05, help="clean reserve share of the training set"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="defense setting key=value (repeatable)"),
    force: bool = typer.Option(False, "--force", help="rerun even if this exact run is stored"),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]"),
    data_root: Optional[str] = typer.Option(None, help="directory of dataset files"),
    runs: Optional[str] = RunsOpt,
    as_json: bool = typer.Option(False, "--json", help="print the run's metrics as JSON"),
) -> None:
    """Apply a defense to an attack run; print C-ACC, ASR, RA before/after and DER."""
    from pydantic import ValidationError

    from bdcore.config import DefenseRunConfig, format_validation_error, parse_set
    from bdcore.bench.harness import run_defense
    from bdcore.bench.preflight import check_run_plan

    try:
        cfg = DefenseRunConfig(defense=name, defense_config=parse_set(set_), attack_run=attack_run,
                               reserve_ratio=reserve_ratio, seed=seed, preset=preset)
    except ValidationError as exc:
        raise BdbError(format_validation_error(exc, "defense settings")) from None
    store = _store(runs)
    _registry().get("defense", name)
    check_run_plan(store, device, defenses=[(name, cfg.defense_config)], attack_run=attack_run)
    label = f"defense {name}"
    prog, update = _progress(label)
    task = prog.task_ids[0]

    def phase(what: str, done: int, total: int) -> None:  # the defense's own phases (e.g. NC: reversing, unlearning)
        prog.update(task, description=f"{label}: {what}", completed=done, total=total, loss="")

    def retraining(done: int, total: int, loss: float) -> None:
        prog.update(task, description=f"{label}: retraining on the kept samples")
        update(done, total, loss)

    with prog:
        run = run_defense(cfg, store=store, force=force, device=device, data_root=data_root, progress=retraining,
                          phase_progress=phase)
    m = run.metrics
    if as_json:
        _print_json({"run_id": run.run_id, **m})
        return
    out.print(_metrics_table(f"{name} on {run.config['attack_run']}", [("before", m["before"]), ("after", m["after"])]))
    for line in _defense_lines(m):
        out.print(line, markup=False, highlight=False)
    out.print(f"run {run.run_id}  {run.path}", markup=False, soft_wrap=True)


@app.command("preview")
@cli_errors
def preview_cmd(
    name: str = typer.Argument(..., help="attack id"),
    out_path: Path = typer.Option(..., "--out", help="PNG file to write"),
    dataset: str = typer.Option("mnist5k", help="dataset name"),
    n: int = typer.Option(8, "--n", min=1, max=64, help="number of images"),
    train: bool = typer.Option(False, "--train", help="show the training-time poison instead of the test trigger"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="attack setting key=value (repeatable)"),
    attack_run: Optional[str] = typer.Option(None, "--attack-run", help="take the attack (and its trained state) from a run"),
    target: int = typer.Option(0, help="target class"),
    seed: int = typer.Option(0, help="seed"),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]"),
    runs: Optional[str] = RunsOpt,
) -> None:
    """Save a grid of clean images, poisoned images and the amplified difference."""
    from bdcore.config import AttackRunConfig, parse_set
    from bdcore.bench.harness import load_attack_run, make_attack, resolve_attack_config
    from bdcore.api.resolve import load_dataset
    from bdcore.nn.runtime import pick_device
    from bdcore.reporting.preview import check_png_path, preview_grid, save_png
    from bdcore.lib.stealth import stealth

    check_png_path(out_path)  # before any work
    store = _store(runs)
    dev = pick_device(device)
    if attack_run:
        _, cfg, data, attack, _, _ = load_attack_run(attack_run, store, dev)
    else:
        cfg = resolve_attack_config(AttackRunConfig(attack=name, attack_config=parse_set(set_), dataset=dataset,
                                                    target=target, seed=seed))
        data = load_dataset(dataset)
        attack = make_attack(cfg, data, store, dev)
        attack.prepare(data)
    img = preview_grid(attack, data, n=n, train=train)
    save_png(img, out_path)
    import torch

    y = data.y_test
    idx = torch.nonzero(attack.target_label(y) != y).flatten()[:256]
    from bdcore.data.images import quantize

    x = data.x_test[idx].float().div(255).to(dev)
    s = stealth(x, quantize(attack.test_trigger(x.clone(), idx.to(dev)), attack.ctx.quantize))
    psnr = "n/a" if s["psnr"] is None else f"{s['psnr']:.2f} dB"
    out.print(f"wrote {out_path}  ({cfg.attack} on {cfg.dataset}; test trigger PSNR {psnr}, SSIM {s['ssim']:.4f})",
              markup=False, soft_wrap=True)


def _bench(grid_path: Path, runs: Optional[str], force: bool, device: str, data_root: Optional[str],
           as_json: bool, workers: int = 1, executor: str = "local", address: Optional[str] = None,
           threads: Optional[int] = None, overrides: Optional[dict] = None) -> None:
    from bdcore.bench.benchmark import run_benchmark
    from bdcore.reporting.leaderboard import leaderboard

    view = _GridView(serial=workers == 1 and executor == "local")
    store = _store(runs)
    result = run_benchmark(grid_path, store, device=device, data_root=data_root, force=force, workers=workers,
                           executor=executor, address=address, threads=threads, reporter=view, overrides=overrides,
                           reg=_registry())
    rows = leaderboard(store, result.run_ids)
    if as_json:
        _print_json(rows)
    else:
        from bdcore.reporting.report import known_limits

        limits = known_limits({r["attack"] for r in rows} | {r["defense"] for r in rows})
        out.print(_leaderboard_table(rows, f"leaderboard: {result.grid.name}", limits))
        for method, caveat in sorted(limits.items()):
            out.print(f"* {method}: {caveat}", markup=False, highlight=False)
    if result.failures:
        err.print(f"{len(result.failures)} run(s) failed or were skipped; rerun the same command to retry them "
                  "(finished runs are reused)", markup=False)
        raise typer.Exit(1)


@app.command("bench")
@cli_errors
def bench_cmd(
    grid: Path = typer.Argument(..., help="grid file (TOML)"),
    force: bool = typer.Option(False, "--force", help="rerun runs that are already stored"),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]"),
    data_root: Optional[str] = typer.Option(None, help="directory of dataset files"),
    runs: Optional[str] = RunsOpt,
    as_json: bool = typer.Option(False, "--json", help="print the leaderboard as JSON"),
    workers: int = typer.Option(1, "--workers", min=1, help="runs at once: worker processes (local) or concurrent "
                                "Ray tasks; each gets its share of the CPU threads or one GPU"),
    executor: str = typer.Option("local", "--executor", help="local (this machine) or ray (pip install 'bdcore[ray]')"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join (e.g. ray://head:10001 or "
                                          "auto); none starts a local Ray instance"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads per run [default: cores / "
                                          "workers locally, 1 per Ray task on a cluster]"),
) -> None:
    """Run every attack of a grid once and every defense on each attack run; print the leaderboard.

    The grid is a DAG: each attack run is trained once, then its defenses run. Finished runs are
    reused, so rerunning the same command after a crash or kill finishes only what is missing.
    """
    _bench(grid, runs, force, device, data_root, as_json, workers, executor, address, threads)


@app.command("demo")
@cli_errors
def demo_cmd(
    force: bool = typer.Option(False, "--force", help="rerun runs that are already stored"),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]"),
    runs: Optional[str] = RunsOpt,
    show_grid: bool = typer.Option(False, "--show-grid", help="print the demo grid file and exit"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="train on this dataset instead of mnist5k "
                                          "(e.g. digits: the whole demo in seconds, for a smoke test)"),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="victim training epochs instead of the "
                                         "quick preset's 15 (the defenses keep their settings)"),
) -> None:
    """The demo benchmark: BadNets and Blended at 10% vs no defense, FT and SFT, on mnist5k with small-cnn;
    also writes its HTML report (demo-report.html in the run store). --dataset and --epochs shrink it
    (the grid keeps its name, demo); the leaderboard's verdicts hold only for the default."""
    path = resources.files("bdcore") / "demo" / "demo.toml"
    if show_grid:
        sys.stdout.write(path.read_text())
        return
    overrides: dict = {}
    if dataset is not None:
        overrides["datasets"] = [dataset]
    if epochs is not None:
        overrides["train"] = {"epochs": epochs}
    with resources.as_file(path) as p:
        _bench(Path(p), runs, force, device, None, False, overrides=overrides)
    from bdcore.reporting.report import write_report
    from bdcore.reporting.results import Filters

    store = _store(runs)
    report = write_report(store, store.root / "demo-report.html", Filters(grid="demo"), title="bdb demo")
    out.print(f"report: {report}", markup=False, soft_wrap=True)


@app.command("download")
@cli_errors
def download_cmd(
    dataset: str = typer.Argument(..., help="cifar10, cifar100, mnist, gtsrb or tiny-imagenet"),
    data_root: Optional[str] = typer.Option(None, help="directory of dataset files [default: $BDB_DATA or ./data]"),
) -> None:
    """Fetch a dataset's official archives, check their MD5, unpack them under the data root.

    Offline, put the archive it names in the data root by hand and run the command again: it
    checks and unpacks it the same way.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from bdcore.data.datasets.download import download

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=err, transient=True) as prog:
        def bar(name: str):
            task = prog.add_task(name, total=None)
            return lambda done, total: prog.update(task, completed=done, total=total)

        lines = download(dataset, data_root, progress=bar)
    for line in lines:
        out.print(line, markup=False, highlight=False)
