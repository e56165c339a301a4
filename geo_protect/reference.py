"""Versioned reference tables (thresholds, coefficients, tag rules) with their provenance.

Tables live in ``data/reference/*.csv``; each row carries ``confidence`` (S sourced,
V unverified, I design choice) and ``source``. Code reads values from here, never from
literals, so an analyst can see and change every figure the product uses.
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path

import pandas as pd

from geo_protect._errors import ConfigError
from geo_protect.settings import Settings

__all__ = ["CONFIDENCE", "parameter", "reference_dir", "table", "version"]

#: Meaning of the confidence codes carried by every row.
CONFIDENCE = {"S": "sourced", "V": "unverified", "I": "indicative (design choice)"}


def reference_dir(data_dir: Path | None = None) -> Path:
    """Folder of the reference tables for a data folder (the configured one by default)."""
    return (data_dir or _configured_data_dir(os.environ.get("GEO_PROTECT_DATA_DIR"))).resolve() / (
        "reference"
    )


@cache
def _configured_data_dir(env_value: str | None) -> Path:
    """The configured data folder, read once per value of ``GEO_PROTECT_DATA_DIR``."""
    return Settings().data_dir


@cache
def _read(path: Path) -> pd.DataFrame:
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
    return _read(reference_dir(data_dir) / f"{name}.csv").copy()


def version(data_dir: Path | None = None) -> str:
    """Version string of the reference tables (``manifest.toml``)."""
    path = reference_dir(data_dir) / "manifest.toml"
    try:
        return str(tomllib.loads(path.read_text(encoding="utf-8"))["version"])
    except (FileNotFoundError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: missing or without a `version`") from exc


def parameter(name: str, data_dir: Path | None = None) -> float:
    """One named value of the ``parameters`` table.

    Examples
    --------
    >>> parameter("max_bollard_gap_m")
    1.2
    """
    params = table("parameters", data_dir).set_index("name")
    if name not in params.index:
        path = reference_dir(data_dir) / "parameters.csv"
        raise ConfigError(f"{path}: no parameter named {name!r}")
    return float(params.at[name, "value"])
