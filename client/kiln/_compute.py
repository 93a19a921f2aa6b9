"""Client methods for pi and text actions (issue 4)."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Union

from ._base import _data, _need_int

# Text of at least this many bytes goes as a raw attachment instead of inline
# JSON (no escaping, no parsing on either side).
ATTACH_MIN_BYTES = 64 * 1024

TextLike = Union[str, bytes, bytearray, memoryview]


def _text_request(text: Optional[TextLike], path: Optional[str], min_length: int,
                  ignore: Iterable[str]) -> Tuple[Dict[str, Any], Optional[bytes]]:
    """The args and attachment for a text action.  str is sent inline when
    small and as an attachment otherwise; bytes always as an attachment (so
    the daemon reports invalid UTF-8 with its byte offset)."""
    if (text is None) == (path is None):
        raise ValueError("give exactly one of text and path")
    if text is not None and not isinstance(text, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"text must be str or bytes, not {type(text).__name__}")
    _need_int(min_length, "min_length")
    if isinstance(ignore, (str, bytes)):
        raise TypeError("ignore must be a list of words, not a string")
    args: Dict[str, Any] = {"min_length": min_length, "ignore": list(ignore)}
    attachment = None
    if path is not None:
        args["path"] = path
    elif isinstance(text, str):
        data = text.encode("utf-8")
        if len(data) >= ATTACH_MIN_BYTES:
            attachment = data
        else:
            args["text"] = text
    else:
        attachment = bytes(text)  # type: ignore[arg-type]
    return args, attachment


def _pi_text(out: Any) -> str:
    if "pi" in out.data:
        return str(out.data["pi"])
    if out.attachment is None:
        raise ValueError("pi reply has neither data.pi nor an attachment")
    return out.attachment.decode("ascii")


def _fraction(out: Any) -> Optional[float]:
    f = out.data["fraction"]
    return None if f is None else float(f)


class ComputeMixin:
    """Mixed into kiln.Client and kiln.AsyncClient."""

    _call_then: Callable[..., Any]
    _path: Callable[[Any], str]

    def pi(self, n: int, *, timeout: Optional[float] = None,
           progress: Optional[Callable[[Dict[str, Any]], Any]] = None) -> str:
        """The first n decimals of pi, truncated: "3.1415..." ("3" for n = 0).
        Large results travel as a raw attachment.  progress gets
        {"done", "total"} dicts for long computations."""
        _need_int(n, "n")
        return self._call_then("pi", {"digits": n}, _pi_text, timeout=timeout, progress=progress)

    def pi_to_file(self, n: int, path: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Has the daemon write n decimals of pi to `path` (under its
        path_roots; a relative path is resolved here): {"digits", "output"
        (resolved path), "bytes"}."""
        _need_int(n, "n")
        return self._call_then("pi", {"digits": n, "output": self._path(path)}, _data,
                               timeout=timeout)

    def short_long(self, text: Optional[TextLike] = None, min_length: int = 8,
                   ignore: Iterable[str] = ("the", "a"), *, path: Optional[str] = None,
                   timeout: Optional[float] = None) -> Optional[float]:
        """The fraction of words longer than min_length code points among the
        words of text.split() not in ignore, exactly as the Python reference
        computes it.  None when there are no such words (where the reference
        would divide by zero).  text is str (or UTF-8 bytes); path= has the
        daemon read a file instead (under its path_roots)."""
        args, attachment = _text_request(text, self._file_arg(path), min_length, ignore)
        return self._call_then("text.short_long", args, _fraction, attachment=attachment,
                               timeout=timeout)

    def text_stats(self, text: Optional[TextLike] = None, *, path: Optional[str] = None,
                   min_length: int = 8, ignore: Iterable[str] = ("the", "a"), top: int = 0,
                   timeout: Optional[float] = None) -> Dict[str, Any]:
        """{"words", "lines", "code_points", "bytes", "short_long": {"words",
        "long_words", "fraction"}, "top": [[word, count], ...] (when top > 0)}.
        lines is len(text.splitlines()); top is Counter(text.split()).most_common(top)."""
        args, attachment = _text_request(text, self._file_arg(path), min_length, ignore)
        if top:
            _need_int(top, "top")
            args["top"] = top
        return self._call_then("text.stats", args, _data, attachment=attachment, timeout=timeout)

    def _file_arg(self, path: Optional[str]) -> Optional[str]:
        return None if path is None else self._path(path)
