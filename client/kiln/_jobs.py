"""Client methods for host procedures and detached jobs (issue 7)."""

from __future__ import annotations


class JobsMixin:
    """Mixed into kiln.Client; uses self.call()."""
