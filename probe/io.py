"""Atomic file writes and the study write lock: pure I/O, no knowledge of tables or models.

Every writer of a study (the store, directions, embeddings, the trainer, reports) writes through
`atomic_write_bytes` (tmp + fsync + os.replace: readers see the old or the new file, never half) and holds
`study_lock` (flock on `<study>/.lock`). OS errors become one-line `StoreWriteError`s naming the path and the fix.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ProbeError

LOCK = ".lock"
# folders of a study where writers leave `.<name>.<pid>.tmp` files (swept once the lock is held)
TMP_DIRS = (".", "parts", "directions", "edits", ".cache/embed")


class StoreError(ProbeError):
    """A study directory or table is missing, incomplete or unreadable; the message names the fix."""


class StudyBusyError(StoreError):
    """Another live process holds the study's write lock."""


class StoreWriteError(StoreError, OSError):
    """A write into a study failed at the OS level (disk full, read-only, no permission); the file it would have
    replaced is intact. Also an OSError, so callers that catch OSError keep working."""


_WRITE_FIX = {
    errno.ENOSPC: ("no space left on device", "free disk space"),
    errno.EDQUOT: ("disk quota exceeded", "free disk space or raise the quota"),
    errno.EROFS: ("read-only file system", "make the directory writable (or copy the study to a writable place)"),
    errno.EACCES: ("permission denied", "make the directory writable by this user"),
    errno.EPERM: ("operation not permitted", "make the directory writable by this user"),
}


def write_error(e: OSError, path: str | os.PathLike) -> StoreWriteError:
    """One-line StoreWriteError for an OSError while writing `path`: the reason, the path and the fix."""
    reason, fix = _WRITE_FIX.get(e.errno, (e.strerror or type(e).__name__, "check the disk and the directory"))
    return StoreWriteError(
        f"cannot write {str(path)!r}: {reason} [{errno.errorcode.get(e.errno, e.errno)}]; "
        f"{fix}, then run the command again (probe run continues with --resume); "
        f"files already written are intact"
    )


# ---- atomic writes -------------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _discard(path: Path) -> None:
    """Remove a leftover tmp file; a failure to remove it must not hide the error being reported."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _write_file(path: Path, data: bytes) -> None:
    """The one low-level write: write + flush + fsync (tests simulate ENOSPC / EROFS here)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes to `path` via a tmp file, fsync and os.replace: readers see the old or the new file, never half.

    An OSError (disk full, read-only, permission) removes the tmp file, leaves the old file as it was and raises
    a one-line StoreWriteError naming the path and the fix."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_file(tmp, data)
        os.replace(tmp, path)
    except OSError as e:
        _discard(tmp)
        raise write_error(e, path) from None
    _fsync_dir(path.parent)
    return path


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    """`obj` as indented JSON text, atomically (numpy values and paths allowed)."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=1, default=json_default) + "\n").encode())


def atomic_write_parquet(path: str | os.PathLike, df: pd.DataFrame) -> Path:
    """A DataFrame as Parquet (no index), atomically."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_save_npy(path: str | os.PathLike, arr: np.ndarray) -> Path:
    """An array as .npy (no pickle), atomically."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue())


def json_default(o):
    """JSON encoding of numpy scalars and arrays and of paths (json.dumps(default=...))."""
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.ndarray,)):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---- the study lock ------------------------------------------------------------------------------
_HELD: dict[str, list] = {}  # realpath -> [fd, depth] of the locks this process holds
_THREADS: dict[str, threading.RLock] = {}
_THREADS_GUARD = threading.Lock()
_TMP = re.compile(r"^\..+\.(\d+)\.tmp$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_tmp(path: str | os.PathLike) -> list[Path]:
    """Remove `.<name>.<pid>.tmp` files of dead processes in a study (top level, parts/, directions/, edits/,
    .cache/embed/)."""
    path = Path(path)
    gone = []
    for d in (path / t for t in TMP_DIRS):
        if not d.is_dir():
            continue
        for f in d.glob(".*.tmp"):
            m = _TMP.match(f.name)
            if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
                _discard(f)
                gone.append(f)
    return gone


def _holder(fd: int, wait: float = 1.0) -> str:
    """The PID the lock holder wrote; it writes it just after taking the lock, so wait up to `wait` s for it."""
    t0 = time.monotonic()
    while True:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            pid = os.read(fd, 32).decode("ascii", "replace").strip()
        except OSError:
            pid = ""
        if pid.isdigit() or time.monotonic() - t0 > wait:
            return pid if pid.isdigit() else "unknown"
        time.sleep(0.01)


@contextmanager
def study_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive write lock of a study directory (flock on `<path>/.lock`, holding the PID as text).

    Re-entrant within a thread; other threads of the process wait for it. Another live holder process ->
    StudyBusyError naming its PID; the OS drops the lock of a process that dies, so a killed holder never blocks.
    Creates `path` if needed (removed again, with the parents it made, if still empty on exit); sweeps the tmp
    files of dead writers once the lock is held."""
    path = Path(path)
    key = os.path.realpath(path)
    with _THREADS_GUARD:
        rlock = _THREADS.setdefault(key, threading.RLock())
    with rlock:
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
            try:
                yield path
            finally:
                held[1] -= 1
            return
        made = [p for p in [path, *path.parents] if not p.exists()]
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(e, path) from None
        try:
            fd = _acquire(path)
        except BaseException:
            _rmdir_empty(made)
            raise
        _HELD[key] = [fd, 1]
        try:
            sweep_stale_tmp(path)
            yield path
        finally:
            _HELD.pop(key, None)
            _discard(path / LOCK)
            os.close(fd)
            _rmdir_empty(made)


def _acquire(path: Path) -> int:
    lock = path / LOCK
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise write_error(e, lock) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            pid = _holder(fd)
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise write_error(e, lock) from None
            raise StudyBusyError(
                f"study {str(path)!r} is in use by another probe process (PID {pid}); "
                f"wait for it to finish or use another --out"
            ) from None
        try:  # a holder that released meanwhile unlinked the file we opened: lock the new one
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _rmdir_empty(made: list[Path]) -> None:
    """Remove the directories the lock created (deepest first) while they are empty."""
    for d in made:
        try:
            d.rmdir()
        except OSError:
            return


def _after_fork_in_child() -> None:
    """A forked child (a multiprocessing worker under the fork start method, a pre-forking server) is another
    writer: it must take the flock itself (and get the busy line while the parent holds it) rather than nest
    into the parent's lock, and must not wait on a thread lock held by a parent thread the child does not have."""
    _HELD.clear()
    _THREADS.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def holds_lock(path: str | os.PathLike) -> bool:
    """Whether this process holds the study's lock."""
    return os.path.realpath(path) in _HELD
