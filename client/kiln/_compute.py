"""Client methods for pi and text actions (issue 4)."""

from __future__ import annotations


class ComputeMixin:
    """Mixed into kiln.Client; uses self.call()."""
