"""Apply a barrier scenario to a city: the edited barrier layer, re-analysed, compared.

:func:`apply_scenario` is the reference path: it re-analyses the whole edited city
(:func:`geo_protect.pipeline.steps.evaluate` semantics, without the pipeline) and
compares every entry and score with the baseline. It is exact by construction; the
incremental engine of issue 10 (re-search only the neighbourhood of an edit) will be
tested against it.

How edits become barriers:

* **add** a barrier of a planned type (``plan_barrier_types.csv``): it becomes a row of
  the ``barrier`` layer with that type's OSM ``barrier`` value (see :func:`_analysed_as`
  for the types that stop a vehicle only when crash-rated), so the network decides
  whether it closes a street exactly as it does for mapped barriers. A bollard row
  drawn as a line becomes a line whose vertices are its posts, one every ``spacing_m``
  (centre to centre) along the drawn line: a row whose clear gaps exceed
  ``max_bollard_gap_m`` leaves the street open, as on the ground.
* **remove** drops an existing OSM barrier; **open** drops it from the analysis too (an
  open gate or a removed block stops nothing while it is open).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.errors import ValidationError
from geo_protect.reference import table
from geo_protect.schema import WGS84, conform

__all__ = ["ScenarioResult", "apply_scenario", "edited_data", "post_line"]

#: Columns compared per entry and per (space, threat).
ENTRY_COLUMNS = ("entry_class", "worst_speed_kmh", "worst_vehicle", "required_rating")
SCORE_COLUMNS = ("risk_100", "band", "why")


@dataclass
class ScenarioResult:
    """What a scenario changes: entries, scores, and the planned barriers themselves."""

    name: str
    barriers: gpd.GeoDataFrame  # the added barrier rows (uid ``plan/<n>``)
    entries: pd.DataFrame  # per changed entry: before / after of ENTRY_COLUMNS
    scores: pd.DataFrame  # per changed (space, threat): before / after of SCORE_COLUMNS
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)  # the edited analysis
    checks: pd.DataFrame = field(default_factory=pd.DataFrame)  # scenario.checks.barrier_checks

    @property
    def affected_spaces(self) -> list[str]:
        """Spaces with a changed entry or score."""
        spaces = set(self.entries.get("space_uid", pd.Series(dtype=str)).astype(str))
        spaces |= set(self.scores.get("space_uid", pd.Series(dtype=str)).astype(str))
        return sorted(spaces)


def post_line(line: shapely.LineString, spacing_m: float) -> shapely.LineString:
    """A drawn row as a line whose vertices are its posts, ``spacing_m`` apart (metric).

    The posts start at the first end; the last post stands at the far end when the
    length is a whole number of spacings, else short of it by the remainder.

    Examples
    --------
    >>> row = post_line(shapely.LineString([(0, 0), (10, 0)]), 2.5)
    >>> shapely.get_coordinates(row)[:, 0].tolist()
    [0.0, 2.5, 5.0, 7.5, 10.0]
    """
    if not spacing_m > 0:
        raise ValidationError(f"bollard row: spacing_m must be > 0, got {spacing_m}")
    n = int(np.floor(line.length / spacing_m + 1e-9))
    at = np.arange(n + 1) * spacing_m
    return shapely.LineString(shapely.get_coordinates(shapely.line_interpolate_point(line, at)))


def edited_data(city: City, data: CityData, edits: list[Any]) -> tuple[CityData, gpd.GeoDataFrame]:
    """The city's data with its barrier layer edited; and the added barrier rows.

    Parameters
    ----------
    city : City
        The city (its metric CRS spaces the posts of a bollard row).
    data : CityData
        Its baseline source layers (unchanged).
    edits : list
        The scenario's edits (``action``, ``kind``, ``geometry``, ``spacing_m``,
        ``rating``, ``osm_id``, ``note``).

    Raises
    ------
    ValidationError
        If an edit removes or opens a barrier the city does not have.
    """
    barriers = data["barrier"]
    gone = [str(e.osm_id) for e in edits if e.action in ("remove", "open")]
    unknown = sorted(set(gone) - set(barriers.index.astype(str)))
    if unknown:
        raise ValidationError(
            f"scenario: no barrier {unknown[0]!r} in {city.slug} to remove or open"
        )
    added = _added_barriers(city, [e for e in edits if e.action == "add"])
    kept = barriers.drop(index=gone)
    edited = conform("barrier", pd.concat([kept, added]) if len(added) else kept)
    layers = dict(data.layers)
    layers["barrier"] = edited
    return CityData(data.city, layers, data.report), added


def _added_barriers(city: City, edits: list[Any]) -> gpd.GeoDataFrame:
    """The barrier-layer rows of the added barriers (uid ``plan/<n>``, kind from the type)."""
    types = table("plan_barrier_types").set_index("type")
    rows, geoms = [], []
    for n, edit in enumerate(edits, start=1):
        kind, geom = _analysed_as(types.loc[edit.kind], edit), edit.geometry
        spacing = edit.spacing()
        if spacing is not None and geom.geom_type == "LineString":
            metric = gpd.GeoSeries([geom], crs=WGS84).to_crs(city.crs).iloc[0]
            posts = gpd.GeoSeries([post_line(metric, spacing)], crs=city.crs)
            geom = posts.to_crs(WGS84).iloc[0]
        tags = {"barrier": kind, "plan:type": edit.kind}
        if edit.rating:
            tags["plan:rating"] = str(edit.rating)
        rows.append(
            {
                "uid": f"plan/{n}",
                "osm_type": "plan",
                "osm_id": pd.NA,
                "name": edit.note or pd.NA,
                "kind": kind,
                "tags": json.dumps(tags, sort_keys=True),
                "source": "scenario",
                "data_date": pd.NA,
                "maxwidth_m": np.nan,
            }
        )
        geoms.append(geom)
    frame = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=WGS84)
    if frame.empty:
        return frame
    return conform("barrier", frame.set_index("uid"))


def _analysed_as(spec: pd.Series, edit: Any) -> str:
    """The OSM ``barrier`` value an added barrier is analysed as.

    A type that stops a vehicle only with a crash rating (``stops_vehicle = rated``: a
    gate, a temporary barrier) is a solid closure (``block`` at a point, ``wall`` along a
    line) when the edit carries a rating, else a passable ``gate`` (an unrated gate or
    water-filled barrier is not a hostile-vehicle measure). Other types are analysed as
    their ``osm_barrier`` value, so the network's own rules (gap rule for posts) apply.
    """
    if str(spec["stops_vehicle"]) != "rated":
        return str(spec["osm_barrier"])
    if not edit.rating:
        return "gate"
    return "wall" if edit.geometry.geom_type == "LineString" else "block"


def apply_scenario(
    city: City,
    data: CityData,
    edits: list[Any],
    *,
    name: str = "scenario",
    baseline: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> ScenarioResult:
    """Re-analyse the city with the scenario's edits and compare with the baseline.

    Parameters
    ----------
    city : City
        The city.
    data : CityData
        Its baseline source layers (never changed).
    edits : list
        The scenario's edits (see :func:`edited_data`).
    name : str
        The scenario's name.
    baseline : mapping, optional
        The baseline ``entry_point`` and ``assessment`` layers (computed from ``data``
        when not given).

    Returns
    -------
    ScenarioResult
        The changed entries and scores, before and after.
    """
    base = dict(baseline) if baseline is not None else _evaluate(city, data)
    after_data, added = edited_data(city, data, edits)
    after = _evaluate(city, after_data)
    entries = _changed(base["entry_point"], after["entry_point"], ENTRY_COLUMNS)
    scores = _changed(base["assessment"], after["assessment"], SCORE_COLUMNS)
    checks = _checks(city, data, after_data, added)
    return ScenarioResult(
        name=name, barriers=added, entries=entries, scores=scores, layers=after, checks=checks
    )


def _checks(city: City, data: CityData, after: CityData, added: gpd.GeoDataFrame) -> pd.DataFrame:
    """:func:`~geo_protect.scenario.checks.barrier_checks` on both networks."""
    from geo_protect.analysis.network import street_network, with_barriers
    from geo_protect.scenario.checks import CHECK_COLUMNS, barrier_checks

    if added.empty or data["street"].empty:
        return pd.DataFrame(columns=list(CHECK_COLUMNS))
    before_net = street_network(data["street"], data["barrier"], crs=city.crs)
    return barrier_checks(added, before_net, with_barriers(before_net, after["barrier"]))


def _evaluate(city: City, data: CityData) -> dict[str, gpd.GeoDataFrame]:
    """Every analysis layer of the city and its pre-filled scores (in memory)."""
    from geo_protect.analysis.city import analyse_city
    from geo_protect.assess.evidence import prefill_layers
    from geo_protect.assess.scores import score

    layers = analyse_city(city, data)
    draft = prefill_layers(city, data, layers["space_metric"], layers["standoff"])
    layers["assessment"] = score(draft, data["public_space"])
    return layers


def _changed(before: pd.DataFrame, after: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Rows (by uid) whose ``columns`` differ, side by side: ``<col>_before`` / ``_after``."""
    cols = [c for c in columns if c in before.columns and c in after.columns]
    b = pd.DataFrame(before[["space_uid", *cols]]).add_suffix("_before")
    a = pd.DataFrame(after[["space_uid", *cols]]).add_suffix("_after")
    both = b.join(a, how="outer")
    differs = np.zeros(len(both), dtype=bool)
    for c in cols:
        x, y = both[f"{c}_before"], both[f"{c}_after"]
        if pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y):
            xv, yv = x.astype(float).to_numpy(), y.astype(float).to_numpy()
            same = np.isclose(xv, yv, rtol=0, atol=1e-9) | (np.isnan(xv) & np.isnan(yv))
        else:
            same = (
                x.astype("string").fillna("<NA>") == y.astype("string").fillna("<NA>")
            ).to_numpy()
        differs |= ~same
    out = both[differs].copy()
    out.insert(0, "space_uid", out["space_uid_after"].fillna(out["space_uid_before"]))
    return out.drop(columns=["space_uid_before", "space_uid_after"])
