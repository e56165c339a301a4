"""Reading OSM tag values: tag objects, columns of values, numbers, lengths and speeds.

OSM values are free text (``"3,5"``, ``"12 ft"``, ``"30 mph"``, ``"RO:urban"``). These
parsers turn them into numbers in SI-style units, NaN where a value cannot be read, so
the classification (:mod:`geo_protect.osm.taxonomy`) never guesses.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["parse_length", "parse_maxspeed", "parse_number", "tag_columns", "tag_dicts"]


# Unit definitions (exact by international agreement), not tunable values.
_FOOT_M = 0.3048


_INCH_M = 0.0254


_MILE_KM = 1.609344


_KNOT_KMH = 1.852


def parse_number(values: pd.Series) -> pd.Series:
    """Plain numbers of OSM values (``"2"``, ``"3.5"``, ``"4,5"``); anything else is NaN.

    Parameters
    ----------
    values : Series
        Raw OSM tag values (text or None).

    Returns
    -------
    Series
        Floats, indexed like ``values``.

    Examples
    --------
    >>> parse_number(pd.Series(["2", "2;3", None, "1,5"])).tolist()
    [2.0, nan, nan, 1.5]
    """
    text = values.astype("string").str.strip().str.replace(",", ".", regex=False)
    num = text.str.fullmatch(r"\d+(?:\.\d+)?").fillna(False).astype(bool)
    out = pd.to_numeric(text.where(num), errors="coerce")
    return pd.Series(
        out.to_numpy(dtype=float, na_value=np.nan), index=values.index, dtype="float64"
    )


def parse_length(values: pd.Series) -> pd.Series:
    """Lengths in metres of OSM ``width``/``maxwidth`` values; unparsable ones are NaN.

    Accepts ``"3"``, ``"3.5 m"``, ``"3,5"``, ``"12 ft"``, ``"7'6\\""``.

    Parameters
    ----------
    values : Series
        Raw OSM tag values (text or None).

    Returns
    -------
    Series
        Metres, indexed like ``values``.

    Examples
    --------
    >>> parse_length(pd.Series(["3", "3.5 m", "10 ft", "7'6\\"", "narrow"])).round(3).tolist()
    [3.0, 3.5, 3.048, 2.286, nan]
    """
    text = values.astype("string").str.strip().str.lower().str.replace(",", ".", regex=False)
    metric = text.str.extract(r"^(\d+(?:\.\d+)?)\s*(?:m|metres?|meters?)?$")[0]
    feet = text.str.extract(r"^(\d+(?:\.\d+)?)\s*(?:ft|feet|foot|')$")[0]
    ftin = text.str.extract(r"^(\d+)\s*'\s*(\d+(?:\.\d+)?)\s*(?:\"|'')$")
    out = _num(metric)
    out = np.where(np.isnan(out), _num(feet) * _FOOT_M, out)
    out = np.where(np.isnan(out), _num(ftin[0]) * _FOOT_M + _num(ftin[1]) * _INCH_M, out)
    return pd.Series(out, index=values.index, dtype="float64")


def parse_maxspeed(values: pd.Series) -> pd.Series:
    """Speeds in km/h of OSM ``maxspeed`` values; implicit ones (``RO:urban``) are NaN.

    Parameters
    ----------
    values : Series
        Raw OSM tag values (text or None).

    Returns
    -------
    Series
        km/h, indexed like ``values``.

    Examples
    --------
    >>> parse_maxspeed(pd.Series(["50", "30 mph", "RO:urban", "none", "20 km/h"])).round(2).tolist()
    [50.0, 48.28, nan, nan, 20.0]
    """
    text = values.astype("string").str.strip().str.lower()
    parts = text.str.extract(r"^(\d+(?:\.\d+)?)\s*(km/h|kmh|kph|mph|knots)?$")
    speed = _num(parts[0])
    unit = parts[1].fillna("").to_numpy(dtype=object)
    factor = np.where(unit == "mph", _MILE_KM, np.where(unit == "knots", _KNOT_KMH, 1.0))
    return pd.Series(speed * factor, index=values.index, dtype="float64")


def tag_dicts(tags: pd.Series) -> list[dict[str, str]]:
    """Tags of each element as a dict, from dicts or JSON text (empty where missing).

    Parameters
    ----------
    tags : Series
        Per element: a dict, JSON text or a missing value.

    Returns
    -------
    list of dict
        One dict per element.

    Examples
    --------
    >>> tag_dicts(pd.Series([{"a": "1"}, '{"b": "2"}', None]))
    [{'a': '1'}, {'b': '2'}, {}]
    """
    out: list[dict[str, str]] = []
    for value in tags.tolist():
        if isinstance(value, dict):
            out.append(value)
        elif isinstance(value, str) and value:
            out.append(json.loads(value))
        else:
            out.append({})
    return out


def tag_columns(tags: Sequence[Mapping[str, str]], keys: Collection[str]) -> dict[str, np.ndarray]:
    """Values of each key as an object array (``None`` where absent), in one pass over the tags.

    Parameters
    ----------
    tags : Sequence of Mapping
        The elements' tags.
    keys : Collection of str
        The keys to read.

    Returns
    -------
    dict of str to ndarray
        Per key, one value per element.

    Examples
    --------
    >>> tag_columns([{"width": "3"}, {}], ["width"])["width"].tolist()
    ['3', None]
    """
    wanted = frozenset(keys)
    lists: dict[str, list[str | None]] = {key: [None] * len(tags) for key in wanted}
    for i, element_tags in enumerate(tags):
        for key in wanted.intersection(element_tags):
            lists[key][i] = element_tags[key]
    out: dict[str, np.ndarray] = {}
    for key, values in lists.items():
        col = np.empty(len(values), dtype=object)
        col[:] = values
        out[key] = col
    return out


def _num(values: pd.Series) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce")
    return np.asarray(numbers.to_numpy(dtype=float, na_value=np.nan), dtype=float)
