"""Crowd capacity, density, level of service and live density alerts (domain brief §3).

Static capacity follows the UK rule (brief §3.3)::

    usable_area = area(space) − area(buildings and mapped obstacles inside it)
    C_density   = usable_area × design density (space kind, time profile)
    C_egress    = Σ widths of all exits but the largest × flow rate × evacuation time
    capacity    = min(C_density, C_egress)

Every density, flow rate, time and band comes from ``data/reference`` (``design_density``,
``egress_flow``, ``los_walkway``, ``los_queue``, ``crowd_alert_bands``, ``parameters``).
Live functions are pure: they turn counts per zone into densities, levels of service and
alert bands (brief §3.4); the sensor feed comes with the service.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect._errors import AnalysisError, ConfigError, ValidationError
from geo_protect.reference import parameter, table

__all__ = [
    "PROFILES",
    "alert_band",
    "capacity",
    "design_density",
    "exit_flow_alert",
    "level_of_service",
    "live_density",
    "rate_alert",
    "usable_area",
]

#: Time profiles of ``design_density.csv``: ordinary day, market/peak hour, event.
PROFILES = ("ordinary", "peak", "event")


def _metric(frame: gpd.GeoDataFrame, crs: str | None, what: str) -> gpd.GeoDataFrame:
    if crs is not None:
        return frame.to_crs(crs)
    if frame.crs is None or not frame.crs.is_projected:
        raise AnalysisError(f"{what}: CRS {frame.crs} is not metric; pass crs= (the city's CRS)")
    return frame


def usable_area(
    spaces: gpd.GeoDataFrame,
    *,
    buildings: gpd.GeoDataFrame | None = None,
    obstacles: gpd.GeoDataFrame | None = None,
    crs: str | None = None,
) -> pd.Series:
    """Area of each space left for people: minus buildings and mapped obstacles (m²).

    Parameters
    ----------
    spaces
        The ``public_space`` layer.
    buildings, obstacles
        Footprints inside the spaces (``building`` layer; polygonal barriers, stalls,
        stages...). Points and lines take no area and are ignored; overlapping
        footprints are counted once.
    crs
        Metric CRS; ``spaces.crs`` when it is already metric.

    Returns
    -------
    Series
        ``usable_area_m2`` indexed like ``spaces``.
    """
    polys = _metric(spaces, crs, "usable area")
    geom = polys.geometry.values
    area = shapely.area(geom)
    parts = [
        f.to_crs(polys.crs).geometry.values
        for f in (buildings, obstacles)
        if f is not None and not f.empty
    ]
    blocked = np.zeros(len(polys))
    if parts:
        foot = np.concatenate(parts)
        foot = foot[np.isin(shapely.get_type_id(foot), (3, 6))]
        if len(foot):
            si, fi = shapely.STRtree(foot).query(geom, predicate="intersects")
            if len(si):
                pieces = gpd.GeoDataFrame(
                    {"space": si}, geometry=shapely.intersection(geom[si], foot[fi]), crs=polys.crs
                )
                covered = pieces.dissolve(by="space")
                blocked[covered.index.to_numpy()] = shapely.area(covered.geometry.values)
    return pd.Series(np.maximum(area - blocked, 0.0), index=spaces.index, name="usable_area_m2")


def design_density(kinds: pd.Series, *, profile: str = "event") -> pd.DataFrame:
    """Design density (p/m²) and area type of each space kind for a time profile.

    A kind without its own row in ``design_density.csv`` takes the ``*`` row.

    Raises
    ------
    ConfigError
        If ``profile`` is not one of the table's profiles.
    """
    ref = table("design_density")
    rows = ref[ref["profile"] == profile]
    if rows.empty:
        known = ", ".join(sorted(ref["profile"].unique()))
        raise ConfigError(f"design_density.csv: no profile {profile!r} (known: {known})")
    by_kind = rows.set_index("kind")
    default = by_kind.loc["*"]
    k = kinds.astype("string")
    known_kind = k.isin(by_kind.index).fillna(False).to_numpy(dtype=bool)
    density = np.where(
        known_kind,
        by_kind["density_p_m2"].reindex(k.to_numpy()).to_numpy(dtype=float),
        float(default["density_p_m2"]),
    )
    area_type = np.where(
        known_kind,
        by_kind["area_type"].reindex(k.to_numpy()).to_numpy(dtype=object),
        default["area_type"],
    )
    return pd.DataFrame({"design_density": density, "area_type": area_type}, index=kinds.index)


def level_of_service(density: pd.Series, area_type: pd.Series | str = "standing") -> pd.Series:
    """Fruin/HCM level of service (A–F) of densities in p/m².

    Standing areas use the HCM queuing table (``los_queue.csv``), moving ones the walkway
    table (``los_walkway.csv``); the level is the first row whose minimum space per
    person (m²) is below the space each person has. NaN densities give NA.
    """
    d = density.to_numpy(dtype=float, na_value=np.nan)
    kind = (
        np.broadcast_to(np.asarray(area_type, dtype=object), d.shape)
        if isinstance(area_type, str)
        else area_type.to_numpy(dtype=object)
    )
    out = np.full(len(d), None, dtype=object)
    with np.errstate(divide="ignore"):
        space = np.where(d > 0, 1.0 / d, np.inf)
    for name, which in (("los_queue", "standing"), ("los_walkway", "moving")):
        ref = table(name).sort_values("space_min_m2", ascending=False)
        mins = ref["space_min_m2"].to_numpy(dtype=float)
        # first row (from A) with space > its minimum; F has minimum 0
        idx = np.argmax(space[:, None] > mins[None, :], axis=1)
        pick = (kind == which) & ~np.isnan(d)
        out[pick] = ref["los"].to_numpy(dtype=object)[idx[pick]]
    return pd.Series(pd.array(out, dtype="string"), index=density.index, name="los")


def capacity(
    spaces: gpd.GeoDataFrame,
    entries: gpd.GeoDataFrame | None,
    *,
    profile: str = "event",
    buildings: gpd.GeoDataFrame | None = None,
    obstacles: gpd.GeoDataFrame | None = None,
    usable_area_m2: pd.Series | None = None,
    exit_type: str = "level",
    evacuation_min: float | None = None,
    min_exit_width_m: float | None = None,
    crs: str | None = None,
) -> pd.DataFrame:
    """Safe crowd capacity of each space: ``min(C_density, C_egress)`` (brief §3.3).

    Parameters
    ----------
    spaces
        The ``public_space`` layer.
    entries
        The ``entry_point`` layer. Exits are the entries pedestrians can use (on the
        walk network, or mapped entrances and gates) at least ``min_exit_width_m``
        wide; the largest exit of each space is discounted. ``None`` (no street data):
        capacity by density only.
    profile
        Time profile of the design density: ``ordinary``, ``peak`` or ``event``.
    buildings, obstacles, usable_area_m2
        Footprints to subtract (see :func:`usable_area`), or the usable areas already
        computed.
    exit_type
        Row of ``egress_flow.csv`` (``level``, ``stepped``, ``level_alcohol``...).
    evacuation_min
        Evacuation time target; ``evacuation_time_medium_risk_min`` (8 min) by default.
    min_exit_width_m
        Narrowest opening that counts as an exit (Purple Guide 1.05 m by default).
    crs
        Metric CRS; ``spaces.crs`` when it is already metric.

    Returns
    -------
    DataFrame
        Indexed like ``spaces``: ``area_m2, usable_area_m2, design_density, area_type,
        capacity_density, exit_width_m, n_exits, capacity_egress, capacity_persons,
        persons_per_m2, limited_by (density|egress), los``. ``capacity_egress`` is NaN
        for a space without exits (capacity then by density only).

    Examples
    --------
    The brief's worked check: 4,000 m² square, 3,200 m² usable, five 4 m level exits:
    ``min(3,200 × 2, 4 × 4 m × 82 × 8 min) = min(6,400, 10,496) = 6,400``.
    """
    polys = _metric(spaces, crs, "capacity")
    area = pd.Series(shapely.area(polys.geometry.values), index=spaces.index)
    usable = (
        usable_area(polys, buildings=buildings, obstacles=obstacles)
        if usable_area_m2 is None
        else usable_area_m2.reindex(spaces.index).astype(float)
    )
    dd = design_density(spaces["kind"], profile=profile)
    flows = table("egress_flow").set_index("exit_type")["flow_p_min_m"]
    if exit_type not in flows.index:
        raise ConfigError(
            f"egress_flow.csv: no exit type {exit_type!r} (known: {', '.join(flows.index)})"
        )
    flow = float(flows[exit_type])
    t = parameter("evacuation_time_medium_risk_min") if evacuation_min is None else evacuation_min
    min_w = parameter("min_exit_width_m") if min_exit_width_m is None else min_exit_width_m

    exit_width = pd.Series(0.0, index=spaces.index)
    n_exits = pd.Series(0, index=spaces.index)
    if entries is not None and not entries.empty:
        usable_exit = (
            entries["networks"].astype("string").str.contains("walk").fillna(False)
            | entries["kind"].isin(["entrance", "gate"])
        ) & (entries["width_m"].astype(float) >= min_w)
        ex = entries[usable_exit.to_numpy(dtype=bool)]
        by = ex["width_m"].astype(float).groupby(ex["space_uid"].astype(str))
        total = by.sum() - by.max()  # discount the largest exit
        exit_width = total.reindex(spaces.index.astype(str)).fillna(0.0).set_axis(spaces.index)
        n_exits = (
            by.size().reindex(spaces.index.astype(str)).fillna(0).astype(int).set_axis(spaces.index)
        )
    c_density = usable * dd["design_density"]
    c_egress = (exit_width * flow * t).where(n_exits > 0)
    persons = np.fmin(c_density, c_egress)
    limited = np.where(c_egress < c_density, "egress", "density")
    with np.errstate(invalid="ignore", divide="ignore"):
        per_m2 = persons / usable.where(usable > 0)
    out = pd.DataFrame(
        {
            "area_m2": area,
            "usable_area_m2": usable,
            "design_density": dd["design_density"],
            "area_type": dd["area_type"],
            "capacity_density": c_density,
            "exit_width_m": exit_width,
            "n_exits": n_exits,
            "capacity_egress": c_egress,
            "capacity_persons": persons,
            "persons_per_m2": per_m2,
            "limited_by": pd.array(limited, dtype="string"),
        },
        index=spaces.index,
    )
    out["los"] = level_of_service(out["persons_per_m2"], out["area_type"])
    return out


def alert_band(
    density: pd.Series,
    area_type: pd.Series | str = "standing",
    *,
    design: pd.Series | None = None,
    critical_factor: float | None = None,
) -> pd.Series:
    """Alert band (green/amber/red/critical) of densities in p/m² (brief §3.4).

    A standing area above ``design × critical_factor`` (1.25) is critical whatever
    its band. NaN densities give NA.
    """
    bands = table("crowd_alert_bands")
    d = density.to_numpy(dtype=float, na_value=np.nan)
    kind = (
        np.broadcast_to(np.asarray(area_type, dtype=object), d.shape)
        if isinstance(area_type, str)
        else area_type.to_numpy(dtype=object)
    )
    unknown = set(kind) - set(bands["area_type"].astype(str))
    if unknown:
        raise ValidationError(f"alert band: unknown area type(s) {', '.join(map(str, unknown))}")
    out = np.full(len(d), None, dtype=object)
    for which, rows in bands.groupby("area_type"):
        rows = rows.sort_values("lower_p_m2")
        lower = rows["lower_p_m2"].to_numpy(dtype=float)
        idx = np.searchsorted(lower, d, side="right") - 1
        pick = (kind == which) & ~np.isnan(d)
        out[pick] = rows["band"].to_numpy(dtype=object)[np.clip(idx[pick], 0, None)]
    if design is not None:
        f = (
            parameter("crowd_critical_design_factor")
            if critical_factor is None
            else critical_factor
        )
        over = (kind == "standing") & (d > design.to_numpy(dtype=float, na_value=np.nan) * f)
        out[over] = "critical"
    return pd.Series(pd.array(out, dtype="string"), index=density.index, name="alert")


def live_density(
    counts: pd.Series,
    zones: gpd.GeoDataFrame,
    *,
    crs: str | None = None,
    critical_factor: float | None = None,
) -> pd.DataFrame:
    """Density, level of service and alert band of each zone from live counts.

    Parameters
    ----------
    counts
        Persons present per zone, indexed by zone id (like ``zones``). Missing zones or
        negative counts (sensor faults) give NA.
    zones
        Zone polygons indexed by zone id, with ``area_type`` (``standing`` or
        ``moving``; standing when absent), optionally ``area_m2`` (used instead of the
        geometry's area) and ``design_density`` (p/m², for the critical rule).
    crs
        Metric CRS for the areas; ``zones.crs`` when it is already metric.

    Returns
    -------
    DataFrame
        Indexed like ``zones``: ``persons, area_m2, density_p_m2, area_type, los, alert``.
    """
    if zones.index.has_duplicates:
        raise ValidationError("live density: zone ids are not unique")
    if "area_m2" in zones:
        area = zones["area_m2"].astype(float)
    else:
        area = pd.Series(
            shapely.area(_metric(zones, crs, "live density").geometry.values), index=zones.index
        )
    if (area <= 0).any():
        raise ValidationError(
            f"live density: zone(s) {', '.join(map(str, area.index[area <= 0]))} have no area"
        )
    persons = counts.reindex(zones.index).astype(float)
    persons = persons.where(persons >= 0)
    kind = (
        zones["area_type"].astype(str)
        if "area_type" in zones
        else pd.Series("standing", index=zones.index)
    )
    density = (persons / area).rename("density_p_m2")
    design = zones["design_density"].astype(float) if "design_density" in zones else None
    return pd.DataFrame(
        {
            "persons": persons,
            "area_m2": area,
            "density_p_m2": density,
            "area_type": kind,
            "los": level_of_service(density, kind),
            "alert": alert_band(density, kind, design=design, critical_factor=critical_factor),
        },
        index=zones.index,
    )


def rate_alert(
    previous: pd.Series,
    current: pd.Series,
    minutes: float,
    *,
    rise_p_m2: float | None = None,
    window_min: float | None = None,
) -> pd.Series:
    """Whether density rose faster than ``rise_p_m2`` per ``window_min`` (0.5 p/m² per 5 min).

    Parameters
    ----------
    previous, current
        Densities (p/m²) per zone at two times ``minutes`` apart, index-aligned.

    Returns
    -------
    Series
        ``rate_alert`` (bool) indexed like ``current``; zones without both readings are
        False.
    """
    if minutes <= 0:
        raise ValidationError(
            f"rate alert: minutes between readings must be positive, got {minutes}"
        )
    rise = parameter("crowd_rate_alert_p_m2") if rise_p_m2 is None else rise_p_m2
    window = parameter("crowd_rate_window_min") if window_min is None else window_min
    change = (
        (current.astype(float) - previous.reindex(current.index).astype(float)) / minutes * window
    )
    return (change > rise).fillna(False).astype(bool).rename("rate_alert")


def exit_flow_alert(
    persons_per_min: pd.Series,
    width_m: pd.Series,
    *,
    exit_type: str | pd.Series = "level",
    flows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Flow through exits per metre of width against the Green Guide limits (brief §3.4).

    Parameters
    ----------
    persons_per_min
        People passing each exit per minute (from counters), indexed by exit.
    width_m
        Clear width of each exit (m), index-aligned; e.g. ``entry_point["width_m"]``.
    exit_type
        ``level``, ``level_alcohol``, ``stepped`` or ``stepped_alcohol``, for all exits or
        per exit.
    flows
        The ``egress_flow`` table; the reference one by default.

    Returns
    -------
    DataFrame
        Index-aligned: ``flow_p_min_m``, ``limit_p_min_m`` and ``flow_alert`` (True above
        the limit). Exits without a positive width or a count have no alert.

    Raises
    ------
    ValidationError
        For an exit type the table does not know.

    Examples
    --------
    >>> out = exit_flow_alert(pd.Series([300.0, 400.0]), pd.Series([4.0, 4.0]))
    >>> out["flow_p_min_m"].tolist(), out["flow_alert"].tolist()
    ([75.0, 100.0], [False, True])
    """
    limits = (table("egress_flow") if flows is None else flows).set_index("exit_type")
    kinds = (
        exit_type.reindex(persons_per_min.index)
        if isinstance(exit_type, pd.Series)
        else pd.Series(exit_type, index=persons_per_min.index)
    ).astype(str)
    unknown = sorted(set(kinds) - set(limits.index))
    if unknown:
        raise ValidationError(
            f"exit flow: unknown exit type(s) {', '.join(unknown)} "
            f"(known: {', '.join(limits.index)})"
        )
    width = width_m.reindex(persons_per_min.index).astype(float)
    flow = persons_per_min.astype(float) / width.where(width > 0)
    limit = kinds.map(limits["flow_p_min_m"].astype(float))
    return pd.DataFrame(
        {"flow_p_min_m": flow, "limit_p_min_m": limit, "flow_alert": (flow > limit).fillna(False)},
        index=persons_per_min.index,
    )
