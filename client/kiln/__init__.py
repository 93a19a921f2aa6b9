"""kiln: a Python client for the kilnd daemon (standard library only).

    import kiln
    with kiln.Client() as c:
        print(c.ping())
"""

from . import arrays
from .client import Client
from .errors import (Busy, Cancelled, ConnectionLost, Forbidden, Internal, InvalidArgs,
                     InvalidRequest, KilnError, NotFound, ParseError, Timeout, TooLarge,
                     UnknownAction)
from .protocol import ProcedureInput, ProcedureOutput, default_socket_path

__version__ = "0.1.0"

__all__ = [
    "Client", "arrays", "ProcedureInput", "ProcedureOutput", "default_socket_path", "KilnError",
    "ParseError", "InvalidRequest", "UnknownAction", "InvalidArgs", "Timeout", "Cancelled",
    "TooLarge", "NotFound", "Forbidden", "Busy", "Internal", "ConnectionLost",
]
