"""The `bdb` app: its Typer group, one-line usage errors, the consoles and what every command shares."""

from __future__ import annotations

import functools
import json
import os
import re
import traceback
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from typer import _click
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


def _store(runs: Optional[str]):
    from bdcore.runs.store import RunStore

    return RunStore(runs)
