"""Client methods for encrypted corpora (issue 5).

Passphrases are sent to the daemon over the local socket only; the daemon
keeps them in locked memory and wipes them after key derivation.  Prefer
key_file= (read by the daemon under path_roots) to keep the passphrase out
of the client process entirely.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Union

from ._base import _data
from ._util import set_given


def _paths(client: Any, paths: Optional[Iterable[str]]) -> Optional[List[str]]:
    if paths is None:
        return None
    if isinstance(paths, (str, bytes)):
        raise TypeError("paths must be a list of paths, not a string")
    return [client._path(p) for p in paths]


def _files_args(client: Any, paths: Optional[Iterable[str]], dir: Optional[str],
                glob: Optional[str], passphrase: Optional[str],
                key_file: Optional[str]) -> Dict[str, Any]:
    return set_given({}, paths=_paths(client, paths),
                     dir=client._path(dir) if dir is not None else None, glob=glob,
                     passphrase=passphrase,
                     key_file=client._path(key_file) if key_file is not None else None)


class CorpusMixin:
    """Mixed into kiln.Client and kiln.AsyncClient."""

    _call_then: Callable[..., Any]

    def corpus_load(self, name: str, paths: Optional[Iterable[str]] = None, *,
                    dir: Optional[str] = None, glob: Optional[str] = None,
                    format: str = "auto", passphrase: Optional[str] = None,
                    key_file: Optional[str] = None, kdf: Optional[str] = None,
                    iterations: Optional[int] = None, cipher: Optional[str] = None,
                    digest: Optional[str] = None, nosalt: Optional[bool] = None,
                    salt: Optional[str] = None, key: Optional[str] = None, iv: Optional[str] = None,
                    detect: Optional[bool] = None, allow_plain: Optional[bool] = None,
                    timeout: Optional[float] = None, progress: Any = None) -> Dict[str, Any]:
        """Loads files as corpus `name` (atomic: all files or none).

        paths: files, or dir (+ glob, e.g. "*.txt").  Relative paths are
        resolved here; the daemon reads them with your rights, under its
        path_roots.  format: "auto", "openssl-enc", "sealed" or "plain".
        passphrase, or key_file (a file holding it, read by the daemon).
        openssl enc files as the CLI wrote them: cipher ("aes-256-cbc", any
        EVP name `openssl enc` takes), digest (-md), kdf ("pbkdf2", the
        default, or "legacy"), iterations (-iter), nosalt, salt (-S, hex),
        key and iv (-K/-iv, hex, instead of a passphrase); base64 (-a, -A) is
        recognised.  detect=True tries the common combinations and reports the
        match in result["source"]["openssl"].  With a passphrase, key_file or
        key every file must decrypt unless allow_plain=True.
        Returns {"name", "documents", "bytes", "failed", "kdf_ms", ...};
        raises kiln.KilnError whose message names the first failing files and
        whose .detail["failed"] lists them all."""
        args = _files_args(self, paths, dir, glob, passphrase, key_file)
        set_given(args, name=name, format=format, kdf=kdf, iterations=iterations, cipher=cipher,
                  digest=digest, nosalt=nosalt, salt=salt, key=key, iv=iv, detect=detect,
                  allow_plain=allow_plain)
        return self._call_then("corpus.load", args, _data, timeout=timeout, progress=progress)

    def corpus_count(self, name: str, word: Union[str, List[str]], *,
                     case: str = "sensitive") -> Dict[str, Any]:
        """Whole-word counts.  The daemon always answers per word:
        {"case", "total", "words": [{"word", "total", "documents": {doc: n}}]}.
        For a single word (a str) this returns that word's entry with "case"
        added: {"word", "case", "total", "documents"}; for a list, the whole
        reply.  case: "sensitive" or "insensitive" (Unicode case folding)."""
        if isinstance(word, str):
            def one(out: Any) -> Dict[str, Any]:
                entry = dict(out.data["words"][0])
                entry["case"] = out.data["case"]
                return entry
            return self._call_then("corpus.count", {"name": name, "case": case, "words": [word]},
                                   one)
        if isinstance(word, bytes):
            raise TypeError("word must be str or a list of str")
        return self._call_then("corpus.count", {"name": name, "case": case, "words": list(word)},
                               _data)

    def corpus_search(self, name: str, query: str, *, case: str = "sensitive",
                      whole_word: bool = False, max_results: int = 100) -> Dict[str, Any]:
        """Literal search: {"query", "count" (all hits), "returned" (hits in
        results, at most max_results), "truncated", "results": [{"document",
        "line", "column", "text"}]}."""
        return self._call_then("corpus.search", {
            "name": name, "query": query, "case": case, "whole_word": whole_word,
            "max_results": max_results}, _data)

    def corpus_stats(self, name: str, *, min_length: Optional[int] = None,
                     ignore: Optional[List[str]] = None) -> Dict[str, Any]:
        """Word statistics over the whole corpus, as text_stats."""
        args = set_given({"name": name}, min_length=min_length,
                         ignore=list(ignore) if ignore is not None else None)
        return self._call_then("corpus.stats", args, _data)

    def corpus_list(self) -> List[Dict[str, Any]]:
        """The corpora you may see: [{"name", "documents", "bytes", ...}]."""
        return self._call_then("corpus.list", None, lambda o: o.data["corpora"])

    def corpus_info(self, name: str) -> Dict[str, Any]:
        """One corpus: {"name", "documents" (names), "bytes", "memory_bytes", "owner", ...}."""
        return self._call_then("corpus.info", {"name": name}, _data)

    def corpus_unload(self, name: str) -> Dict[str, Any]:
        """Unloads the corpus and wipes its memory."""
        return self._call_then("corpus.unload", {"name": name}, _data)

    def corpus_seal(self, out_dir: str, paths: Optional[Iterable[str]] = None, *,
                    dir: Optional[str] = None, glob: Optional[str] = None,
                    passphrase: Optional[str] = None, key_file: Optional[str] = None,
                    kdf: str = "scrypt", iterations: Optional[int] = None,
                    log2_n: Optional[int] = None, r: Optional[int] = None, p: Optional[int] = None,
                    overwrite: bool = False, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Seals UTF-8 files into out_dir/<name>.kseal (kiln sealed format,
        one shared KDF salt): {files, kdf, kdf_ms}."""
        args = _files_args(self, paths, dir, glob, passphrase, key_file)
        set_given(args, out_dir=self._path(out_dir), kdf=kdf, overwrite=overwrite,
                  iterations=iterations, log2_n=log2_n, r=r, p=p)
        return self._call_then("corpus.seal", args, _data, timeout=timeout)
