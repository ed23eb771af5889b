"""Safe on-disk caches shared by concurrent builds (the Yosys results and Verilator models).

Several builds, test workers or Ray tasks may read and fill the same cache folder at once,
and a build may be killed half way through writing an entry. So:
- an entry becomes visible only complete: it is written under a temporary name and renamed
  into place (``os.replace`` is atomic on one file system);
- two writers that would build the same entry take a per-key lock (``flock`` on
  ``<key>.lock``), and the second finds the first one's entry instead of building it again;
- every entry carries a checksum of its content (a JSON entry embeds the SHA-256 of its
  payload; a folder entry holds a ``COMPLETE.json`` manifest of its files' sizes and
  SHA-256), and a reader that finds a truncated or corrupted entry removes it and rebuilds
  it: a damaged entry is never used.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("hw_build")

#: the manifest that marks a folder entry as complete
COMPLETE_MARKER = "COMPLETE.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def key_lock(root: Path, key: str) -> Iterator[None]:
    """Hold the lock of cache entry ``key`` under ``root`` (blocks while another process or
    thread holds it; released when the holder exits, even if it is killed)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _payload_sha256(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def write_json_entry(path: Path, payload: dict) -> None:
    """Store ``payload`` at ``path`` atomically, with its checksum."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"sha256": _payload_sha256(payload), "payload": payload})
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json_entry(path: Path) -> dict | None:
    """The payload stored at ``path``; None when there is none or when it is damaged
    (unreadable, truncated, checksum wrong), in which case the damaged file is removed."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        entry = json.loads(text)
        payload = entry["payload"]
        ok = isinstance(payload, dict) and entry["sha256"] == _payload_sha256(payload)
    except (ValueError, KeyError, TypeError):
        ok = False
    if ok:
        return payload
    log.warning("cache entry %s is damaged (truncated or corrupted): removed, it is rebuilt", path)
    path.unlink(missing_ok=True)
    return None


def seal_dir(folder: Path, files: list[str]) -> None:
    """Write the manifest that marks ``folder`` as a complete entry holding ``files``
    (call it on the temporary folder, before renaming it into place)."""
    folder = Path(folder)
    manifest = {name: {"size": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
                for name in files}
    (folder / COMPLETE_MARKER).write_text(json.dumps(manifest, indent=1, sort_keys=True))


def dir_is_complete(folder: Path) -> bool:
    """Whether ``folder`` is a complete, undamaged entry (see :func:`seal_dir`)."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / COMPLETE_MARKER).read_text())
        if not isinstance(manifest, dict) or not manifest:
            return False
        for name, meta in manifest.items():
            f = folder / name
            if f.stat().st_size != meta["size"] or file_sha256(f) != meta["sha256"]:
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def remove_damaged_dir(folder: Path) -> None:
    """Remove an incomplete or damaged folder entry (a reader found it unusable)."""
    folder = Path(folder)
    if folder.exists():
        log.warning("cache entry %s is incomplete or damaged: removed, it is rebuilt", folder)
        shutil.rmtree(folder, ignore_errors=True)


def publish_dir(tmp: Path, final: Path) -> None:
    """Move the sealed temporary folder ``tmp`` to ``final`` (replacing a damaged one)."""
    final = Path(final)
    if final.exists():
        shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
