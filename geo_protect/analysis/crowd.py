"""Static crowd capacity, design density and level of service of public spaces (brief §3).

Static capacity follows the UK rule (brief §3.3)::

    usable_area = area(space) − area(buildings and mapped obstacles inside it)
    C_density   = usable_area × design density (space kind, time profile)
    C_egress    = Σ widths of all exits but the largest × flow rate × evacuation time
    capacity    = min(C_density, C_egress)

Every density, flow rate, time and band comes from ``data/reference`` (``design_density``,
``egress_flow``, ``los_walkway``, ``los_queue``, ``crowd_alert_bands``, ``parameters``).

The *expected* peak occupancy (the people a consequence should count, not the safe
maximum) depends on the space's use (``occupancy_by_use``: a density over a core area and
another over the rest, so a large park is not filled to design density) and on its
attractiveness (``occupancy_attractiveness``: a factor by the score of crowded-place POIs
nearby, weighted as in ``poi_weights``)::

    expected_peak = min(capacity, (min(A, core)·d_core + max(A − core, 0)·d_rest) × f_POI)

The live counterparts (densities from sensor counts, alert bands) are in
:mod:`geo_protect.live.density`.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from geo_protect.errors import AnalysisError, ConfigError
from geo_protect.reference import parameter, table

__all__ = [
    "PROFILES",
    "capacity",
    "design_density",
    "expected_occupancy",
    "level_of_service",
    "nearby_poi_score",
    "pois_near",
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
    spaces : GeoDataFrame
        The ``public_space`` layer.
    buildings, obstacles : GeoDataFrame, optional
        Footprints inside the spaces (``building`` layer; polygonal barriers, stalls,
        stages...). Points and lines take no area and are ignored; overlapping
        footprints are counted once.
    crs : str, optional
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

    Parameters
    ----------
    kinds : Series
        Space kinds (``public_space.kind``).
    profile : str
        Time profile: ``ordinary``, ``peak`` or ``event``.

    Returns
    -------
    DataFrame
        ``design_density`` (p/m²) and ``area_type`` (``standing``/``moving``), indexed
        like ``kinds``.

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

    Parameters
    ----------
    density : Series
        Densities in persons per m².
    area_type : Series or str
        ``standing`` or ``moving``, per density or for all.

    Returns
    -------
    Series
        ``los`` (string dtype), indexed like ``density``.
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
    spaces : GeoDataFrame
        The ``public_space`` layer.
    entries : GeoDataFrame or None
        The ``entry_point`` layer. Exits are the entries pedestrians can use (on the
        walk network, or mapped entrances and gates) at least ``min_exit_width_m``
        wide; the largest exit of each space is discounted. ``None`` (no street data):
        capacity by density only.
    profile : str
        Time profile of the design density: ``ordinary``, ``peak`` or ``event``.
    buildings, obstacles : GeoDataFrame, optional
        Footprints to subtract (see :func:`usable_area`).
    usable_area_m2 : Series, optional
        The usable areas already computed (instead of the footprints).
    exit_type : str
        Row of ``egress_flow.csv`` (``level``, ``stepped``, ``level_alcohol``...).
    evacuation_min : float, optional
        Evacuation time target; ``evacuation_time_medium_risk_min`` (8 min) by default.
    min_exit_width_m : float, optional
        Narrowest opening that counts as an exit (Purple Guide 1.05 m by default).
    crs : str, optional
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
    flow = _egress_flow(exit_type)
    t = parameter("evacuation_time_medium_risk_min") if evacuation_min is None else evacuation_min
    min_w = parameter("min_exit_width_m") if min_exit_width_m is None else min_exit_width_m
    exit_width, n_exits = _exit_widths(entries, spaces.index, min_w)
    c_egress = (exit_width * flow * t).where(n_exits > 0)
    out = _capacity_frame(area, usable, dd, exit_width, n_exits, c_egress)
    out["los"] = level_of_service(out["persons_per_m2"], out["area_type"])
    return out


def _egress_flow(exit_type: str) -> float:
    """Flow rate (persons per minute per metre of exit) of an ``egress_flow.csv`` row."""
    flows = table("egress_flow").set_index("exit_type")["flow_p_min_m"]
    if exit_type not in flows.index:
        raise ConfigError(
            f"egress_flow.csv: no exit type {exit_type!r} (known: {', '.join(flows.index)})"
        )
    return float(flows[exit_type])


def _exit_widths(
    entries: gpd.GeoDataFrame | None, index: pd.Index, min_width_m: float
) -> tuple[pd.Series, pd.Series]:
    """Per space: total width of its exits but the largest, and its number of exits."""
    exit_width = pd.Series(0.0, index=index)
    n_exits = pd.Series(0, index=index)
    if entries is None or entries.empty:
        return exit_width, n_exits
    usable_exit = (
        entries["networks"].astype("string").str.contains("walk").fillna(False)
        | entries["kind"].isin(["entrance", "gate"])
    ) & (entries["width_m"].astype(float) >= min_width_m)
    ex = entries[usable_exit.to_numpy(dtype=bool)]
    by = ex["width_m"].astype(float).groupby(ex["space_uid"].astype(str))
    total = by.sum() - by.max()  # discount the largest exit
    exit_width = total.reindex(index.astype(str)).fillna(0.0).set_axis(index)
    n_exits = by.size().reindex(index.astype(str)).fillna(0).astype(int).set_axis(index)
    return exit_width, n_exits


def _capacity_frame(
    area: pd.Series,
    usable: pd.Series,
    dd: pd.DataFrame,
    exit_width: pd.Series,
    n_exits: pd.Series,
    c_egress: pd.Series,
) -> pd.DataFrame:
    """The capacity table: the lesser of the density and egress capacities, and why."""
    c_density = usable * dd["design_density"]
    persons = np.fmin(c_density, c_egress)
    limited = np.where(c_egress < c_density, "egress", "density")
    with np.errstate(invalid="ignore", divide="ignore"):
        per_m2 = persons / usable.where(usable > 0)
    return pd.DataFrame(
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
        index=area.index,
    )


def nearby_poi_score(
    spaces: gpd.GeoDataFrame,
    pois: gpd.GeoDataFrame | None,
    *,
    radius_m: float,
    weights: pd.DataFrame | None = None,
    crs: str | None = None,
) -> pd.Series:
    """Sum of the ``poi_weights`` of the POIs within ``radius_m`` of each space's outline.

    Parameters
    ----------
    spaces : GeoDataFrame
        The ``public_space`` layer.
    pois : GeoDataFrame or None
        The ``poi`` layer (``kind`` column); None or empty gives 0 everywhere.
    radius_m : float
        Search distance from the outline (m).
    weights : DataFrame, optional
        ``kind, weight``; the ``poi_weights`` table by default.
    crs : str, optional
        Metric CRS; ``spaces.crs`` when it is already metric.

    Returns
    -------
    Series
        ``poi_score`` indexed like ``spaces``.

    Examples
    --------
    >>> sq = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10)], crs="EPSG:32635")
    >>> p = gpd.GeoDataFrame({"kind": ["worship", "retail"]},
    ...     geometry=[shapely.Point(15, 5), shapely.Point(500, 5)], crs="EPSG:32635")
    >>> nearby_poi_score(sq, p, radius_m=75).tolist()  # worship weighs 3; retail is too far
    [3.0]
    """
    polys = _metric(spaces, crs, "POI score")
    score = np.zeros(len(polys))
    if pois is not None and not pois.empty:
        si, pi, pw = pois_near(polys, pois.to_crs(polys.crs), radius_m=radius_m, weights=weights)
        score = np.bincount(si, weights=pw[pi], minlength=len(polys)).astype(float)
    return pd.Series(score, index=spaces.index, name="poi_score")


def pois_near(
    spaces_m: gpd.GeoDataFrame,
    pois_m: gpd.GeoDataFrame,
    *,
    radius_m: float,
    weights: pd.DataFrame | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Pairs (space position, POI position) within ``radius_m``, and every POI's weight.

    Both layers in one metric CRS; the weight is the POI kind's ``poi_weights`` (0 for a
    kind the table does not list).

    Examples
    --------
    >>> sq = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10)], crs="EPSG:32635")
    >>> p = gpd.GeoDataFrame({"kind": ["worship", "retail"]},
    ...     geometry=[shapely.Point(15, 5), shapely.Point(500, 5)], crs="EPSG:32635")
    >>> si, pi, w = pois_near(sq, p, radius_m=75)
    >>> si.tolist(), pi.tolist(), w.tolist()
    ([0], [0], [3.0, 1.0])
    """
    w = table("poi_weights") if weights is None else weights
    weight_of = dict(zip(w["kind"], w["weight"].astype(float), strict=True))
    pw = pois_m["kind"].astype("string").map(weight_of).astype(float).fillna(0.0).to_numpy()
    si, pi = shapely.STRtree(pois_m.geometry.values).query(
        spaces_m.geometry.values, predicate="dwithin", distance=radius_m
    )
    return si.astype(np.int64), pi.astype(np.int64), np.asarray(pw, dtype=float)


