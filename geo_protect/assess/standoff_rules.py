"""VBIED pre-fill rules from the ``standoff`` layer, and the band lookup they share.

* vulnerability (``prefill_bands`` rule ``vbied_standoff_ratio``): the stand-off of the
  worst vehicle class, ``closest_m / mandatory_m`` (0 when the vehicle can drive into the
  space). The chart's mandatory distances grow with the cube root of the charge, so the
  ratio is a scaled distance: 1 means the space lies at that class's mandatory
  evacuation distance. The worst class has the smallest ratio (ties: the bigger bomb).
* consequence (``vbied_persons_mandatory``): the people within the mandatory
  evacuation distance of the class that puts most people there (this space and its
  neighbours, :func:`geo_protect.analysis.standoff.persons_within`).

Which threat types use these rules is set in ``threat_types.csv`` (VBIED). The band
lookup (:func:`~geo_protect.assess.bands.band_lookup`) is the one every pre-fill rule of
:mod:`geo_protect.assess.evidence` uses.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from geo_protect import reference
from geo_protect.assess.bands import band_lookup
from geo_protect.errors import ValidationError

__all__ = ["STANDOFF_RULES", "standoff_consequence", "standoff_vulnerability"]

#: Per rule of ``threat_types.csv``: the rating it fills and the inputs kept as evidence.
STANDOFF_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "vbied_standoff_ratio": (
        "vulnerability",
        ("vehicle", "reach", "closest_m", "mandatory_m", "standoff_ratio"),
    ),
    "vbied_persons_mandatory": (
        "consequence",
        ("vehicle", "closest_m", "mandatory_m", "persons_mandatory", "persons_preferred"),
    ),
}

_COLUMNS = ("space_uid", "vehicle", "reach", "closest_m", "mandatory_m", "persons_mandatory")
_REACH = {"inside": "drive into the space", "parking": "park", "street": "stop"}


def standoff_vulnerability(
    standoff: pd.DataFrame, spaces: pd.Index, *, bands: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Vulnerability to a VBIED (1–5) from the stand-off of the worst vehicle class.

    Parameters
    ----------
    standoff
        The ``standoff`` layer (one row per space and vehicle class).
    spaces
        The space uids to rate (a space without stand-off rows gets NA: no vehicle
        reaches it on the network, left to the assessors).
    bands
        The ``prefill_bands`` table (rule ``vbied_standoff_ratio``); the reference one by
        default.

    Returns
    -------
    DataFrame
        Indexed by ``spaces``: ``vulnerability`` (Int64), ``rule`` (the stand-off rule in
        words and the band that fired) and the inputs.

    Examples
    --------
    >>> so = pd.DataFrame({"space_uid": ["a", "a"], "vehicle": ["M1", "N3"],
    ...     "reach": ["street"] * 2, "closest_m": [20.0, 20.0], "mandatory_m": [97.5, 478.5],
    ...     "persons_mandatory": [10.0, 900.0], "persons_preferred": [50.0, 950.0]})
    >>> v = standoff_vulnerability(so, pd.Index(["a"]))
    >>> int(v.loc["a", "vulnerability"]), v.loc["a", "vehicle"]
    (4, 'N3')
    """
    worst = _worst(standoff, spaces, by="standoff_ratio", ascending=True)
    rating, band = band_lookup(
        worst["standoff_ratio"], "vbied_standoff_ratio", bands, "closest_m / mandatory_m"
    )
    said = _vehicle_text(worst)
    where = worst["reach"].map(_REACH).fillna("stop").astype(str)
    text = (
        said
        + " can "
        + where
        + np.where(
            worst["reach"] == "inside",
            "",
            " " + worst["closest_m"].map(_metres) + " from the outline",
        )
        + "; "
        + worst["closest_m"].map(_metres)
        + " / mandatory evacuation "
        + worst["mandatory_m"].map(_metres)
        + " = "
        + worst["standoff_ratio"].map(lambda r: f"{r:.2f}" if pd.notna(r) else "?")
        + ": "
        + band.astype(str)
    )
    return _rated(worst, "vulnerability", rating, text)


