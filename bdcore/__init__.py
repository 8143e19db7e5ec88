"""bdcore: the core of the bdb backdoor-learning benchmark.

This package root stays light (no torch import) so that listing plugins is fast.
"""

__version__ = "0.1.0"
