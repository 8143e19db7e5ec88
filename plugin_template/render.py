#!/usr/bin/env python3
"""Render a new bdb plugin from this template (standard library only).

    python plugin_template/render.py --kind attack --name my-trigger --dest plugins

writes plugins/bdb-attack-my-trigger/: an installable package whose entry point registers the
method `my-trigger`, with a small working example method and tests that use the conformance kit.

Every file under plugin_template/<kind>/ ending in `.tmpl` is copied with the `.tmpl` dropped and
these placeholders replaced, in file names and contents alike:

    {{name}}     method id                       my-trigger
    {{kind}}     the kind (one of KINDS)         attack
    {{dist}}     distribution (and directory)    bdb-attack-my-trigger
    {{package}}  Python package                  bdb_attack_my_trigger
    {{ident}}    the name as an identifier       my_trigger
    {{Class}}    the name in CamelCase           MyTrigger
    {{authors}}  a whole line: the pyproject `authors` entry, or nothing without --author
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

KINDS = ("attack", "defense", "dataset", "model", "analysis")
PLURAL = {"analysis": "analyses"}  # `bdb list <kind plural>`; the others add an s
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PLACEHOLDER_RE = re.compile(r"\{\{(\w+)\}\}")
TEMPLATES = Path(__file__).resolve().parent
SUFFIX = ".tmpl"


class RenderError(Exception):
    """A problem reported to the user in one line."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), not the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"render.py: {message} (see --help)\n")
        raise SystemExit(2)


def check_name(name: str) -> None:
    if len(name) > 40 or not NAME_RE.match(name):
        raise RenderError(
            f"invalid name {name!r}: use lower-case letters, digits and single '-', starting with a letter,"
            " at most 40 characters (e.g. my-trigger)"
        )


def placeholders(kind: str, name: str, author: str | None) -> dict[str, str]:
    """The values substituted for {{...}} in the template of this kind."""
    ident = name.replace("-", "_")
    authors = f"authors = [{{ name = {json.dumps(author)} }}]\n" if author else ""
    return {
        "name": name,
        "kind": kind,
        "dist": f"bdb-{kind}-{name}",
        "package": f"bdb_{kind}_{ident}",
        "ident": ident,
        "Class": "".join(part.capitalize() for part in name.split("-")),
        "authors": authors,
    }


def substitute(text: str, values: dict[str, str], where: str) -> str:
    text = text.replace("{{authors}}\n", values["authors"])

    def one(m: re.Match) -> str:
        key = m.group(1)
        if key not in values:
            raise RenderError(f"template bug: unknown placeholder {{{{{key}}}}} in {where}")
        return values[key]

    return PLACEHOLDER_RE.sub(one, text)


def plan(kind: str, values: dict[str, str]) -> dict[Path, str]:
    """Relative output path -> rendered content, for every template file of the kind."""
    src = TEMPLATES / kind
    if not src.is_dir():
        raise RenderError(f"template directory {src} is missing; is this a complete plugin_template/?")
    files: dict[Path, str] = {}
    for path in sorted(src.rglob(f"*{SUFFIX}")):
        rel = path.relative_to(src)
        out = Path(*(substitute(part, values, str(rel)) for part in rel.parts))
        files[out.with_name(out.name[: -len(SUFFIX)])] = substitute(path.read_text(encoding="utf-8"), values, str(rel))
    if not files:
        raise RenderError(f"template directory {src} holds no {SUFFIX} files")
    return files


def render(kind: str, name: str, dest: Path, author: str | None = None) -> Path:
    """Write the plugin into dest/bdb-<kind>-<name>/ and return that directory."""
    check_name(name)
    values = placeholders(kind, name, author)
    files = plan(kind, values)
    target = dest / values["dist"]
    if target.exists() or target.is_symlink():
        raise RenderError(f"{target} already exists; remove it or choose another --dest or --name")
    if dest.exists() and not dest.is_dir():
        raise RenderError(f"--dest {dest} is not a directory")
    try:
        for rel, text in files.items():
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
    except OSError as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise RenderError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


NEXT_STEPS = """\
Rendered the {kind} plugin {name!r} into {target}
Next steps:
  cd {target}
  pip install -e .                 # registers {name!r} through the entry-point group 'bdb'
  bdb list {kinds:<24}# shows {name}
  python -m pytest tests -q        # the example's tests (conformance kit + behaviour)
Then replace the example in {package}/ with your method and update README.md (see its checklist).
"""


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="render.py",
        description="Render a new bdb plugin (attack, defense, dataset, model or analysis tool) from plugin_template/.",
    )
    parser.add_argument("--kind", required=True, choices=KINDS, help="what the plugin provides")
    parser.add_argument("--name", required=True, help="method id: lower-case letters, digits and '-' (e.g. my-trigger)")
    parser.add_argument("--dest", default=".", type=Path, help="directory to create bdb-<kind>-<name>/ in (default: .)")
    parser.add_argument("--author", default=None, help="author name for pyproject.toml (optional)")
    args = parser.parse_args(argv)
    try:
        target = render(args.kind, args.name, args.dest, args.author)
    except RenderError as exc:
        sys.stderr.write(f"render.py: {exc}\n")
        return 1
    values = placeholders(args.kind, args.name, args.author)
    kinds = PLURAL.get(args.kind, f"{args.kind}s")
    sys.stdout.write(NEXT_STEPS.format(kind=args.kind, kinds=kinds, name=args.name, target=target,
                                       package=values["package"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
