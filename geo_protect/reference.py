"""Versioned reference tables (thresholds, coefficients, tag rules) with their provenance.

Tables live in ``data/reference/*.csv``; each row carries ``confidence`` (S sourced,
V unverified, I design choice) and ``source``. Code reads values from here, never from
literals, so an analyst can see and change every figure the product uses.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

import pandas as pd

from geo_protect.errors import ConfigError

__all__ = [
    "CONFIDENCE",
    "DEFAULT_DATA_DIR",
    "data_dir",
    "manifest",
    "parameter",
    "reference_dir",
    "set_data_dir",
    "table",
    "version",
]

#: Meaning of the confidence codes carried by every row.
CONFIDENCE = {"S": "sourced", "V": "unverified", "I": "indicative (design choice)"}

#: The data folder shipped next to the package (``cities.toml``, ``reference/``...).
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"

_active: list[Path] = [DEFAULT_DATA_DIR]


def set_data_dir(folder: Path | None) -> Path:
    """Make ``folder`` the data folder used where a caller passes none; return the old one.

    Only the surfaces (CLI, service, notebooks) call this, with the folder of their
    :class:`~geo_protect.settings.Settings`; library code never reads the environment.
    ``None`` restores :data:`DEFAULT_DATA_DIR`.

    Parameters
    ----------
    folder : Path or None
        The data folder (holding ``reference/``), or ``None`` for the shipped one.

    Returns
    -------
    Path
        The folder that was active before.

    Examples
    --------
    >>> old = set_data_dir(None)
    >>> data_dir() == DEFAULT_DATA_DIR
    True
    >>> _ = set_data_dir(old)
    """
    previous = _active[0]
    _active[0] = (folder or DEFAULT_DATA_DIR).resolve()
    return previous


def data_dir(folder: Path | None = None) -> Path:
    """``folder`` if given, else the active data folder (see :func:`set_data_dir`).

    Examples
    --------
    >>> data_dir(Path("/srv/geo")).as_posix()
    '/srv/geo'
    """
    return _active[0] if folder is None else folder.resolve()  # the active one is resolved


def reference_dir(folder: Path | None = None) -> Path:
    """Folder of the reference tables of a data folder (the active one by default).

    Examples
    --------
    >>> reference_dir().name
    'reference'
    """
    return data_dir(folder) / "reference"


def _stamp(path: Path, what: str = "reference table") -> tuple[int, int]:
    """What identifies one state of a file on disk: (modification time in ns, size)."""
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: {what} not found") from exc
    return st.st_mtime_ns, st.st_size


@cache
def _read(path: Path, stamp: tuple[int, int]) -> pd.DataFrame:
    """A table as it is on disk; the stamp keys the cache, so an edited file is re-read."""
    try:
        frame = pd.read_csv(
            path, dtype_backend="numpy_nullable", keep_default_na=False, na_values=[""]
        )
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: reference table not found") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot parse reference table: {exc}") from exc
    for col in ("confidence", "source"):
        if col not in frame.columns:
            raise ConfigError(f"{path}: reference table lacks the {col!r} column")
    bad = ~frame["confidence"].isin(list(CONFIDENCE))
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0]) + 2
        raise ConfigError(f"{path}, line {row}: confidence must be one of S, V, I")
    for col in frame.columns:
        if frame[col].dtype == "string":
            lowered = frame[col].str.lower()
            if lowered.dropna().isin(["true", "false"]).all() and lowered.notna().any():
                frame[col] = lowered.map({"true": True, "false": False}).astype("boolean")
    return frame


def table(name: str, data_dir: Path | None = None) -> pd.DataFrame:
    """Read reference table ``name`` (``data/reference/<name>.csv``).

    Returns a copy, so callers may modify it (e.g. a planner's what-if values).

    Raises
    ------
    ConfigError
        If the table is missing, unparsable or lacks its provenance columns.

    Examples
    --------
    >>> table("barrier_types").set_index("barrier").loc["bollard", "stops_vehicle"]
    'gap'
    """
    path = reference_dir(data_dir) / f"{name}.csv"
    return _read(path, _stamp(path)).copy()


@cache
def _manifest(path: Path, stamp: tuple[int, int]) -> dict[str, object]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    if "version" not in raw:
        raise ConfigError(f"{path}: manifest without a `version`")
    return raw


def manifest(data_dir: Path | None = None) -> dict[str, object]:
    """The manifest of the reference tables: ``version`` and a ``tables`` description.

    Re-read whenever ``manifest.toml`` changes on disk, as the tables are, so a
    long-running process never reports a new version with old tables or the reverse.

    Raises
    ------
    ConfigError
        If ``manifest.toml`` is missing, not TOML or has no ``version``.

    Examples
    --------
    >>> "vehicle_classes" in manifest()["tables"]
    True
    """
    path = reference_dir(data_dir) / "manifest.toml"
    return dict(_manifest(path, _stamp(path, "reference manifest")))


def version(data_dir: Path | None = None) -> str:
    """Version string of the reference tables (``manifest.toml``).

    Examples
    --------
    >>> version() == manifest()["version"]
    True
    """
    return str(manifest(data_dir)["version"])


def parameter(name: str, data_dir: Path | None = None) -> float:
    """One named value of the ``parameters`` table.

    Examples
    --------
    >>> parameter("max_bollard_gap_m")
    1.2
    """
    path = reference_dir(data_dir) / "parameters.csv"
    values = _parameters(path, _stamp(path))
    if name not in values:
        raise ConfigError(f"{path}: no parameter named {name!r}")
    return values[name]


@cache
def _parameters(path: Path, stamp: tuple[int, int]) -> dict[str, float]:
    """The ``parameters`` table as a name → value dict (cached like :func:`_read`)."""
    frame = _read(path, stamp)
    return {str(n): float(v) for n, v in zip(frame["name"], frame["value"], strict=True)}
