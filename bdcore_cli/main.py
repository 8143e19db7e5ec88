"""The `bdb` command. Listing, help and info never import torch; running commands do, lazily."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import subprocess
import sys
import traceback
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer import _click  # typer's own copy of click: its usage errors are turned into one 'error:' line
from typer.core import TyperArgument, TyperCommand, TyperGroup

from bdcore.errors import BdbError

out = Console()  # tables fit the terminal (COLUMNS, else 80 for pipes); long cells fold
err = Console(stderr=True, soft_wrap=True)

KINDS = {"attacks": "attack", "defenses": "defense", "datasets": "dataset", "models": "model", "analyses": "analysis"}
RunsOpt = typer.Option(None, "--runs", envvar="BDB_RUNS", help="run store directory [default: ./bdb-runs]")

CATEGORY_WORDS = {
    "DP dirty-label": "data poisoning (the attack only supplies poisoned training samples), relabelled to the target",
    "DP clean-label": "data poisoning (the attack only supplies poisoned training samples), labels kept",
    "TC": "training-controlled (the attack also controls the victim's training)",
    "post": "repairs the trained model", "pre": "filters the training set (the harness retrains)",
    "in": "trains its own model on the poisoned set", "detect-data": "flags poisoned training samples",
    "detect-input": "flags triggered inputs at test time",
}
"""What an attack's kind or a defense's stage means (bdb list, bdb info)."""
ATTACK_KINDS = ("kind: DP = data poisoning (the attack only supplies poisoned training samples: dirty-label ones "
                "relabelled to the target, clean-label ones keep their labels), TC = training-controlled (the "
                "attack also controls the victim's training)")
DEFENSE_STAGES = "stage: " + ", ".join(f"{k} = {CATEGORY_WORDS[k]}" for k in ("post", "pre", "in", "detect-data",
                                                                               "detect-input"))

TYPE_WORDS = {"str": "text", "int": "integer", "float": "number", "bool": "true/false", "Path": "path",
              "list": "list", "tuple": "list", "dict": "table", "Any": "any"}
PLURAL_WORDS = {"integer": "integers", "number": "numbers", "path": "paths"}


def type_label(t: str) -> str:
    """A user-facing name of a Python type as config rows and options spell it: 'int | None' ->
    'integer or none', 'list[str]' -> 'list of text'; choices ('a|b') stay as they are."""
    parts = [p.strip() for p in t.split(" | ")]
    words = []
    for p in parts:
        if p == "None":
            continue
        m = re.fullmatch(r"(?:list|tuple)\[(.+)\]", p)
        if m:
            inner = [TYPE_WORDS.get(x.strip(), x.strip()) for x in m.group(1).split(",")]
            words.append("list of " + " or ".join(dict.fromkeys(PLURAL_WORDS.get(x, x) for x in inner)))
        else:
            words.append(TYPE_WORDS.get(p, p))
    if "None" in parts:
        words.append("none")
    return " or ".join(words) or t


def default_label(value: Any) -> str:
    """A setting's default as shown: JSON, but 'none' for None (typed as null in --set)."""
    return "none" if value is None else json.dumps(value, default=str)


def _option_type(param: Any, ctx: Any) -> str:
    """The type shown after an option or argument in --help: <text>, <integer>, <key=value>, ...
    A repeatable option shows its element type (its help says it repeats)."""
    if param.name in ("set_", "train_set"):
        return "<key=value>"
    desc = param.type_descriptor
    if desc.is_choice or desc.is_datetime or desc.is_ranged:
        return type(param).display_type(param, ctx)
    label = param.bare_type()
    m = re.fullmatch(r"list\[(.+)\]", label)
    return f"<{type_label(m.group(1) if m else label)}>"


METHOD_ARGUMENT = {"attack": "attack", "defend": "defense", "preview": "attack", "analyze": "analysis"}
"""Commands whose first argument is a method: an unknown option that is one of its settings gets --set."""
RECIPE_FIELDS = ("epochs", "lr", "batch_size", "momentum", "weight_decay", "optimizer", "schedule", "augment")


