"""kiln: the Python client for the kilnd daemon (standard library only).

    import kiln
    with kiln.Client() as c:                       # $KILN_SOCKET or kilnd's default socket
        print(c.ping())                            # {'version': ..., 'uptime_s': ..., 'pid': ...}
        print(c.pi(50))                            # '3.14159...'
        print(c.short_long("a quick brown fox"))   # fraction of long words

    async with kiln.AsyncClient() as c:            # the same API for asyncio
        print(await c.pi(50))

kiln.Client is thread-safe (one connection, replies matched by job_id);
kiln.AsyncClient is its asyncio twin.  Errors raise kiln.KilnError
subclasses that are also the matching standard exceptions (kiln.InvalidArgs
is a ValueError, kiln.Timeout a TimeoutError, ...); see kiln.errors.
Scenes: kiln.Scene and the builders kiln.material, kiln.sphere, kiln.plane,
kiln.mesh, kiln.point_light, kiln.directional_light.  The command line is
the `kiln` program (python3 -m kiln).
"""

from . import arrays
from ._scene import Scene, directional_light, material, mesh, plane, point_light, sphere
from ._version import __version__
from .aio import AsyncCall, AsyncClient
from .client import Client
from .errors import (Busy, Cancelled, ConnectError, ConnectionLost, Forbidden, Internal,
                     InvalidArgs, InvalidRequest, KilnError, NotFound, ParseError, Timeout,
                     TooLarge, UnknownAction)
from .protocol import ProcedureInput, ProcedureOutput, default_socket_path

__all__ = [
    "__version__", "Client", "arrays", "AsyncClient", "AsyncCall", "ProcedureInput", "ProcedureOutput",
    "default_socket_path", "Scene", "material", "sphere", "plane", "mesh", "point_light",
    "directional_light", "KilnError", "ParseError", "InvalidRequest", "UnknownAction",
    "InvalidArgs", "Timeout", "Cancelled", "TooLarge", "NotFound", "Forbidden", "Busy", "Internal",
    "ConnectionLost", "ConnectError",
]
