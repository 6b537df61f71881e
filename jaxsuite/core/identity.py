"""A run's identity: what produced (or will produce) the files in a workdir or a shared phase's folder.

``run_identity`` is method, variant, seed, the resolved config (after ``--set``; without the keys that only
choose which runs ``reproduce`` makes), the data digests and the code version. ``claim_workdir`` stamps it into
``identity.json`` only after validation, and a workdir that holds another identity is refused (``jaxsuite run``:
the folder is the user's) or cleared (``reproduce``: the folder is its own). ``phase_dir`` names the folder of
a phase that variants share (pre-training, a teacher) by a digest of what produced it, so a changed setting,
data set or code trains it afresh instead of reusing a stale one.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import os
import shutil
from pathlib import Path

from jaxsuite.core.errors import UserError

STAMP = "identity.json"
# Config keys that choose which runs `reproduce` makes, not what one run computes.
RUN_LEVEL_KEYS = ("variant", "variants", "seeds")
_PACKAGE = Path(__file__).resolve().parents[1]
_CURRENT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("jaxsuite_run_identity", default=None)


@functools.lru_cache(maxsize=None)
def code_version(method: str) -> str:
    """sha256 (16 hex) of the jaxsuite sources a method runs: every ``.py`` of the package except the other
    methods' folders. A changed line there is another code version; README edits and other papers are not."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        rel = path.relative_to(_PACKAGE).as_posix()
        if rel.startswith("methods/") and rel.count("/") > 1 and not rel.startswith(f"methods/{method}/"):
            continue
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def plain(obj):
    """A JSON round trip (tuples -> lists): what a stamp reads back."""
    return json.loads(json.dumps(obj, default=str))


def run_config(config) -> dict:
    """The config as part of an identity: plain, without :data:`RUN_LEVEL_KEYS`."""
    return {k: v for k, v in plain(config.to_dict()).items() if k not in RUN_LEVEL_KEYS}


def run_identity(method: str, variant: str, seed: int, config, data: dict | None = None) -> dict:
    return {"method": method, "variant": variant, "seed": int(seed), "config": run_config(config),
            "data": plain(data or {}), "code": code_version(method)}


def digest(obj) -> str:
    """A short (16 hex) sha256 of a JSON-able object, independent of key order."""
    return hashlib.sha256(json.dumps(plain(obj), sort_keys=True).encode()).hexdigest()[:16]


def differing_fields(old, new, prefix: str = "") -> list[str]:
    """Dotted names of the leaves that differ between two identities (or any nested dicts)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [prefix.rstrip(".") or "(whole stamp)"] if old != new else []
    keys = []
    for k in sorted(set(old) | set(new)):
        keys += differing_fields(old.get(k), new.get(k), f"{prefix}{k}.")
    return keys


def _describe(fields: list[str], old: dict, new: dict, limit: int = 6) -> str:
    def get(d, dotted):
        for part in dotted.split("."):
            if not isinstance(d, dict) or part not in d:
                return "(absent)"
            d = d[part]
        return json.dumps(d)

    shown = [f"{f}: {get(old, f)} -> {get(new, f)}" for f in fields[:limit]]
    return "; ".join(shown) + (f"; and {len(fields) - limit} more" if len(fields) > limit else "")


def read_stamp(workdir: Path) -> dict | None:
    """The identity stamped in ``workdir``, None if there is none; an unreadable stamp is a one-line error."""
    stamp = Path(workdir) / STAMP
    try:
        return json.loads(stamp.read_text()) if stamp.is_file() else None
    except (OSError, ValueError) as err:
        raise UserError(f"{stamp} is unreadable ({err}); delete that workdir or choose another --workdir") from None


def check_usable(workdir: Path) -> None:
    """Fail with one line, before anything runs, if ``workdir`` cannot be created or written."""
    workdir = Path(workdir)
    probe = workdir / f".jaxsuite-write-test.{os.getpid()}"
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UserError(f"workdir {workdir} is not usable ({reason}: {err.filename or workdir}); "
                        "choose a writable folder with --workdir / --out") from None


def check_workdir(workdir: Path, identity: dict, *, on_change: str) -> None:
    """Refuse (``on_change="error"``) a workdir that holds another run: its stamp names another identity, or it
    holds files but no stamp. Nothing is written; ``on_change="clear"`` accepts anything (it is cleared later)."""
    workdir = Path(workdir)
    if on_change == "clear" or not workdir.exists():
        return
    if not workdir.is_dir():
        raise UserError(f"workdir {workdir} is a file, not a folder; choose another --workdir")
    old = read_stamp(workdir)
    if old is None:
        if any(workdir.iterdir()):
            raise UserError(f"workdir {workdir} is not empty and holds no {STAMP} of a jaxsuite run (files of an "
                            "unknown run would be resumed): choose an empty or new --workdir, or delete that one")
        return
    fields = differing_fields(old, plain(identity))
    if fields:
        raise UserError(f"workdir {workdir} holds another run ({_describe(fields, old, plain(identity))}); "
                        "resuming it would mix the two: choose another --workdir or delete that one")


def claim_workdir(workdir: Path, identity: dict, *, on_change: str = "clear") -> None:
    """After validation: keep ``workdir``'s files only for the same identity, then stamp it. Another identity
    (or none, with files present) is refused (``on_change="error"``) or the folder is cleared (``"clear"``)."""
    workdir = Path(workdir)
    check_workdir(workdir, identity, on_change=on_change)
    stamped = read_stamp(workdir) if workdir.is_dir() else None
    if workdir.exists() and stamped != plain(identity):
        try:
            shutil.rmtree(workdir) if workdir.is_dir() and not workdir.is_symlink() else workdir.unlink()
        except OSError as err:
            raise UserError(f"cannot clear workdir {workdir} of another run ({err.strerror or err})") from None
    check_usable(workdir)
    if stamped != plain(identity):  # written once, atomically: every process of a multi-host run reads it
        write_json(workdir / STAMP, plain(identity))


def write_json(path: Path, obj) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


@contextlib.contextmanager
def current(identity: dict):
    """Make ``identity`` the ambient run identity (its code and data key the shared phases) while a run runs."""
    token = _CURRENT.set(identity)
    try:
        yield identity
    finally:
        _CURRENT.reset(token)


def provenance(method: str) -> dict:
    """The code version and the current run's data digests: part of the key of anything a run shares."""
    return {"code": code_version(method), "data": (_CURRENT.get() or {}).get("data", {})}


def phase_dir(base: str | Path, name: str, spec: dict, method: str) -> Path:
    """``base/<name>-<digest>`` for a phase shared between variants, the digest over ``spec`` (the config and
    seed that produced it) and :func:`provenance`; the folder holds that key in its ``identity.json``.
    Another spec, code or data names another folder, so a stale phase is never reused."""
    key = {"spec": plain(spec), **provenance(method)}
    path = Path(base) / f"{name}-{digest(key)}"
    path.mkdir(parents=True, exist_ok=True)
    if not (path / STAMP).is_file():
        write_json(path / STAMP, key)
    return path