def _first_argument(cmd: Any, ctx: Any, args: list[str], bad: str) -> Optional[str]:
    """The command's first positional argument in args, parsed without the unknown option `bad`
    (and the value after it); None if it cannot be told."""
    rest, skip = [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a == bad or a.startswith(bad + "="):
            skip = a == bad and i + 1 < len(args) and not args[i + 1].startswith("-")
            continue
        rest.append(a)
    first = next((p.name for p in cmd.params if isinstance(p, TyperArgument)), None)
    try:
        opts, _, _ = cmd.make_parser(ctx).parse_args(args=rest)
    except _click.exceptions.UsageError:
        return None
    value = opts.get(first)
    return value if isinstance(value, str) else None


def _no_such_option(e: Any, cmd: Any, ctx: Any, args: list[str]) -> Optional[str]:
    """A message for an option a command does not have but a method setting (or the grid's
    [train] table) does: say where it goes instead; None for the generic message."""
    opt = e.option_name
    name = ctx.info_name
    key = opt.lstrip("-").replace("-", "_")
    i = args.index(opt) if opt in args else -1
    value = next((a.split("=", 1)[1] for a in args if a.startswith(opt + "=")), None)
    if value is None and 0 <= i < len(args) - 1 and not args[i + 1].startswith("-"):
        value = args[i + 1]
    if name == "bench":
        from bdcore.config import TrainRecipe

        if key in TrainRecipe.model_fields:
            return (f"bdb bench has no {opt}; the victim recipe goes in the grid file's [train] table "
                    f"(e.g. {key} = {value or '...'})")
        return None
    kind = METHOD_ARGUMENT.get(name)
    method = _first_argument(cmd, ctx, args, opt) if kind else None
    if method is None:
        return None
    try:
        from bdcore.api.registry import registry

        fields = set(registry().get(kind, method).config_model().model_fields)
    except Exception:  # an unknown or broken method: the generic message
        return None
    whose = {"attack": "an attack's", "defense": "a defense's", "analysis": "an analysis tool's"}[kind]
    if key in fields:
        return (f"bdb {name} has no {opt}; {whose} settings go in --set (e.g. --set {key}={value or '...'}); "
                f"see 'bdb info {method}'")
    if key in RECIPE_FIELDS:
        return (f"bdb {name} has no {opt} and {method} has no setting {key!r}; {whose} settings go in --set "
                f"key=value; see 'bdb info {method}'")
    return None


def _usage_error(e: Any, cmd: Any = None, ctx: Any = None, args: Optional[list[str]] = None) -> None:
    """Print click's usage error as one 'error:' line (with where to look) and exit 2."""
    ctx = ctx or e.ctx
    msg = None
    if isinstance(e, _click.exceptions.NoSuchOption) and cmd is not None and ctx is not None:
        try:
            msg = _no_such_option(e, cmd, ctx, args or [])
        except Exception:  # a hint must never hide the error itself
            msg = None
    if msg is None:
        msg = " ".join(e.format_message().split()).rstrip(".")
        if len(msg) > 1 and msg[0].isupper() and msg[1].islower():
            msg = msg[0].lower() + msg[1:]
        where = ctx.command_path if ctx is not None else "bdb"
        msg += f"; see '{where} --help'"
    err.print(f"error: {msg}", markup=False, highlight=False)
    raise typer.Exit(2)


class BdbCommand(TyperCommand):
    """A command whose usage errors (unknown option, missing or invalid value) are one 'error:'
    line, and whose --help shows user-facing types (<text>, <integer>, <key=value>)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if hasattr(param, "type_descriptor") and hasattr(param, "bare_type"):
                param.display_type = functools.partial(_option_type, param)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        given = list(args)
        try:
            return super().parse_args(ctx, args)
        except _click.exceptions.NoArgsIsHelpError:
            raise
        except _click.exceptions.UsageError as e:
            _usage_error(e, self, ctx, given)
            raise  # not reached


class BdbGroup(TyperGroup):
    """The bdb group: an unknown command or option of bdb itself is one 'error:' line too."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except _click.exceptions.NoArgsIsHelpError:
            raise
        except _click.exceptions.UsageError as e:
            _usage_error(e, ctx=ctx)
            raise  # not reached

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except _click.exceptions.UsageError as e:
            _usage_error(e, ctx=ctx)
            raise  # not reached


class BdbTyper(typer.Typer):
    """typer.Typer whose commands are BdbCommands."""

    def command(self, *args: Any, cls: Any = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or BdbCommand, **kwargs)


app = BdbTyper(
    name="bdb",
    help="bdb: backdoor attacks and defenses for image classifiers, benchmarked on one protocol.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=BdbGroup,
)


def cli_errors(fn: Callable) -> Callable:
    """Turn user errors (and plugin failures) into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except BdbError as exc:
            if os.environ.get("BDB_DEBUG") and exc.__cause__ is not None:
                err.print("".join(traceback.format_exception(exc.__cause__)), markup=False, highlight=False)
            err.print(f"error: {exc}", markup=False, highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted: unfinished runs were discarded; finished ones are kept", markup=False)
            raise typer.Exit(130) from None
        except Exception as exc:
            if os.environ.get("BDB_DEBUG"):
                raise
            first = str(exc).splitlines()[0] if str(exc).strip() else "(no message)"
            err.print(f"error: {type(exc).__name__}: {first} (unexpected; set BDB_DEBUG=1 for the traceback)",
                      markup=False, highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def _registry():
    from bdcore.api.registry import registry

    reg = registry()
    if os.environ.get("BDB_DEBUG"):
        for p in reg.broken:
            if p.traceback:
                err.print(f"{p.package} failed to load:\n{p.traceback}", markup=False, highlight=False)
    return reg


def _cells(*values: Any) -> list[Text]:
    """Table cells as plain text: names and messages from plugins or run files are never markup."""
    return [v if isinstance(v, Text) else Text("" if v is None else str(v)) for v in values]


def _store(runs: Optional[str]):
    from bdcore.runs.store import RunStore

    return RunStore(runs)


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def _print_json(obj: Any) -> None:
    from bdcore.runs.store import to_json

    sys.stdout.write(json.dumps(to_json(obj)[0], indent=2, allow_nan=False) + "\n")


# listing --------------------------------------------------------------------------------------
@app.command("list")
@cli_errors
def list_cmd(
    what: str = typer.Argument(..., help="attacks, defenses, datasets, models or analyses"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON array"),
    long: bool = typer.Option(False, "--long", "-l", help="every column (package, version, paper), wrapped"),
) -> None:
    """List installed attacks, defenses, datasets, models or analysis tools (one line each; --long for everything)."""
    kind = KINDS.get(what) or (what if what in KINDS.values() else None)
    if kind is None:
        raise BdbError(f"cannot list {what!r}: choose attacks, defenses, datasets, models or analyses")
    reg = _registry()
    rows = [
        {"name": s.name, "package": s.package, "version": s.version, "kind": s.category,
         "summary": s.summary, "paper": getattr(s, "paper", ""), "caveat": getattr(s, "caveat", "")}
        for s in reg.all(kind)
    ]
    if as_json:
        _print_json(rows)
        return
    t = Table(title=f"{len(rows)} {what}" + ("" if rows else " (none installed)"))
    kind_col = "stage" if kind == "defense" else "kind"
    if long:
        for col in ("name", "package", "version", kind_col, "summary", "paper"):
            t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(*_cells(r["name"], r["package"], r["version"], r["kind"], r["summary"], r["paper"]))
    else:  # one line per method, whatever the terminal's width: the summary is cut to fit
        names = [r["name"] + (" *" if r["caveat"] else "") for r in rows]
        name_w = max([4, *map(len, names)])
        kind_w = max([len(kind_col), *(len(r["kind"]) for r in rows)])
        t.add_column("name", no_wrap=True, min_width=name_w)
        t.add_column(kind_col, no_wrap=True, min_width=kind_w)
        # three columns: borders and padding take 10 characters
        t.add_column("summary", no_wrap=True, overflow="ellipsis", max_width=max(10, out.width - name_w - kind_w - 10))
        for name, r in zip(names, rows):
            t.add_row(*_cells(name, r["kind"], r["summary"]))
    out.print(t)
    legend = {"attack": ATTACK_KINDS, "defense": DEFENSE_STAGES}.get(kind)
    if rows and legend:
        out.print(legend, markup=False, highlight=False)
    if rows and not long:
        out.print("--long: package, version and paper; 'bdb info NAME': everything about one", markup=False)
    caveats = [r["name"] for r in rows if r["caveat"]]
    if caveats:
        out.print(f"* with a known limit (see 'bdb info NAME'): {', '.join(caveats)}", markup=False)
    for (k, n), pkgs in reg.conflicts.items():
        if k == kind:
            err.print(f"conflict: {k} {n!r} is registered by {' and '.join(pkgs)}; it cannot be used until one is "
                      "uninstalled", markup=False)
    if reg.broken:
        err.print(f"{len(reg.broken)} plugin(s) failed to load; see 'bdb plugins'", markup=False)


@app.command("plugins")
@cli_errors
def plugins_cmd(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Installed plugin distributions, what each registers, and any that failed to load."""
    reg = _registry()
    rows = [
        {"package": p.package, "version": p.version, "entry_point": p.entry_point, "module": p.module,
         "registers": p.registered, "error": p.error}
        for p in reg.plugins
    ]
    conflicts = [{"kind": k, "name": n, "packages": pk} for (k, n), pk in reg.conflicts.items()]
    if as_json:
        _print_json({"plugins": rows, "conflicts": conflicts})
        return
    t = Table(title=f"{len(rows)} plugin distributions")
    for col in ("package", "version", "registers", "status"):
        t.add_column(col, overflow="fold")
    for r in rows:
        regs = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["registers"].items())
        status = Text(f"broken: {r['error']}", style="red") if r["error"] else Text("ok")
        t.add_row(*_cells(r["package"], r["version"], regs, status))
    out.print(t)
    for c in conflicts:
        err.print(f"conflict: {c['kind']} {c['name']!r} is registered by {' and '.join(c['packages'])}", markup=False)


