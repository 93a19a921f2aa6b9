"""Arrays of numbers as request and reply attachments, without JSON.

Native module actions (include/kiln/module.h) read an attachment as a
contiguous C array (kiln_mod_attachment_array) and may return one
(kiln_mod_output).  These helpers turn Python's ``array.array``,
``memoryview``, any buffer, a sequence of numbers or, when numpy is
installed, a numpy array into those bytes (without copying when the
buffer already has the right type and layout), and the reply's bytes back
into an array::

    import array
    import kiln
    from kiln import arrays

    with kiln.Client() as c:
        x = array.array("d", [1.0, 2.0, 3.0])
        out, sums = arrays.call(c, "numeric.running_sum", {}, x)
        # sums == array('d', [1.0, 3.0, 6.0]); a numpy x gives a numpy result

Type codes are ``array``'s: "d" (float64, C double), "f" (float32), "q"
(int64), "i" (int32), "B" (uint8), in the machine's byte order, as kilnd and
its modules run on the same machine.
"""

from __future__ import annotations

import array as _array
from typing import Any, Dict, Iterable, Optional, Tuple, Union

try:  # optional: accepted and returned when installed
    import numpy as _np  # type: ignore
except ImportError:  # pragma: no cover - depends on the machine
    _np = None

from .protocol import ProcedureOutput

__all__ = ["TYPECODES", "to_bytes", "from_bytes", "call", "have_numpy"]

# array type code -> (numpy dtype name, size in bytes); mirrors enum kiln_mod_elem.
TYPECODES: Dict[str, Tuple[str, int]] = {
    "d": ("float64", 8), "f": ("float32", 4), "q": ("int64", 8), "i": ("int32", 4), "B": ("uint8", 1),
}

ArrayLike = Union[_array.array, memoryview, bytes, bytearray, Iterable[float], Any]


def have_numpy() -> bool:
    """True when numpy is importable (numpy arrays are then accepted and returned)."""
    return _np is not None


def _check_typecode(typecode: str) -> None:
    if typecode not in TYPECODES:
        raise ValueError(f"typecode {typecode!r}: expected one of {', '.join(TYPECODES)}")


def _is_numpy(values: Any) -> bool:
    return _np is not None and isinstance(values, _np.ndarray)


def to_bytes(values: ArrayLike, typecode: str = "d") -> memoryview:
    """The attachment for `values` as an array of `typecode`: a byte view of
    the caller's own buffer when it already is a contiguous array of that
    type (no copy), else of a converted copy.  Raw bytes pass unchanged."""
    _check_typecode(typecode)
    dtype, size = TYPECODES[typecode]
    if isinstance(values, (bytes, bytearray)):
        if len(values) % size:
            raise ValueError(f"{len(values)} bytes is not a whole number of {dtype} elements")
        return memoryview(values).cast("B")
    if _is_numpy(values):
        a = _np.ascontiguousarray(values, dtype=_np.dtype(dtype).newbyteorder("="))
        return memoryview(a.reshape(-1)).cast("B")
    if isinstance(values, _array.array):
        if values.typecode != typecode:
            values = _array.array(typecode, values)
        return memoryview(values).cast("B")
    if isinstance(values, memoryview):
        if values.c_contiguous and values.format.lstrip("@=") == typecode:
            return values.cast("B")
        values = values.tolist()
    return memoryview(_array.array(typecode, values)).cast("B")


def from_bytes(data: Optional[Union[bytes, bytearray, memoryview]], typecode: str = "d", *,
               numpy: Optional[bool] = None) -> Any:
    """The array a reply attachment holds: ``array.array(typecode)`` or,
    with numpy=True (None: when numpy is installed and asked for by the
    caller's input, see call()), a numpy array of the matching dtype."""
    _check_typecode(typecode)
    dtype, size = TYPECODES[typecode]
    data = b"" if data is None else data
    if len(data) % size:
        raise ValueError(f"{len(data)} bytes is not a whole number of {dtype} elements")
    if numpy:
        if _np is None:
            raise RuntimeError("numpy is not installed")
        return _np.frombuffer(data, dtype=_np.dtype(dtype))
    out = _array.array(typecode)
    out.frombytes(data)
    return out


def call(client: Any, action: str, args: Optional[Dict[str, Any]], values: ArrayLike, typecode: str = "d",
         *, out_typecode: Optional[str] = None, **kwargs: Any) -> Tuple[ProcedureOutput, Any]:
    """Calls `action` with `values` as the attachment and returns (reply,
    array of the reply's attachment, or None without one).  A numpy input
    gives a numpy result.  Other keyword arguments go to client.call()."""
    reply = client.call(action, args or {}, attachment=to_bytes(values, typecode), **kwargs)
    if reply.attachment is None:
        return reply, None
    return reply, from_bytes(reply.attachment, out_typecode or typecode, numpy=_is_numpy(values))
