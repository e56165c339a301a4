"""The evidence → rating bands of ``prefill_bands.csv``, looked up for every pre-fill rule."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from geo_protect import reference
from geo_protect.errors import ConfigError

__all__ = ["band_lookup", "rule_bands"]


def rule_bands(rule: str, bands: pd.DataFrame | None = None) -> pd.DataFrame:
    """The bands of one rule, ascending, checked to be contiguous.

    Examples
    --------
    >>> [float(x) for x in rule_bands("capacity_persons")["lower"]][:3]
    [0.0, 200.0, 800.0]
    """
    frame = reference.table("prefill_bands") if bands is None else bands
    sel = frame[frame["rule"] == rule].sort_values("lower")
    if sel.empty:
        raise ConfigError(f"prefill_bands: no bands for rule {rule!r}")
    lower = sel["lower"].to_numpy(dtype=float)
    upper = sel["upper"].to_numpy(dtype=float)
    if not np.array_equal(upper[:-1], lower[1:]):
        raise ConfigError(f"prefill_bands: bands of rule {rule!r} are not contiguous")
    return sel.reset_index(drop=True)


def band_lookup(
    values: pd.Series, rule: str, bands: pd.DataFrame | None, name: str
) -> tuple[pd.Series, pd.Series]:
    """Rating and rule text per value (NA where the value is NA or outside every band).

    Examples
    --------
    >>> r, t = band_lookup(pd.Series([150.0, None]), "capacity_persons", None, "people")
    >>> r.tolist(), t.iloc[0][:40]
    ([1, <NA>], 'prefill_bands/capacity_persons: 0 ≤ peop')
    """
    sel = rule_bands(rule, bands)
    lower = sel["lower"].to_numpy(dtype=float)
    upper = sel["upper"].to_numpy(dtype=float)
    x = values.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    idx = np.searchsorted(lower, x, side="right") - 1
    ok = ~np.isnan(x) & (idx >= 0) & (x < upper[np.clip(idx, 0, len(sel) - 1)])
    idx = np.where(ok, idx, 0)
    ratings = sel["rating"].to_numpy(dtype=int)[idx]
    texts = np.array(
        [
            f"prefill_bands/{rule}: {_num(lo)} ≤ {name} < {_num(hi)} → {r} ({label})"
            for lo, hi, r, label in zip(lower, upper, sel["rating"], sel["label"], strict=True)
        ],
        dtype=object,
    )[idx]
    rating = pd.Series(pd.array(np.where(ok, ratings, 0), dtype="Int64"), index=values.index)
    rating[~ok] = pd.NA
    text = pd.Series(pd.array(texts, dtype="string"), index=values.index)
    text[~ok] = pd.NA
    return rating, text


def _num(x: float) -> str:
    return "∞" if math.isinf(x) else f"{x:g}"