@app.command("doctor")
@cli_errors
def doctor_cmd(
    deep: bool = typer.Option(False, "--deep", help="also import every method's heavy module (imports torch; slower)"),
) -> None:
    """Check installed plugins; exit 1 if any failed to load or names clash."""
    reg = _registry()
    problems = [f"{p.package}: {p.error}" for p in reg.broken]
    problems += [f"{k} {n!r} registered by {' and '.join(pk)}" for (k, n), pk in reg.conflicts.items()]
    for kind in ("attack", "defense"):
        for s in reg.all(kind):
            try:
                s.config_model()
            except BdbError as exc:
                problems.append(str(exc))
    if deep:
        for kind in ("attack", "defense", "dataset", "model"):
            for s in reg.all(kind):
                try:
                    s.load()
                except BdbError as exc:
                    problems.append(str(exc))
    counts = ", ".join(f"{len(reg.names(k))} {k}s" for k in ("attack", "defense", "dataset", "model"))
    if problems:
        for p in problems:
            err.print(f"problem: {p}", markup=False, highlight=False)
        err.print(f"{len(problems)} problem(s); {counts} usable", markup=False)
        raise typer.Exit(1)
    out.print(f"ok: {len(reg.plugins)} plugin distributions, {counts}")


@app.command("info")
@cli_errors
def info_cmd(
    name: str = typer.Argument(..., help="an attack, defense, dataset, model or analysis name (or kind/name)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON, with the config's JSON schema"),
) -> None:
    """A method's paper, kind or stage, and its settings (type, default, description); an analysis
    tool's reference tool, defaults (split, n, layer) and settings."""
    from bdcore.config import schema_rows

    reg = _registry()
    if "/" in name and name.split("/", 1)[0] in KINDS.values():
        kind, name = name.split("/", 1)
        spec = reg.get(kind, name)
    else:
        kind, spec = reg.find(name)
    doc: dict[str, Any] = {"name": spec.name, "type": kind, "package": spec.package, "version": spec.version,
                           "summary": spec.summary, "kind": spec.category}
    model = None
    if kind in ("attack", "defense"):
        from bdcore.bench.presets import PRESETS, describe

        doc["paper"] = spec.paper
        doc["caveat"] = spec.caveat
        model = spec.config_model()
        doc["settings"] = schema_rows(model)
        doc["presets"] = {p: dict((spec.presets or {}).get(p, {})) for p in PRESETS}
        doc["tuned"] = dict(getattr(spec, "tuned", {}) or {})
        if kind == "attack":
            doc["victim_recipes"] = describe()
    elif kind == "analysis":
        doc["reference"] = spec.reference
        doc["defaults"] = dict(spec.defaults)
        model = spec.config_model()
        doc["settings"] = schema_rows(model)
    if as_json:
        if model is not None:
            doc["schema"] = model.model_json_schema()
        _print_json(doc)
        return
    out.print(f"[bold]{escape(spec.name)}[/bold]  ({escape(f'{kind}, {spec.category}')})  "
              f"{escape(f'{spec.package} {spec.version}')}")
    out.print(spec.summary, markup=False)
    if kind in ("attack", "defense") and spec.category in CATEGORY_WORDS:
        out.print(f"{'kind' if kind == 'attack' else 'stage'} {spec.category}: {CATEGORY_WORDS[spec.category]}",
                  markup=False, highlight=False)
    if kind == "analysis":
        from bdcore.api.spec import ANALYSIS_LAYERS

        out.print(f"reference tool: {spec.reference or '-'}", markup=False)
        d = doc["defaults"]
        parts = []
        if "split" in d:
            sp = d["split"]
            parts.append(f"split {sp}" if isinstance(sp, str) else f"splits {', '.join(sp)}")
        if "n" in d:
            parts.append(f"n {d['n']}")
        if "layer" in d:
            parts.append(f"layer {d['layer']} ({ANALYSIS_LAYERS.get(d['layer'], '')})")
        out.print("defaults (--split, --n, --layer): " + ("; ".join(parts) or "none (the tool uses no samples)"),
                  markup=False)
    if kind in ("attack", "defense", "analysis"):
        if kind != "analysis":
            out.print(f"paper: {spec.paper}", markup=False)
            if spec.caveat:
                out.print(f"known limit: {spec.caveat}", markup=False, style="yellow")
        if doc["settings"]:
            nullable = any("None" in str(r["type"]) for r in doc["settings"])
            t = Table(title="settings (--set key=value" + ("; key=null sets none)" if nullable else ")"))
            for col in ("setting", "type", "default", "description"):
                t.add_column(col, overflow="fold")
            for r in doc["settings"]:
                t.add_row(*_cells(r["name"], type_label(str(r["type"])), default_label(r["default"]), r["description"]))
            out.print(t)
        else:
            out.print("settings: none", markup=False)
        for p, changes in doc.get("presets", {}).items():
            text = ", ".join(f"{k}={default_label(v)}" for k, v in changes.items()) or "the defaults above"
            out.print(f"preset {p}: {text}", markup=False)
            if doc.get("tuned", {}).get(p):
                out.print(f"  tuned in miniature: {doc['tuned'][p]}; not validated on other data or models",
                          markup=False, style="yellow")
        if kind == "attack":
            for p, recipes in doc["victim_recipes"].items():
                r = recipes["*"]
                out.print(f"victim recipe, preset {p}: {r['epochs']} epochs, {r['optimizer']} lr {r['lr']}, "
                          f"batch {r['batch_size']}, {r['schedule']}", markup=False)


