"""The build folder's bookkeeping: which files builds wrote (the manifest, also the marker
that a folder is a build folder), one build at a time (a lock), and writes that never leave
a half-written file behind (atomic replace).

A build removes only what the manifest lists: the files each finished step wrote, and the
paths a step claimed before it started (so a build killed mid-step can be
resumed and cleaned up). Anything else in the folder belongs to the user and is never
deleted or overwritten: a step whose outputs would land on such a file is refused.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hw_build.errors import BuildError

MANIFEST = "build_manifest.json"
LOCK = ".build.lock"
MANIFEST_FORMAT = "bnn-dataflow build manifest"
#: files every build writes at the top of its folder (besides the steps' outputs)
BUILD_FILES = ("build.log", "steps.json", "report.json", "report.html", MANIFEST, LOCK)
_TMP = ".partial"


# ---------------------------------------------------------------- atomic writes

def _partial(path: Path) -> Path:
    return path.with_name(path.name + _TMP)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a build killed meanwhile) sees the old
    file or the new one, never a prefix."""
    tmp = _partial(path)
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_npy_atomic(path: Path, value: np.ndarray) -> None:
    tmp = _partial(path)
    with open(tmp, "wb") as handle:
        np.save(handle, value)
    os.replace(tmp, path)


def save_model_atomic(path: Path, model) -> None:
    """ModelWrapper.save through a temporary name (a killed build leaves no truncated ONNX)."""
    tmp = _partial(path)
    model.save(str(tmp))
    os.replace(tmp, path)


# ---------------------------------------------------------------- manifest

def _is_under(rel: str, root: str) -> bool:
    return rel == root or rel.startswith(root.rstrip("/") + "/")


def _files_under(out: Path, rel: str) -> list[str]:
    """Relative paths of the files at or under ``out/rel`` (a file, a folder or nothing)."""
    p = out / rel
    if p.is_file() or p.is_symlink():
        return [rel]
    if not p.is_dir():
        return []
    return sorted(str(f.relative_to(out).as_posix()) for f in p.rglob("*") if f.is_file() or f.is_symlink())


class Manifest:
    """What the builds in one folder wrote, step by step (``build_manifest.json``)."""

    def __init__(self, out: Path, steps: dict[str, list[str]] | None = None,
                 claims: dict[str, list[str]] | None = None) -> None:
        self.out = out
        #: step -> the files it wrote (recorded when it finished)
        self.steps: dict[str, list[str]] = steps or {}
        #: step -> the paths it may write, claimed before it started and kept until it finished or its
        #: files were removed (a killed step's claim survives into the next build)
        self.claims: dict[str, list[str]] = claims or {}

    @classmethod
    def load(cls, out: Path) -> Manifest | None:
        """The folder's manifest; None when it has none (not a build folder)."""
        path = out / MANIFEST
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if data.get("format") != MANIFEST_FORMAT:
                raise ValueError("not a build manifest")
            steps = {str(k): [str(f) for f in v] for k, v in data.get("steps", {}).items()}
            claims = {str(k): [str(f) for f in v] for k, v in data.get("claims", {}).items()}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            raise BuildError(f"'{path}' is damaged ({exc}), so this build cannot tell its own files from "
                             "yours. Build into a new --output folder.") from None
        return cls(out, steps, claims)

    def save(self) -> None:
        data = {"format": MANIFEST_FORMAT, "version": 1, "build_files": list(BUILD_FILES),
                "steps": self.steps, "claims": self.claims}
        write_text_atomic(self.out / MANIFEST, json.dumps(data, indent=1) + "\n")

    def owns(self, rel: str) -> bool:
        """True when a build of this folder wrote (or, mid-step, may have written) ``rel``."""
        if rel in BUILD_FILES or any(rel == name + _TMP for name in BUILD_FILES):
            return True
        if any(rel in files for files in self.steps.values()):
            return True
        return any(_is_under(rel, root) for roots in self.claims.values() for root in roots)

    def foreign(self, paths: Iterable[str]) -> list[str]:
        """Files at or under ``paths`` that no build of this folder wrote (the user's)."""
        found: list[str] = []
        for rel in paths:
            for f in _files_under(self.out, rel) + _files_under(self.out, rel + _TMP):
                if not self.owns(f) and not self.owns(f[: -len(_TMP)] if f.endswith(_TMP) else f):
                    found.append(f)
        return sorted(set(found))

    def claim(self, step: str, paths: list[str]) -> None:
        """Record, before ``step`` runs, the paths it may write."""
        self.claims[step] = list(paths)
        self.save()

    def record(self, step: str, paths: list[str]) -> None:
        """Record the files ``step`` wrote (everything now at or under its ``paths``)."""
        self.steps[step] = sorted({f for rel in paths for f in _files_under(self.out, rel)})
        self.claims.pop(step, None)
        self.save()

    def remove(self, step: str, paths: list[str]) -> None:
        """Delete what ``step`` wrote in earlier builds (listed files, or what the step in flight
        when a build was killed claimed), then the folders among ``paths`` left empty."""
        listed = set(self.steps.pop(step, []))
        for root in self.claims.pop(step, []):
            listed.update(_files_under(self.out, root))
            listed.update(_files_under(self.out, root + _TMP))
        for rel in sorted(listed):
            (self.out / rel).unlink(missing_ok=True)
        for rel in paths:
            _prune_empty_dirs(self.out / rel)
        self.save()


