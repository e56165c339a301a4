"""Atomic file writes for the assessors' files: a crash mid-write leaves the old file intact.

Each file is written to a temporary file in the *same folder* (so the final move stays on
one file system), flushed and ``fsync``-ed, then moved over the target with
:func:`os.replace`; a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["atomic_path", "replace_files", "write_atomic"]


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + fsync + :func:`os.replace`).

    Parameters
    ----------
    path : Path
        The file to (re)place; its folder is created if needed.
    data : str or bytes
        The content; text is written as UTF-8.

    Returns
    -------
    Path
        ``path``.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        tmp.write_bytes(raw)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to ``path``, moved over it when the block ends without error.

    The caller writes the temporary file (with any library); it is ``fsync``-ed and moved
    with :func:`os.replace` on success, and removed on error, leaving ``path`` as it was.

    Parameters
    ----------
    path : Path
        The file to (re)place; its folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def replace_files(moves: dict[Path, Path], sync: Callable[[Path], None] | None = None) -> None:
    """Move each written temporary file over its target with :func:`os.replace`.

    Parameters
    ----------
    moves : dict of Path to Path
        Temporary file → target (in the same file system).
    sync : callable, optional
        Called on each temporary file before the move (``fsync`` by default).
    """
    for tmp, target in moves.items():
        (sync or _fsync_file)(tmp)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(target)
    for folder in {t.parent for t in moves.values()}:
        _fsync_dir(folder)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
