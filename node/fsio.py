"""Durable file writes: temp file, fsync, atomic publish, fsync the directory."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from chhaya import KeyFileError, StorageError

__all__ = ["replace_file_atomic", "write_new_file_atomic"]


def _write_temp(path: Path, data: bytes, mode: int) -> Path:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover from a crash of this same pid
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it; never widened
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_new_file_atomic(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with exactly ``data``; never overwrite an existing file."""
    if path.exists():
        raise KeyFileError(str(path), "already exists; refusing to overwrite a key")
    tmp = _write_temp(path, data, mode)
    try:
        os.link(tmp, path)  # unlike rename, fails if the target appeared meanwhile
    except FileExistsError:
        raise KeyFileError(str(path), "already exists; refusing to overwrite a key") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def replace_file_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` so that a crash leaves either the old or the new bytes."""
    try:
        tmp = _write_temp(path, data, mode)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise StorageError(f"{path}: cannot write: {exc.strerror or exc}") from None
