"""Live crowd density from sensor counts: level of service, alert bands, rise and exit flow.

Pure functions for the control room (domain brief §3.4): they turn counts per zone into
densities, levels of service and alert bands, flag a rapid rise and an exit flow over the
Green Guide limit. Every band and limit comes from ``data/reference``
(``crowd_alert_bands``, ``los_walkway``, ``los_queue``, ``egress_flow``, ``parameters``).
The sensor feeds that call them belong to the service.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.analysis.crowd import _metric, level_of_service
from geo_protect.errors import ValidationError
from geo_protect.reference import parameter, table

__all__ = ["alert_band", "exit_flow_alert", "live_density", "rate_alert"]


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

    Parameters
    ----------
    density : Series
        Densities in persons per m².
    area_type : Series or str
        ``standing`` or ``moving``, per density or for all.
    design : Series, optional
        Design densities (p/m²), for the critical rule; without them no band is critical.
    critical_factor : float, optional
        The ``crowd_critical_design_factor`` parameter by default.

    Returns
    -------
    Series
        ``alert`` (string dtype), indexed like ``density``.
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
    counts : Series
        Persons present per zone, indexed by zone id (like ``zones``). Missing zones or
        negative counts (sensor faults) give NA.
    zones : GeoDataFrame
        Zone polygons indexed by zone id, with ``area_type`` (``standing`` or
        ``moving``; standing when absent), optionally ``area_m2`` (used instead of the
        geometry's area) and ``design_density`` (p/m², for the critical rule).
    crs : str, optional
        Metric CRS for the areas; ``zones.crs`` when it is already metric.
    critical_factor : float, optional
        For :func:`alert_band`; the ``crowd_critical_design_factor`` parameter by default.

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
    previous, current : Series
        Densities (p/m²) per zone at two times ``minutes`` apart, index-aligned.
    minutes : float
        Minutes between the two readings.
    rise_p_m2, window_min : float, optional
        The alert's rise and window; the ``parameters`` reference table's by default.

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
    persons_per_min : Series
        People passing each exit per minute (from counters), indexed by exit.
    width_m : Series
        Clear width of each exit (m), index-aligned; e.g. ``entry_point["width_m"]``.
    exit_type : str or Series
        ``level``, ``level_alcohol``, ``stepped`` or ``stepped_alcohol``, for all exits or
        per exit.
    flows : DataFrame, optional
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
