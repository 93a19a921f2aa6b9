"""Descriptor passing (SCM_RIGHTS): the client opens the files a request
names, with its own rights, and passes the descriptors with the request
line, so kilnd reads and writes them without opening anything itself
(see proto/README.md, "Passing descriptors").

PATH_ARGS lists, per action, the arguments that name files: "r" a file
read, "w" a file written (created or truncated here), "d" a directory, and
a trailing "*" for a list of them.  A path this process cannot open is sent
as a plain path: kilnd then applies its own path_roots rules to it.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

MAX_FDS = 16

PATH_ARGS: Dict[str, Tuple[Tuple[str, str], ...]] = {
    "text.stats": (("path", "r"),),
    "text.short_long": (("path", "r"),),
    "corpus.load": (("paths", "r*"), ("dir", "d"), ("key_file", "r")),
    "corpus.seal": (("paths", "r*"), ("dir", "d"), ("key_file", "r"), ("out_dir", "d")),
    "pi": (("output", "w"),),
    "scene.render": (("output", "w"),),
    "scene.load": (("path", "r"),),
}

_FLAGS = {
    "r": os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY,
    "d": os.O_RDONLY | os.O_DIRECTORY,
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOCTTY,
}


def open_args(action: str, args: Dict[str, Any]) -> Tuple[List[str], List[int]]:
    """Opens the files `args` names for `action`: the path strings and the
    descriptors, in the same order (at most MAX_FDS).  The caller closes the
    descriptors once they are sent."""
    paths: List[str] = []
    fds: List[int] = []
    for key, kind in PATH_ARGS.get(action, ()):
        value = args.get(key)
        names = value if kind.endswith("*") and isinstance(value, list) else [value]
        for name in names:
            if len(fds) >= MAX_FDS or not isinstance(name, str) or not name.startswith("/") or name in paths:
                continue
            try:
                fd = os.open(name, _FLAGS[kind[0]] | os.O_CLOEXEC, 0o644)
            except OSError:
                continue  # kilnd decides, with its own rules
            if kind[0] == "r":
                os.set_blocking(fd, True)
            paths.append(name)
            fds.append(fd)
    return paths, fds