# running --------------------------------------------------------------------------------------
def _progress(label: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[loss]}"), TimeRemainingColumn(), console=err, transient=True)
    task = prog.add_task(label, total=None, loss="")  # no 'loss nan' before the first step or in a phase without one

    def update(done: int, total: int, loss: float) -> None:
        prog.update(task, completed=done, total=total, loss=f"loss {loss:.3f}" if math.isfinite(loss) else "")

    return prog, update


def _metrics_table(title: str, rows: list[tuple[str, dict]], der: Optional[float] = None) -> Table:
    t = Table(title=escape(title))
    for col in ("", "C-ACC %", "ASR %", "RA %"):
        t.add_column(col, justify="right")
    for label, m in rows:
        t.add_row(*_cells(label, _pct(m.get("cacc")), _pct(m.get("asr")), _pct(m.get("ra"))))
    return t


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


DECISIONS = ("flagged_classes", "target_classes", "detected", "trigger_found", "anomaly_index", "flag_count",
             "threshold", "unchanged")
"""What a defense decided, from its info, in the order `bdb defend` prints them."""


def _defense_lines(m: dict) -> list[str]:
    """The lines under `bdb defend`'s table: a detector by its detection metrics (its DER is 0.5 by
    construction), a repair by DER and RIR; what it decided; a warning on a broken victim."""
    from bdcore.reporting.results import is_detector

    def num(v: Any) -> str:
        return "-" if not isinstance(v, (int, float)) else f"{v:.3f}"

    lines = []
    if is_detector(m):
        lines.append("a detector: the model is left as it is (DER means nothing here)")
    else:
        lines.append(f"DER {m['der']:.4f}  RIR {m['rir']:.4f}")
    for key, what in (("detection", "training-data detection"), ("input_detection", "input detection")):
        d = m.get(key)
        if isinstance(d, dict):
            lines.append(f"{what}: AUROC {num(d.get('auroc'))}  TPR {num(d.get('tpr'))} at FPR {num(d.get('fpr'))}  "
                         f"F1 {num(d.get('f1'))}")
    info = m.get("info") if isinstance(m.get("info"), dict) else {}
    decided = [f"{k} {json.dumps(info[k]) if not isinstance(info[k], str) else info[k]}" for k in DECISIONS if k in info]
    if decided:
        lines.append("decided: " + "; ".join(decided))
    if m.get("victim_broken"):
        lines.append(BROKEN_WARNING)
    return lines


