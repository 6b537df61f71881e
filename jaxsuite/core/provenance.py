"""Provenance of a result: the code fingerprint, the machine, the library versions and the command.

The fingerprint of a method is a sha256 over the files that decide its numbers: every file of its package
(``jaxsuite/methods/<name>/``, READMEs excluded: they quote the results and change after them), its presets
(``configs/<name>/``) and every jaxsuite module those import, found statically (the ``import`` statements of
their syntax trees, function-level ones included, followed transitively within jaxsuite, with the packages'
``__init__.py`` on the way). ``jaxsuite report`` compares a result's fingerprint with the current tree's: equal
is "current", different is "stale" (with the files that changed). A result written before fingerprints existed
is fingerprinted from git at the commit it records, when that commit was clean and is in the repository.
"""
from __future__ import annotations

import ast
import datetime
import functools
import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex", "numpy", "scipy", "ml-collections",
             "jraph", "mujoco", "mujoco-mjx", "dp-accounting", "jax-privacy", "scikit-learn")


class _Tree:
    """Read-only view of the repository's files: the work tree, or a commit through git."""

    def __init__(self, root: Path = ROOT, commit: str | None = None):
        self.root, self.commit = Path(root), commit
        self._files: list[str] | None = None

    def files(self) -> list[str]:
        if self._files is None:
            if self.commit is None:
                self._files = sorted(p.relative_to(self.root).as_posix()
                                     for top in ("jaxsuite", "configs") if (self.root / top).is_dir()
                                     for p in (self.root / top).rglob("*") if p.is_file())
            else:
                out = subprocess.run(["git", "ls-tree", "-r", "--name-only", self.commit, "--", "jaxsuite", "configs"],
                                     cwd=self.root, capture_output=True, text=True, timeout=30, check=True).stdout
                self._files = sorted(out.splitlines())
        return self._files

    def read(self, rel: str) -> bytes:
        if self.commit is None:
            return (self.root / rel).read_bytes()
        return subprocess.run(["git", "show", f"{self.commit}:{rel}"], cwd=self.root, capture_output=True,
                              timeout=30, check=True).stdout


def _counted(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return not (rel.endswith((".md", ".pyc")) or "__pycache__" in parts)


def _module_file(module: str, present: set[str]) -> str | None:
    base = module.replace(".", "/")
    for cand in (f"{base}.py", f"{base}/__init__.py"):
        if cand in present:
            return cand
    return None


def _imports(rel: str, source: bytes, present: set[str]) -> set[str]:
    """Files of the jaxsuite modules that ``rel`` imports (and their packages' __init__.py)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    package = PurePosixPath(rel).parent.as_posix().replace("/", ".")
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)  # `from pkg import module`
    found = set()
    for name in names:
        if not name.startswith("jaxsuite"):
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # the packages on the way are imported too
            f = _module_file(".".join(parts[:i]), present)
            if f:
                found.add(f)
    return found


def fingerprint_files(method: str, tree: _Tree | None = None) -> dict[str, str]:
    """rel path -> sha256 (16 hex) of every file the fingerprint covers."""
    tree = tree or _Tree()
    all_files = tree.files()
    present = set(all_files)
    pkg, cfg = f"jaxsuite/methods/{method}/", f"configs/{method}/"
    todo = [f for f in all_files if f.startswith((pkg, cfg)) and _counted(f)]
    seen: dict[str, bytes] = {}
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen[rel] = tree.read(rel)
        if rel.endswith(".py"):
            todo.extend(f for f in _imports(rel, seen[rel], present) if f not in seen)
    return {rel: hashlib.sha256(seen[rel]).hexdigest()[:16] for rel in sorted(seen)}


def digest_of(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\0{files[rel]}\0".encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def fingerprint(method: str) -> dict:
    """``{"digest": ..., "files": {path: sha256}}`` of ``method`` in the current work tree."""
    return fingerprint_now(method)


@functools.lru_cache(maxsize=None)
def fingerprint_at(method: str, commit: str) -> dict | None:
    """The fingerprint of ``method`` at a git commit (None if the commit is not in this repository)."""
    try:
        subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True,
                       timeout=30, check=True)
        files = fingerprint_files(method, _Tree(ROOT, commit))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"digest": digest_of(files), "files": files}


def freshness(payload: dict, method: str | None = None) -> dict:
    """Is a result current? ``{"status": "current" | "stale" | "unknown", "reason": ..., "changed": [...]}``,
    comparing the fingerprint it records (or, when it records none, the one of its clean git commit) with the
    current tree's."""
    method = method or payload["method"]
    commit = str(payload.get("git_commit") or "unknown")
    recorded = payload.get("fingerprint")
    derived = False
    if not recorded:
        if commit.endswith("-dirty") or commit == "unknown":
            return {"status": "stale", "changed": [],
                    "reason": f"no fingerprint recorded and produced by {commit[:12]} "
                              f"{'with uncommitted changes' if commit != 'unknown' else '(commit unknown)'}"}
        recorded = fingerprint_at(method, commit)
        derived = True
        if recorded is None:
            return {"status": "stale", "changed": [],
                    "reason": f"no fingerprint recorded and commit {commit[:12]} is not in this repository"}
    now = fingerprint(method)
    if recorded.get("digest") == now["digest"]:
        return {"status": "current", "changed": [], "derived": derived,
                "reason": "fingerprint equals the current code's" + (" (from its commit)" if derived else "")}
    old, new = recorded.get("files", {}), now["files"]
    changed = sorted(f for f in set(old) | set(new) if old.get(f) != new.get(f))
    return {"status": "stale", "changed": changed, "derived": derived,
            "reason": f"produced by {commit[:12]}; changed since: "
                      + (", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
                         if changed else "the fingerprint")}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict:
    """CPU model, cores, accelerator (JAX's devices), OS and Python: where a result was produced."""
    try:
        import jax

        devices = jax.devices()
        accel = sorted({f"{d.platform}:{getattr(d, 'device_kind', d.platform)}" for d in devices})
        accelerator = ", ".join(accel) + f" x{len(devices)}"
    except Exception as err:  # noqa: BLE001 -- provenance must not fail a finished reproduce
        accelerator = f"unknown ({type(err).__name__})"
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "accelerator": accelerator,
            "os": f"{platform.system()} {platform.release()} {platform.machine()}",
            "python": platform.python_version()}


def libraries() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def command(method: str, preset: str, seeds, overrides=(), out=None) -> str:
    """The `jaxsuite reproduce` command line that gives this result."""
    import shlex

    parts = ["jaxsuite", "reproduce", method, "--preset", str(preset), "--seeds", ",".join(str(s) for s in seeds)]
    for o in overrides or ():
        parts += ["--set", o]
    if out is not None:
        parts += ["--out", str(out)]
    return shlex.join(parts)


def fingerprint_now(method: str) -> dict:
    """The fingerprint of the work tree as it is now (not cached)."""
    files = fingerprint_files(method)
    return {"digest": digest_of(files), "files": files}


def record(method: str, preset: str, seeds, overrides=(), out=None, *, fingerprint: dict | None = None) -> dict:
    """The provenance fields of results.json (command, date, machine, libraries, fingerprint); ``fingerprint`` as
    taken when the run started (default: now)."""
    return {"command": command(method, preset, seeds, overrides, out),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "libraries": libraries(), "fingerprint": fingerprint or fingerprint_now(method)}
