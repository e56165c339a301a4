"""Durable, atomic replacement of files: stores, exports, assessors' files, site reports.

:func:`replacing` hands out a temporary path in the target's own folder; when the
``with`` block succeeds the temporary file is flushed to disk (``fsync``), moved over the
target with :func:`os.replace` and the folder is flushed too, so that after a crash the
target holds the old content or the new one, never a truncated file. When the block
fails the temporary file (and any SQLite journal next to it) is removed and the target
is left byte-identical.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from geo_protect.errors import StoreError

__all__ = ["SIDECARS", "replace_files", "replacing", "temporary_path", "write_atomic"]

#: Files SQLite (and so GDAL's GeoPackage driver) may leave next to a database.
SIDECARS = ("-journal", "-wal", "-shm")


def temporary_path(target: Path) -> Path:
    """A fresh hidden temporary path next to ``target``, with the same suffix.

    Parameters
    ----------
    target : Path
        The file that will be replaced.

    Returns
    -------
    Path
        ``<folder>/.<stem>.<random>.tmp<suffix>`` (hidden, so listings of the folder
        skip it; same suffix, so GDAL picks the same driver).
    """
    target = Path(target)
    return target.with_name(f".{target.stem}.{uuid.uuid4().hex}.tmp{target.suffix}")


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """Write to a temporary file in ``target``'s folder, then move it over ``target``.

    Parameters
    ----------
    target : Path
        The file to replace (or create); its folder is created if needed.

    Yields
    ------
    Path
        The temporary path to write (it does not exist yet).

    Raises
    ------
    StoreError
        Nothing was written to the temporary path, or flushing or moving it failed
        (the message names both files; ``target`` is then unchanged), or the folder
        could not be flushed after the move.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with replacing(folder / "a.txt") as tmp:
    ...     _ = tmp.write_text("new", encoding="utf-8")
    >>> (folder / "a.txt").read_text(encoding="utf-8"), sorted(p.name for p in folder.iterdir())
    ('new', ['a.txt'])
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{target}: cannot create its folder: {exc}") from exc
    tmp = temporary_path(target)
    try:
        yield tmp
        if not tmp.is_file():
            raise StoreError(f"{target}: nothing was written to the temporary file {tmp.name}")
        try:
            _fsync(tmp, directory=False)
            tmp.replace(target)  # os.replace: atomic within one folder
        except OSError as exc:
            raise StoreError(f"{target}: cannot move {tmp.name} over it: {exc}") from exc
        try:
            _fsync(target.parent, directory=True)
        except OSError as exc:
            raise StoreError(
                f"{target}: replaced, but its folder could not be flushed to disk: {exc}"
            ) from exc
    finally:
        for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in SIDECARS)):
            leftover.unlink(missing_ok=True)


def _fsync(path: Path, *, directory: bool) -> None:
    """Flush ``path`` (a file, or a folder's entries) to disk."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`replacing`).

    Parameters
    ----------
    path : Path
        The file to (re)place.
    data : str or bytes
        The content; text is written as UTF-8.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "sub" / "a.yaml"
    >>> write_atomic(target, "x: 1").read_text(encoding="utf-8")
    'x: 1'
    """
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with replacing(path) as tmp:
        tmp.write_bytes(raw)
    return path


def replace_files(moves: dict[Path, Path], sync: Callable[[Path], None] | None = None) -> None:
    """Move each written temporary file over its target, flushing files and folders.

    Parameters
    ----------
    moves : dict of Path to Path
        Temporary file → target (on the same file system).
    sync : callable, optional
        Called on each temporary file before its move (``fsync`` by default).
    """
    for tmp, target in moves.items():
        (sync or (lambda f: _fsync(f, directory=False)))(tmp)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(target)
    for folder in {t.parent for t in moves.values()}:
        _fsync(folder, directory=True)