def _prune_empty_dirs(top: Path) -> None:
    if not top.is_dir() or top.is_symlink():
        return
    for d in sorted((p for p in top.rglob("*") if p.is_dir() and not p.is_symlink()),
                    key=lambda p: -len(p.parts)):
        if not any(d.iterdir()):
            d.rmdir()
    if not any(top.iterdir()):
        top.rmdir()


def adopt(out: Path, force: bool, all_outputs: list[str]) -> Manifest:
    """The manifest of ``out``, or a new one when ``out`` may become a build folder.

    An existing folder without a manifest is refused when it holds anything, unless ``force``;
    even then no file the build writes may already exist there (it would be overwritten)."""
    existing = Manifest.load(out) if out.is_dir() else None
    if existing is not None:
        return existing
    manifest = Manifest(out)
    if not out.is_dir():
        return manifest
    # a lock file alone: a build took this (empty) folder and is about to write its manifest
    entries = sorted(p.name for p in out.iterdir() if p.name != LOCK)
    if not entries:
        return manifest
    if not force:
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
        old = " (it looks like a build folder of an older version without a manifest: delete it)" \
            if "steps.json" in entries else ""
        raise BuildError(f"--output '{out}' is a folder that holds files no build wrote ({shown}){old}; a build "
                         f"never deletes or overwrites your files. Choose a new or empty --output folder, or pass "
                         f"--force to build into this one (only when none of the build's own files and folders "
                         f"exist there yet).")
    clash = [rel for rel in list(BUILD_FILES) + all_outputs
             if rel != LOCK and ((out / rel).exists() or (out / rel).is_symlink())]
    if clash:
        raise BuildError(f"--force: '{out}' already holds {', '.join(sorted(set(clash))[:8])}, which the build "
                         f"would write; a build never overwrites your files. Move them away or choose another "
                         f"--output folder.")
    return manifest


# ---------------------------------------------------------------- lock

class FolderLock:
    """An exclusive lock on a build folder for the duration of one build (flock: released by the
    kernel when the process dies, so a killed build never leaves a stale lock)."""

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK
        self._handle = None

    def __enter__(self) -> FolderLock:
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise BuildError(f"another build ({holder}) is writing into '{self.path.parent}' right now; two builds "
                             "into one folder would mix their files. Wait for it to finish, or build into another "
                             "--output folder.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
