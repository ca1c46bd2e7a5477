"""Durable file primitives for the state directory.

The rule for every function here: when it returns, what it wrote survives a crash or a power loss.
Files are created 0600 and directories 0700. ``tighten_dir`` brings an existing directory of
ours back to 0700; nothing else changes the mode of a thing we did not create.

Opening and directory checks raise `StateDirError` (the operator must fix permissions); the write
helpers let `OSError` through so the caller can say what was lost.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from bot_cli.store import StateDirError, StoreError


DIR_MODE = 0o700
FILE_MODE = 0o600
_TAIL_BLOCK = 4096


def ensure_dir(path: Path) -> None:
    """Create the state directory (0700) if missing, and every missing parent 0700 too (whatever
    the umask); raise StateDirError if it is unusable."""
    if path.exists() or path.is_symlink():
        _check_existing_dir(path)
        return
    missing = [p for p in (path, *path.parents) if not p.exists()][::-1]
    for p in missing:
        try:
            os.mkdir(p, DIR_MODE)
        except FileExistsError:  # made by another process meanwhile
            continue
        except OSError as exc:
            raise StateDirError(
                f"state directory {path} cannot be created ({_why(exc)}): fix the permissions of "
                f"its parent or pass another --state-dir"
            ) from exc
        os.chmod(p, DIR_MODE)  # the umask may have taken bits we need
        fsync_dir(p.parent)
    _check_existing_dir(path)


def _check_existing_dir(path: Path) -> None:
    if not path.is_dir():
        raise StateDirError(
            f"state directory {path} exists but is not a directory: move it away or pass "
            f"another --state-dir"
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise StateDirError(
            f"state directory {path} is not writable: fix its permissions or pass another "
            f"--state-dir"
        )


def tighten_dir(path: Path) -> int | None:
    """Make an existing directory 0700; its old mode if it had to change, else None.

    A directory with the sticky bit (a shared one, like /tmp) is never changed, nor one whose
    mode we may not change: both raise StateDirError, for the operator to decide.
    """
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return None
    if mode & stat.S_ISVTX:
        raise StateDirError(
            f"directory {path} is shared ({mode:04o}, sticky): the journal must not be readable "
            f"by others; pass a --state-dir of your own"
        )
    try:
        os.chmod(path, DIR_MODE)
    except OSError as exc:
        raise StateDirError(
            f"directory {path} is {mode:04o} and its mode cannot be changed ({_why(exc)}): "
            f"chmod 700 it or pass another --state-dir"
        ) from exc
    return mode


def open_file(path: Path, flags: int) -> int:
    """Open `path` with `flags`, creating it 0600 (and syncing its directory) if it is missing."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return _open_existing(path, flags)
    except OSError as exc:
        raise _open_error(path, exc) from exc
    try:
        os.fchmod(fd, FILE_MODE)  # the umask may have taken bits we need
        fsync_dir(path.parent)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_existing(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags)
    except OSError as exc:
        raise _open_error(path, exc) from exc


def _open_error(path: Path, exc: OSError) -> StateDirError:
    return StateDirError(
        f"cannot open {path} ({_why(exc)}): fix the permissions of the state directory or pass "
        f"another --state-dir"
    )


def fsync_dir(path: Path) -> None:
    """Make a create, rename or unlink inside `path` durable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError(
            f"cannot sync directory {path} ({_why(exc)}): check the disk; the last change to it "
            f"may not survive a crash"
        ) from exc


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a regular file may take a short write)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def append_durable(fd: int, data: bytes) -> None:
    """Append `data` (fd is O_APPEND) and fsync before returning."""
    write_all(fd, data)
    os.fsync(fd)


def truncate_durable(fd: int, size: int) -> None:
    """Cut the file back to `size` bytes and fsync."""
    os.ftruncate(fd, size)
    os.fsync(fd)


def replace_durable(path: Path, data: bytes) -> None:
    """Replace `path` atomically: write a temp file beside it, fsync, rename, fsync the directory.

    The temp name is fixed, so a temp left by a crash is overwritten by the next replace; callers
    serialise replaces of one file (the journal lock does).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(path.parent)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):  # best effort: the next replace overwrites it anyway
        os.unlink(path)


def read_range(fd: int, offset: int, size: int) -> bytes:
    """Read up to `size` bytes at `offset` (fewer only at end of file)."""
    chunks: list[bytes] = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def cut_torn_tail(fd: int) -> int:
    """Drop the bytes after the last newline (an append a crash cut short); how many were cut."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    end = end_of_last_line(fd, size)
    truncate_durable(fd, end)
    return size - end


def end_of_last_line(fd: int, size: int) -> int:
    """Offset just past the last newline in the first `size` bytes (0 when there is none)."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_BLOCK)
        block = os.pread(fd, end - start, start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def io_error(action: str, path: Path, exc: OSError, consequence: str) -> StoreError:
    """The StoreError for a failed read or write: what failed, what it means, what to check."""
    return StoreError(
        f"cannot {action} {path} ({exc.strerror}): {consequence}; check free disk space and "
        f"the disk's health"
    )


def _why(exc: OSError) -> str:
    return exc.strerror or errno.errorcode.get(exc.errno or 0, type(exc).__name__)