BROKEN_WARNING = ("warning: the victim never learned its task (C-ACC under 3x chance): its ASR, RA and any DER "
                  "mean nothing; train it longer or with another lr (e.g. --epochs, --lr, --preset)")


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


LEADERBOARD_COLUMNS = (("dataset", "left"), ("model", "left"), ("attack", "left"), ("ratio", "right"),
                       ("seed", "right"), ("defense", "left"), ("C-ACC %", "right"), ("ASR %", "right"),
                       ("RA %", "right"), ("DER", "right"), ("AUROC", "right"), ("PSNR", "right"), ("SSIM", "right"),
                       ("run", "left"))
WIDE = 110
"""Below this terminal width the leaderboard drops PSNR/SSIM and its borders, and cells fold."""


def _leaderboard_table(rows: list[dict], title: str, limits: dict[str, str] | None = None) -> Table:
    """limits: method name -> its known limit (MethodSpec.caveat); those methods are marked '*'."""
    def num(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    def name(v: str) -> str:
        return f"{v} *" if limits and v in limits else v

    cells = [{"dataset": r["dataset"], "model": r["model"], "attack": name(r["attack"]),
              "ratio": num(r["pratio"], "g"), "seed": num(r.get("seed"), "d"), "defense": name(r["defense"]),
              "C-ACC %": _pct(r["cacc"]) + (" !" if r.get("victim_broken") else ""),
              "ASR %": _pct(r["asr"]), "RA %": _pct(r["ra"]),
              "DER": "-" if r.get("detector") else num(r["der"], ".3f"), "AUROC": num(r.get("auroc"), ".3f"),
              "PSNR": num(r.get("psnr"), ".2f"), "SSIM": num(r.get("ssim"), ".4f"),
              "run": r["run_id"]} for r in rows]
    columns = list(LEADERBOARD_COLUMNS)
    if len({c["seed"] for c in cells}) < 2:  # one seed: no column for it
        columns = [(c, j) for c, j in columns if c != "seed"]
    if not any(r.get("auroc") is not None for r in rows):
        columns = [(c, j) for c, j in columns if c != "AUROC"]
    notes = []
    if any(r.get("victim_broken") for r in rows):
        notes.append("!: victim never learned its task (C-ACC under 3x chance): its ASR and DER mean nothing")
    if any(r.get("detector") for r in rows):
        notes.append("DER -: a detector, judged by AUROC")
    if out.width >= WIDE:
        t = Table(title=escape(title), caption=escape("; ".join(notes)) or None, caption_justify="left")
    else:  # narrow: no borders, no PSNR/SSIM, and a dataset/model/ratio shared by every row goes to the title
        shared = [c for c in ("dataset", "model", "ratio") if rows and len({str(x[c]) for x in cells}) == 1]
        drop = {"PSNR", "SSIM", *shared}
        columns = [(c, j) for c, j in columns if c not in drop]
        note = ", ".join(str(cells[0][c]) for c in shared)
        for c in cells:  # a unique prefix is enough for every command that takes a run id
            c["run"] = c["run"][:12]
        t = Table(title=escape(title + (f" ({note})" if note else "")),
                  caption=escape("; ".join(["C-ACC, ASR, RA in %; PSNR/SSIM: wider terminal or --json", *notes])),
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for col, just in columns:
        t.add_column(col if t.box is not box.SIMPLE_HEAD else col.removesuffix(" %"), justify=just, overflow="fold",
                     no_wrap=col in ("run", "defense"))
    for c in cells:
        t.add_row(*_cells(*(c[col] for col, _ in columns)))
    return t


class _GridView:
    """The rich view of a grid: one overall bar, a row per run in flight, a line per finished run."""

    def __init__(self, serial: bool) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.serial = serial
        self.prog = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True)
        self.rows: dict[int, Any] = {}
        self.total = None

    def start(self, plan) -> None:
        self.total = self.prog.add_task("grid", total=len(plan.tasks))
        self.prog.start()

    def started(self, task) -> None:
        what = task.label if task.kind == "attack" else f"  defense {task.cfg.defense} on {task.label.split(' + ')[0]}"
        self.rows[task.index] = self.prog.add_task(what, total=None)
        if not self.prog.console.is_terminal:  # no live bars in a log: say what runs now, so a long run is not silent
            self.prog.console.print(f"started {what.strip()}", markup=False, highlight=False)

    def run_progress(self, task):
        row = self.rows.get(task.index)
        if row is None:
            return None

        def update(done: int, total: int, loss: float) -> None:
            self.prog.update(row, completed=done, total=total)

        return update

    def finished(self, task, o) -> None:
        row = self.rows.pop(task.index, None)
        if row is not None:
            self.prog.remove_task(row)
        self.prog.advance(self.total)
        name = task.label if task.kind == "attack" else f"  defense {task.cfg.defense}"
        if o.status in ("failed", "skipped"):
            self.prog.console.print(f"{'failed' if o.status == 'failed' else 'skipped'} {name}: {o.error}",
                                    markup=False, highlight=False)
        elif o.status == "diverged":
            self.prog.console.print(f"{name}: diverged {o.run_id} (non-finite loss or weights; try a lower lr)",
                                    markup=False, highlight=False)
        else:
            secs = f" in {o.seconds:.0f} s" if o.status == "done" else ""
            self.prog.console.print(f"{name}: {o.status} {o.run_id}{secs}", markup=False, highlight=False)

    def stop(self) -> None:
        self.prog.stop()


def _bench(grid_path: Path, runs: Optional[str], force: bool, device: str, data_root: Optional[str],
           as_json: bool, workers: int = 1, executor: str = "local", address: Optional[str] = None,
           threads: Optional[int] = None, overrides: Optional[dict] = None) -> None:
    from bdcore.bench.executor import check_executor, plan_grid, run_grid
    from bdcore.bench.grid import load_grid
    from bdcore.reporting.leaderboard import leaderboard
    from bdcore.bench.preflight import check_run_plan

    check_executor(executor, address)
    grid = load_grid(grid_path)
    if overrides:  # bdb demo --dataset/--epochs: grid fields replaced, validated as if written in the file
        from bdcore.bench.grid import Grid

        grid = Grid.model_validate({**grid.model_dump(mode="json"), **overrides})
    reg = _registry()
    for entry in grid.attacks:
        reg.get("attack", entry.name)
    for entry in grid.defenses:
        if entry.name != "none":
            reg.get("defense", entry.name)
    store = _store(runs)
    attack_cfgs = check_run_plan(store, device, grid.attack_runs(),
                                 [(d.name, d.set) for d in grid.defenses if d.name != "none"], data_root=data_root)
    plan = plan_grid(attack_cfgs, grid.defense_runs)
    view = _GridView(serial=workers == 1 and executor == "local")
    outcomes = run_grid(plan, str(store.root), device=device, data_root=data_root, force=force, workers=workers,
                        executor=executor, address=address, threads=threads, reporter=view)
    ids = [o.run_id for o in outcomes if o.ok or o.status == "diverged"]
    failures = [o for o in outcomes if not o.ok]
    from bdcore.runs.grid_membership import record_grid

    record_grid(store, grid.name, ids, grid.model_dump(mode="json"))  # for 'bdb results/report --grid'
    rows = leaderboard(store, ids)
    if as_json:
        _print_json(rows)
    else:
        from bdcore.reporting.report import known_limits

        limits = known_limits({r["attack"] for r in rows} | {r["defense"] for r in rows})
        out.print(_leaderboard_table(rows, f"leaderboard: {grid.name}", limits))
        for method, caveat in sorted(limits.items()):
            out.print(f"* {method}: {caveat}", markup=False, highlight=False)
    if failures:
        err.print(f"{len(failures)} run(s) failed or were skipped; rerun the same command to retry them "
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


def _results_table(table, title: str, filtered: bool) -> Table:
    from bdcore.reporting.results import METRICS, display_columns, display_rows

    wide = out.width >= WIDE
    # narrow: the metrics a decision rests on, 'mean±sd' cells, no borders; settings that vary stay ahead of
    # metrics (a dropped ratio column made two 'badnet none' rows look the same)
    metrics = None if wide else [m for m in table.metrics if m in ("cacc", "asr", "ra", "der", "auroc")]
    cols = display_columns(table, metrics)
    rows = display_rows(table, cols, compact=not wide)
    keep = {"attack", "defense", "pratio", "n", "cacc", "asr", "run_id"}
    drop_first = ["fpr", "tpr", "ssim", "psnr", "ra"]
    cols, rows, hidden = _fit_columns(cols, rows, out.width, keep=keep, first=drop_first, border=3 if wide else 1)
    if not table.records:
        caption = "no runs match these filters" if filtered else "no runs stored yet"
    else:
        shown = {k for k, _ in cols + hidden}
        parts = [table.caption(shown, settings=wide)]
        same = [(k, v) for k, v in table.same_for_every_run() if k not in shown]
        if same and not wide:
            core = [f"{k}={v}" for k, v in same if k in ("dataset", "model", "pratio", "attack", "defense")]
            parts.insert(0, "same for every run: " + ", ".join(core + [f"{len(same) - len(core)} more (--format md)"]))
        if hidden:
            parts.append(f"not shown: {', '.join(h for _, h in hidden)} (a wider terminal or --format md/csv)")
        caption = "; ".join(p for p in parts if p)
    if wide:
        t = Table(title=escape(title), caption=escape(caption) or None, caption_justify="left")
    else:
        t = Table(title=escape(title), caption=escape(caption) or None, caption_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for k, header in cols:
        t.add_column(header, justify="right" if k in METRICS or k in ("n", "pratio") else "left", overflow="fold",
                     no_wrap=k in METRICS or k == "run_id")
    for cells in rows:
        t.add_row(*_cells(*cells))
    return t


def _fit_columns(cols: list[tuple[str, str]], rows: list[list[str]], width: int, keep: set[str],
                 first: list[str] = (), border: int = 3):
    """Drop columns until every column fits `width` at its natural width, instead of folding them all to one
    character: those named in `first` (in that order), then the other settings (the last first); the columns
    in `keep` always stay. border: the characters a column adds (padding and rule).
    Returns (columns, rows, dropped columns)."""
    need = [max([len(header), *(len(r[i]) for r in rows)]) + border for i, (_, header) in enumerate(cols)]
    total, dropped = sum(need) + 1, set()
    keys = [k for k, _ in cols]
    order = [keys.index(k) for k in first if k in keys] + [i for i in reversed(range(len(cols)))
                                                           if keys[i] not in first]
    for i in order:
        if total <= width:
            break
        if keys[i] not in keep:
            dropped.add(i)
            total -= need[i]
    idx = [i for i in range(len(cols)) if i not in dropped]
    return [cols[i] for i in idx], [[r[i] for i in idx] for r in rows], [cols[i] for i in sorted(dropped)]


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


@app.command("install")
@cli_errors
def install_cmd(
    method: str = typer.Argument(..., help="a method id, e.g. wanet (installs bdb-attack-wanet)"),
    kind: Optional[str] = typer.Option(None, "--kind", help="attack or defense, when the id could be either"),
    find_links: Optional[str] = typer.Option(None, "--find-links", help="a directory of wheels (or URL) for pip"),
    no_index: bool = typer.Option(False, "--no-index", help="use no package index (offline, with --find-links)"),
    upgrade: bool = typer.Option(False, "--upgrade", "-U", help="upgrade if already installed"),
) -> None:
    """Install a method's plugin package with pip (bdb-attack-<id> or bdb-defense-<id>)."""
    from bdcore.api.install import package_for

    pkg = package_for(method, kind, find_links)
    cmd = [sys.executable, "-m", "pip", "install", pkg]
    if find_links:
        cmd += ["--find-links", find_links]
    if no_index:
        cmd.append("--no-index")
    if upgrade:
        cmd.append("--upgrade")
    debug = bool(os.environ.get("BDB_DEBUG"))
    if debug:
        err.print(f"running: {' '.join(cmd)}", markup=False)
    with err.status(f"pip install {pkg} ...") if err.is_terminal and not debug else contextlib.nullcontext():
        res = subprocess.run(cmd, capture_output=True, text=True)
    if debug:  # pip's whole output
        sys.stderr.write(res.stdout + res.stderr)
    if res.returncode != 0:
        lines = [ln.strip() for ln in res.stderr.splitlines() if ln.strip()]
        cause = next((ln for ln in reversed(lines) if ln.startswith("ERROR:")), lines[-1] if lines else "")
        cause = cause.removeprefix("ERROR:").strip() or f"exit {res.returncode}"
        raise BdbError(f"pip could not install {pkg}: {cause} (BDB_DEBUG=1 shows pip's whole output)")
    from importlib import invalidate_caches, metadata

    invalidate_caches()
    try:
        version = metadata.version(pkg)
    except metadata.PackageNotFoundError:
        version = "?"
    done = "already installed" if "Successfully installed" not in res.stdout else "installed"
    out.print(f"{done}: {pkg} {version}; 'bdb list {pkg.split('-')[1]}s' shows it", markup=False)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
