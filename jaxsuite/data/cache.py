"""$JAXSUITE_DATA: where data lives, how it is downloaded and verified.

A download streams into a temporary file beside its destination, checks the byte count against
Content-Length and the sha256 against the known digest, and only then renames it into place
(atomic on POSIX): a partial, truncated or corrupt transfer never becomes the file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from jaxsuite.core.errors import DataMissingError, UserError

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

    def path(self, filename: str) -> Path:
        """The path of ``filename``; raises DataMissingError (naming the fetch command) if absent."""
        path = self.folder / filename
        if not path.is_file():
            how = self.manual or f"run `jaxsuite data fetch {self.name}`"
            raise DataMissingError(f"data file {filename} not found in {self.folder}: {how} "
                                   f"(or point JAXSUITE_DATA at a folder that has {self.name}/{filename})")
        return path

    def status(self) -> str:
        present = sum((self.folder / f.name).is_file() for f in self.files)
        if present == len(self.files):
            return "present"
        return "missing" if present == 0 else f"partial ({present}/{len(self.files)} files)"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
                       "ok" if sha256_file(path) == f.sha256 else "bad sha256")
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
