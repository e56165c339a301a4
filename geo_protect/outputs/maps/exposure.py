"""Vehicle-exposure bands of attainable impact speeds, as the maps colour them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo_protect.outputs.maps import style
from geo_protect.reference import table

__all__ = ["exposure_band", "map_setting"]


def map_setting(name: str, value: float | None) -> float:
    """A display setting: the caller's value, else the ``risk_map`` reference table's.

    Parameters
    ----------
    name : str
        Row of the ``risk_map`` reference table.
    value : float or None
        The caller's value, if any.

    Returns
    -------
    float
        The setting.
    """
    if value is not None:
        return float(value)
    return float(table("risk_map").set_index("name").at[name, "value"])


def exposure_band(
    speed_kmh: pd.Series,
    *,
    medium_kmh: float | None = None,
    high_kmh: float | None = None,
    critical_kmh: float | None = None,
) -> pd.Series:
    """Vehicle-exposure band of the worst entry speed: low, medium, high, very high or NA.

    Parameters
    ----------
    speed_kmh : Series
        Worst impact speed at any entry (0 when no vehicle reaches the space; NA unknown).
    medium_kmh, high_kmh, critical_kmh : float, optional
        Lower bounds of the bands; ``risk_map`` reference table by default.

    Returns
    -------
    pandas.Series
        Index-aligned strings, named ``exposure_band``.

    Examples
    --------
    >>> exposure_band(pd.Series([0.0, 30.0, 50.0, 70.0, None])).tolist()
    ['low', 'medium', 'high', 'very high', <NA>]
    """
    bounds = [
        map_setting("exposure_medium_kmh", medium_kmh),
        map_setting("exposure_high_kmh", high_kmh),
        map_setting("exposure_critical_kmh", critical_kmh),
    ]
    speed = pd.to_numeric(speed_kmh, errors="coerce").astype("float64").to_numpy()
    index = np.searchsorted(np.asarray(bounds), np.nan_to_num(speed, nan=0.0), side="right")
    bands = np.asarray(style.BAND_ORDER, dtype=object)[index]
    out = pd.Series(bands, index=speed_kmh.index, name="exposure_band", dtype="string")
    out[np.isnan(speed)] = pd.NA
    return out
