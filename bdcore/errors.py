"""The one exception type the CLI turns into a one-line error, and the one warning line."""


class BdbError(Exception):
    """A user-facing error: its message says what went wrong and what to do."""


def warn(message: str) -> None:
    """One 'warning:' line on stderr (for problems that do not stop a command)."""
    import sys

    sys.stderr.write(f"warning: {message}\n")
