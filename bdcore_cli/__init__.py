"""The bdb command-line interface."""
