"""Sphinx configuration of the bdcore public API reference (built by tests/test_public_api.py)."""

project = "bdcore"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
html_theme = "alabaster"
exclude_patterns = ["_build"]
napoleon_use_ivar = True
