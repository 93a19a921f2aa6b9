"""Client methods for encrypted corpora (issue 5).

Passphrases are sent to the daemon over the local socket only; the daemon
keeps them in locked memory and wipes them after key derivation.  Prefer
key_file= (read by the daemon under path_roots) to keep the passphrase out
of the client process entirely.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Union

from ._util import set_given


def _files_args(paths: Optional[Iterable[str]], dir: Optional[str], glob: Optional[str],
                passphrase: Optional[str], key_file: Optional[str]) -> Dict[str, Any]:
    return set_given({}, paths=list(paths) if paths is not None else None, dir=dir, glob=glob,
                     passphrase=passphrase, key_file=key_file)


class CorpusMixin:
    """Mixed into kiln.Client; uses self.call()."""

    def corpus_load(self, name: str, paths: Optional[Iterable[str]] = None, *,
                    dir: Optional[str] = None, glob: Optional[str] = None,
                    format: str = "auto", passphrase: Optional[str] = None,
                    key_file: Optional[str] = None, kdf: Optional[str] = None,
                    iterations: Optional[int] = None, cipher: Optional[str] = None,
                    digest: Optional[str] = None, nosalt: Optional[bool] = None,
                    salt: Optional[str] = None, key: Optional[str] = None, iv: Optional[str] = None,
                    detect: Optional[bool] = None, allow_plain: Optional[bool] = None,
                    timeout: Optional[float] = None, progress: Any = None) -> Dict[str, Any]:
        """Loads files as corpus `name` (atomic).  format: auto, openssl-enc,
        sealed, plain.  openssl enc files as the CLI wrote them: cipher
        ("aes-256-cbc", any EVP name `openssl enc` takes), digest (-md),
        kdf ("pbkdf2" or "legacy"), iterations (-iter), nosalt, salt (-S,
        hex), key and iv (-K/-iv, hex, instead of a passphrase); base64 (-a,
        -A) is recognised.  detect=True tries the common combinations and
        reports the match in result["source"]["openssl"].  With a passphrase,
        key_file or key every file must decrypt unless allow_plain=True.
        Raises kiln.KilnError whose message names the first failing files and
        whose .detail["failed"] lists them all."""
        args = _files_args(paths, dir, glob, passphrase, key_file)
        set_given(args, name=name, format=format, kdf=kdf, iterations=iterations, cipher=cipher,
                  digest=digest, nosalt=nosalt, salt=salt, key=key, iv=iv, detect=detect,
                  allow_plain=allow_plain)
        return self.call("corpus.load", args, timeout=timeout,  # type: ignore[attr-defined]
                         progress=progress).data

    def corpus_count(self, name: str, word: Union[str, List[str]], *,
                     case: str = "sensitive") -> Dict[str, Any]:
        """Whole-word counts: {word, case, total, documents: {doc: n}} for one
        word, {case, total, words: [...]} for a list."""
        args: Dict[str, Any] = {"name": name, "case": case}
        if isinstance(word, str):
            args["word"] = word
        else:
            args["words"] = list(word)
        return self.call("corpus.count", args).data  # type: ignore[attr-defined]

    def corpus_search(self, name: str, query: str, *, case: str = "sensitive",
                      whole_word: bool = False, max_results: int = 100) -> Dict[str, Any]:
        """Literal search: {query, count, truncated, results: [{document,
        line, column, text}]}."""
        return self.call("corpus.search", {  # type: ignore[attr-defined]
            "name": name, "query": query, "case": case, "whole_word": whole_word,
            "max_results": max_results}).data

    def corpus_stats(self, name: str, *, min_length: Optional[int] = None,
                     ignore: Optional[List[str]] = None) -> Dict[str, Any]:
        args = set_given({"name": name}, min_length=min_length,
                         ignore=list(ignore) if ignore is not None else None)
        return self.call("corpus.stats", args).data  # type: ignore[attr-defined]

    def corpus_list(self) -> List[Dict[str, Any]]:
        return self.call("corpus.list").data["corpora"]  # type: ignore[attr-defined]

    def corpus_info(self, name: str) -> Dict[str, Any]:
        return self.call("corpus.info", {"name": name}).data  # type: ignore[attr-defined]

    def corpus_unload(self, name: str) -> Dict[str, Any]:
        return self.call("corpus.unload", {"name": name}).data  # type: ignore[attr-defined]

    def corpus_seal(self, out_dir: str, paths: Optional[Iterable[str]] = None, *,
                    dir: Optional[str] = None, glob: Optional[str] = None,
                    passphrase: Optional[str] = None, key_file: Optional[str] = None,
                    kdf: str = "scrypt", iterations: Optional[int] = None,
                    log2_n: Optional[int] = None, r: Optional[int] = None, p: Optional[int] = None,
                    overwrite: bool = False, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Seals UTF-8 files into out_dir/<name>.kseal (kiln sealed format,
        one shared KDF salt): {files, kdf, kdf_ms}."""
        args = _files_args(paths, dir, glob, passphrase, key_file)
        set_given(args, out_dir=out_dir, kdf=kdf, overwrite=overwrite, iterations=iterations,
                  log2_n=log2_n, r=r, p=p)
        return self.call("corpus.seal", args, timeout=timeout).data  # type: ignore[attr-defined]
