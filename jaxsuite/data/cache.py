"""$JAXSUITE_DATA: where data lives, how it is downloaded and verified.

A download streams into a temporary file beside its destination, checks the byte count against
Content-Length and the sha256 against the known digest, and only then renames it into place
(atomic on POSIX): a partial, truncated or corrupt transfer never becomes the file.

Reading is verified too: :meth:`Source.path` checks a pinned file's sha256 the first time it is read (cached
by path, size and mtime, so later reads cost nothing) and raises :class:`DataCorruptError` naming the file and
``jaxsuite data fetch NAME``. Folders a user supplies (no pinned digests) get :func:`manifest_digest`: their
relative paths and sizes, cheap to compute, recorded in the run identity.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from jaxsuite.core.errors import DataCorruptError, DataMissingError, UserError

CHUNK = 1 << 20


def data_root() -> Path:
    """``$JAXSUITE_DATA``, default ``~/.cache/jaxsuite``."""
    return Path(os.environ.get("JAXSUITE_DATA") or Path.home() / ".cache" / "jaxsuite").expanduser()


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    name: str
    sha256: str
    urls: tuple[str, ...]  # canonical first, then mirrors


@dataclasses.dataclass(frozen=True)
class Source:
    """A data source: a folder under $JAXSUITE_DATA and the files it should hold."""
    name: str
    description: str
    files: tuple[RemoteFile, ...]
    manual: str = ""  # instructions when the files cannot be downloaded automatically

    @property
    def folder(self) -> Path:
        return data_root() / self.name

    def pin(self, filename: str) -> str | None:
        return next((f.sha256 for f in self.files if f.name == filename), None)

    def path(self, filename: str) -> Path:
        """The path of ``filename``, its sha256 verified when it is pinned; raises DataMissingError (naming the
        fetch command) if absent, DataCorruptError if its digest is not the pinned one or it cannot be read."""
        path = self.folder / filename
        if not path.is_file():
            how = self.manual or f"run `jaxsuite data fetch {self.name}`"
            raise DataMissingError(f"data file {filename} not found in {self.folder}: {how} "
                                   f"(or point JAXSUITE_DATA at a folder that has {self.name}/{filename})")
        pinned = self.pin(filename)
        if pinned is not None:
            verify(path, pinned, self.name)
        return path

    def digests(self, filenames) -> dict[str, str]:
        """``{"<source>/<file>": sha256}`` of pinned files, each verified (:meth:`path`): a run identity's data."""
        out = {}
        for name in filenames:
            self.path(name)
            if self.pin(name):
                out[f"{self.name}/{name}"] = self.pin(name)
        return out

    def status(self, filenames=None) -> str:
        """"present", "missing ...", "partial (...)" or "bad sha256: FILE" over ``filenames`` (default: all)."""
        names = [f.name for f in self.files] if filenames is None else list(filenames)
        present = [n for n in names if (self.folder / n).is_file()]
        bad = [n for n in present if self.pin(n) and file_sha256(self.folder / n) != self.pin(n)]
        if bad:
            return f"bad sha256: {', '.join(bad)} (run `jaxsuite data fetch {self.name}`)"
        if len(present) == len(names):
            return "present"
        return "missing" if not present else f"partial ({len(present)}/{len(names)} files)"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256: a file is hashed once


def file_sha256(path: Path) -> str | None:
    """sha256 of ``path``, computed once per (path, size, mtime); None if it cannot be read."""
    try:
        st = os.stat(path)
        key = (str(Path(path).absolute()), st.st_size, st.st_mtime_ns)
        if key not in _DIGESTS:
            _DIGESTS[key] = sha256_file(path)
        return _DIGESTS[key]
    except OSError:
        return None


def verify(path: Path, sha256: str, source: str) -> Path:
    """``path`` if its content has the pinned ``sha256``; else a one-line DataCorruptError naming the fix."""
    actual = file_sha256(path)
    if actual is None:
        raise DataCorruptError(f"data file {path} cannot be read; replace it with `jaxsuite data fetch {source}`")
    if actual != sha256:
        raise DataCorruptError(f"data file {path} is corrupt or altered (sha256 {actual[:12]}..., expected "
                               f"{sha256[:12]}...): delete it and run `jaxsuite data fetch {source}`")
    return path


def manifest_digest(folder: Path, patterns=("**/*",)) -> str:
    """A cheap digest of a user-supplied folder: sha256 (16 hex) over the sorted relative paths and sizes of its
    files matching ``patterns`` (not their bytes): a file added, removed, renamed or resized changes it."""
    folder = Path(folder)
    digest = hashlib.sha256()
    seen = set()
    for pattern in patterns:
        for path in folder.glob(pattern):
            if path.is_file() and path not in seen:
                seen.add(path)
    for path in sorted(seen):
        digest.update(f"{path.relative_to(folder).as_posix()}\t{path.stat().st_size}\n".encode())
    return f"manifest:{len(seen)}:{digest.hexdigest()[:16]}"


def download(url: str, dest: Path, sha256: str, *, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` if its sha256 matches; else raise and leave no file behind."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        digest, received = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            for chunk in iter(lambda: response.read(CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
        if expected is not None and received != int(expected):
            raise UserError(f"download of {url} truncated: {received} of {expected} bytes")
        if digest.hexdigest() != sha256:
            raise UserError(f"download of {url} has sha256 {digest.hexdigest()}, expected {sha256}")
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise UserError(f"download of {url} failed: {err}") from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch(source: Source, *, timeout: float = 60.0) -> list[Path]:
    """Download every missing file of ``source`` (trying its mirrors in turn) and verify it."""
    if source.manual and not source.files:
        raise UserError(f"{source.name} cannot be downloaded automatically: {source.manual}")
    paths = []
    for f in source.files:
        dest = source.folder / f.name
        if dest.is_file() and sha256_file(dest) == f.sha256:
            paths.append(dest)
            continue
        errors = []
        for url in f.urls:
            try:
                paths.append(download(url, dest, f.sha256, timeout=timeout))
                break
            except UserError as err:
                errors.append(str(err))
        else:
            raise UserError(f"could not fetch {f.name} for {source.name}: " + "; ".join(errors))
    return paths


def check(source: Source) -> dict[str, str]:
    """Per file: "ok", "missing" or "bad sha256"."""
    out = {}
    for f in source.files:
        path = source.folder / f.name
        out[f.name] = ("missing" if not path.is_file() else
                       "ok" if file_sha256(path) == f.sha256 else "bad sha256")
    return out


def generated_dir() -> Path | None:
    """``$JAXSUITE_DATA/generated`` for procedural data, or None when that folder is not writable or
    ``JAXSUITE_CACHE_GENERATED=0`` (the tests set it: they never write into the shared data folder)."""
    if os.environ.get("JAXSUITE_CACHE_GENERATED", "1") == "0":
        return None
    path = data_root() / "generated"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None
