"""The one exception type the CLI turns into a one-line error."""


class BdbError(Exception):
    """A user-facing error: its message says what went wrong and what to do."""