def expected_occupancy(
    kinds: pd.Series,
    usable_area_m2: pd.Series,
    poi_score: pd.Series,
    capacity_persons: pd.Series,
    *,
    uses: pd.DataFrame | None = None,
    factors: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Expected peak number of people in each space, by its use (see the module docstring).

    ``min(capacity, (min(A, core)·d_core + max(A − core, 0)·d_rest) × f_POI)``: the use
    densities per kind from ``occupancy_by_use`` (a kind without a row takes ``*``), the
    factor by POI score from ``occupancy_attractiveness``, never above the safe capacity.

    Parameters
    ----------
    kinds : Series
        Space kinds.
    usable_area_m2 : Series
        Usable areas (m²), aligned with ``kinds``.
    poi_score : Series
        POI scores (:func:`nearby_poi_score`), aligned.
    capacity_persons : Series
        Safe capacities (NaN: no cap), aligned.
    uses, factors : DataFrame, optional
        The ``occupancy_by_use`` and ``occupancy_attractiveness`` tables by default.

    Returns
    -------
    DataFrame
        ``expected_peak_persons`` and ``occupancy_rule`` (the sum written out), indexed
        like ``kinds``.

    Examples
    --------
    A 20,000 m² park with a POI score of 6 (factor 1): 5,000 m² × 0.45 + 15,000 m² × 0.03
    = 2,250 + 450 = 2,700 people:

    >>> k = pd.Series(["park"])
    >>> out = expected_occupancy(k, pd.Series([20000.0]), pd.Series([6.0]), pd.Series([4e4]))
    >>> float(out["expected_peak_persons"].iloc[0])
    2700.0
    """
    ref = (table("occupancy_by_use") if uses is None else uses).set_index("kind")
    k = kinds.astype("string").fillna("*")
    row = k.where(k.isin(ref.index), "*").to_numpy(dtype=object)
    core = ref["core_area_m2"].astype(float).reindex(row).to_numpy()
    d_core = ref["core_density_p_m2"].astype(float).reindex(row).to_numpy()
    d_rest = ref["rest_density_p_m2"].astype(float).reindex(row).to_numpy()
    area = usable_area_m2.to_numpy(dtype=float)
    a_core = np.minimum(area, core)
    a_rest = np.maximum(area - core, 0.0)
    factor, label = _attractiveness_factor(poi_score.to_numpy(dtype=float), factors)
    by_use = (a_core * d_core + a_rest * d_rest) * factor
    cap = capacity_persons.to_numpy(dtype=float)
    capped = ~np.isnan(cap) & (cap < by_use)
    persons = np.where(capped, cap, by_use)
    rule = [
        _occupancy_text(kd, ac, dc, ar, dr, f, lb, ps, c if cp else None, p)
        for kd, ac, dc, ar, dr, f, lb, ps, c, cp, p in zip(
            row, a_core, d_core, a_rest, d_rest, factor, label, poi_score.to_numpy(dtype=float),
            cap, capped, persons, strict=True,
        )
    ]  # fmt: skip
    return pd.DataFrame(
        {"expected_peak_persons": persons, "occupancy_rule": pd.array(rule, dtype="string")},
        index=kinds.index,
    )


def _attractiveness_factor(
    score: np.ndarray, factors: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``occupancy_attractiveness`` factor and band label of each POI score."""
    bands = (table("occupancy_attractiveness") if factors is None else factors).sort_values("lower")
    lower = bands["lower"].to_numpy(dtype=float)
    idx = np.clip(np.searchsorted(lower, np.nan_to_num(score), side="right") - 1, 0, len(lower) - 1)
    return bands["factor"].to_numpy(dtype=float)[idx], bands["label"].to_numpy(dtype=object)[idx]


def _occupancy_text(
    kind: str,
    a_core: float,
    d_core: float,
    a_rest: float,
    d_rest: float,
    factor: float,
    label: str,
    poi_score: float,
    cap: float | None,
    persons: float,
) -> str:
    """E.g. ``occupancy_by_use/park: (5,000 m² × 0.45 + 15,000 m² × 0.03 p/m²) × 1 … = 2,700``."""
    use = f"{a_core:,.0f} m² × {d_core:g}"
    if a_rest > 0:
        use += f" + {a_rest:,.0f} m² × {d_rest:g}"
    text = f"occupancy_by_use/{kind}: ({use} p/m²) × {factor:g} (POI score {poi_score:g}: {label})"
    if cap is not None:
        return f"{text}, capped at the safe capacity {cap:,.0f} = {persons:,.0f}"
    return f"{text} = {persons:,.0f}"
