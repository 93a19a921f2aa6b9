"""Helpers shared by the client's family mixins."""

from __future__ import annotations

from typing import Any, Dict


def set_given(args: Dict[str, Any], **values: Any) -> Dict[str, Any]:
    """Adds to `args` the keyword arguments that are not None (the daemon's
    defaults apply to the others) and returns `args`."""
    args.update((k, v) for k, v in values.items() if v is not None)
    return args
