"""Regenerate the package's figures: ``python -m figures``."""
