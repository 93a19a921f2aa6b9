"""Client methods for scenes and rendering (issue 6)."""

from __future__ import annotations


class SceneMixin:
    """Mixed into kiln.Client; uses self.call()."""
