"""The one exception type the CLI turns into a one-line error, and the one warning line."""


class BdbError(Exception):
    """A user-facing error: its message says what went wrong and what to do."""


def warn(message: str) -> None:
    """One 'warning:' line on stderr (for problems that do not stop a command)."""
    import sys

    sys.stderr.write(f"warning: {message}\n")


def require(module: str, extra: str, what: str):
    """Import an optional dependency, or a one-line BdbError naming the extra that installs it
    (e.g. require("matplotlib", "report", "bdb report's figures"))."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        pkg = {"sklearn": "scikit-learn"}.get(top, top)
        raise BdbError(f"{what} needs {pkg}: pip install 'bdcore[{extra}]' (or pip install {pkg})") from None
