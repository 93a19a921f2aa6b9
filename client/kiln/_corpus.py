"""Client methods for encrypted corpora (issue 5)."""

from __future__ import annotations


class CorpusMixin:
    """Mixed into kiln.Client; uses self.call()."""
