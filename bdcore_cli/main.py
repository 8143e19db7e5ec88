"""The `bdb` command. Listing, help and info never import torch; running commands do, lazily.

The app and what every command shares live in `bdcore_cli.app`, terminal rendering in
`bdcore_cli.render`, and the commands in `bdcore_cli.commands` (catalog, runs, results); the
logic they call lives in bdcore, where a library user can call it too.
"""

from __future__ import annotations

from bdcore_cli.app import app, default_label, err, out, type_label
from bdcore_cli.commands import catalog, runs, results  # noqa: F401, I001 - importing registers (help order)
from bdcore_cli.render import _fit_columns, _leaderboard_table

__all__ = ["app", "main", "out", "err", "type_label", "default_label", "_fit_columns", "_leaderboard_table"]


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
