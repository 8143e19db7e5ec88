"""Catalog commands: list, plugins, doctor, info, install (none imports torch)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bdcore.errors import BdbError
from bdcore_cli.app import out, err, KINDS, CATEGORY_WORDS, ATTACK_KINDS, DEFENSE_STAGES, type_label, default_label, app, cli_errors, _registry
from bdcore_cli.render import _cells, _print_json


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
    from bdcore.reporting.catalog import describe

    kind, spec, doc, model = describe(_registry(), name)
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
