"""Client methods for pi and text actions (issue 4)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple, Union

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


class ComputeMixin:
    """Mixed into kiln.Client; uses self.call()."""

    def pi(self, n: int, *, timeout: Optional[float] = None) -> str:
        """The first n decimals of pi, truncated: "3.1415..." ("3" for n = 0).
        Large results travel as a raw attachment."""
        out = self.call("pi", {"digits": n}, timeout=timeout)  # type: ignore[attr-defined]
        if "pi" in out.data:
            return str(out.data["pi"])
        if out.attachment is None:
            raise ValueError("pi reply has neither data.pi nor an attachment")
        return out.attachment.decode("ascii")

    def pi_to_file(self, n: int, path: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Has the daemon write n decimals of pi to `path` (absolute, under its
        path_roots): {"digits", "output" (resolved path), "bytes"}."""
        return self.call("pi", {"digits": n, "output": path},  # type: ignore[attr-defined]
                         timeout=timeout).data

    def short_long(self, text: Optional[TextLike] = None, min_length: int = 8,
                   ignore: Iterable[str] = ("the", "a"), *, path: Optional[str] = None,
                   timeout: Optional[float] = None) -> Optional[float]:
        """The fraction of words longer than min_length code points among the
        words of text.split() not in ignore, exactly as the Python reference
        computes it.  None when there are no such words (where the reference
        would divide by zero).  path= has the daemon read a file instead."""
        args, attachment = _text_request(text, path, min_length, ignore)
        out = self.call("text.short_long", args, attachment=attachment,  # type: ignore[attr-defined]
                        timeout=timeout)
        f = out.data["fraction"]
        return None if f is None else float(f)

    def text_stats(self, text: Optional[TextLike] = None, *, path: Optional[str] = None,
                   min_length: int = 8, ignore: Iterable[str] = ("the", "a"), top: int = 0,
                   timeout: Optional[float] = None) -> Dict[str, Any]:
        """{"words", "lines", "code_points", "bytes", "short_long": {"words",
        "long_words", "fraction"}, "top": [[word, count], ...] (when top > 0)}.
        lines is len(text.splitlines()); top is Counter(text.split()).most_common(top)."""
        args, attachment = _text_request(text, path, min_length, ignore)
        if top:
            args["top"] = top
        return self.call("text.stats", args, attachment=attachment,  # type: ignore[attr-defined]
                         timeout=timeout).data