def standoff_consequence(
    standoff: pd.DataFrame, spaces: pd.Index, *, bands: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Consequence of a VBIED (1–5) from the people within the mandatory evacuation distance.

    The class that puts most people within its mandatory distance counts (ties: the
    bigger bomb). Parameters and return as :func:`standoff_vulnerability` (rule
    ``vbied_persons_mandatory``, rating column ``consequence``).

    Examples
    --------
    >>> so = pd.DataFrame({"space_uid": ["a", "a"], "vehicle": ["M1", "N3"],
    ...     "reach": ["street"] * 2, "closest_m": [20.0, 20.0], "mandatory_m": [97.5, 478.5],
    ...     "persons_mandatory": [10.0, 900.0], "persons_preferred": [50.0, 950.0]})
    >>> int(standoff_consequence(so, pd.Index(["a"])).loc["a", "consequence"])
    3
    """
    worst = _worst(standoff, spaces, by="persons_mandatory", ascending=False)
    rating, band = band_lookup(
        worst["persons_mandatory"], "vbied_persons_mandatory", bands, "persons_mandatory"
    )
    text = (
        _vehicle_text(worst)
        + " at "
        + worst["closest_m"].map(_metres)
        + " from the outline: its mandatory evacuation distance "
        + worst["mandatory_m"].map(_metres)
        + " holds ~"
        + worst["persons_mandatory"].map(lambda p: f"{p:,.0f}" if pd.notna(p) else "?")
        + " people (this and neighbouring spaces, by area share): "
        + band.astype(str)
    )
    return _rated(worst, "consequence", rating, text)


def _rated(worst: pd.DataFrame, column: str, rating: pd.Series, text: pd.Series) -> pd.DataFrame:
    """``worst`` with its rating in ``column`` and the rule's words (where rated)."""
    worst[column] = rating
    rule = pd.Series(pd.array(text, dtype="string"), index=worst.index)
    worst["rule"] = rule.where(rating.notna())
    return worst


def _worst(standoff: pd.DataFrame, spaces: pd.Index, *, by: str, ascending: bool) -> pd.DataFrame:
    """Per space the worst class row (by ``by``; ties: the larger mandatory distance)."""
    _require(standoff, _COLUMNS, "standoff")
    frame = pd.DataFrame(
        {c: standoff[c] for c in (*_COLUMNS, "persons_preferred") if c in standoff.columns}
    ).reset_index(drop=True)
    closest = frame["closest_m"].astype(float)
    mandatory = frame["mandatory_m"].astype(float)
    frame["standoff_ratio"] = np.where(mandatory > 0, closest / mandatory, np.nan)
    frame = frame.sort_values(
        [by, "mandatory_m"], ascending=[ascending, False], kind="stable", na_position="last"
    )
    worst = frame.drop_duplicates("space_uid").set_index("space_uid")
    chart = reference.table("vbied_standoff").set_index("vehicle")
    out = worst.reindex(pd.Index(spaces, name="space_uid"))
    out["chart_row"] = chart["chart_row"].reindex(out["vehicle"]).to_numpy()
    out["explosive_lbs"] = chart["explosive_lbs"].reindex(out["vehicle"]).to_numpy()
    return out


def _vehicle_text(worst: pd.DataFrame) -> pd.Series:
    """``an N3 (NCTC semi-trailer, 60,000 lb TNT eq.)`` per row."""
    lbs = pd.to_numeric(worst["explosive_lbs"], errors="coerce")
    return (
        "an "
        + worst["vehicle"].astype(str)
        + " (NCTC "
        + worst["chart_row"].astype(str)
        + ", "
        + lbs.map(lambda v: f"{v:,.0f}" if pd.notna(v) else "?")
        + " lb TNT eq.)"
    )


def _metres(value: object) -> str:
    return f"{float(value):,.0f} m" if pd.notna(value) else "?"  # type: ignore[arg-type]


def _require(frame: pd.DataFrame, columns: Iterable[str], layer: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(f"layer {layer!r}: missing column(s) {', '.join(missing)}")
