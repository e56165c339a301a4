"""VBIED stand-off: how close each vehicle class can stop to a space, and who is near it.

For a vehicle-borne IED the driver need not be fast (that is ramming, :mod:`.approach`);
what matters is the distance between the device and the crowd (domain brief §2.1: "blast
stand-off is the single most important factor"). Per (space, vehicle class):

* **reach**: the closest point of the hostile-vehicle network the class can drive to.
  The network is :attr:`StreetNetwork.vehicle_edges` plus, on an edge closed by
  barriers, the parts between each end and its nearest barrier (a vehicle reaches them
  from the junction; the part between two barriers is out of reach). A space the
  network enters (a piece of it runs through the space's interior) gives ``inside``,
  distance 0, at the reachable point nearest the space's representative point (where
  its crowd is); otherwise the nearest point of the network, ``parking`` when that
  street is a parking aisle or has on-street parking (``parking_tags.csv``), else
  ``street``. Every class reaches the same network unless the vehicle table has a
  ``width_m`` column: then edges *mapped* narrower than the vehicle are left out for it
  (a default width is no evidence either way, as in the approach search).
* **hazard distances** of the explosive the class can carry: the mandatory and
  preferred evacuation distances of the NCTC bomb threat stand-off chart
  (``vbied_standoff.csv``).
* **people**: within each distance of the point, the sum over spaces (this one and its
  neighbours) of ``persons × (share of the space's area inside the circle)``.

Car parks (``amenity=parking`` areas) are not ingested as a layer; their aisles are on
the street network (``service=parking_aisle``) and count as ``parking``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely import ops

from geo_protect.analysis.network import SNAP_M, StreetNetwork, street_network
from geo_protect.analysis.overlap import circle_overlap_area
from geo_protect.analysis.vehicles import vehicle_classes
from geo_protect.citydata import CityData
from geo_protect.errors import ConfigError, ValidationError
from geo_protect.reference import table
from geo_protect.schema import WGS84, conform, empty_layer

__all__ = [
    "city_standoff",
    "crowd_persons",
    "parking_streets",
    "persons_within",
    "standoff",
    "standoff_chart",
]


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
GeomArray = npt.NDArray[np.object_]


def standoff_chart(vehicles: Sequence[str] | None = None) -> pd.DataFrame:
    """The ``vbied_standoff`` reference table indexed by vehicle class.

    Parameters
    ----------
    vehicles : sequence of str, optional
        Classes to return, in this order (all rows by default).

    Raises
    ------
    ConfigError
        If a class has no row in the table.

    Examples
    --------
    >>> standoff_chart(["N3"]).loc["N3", ["explosive_lbs", "mandatory_ft", "preferred_ft"]].tolist()
    [60000, 1570, 9300]
    """
    chart = table("vbied_standoff").set_index("vehicle")
    if vehicles is None:
        return chart
    missing = [v for v in vehicles if v not in chart.index]
    if missing:
        raise ConfigError(f"vbied_standoff.csv: no row for vehicle class(es) {', '.join(missing)}")
    return chart.loc[list(vehicles)]


def crowd_persons(space_metric: pd.DataFrame) -> pd.Series:
    """The people per space the stand-off counts: ``expected_peak_persons`` when the
    ``space_metric`` layer has it, else ``capacity_persons`` (named after the column).

    Examples
    --------
    >>> crowd_persons(pd.DataFrame({"capacity_persons": [10.0]}, index=["way/1"])).name
    'capacity_persons'
    """
    for column in ("expected_peak_persons", "capacity_persons"):
        if column in space_metric.columns:
            values = pd.to_numeric(space_metric[column], errors="coerce").astype("float64")
            return values.rename(column)
    raise ValidationError("layer 'space_metric': missing column capacity_persons")


def parking_streets(streets: gpd.GeoDataFrame, *, rules: pd.DataFrame | None = None) -> pd.Series:
    """Per street uid: True where a vehicle parks there (``parking_tags.csv``).

    Examples
    --------
    >>> s = pd.DataFrame({"tags": ['{"service": "parking_aisle"}', '{"parking:both": "no"}']},
    ...                  index=["way/1", "way/2"])
    >>> parking_streets(s).tolist()
    [True, False]
    """
    rules = table("parking_tags") if rules is None else rules
    allowed = {
        str(k): set(str(v).split("|")) for k, v in zip(rules["key"], rules["values"], strict=True)
    }
    text = streets["tags"].astype("string").fillna("")
    # only the few ways whose tags mention a rule's key are parsed
    maybe = text.str.contains("|".join(map(re.escape, allowed)), regex=True).to_numpy(dtype=bool)
    flag = pd.Series(False, index=streets.index, name="parking")
    tags = text[maybe].map(lambda t: json.loads(t) if t else {})
    flag[maybe] = tags.map(lambda t: any(str(t.get(k, "")) in vals for k, vals in allowed.items()))
    return flag.astype(bool)


def standoff(
    network: StreetNetwork | None,
    spaces_m: gpd.GeoDataFrame,
    persons: pd.Series,
    *,
    vehicles: pd.DataFrame | None = None,
    chart: pd.DataFrame | None = None,
    parking: pd.Series | None = None,
    only: Sequence[str] | None = None,
) -> gpd.GeoDataFrame:
    """The ``standoff`` layer: closest reachable point and people at risk per (space, class).

    Parameters
    ----------
    network : StreetNetwork or None
        The city's street network (None: no streets, an empty layer).
    spaces_m : GeoDataFrame
        The public spaces in the network's metric CRS, indexed by space uid.
    persons : Series
        People per space uid (:func:`crowd_persons`); NA counts as nobody.
    vehicles : DataFrame, optional
        Vehicle classes indexed by code (every class of ``vehicle_classes.csv`` by
        default); a ``width_m`` column keeps each class off narrower edges.
    chart : DataFrame, optional
        The ``vbied_standoff`` table indexed by vehicle (:func:`standoff_chart`).
    parking : Series, optional
        Per street uid, True for parking streets (:func:`parking_streets`).
    only : sequence of str, optional
        Rows for these spaces only (the people of every space are still counted).

    Returns
    -------
    GeoDataFrame
        WGS84, uid ``"{space_uid}|{vehicle}"``, one row per space and class with a
        reachable point; columns as :data:`geo_protect.schema.LAYERS` ``["standoff"]``.

    Examples
    --------
    >>> from geo_protect.analysis.network import street_network
    >>> from geo_protect.schema import conform
    >>> crs = "EPSG:32635"
    >>> street = gpd.GeoDataFrame(
    ...     {"osm_type": ["way"], "osm_id": [1], "name": ["A"], "kind": ["residential"],
    ...      "tags": ["{}"], "source": ["t"], "data_date": [None], "highway": ["residential"],
    ...      "walk": [True], "hostile_vehicle": [True], "width_m": [np.nan],
    ...      "lanes": [np.nan], "maxspeed_kmh": [np.nan]},
    ...     geometry=[shapely.LineString([(0, -30), (100, -30)])], index=["way/1"], crs=crs)
    >>> space = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 100, 100)], index=["way/9"],
    ...                          crs=crs)
    >>> layer = standoff(street_network(street, crs=crs), space, pd.Series({"way/9": 2e4}))
    >>> row = layer.loc["way/9|N3"]  # 478.5 m: the whole square is within it
    >>> row["reach"], float(row["closest_m"]), float(row["persons_mandatory"])
    ('street', 30.0, 20000.0)
    """
    fleet = vehicle_classes(include_all=True) if vehicles is None else vehicles
    rows = standoff_chart(list(fleet.index)) if chart is None else chart.loc[list(fleet.index)]
    if network is None or spaces_m.empty:
        return empty_layer("standoff")
    geoms = np.asarray(spaces_m.geometry.values)
    pick = np.arange(len(geoms)) if only is None else np.flatnonzero(spaces_m.index.isin(only))
    widths = fleet["width_m"].astype(float) if "width_m" in fleet.columns else None
    parts = _reach_per_class(network, geoms[pick], widths, list(fleet.index), parking)
    if not parts:
        return empty_layer("standoff")
    out = pd.concat(parts, ignore_index=True)
    out["_space"] = pick[out["_space"].to_numpy()]
    chart_rows = rows.reindex(out["vehicle"].to_numpy())
    out["explosive_kg"] = chart_rows["explosive_kg"].to_numpy(dtype=float)
    out["mandatory_m"] = chart_rows["mandatory_m"].to_numpy(dtype=float)
    out["preferred_m"] = chart_rows["preferred_m"].to_numpy(dtype=float)
    cap = persons.reindex(spaces_m.index).to_numpy(dtype=float, na_value=np.nan)
    radii = out[["mandatory_m", "preferred_m"]].to_numpy(dtype=float)
    counted = persons_within(out["_point"].to_numpy(), radii, geoms, cap)
    out["persons_mandatory"], out["persons_preferred"] = counted[:, 0], counted[:, 1]
    out["space_uid"] = spaces_m.index.to_numpy()[out["_space"].to_numpy()]
    out["method"] = _method(chart_rows["chart_row"], str(persons.name), widths is not None)
    out.index = pd.Index(out["space_uid"] + "|" + out["vehicle"], name="uid")
    points = gpd.GeoSeries(out.pop("_point").to_numpy(), index=out.index, crs=spaces_m.crs)
    layer = gpd.GeoDataFrame(out, geometry=points.to_crs(WGS84), crs=WGS84)
    return conform("standoff", layer)


def city_standoff(
    data: CityData, space_metric: pd.DataFrame, *, crs: str, vehicles: pd.DataFrame | None = None
) -> gpd.GeoDataFrame:
    """The ``standoff`` layer of a city from its source layers and ``space_metric``.

    Builds the street network (as :func:`geo_protect.analysis.city.analyse_city` does)
    and calls :func:`standoff` with :func:`crowd_persons` and :func:`parking_streets`.

    Parameters
    ----------
    data : CityData
        The city's source layers.
    space_metric : DataFrame
        Its ``space_metric`` layer (the people per space).
    crs : str
        The city's metric CRS.
    vehicles : DataFrame, optional
        As for :func:`standoff`.

    Examples
    --------
    >>> from geo_protect.schema import empty_layer
    >>> empty = CityData("x", {"public_space": empty_layer("public_space")})
    >>> len(city_standoff(empty, empty_layer("space_metric"), crs="EPSG:32635"))
    0
    """
    streets = data["street"]
    network = None if streets.empty else street_network(streets, data["barrier"], crs=crs)
    spaces_m = data["public_space"].to_crs(crs)
    persons = crowd_persons(space_metric)
    return standoff(network, spaces_m, persons, vehicles=vehicles, parking=parking_streets(streets))


def persons_within(
    points: GeomArray, radii: FloatArray, spaces: GeomArray, persons: FloatArray
) -> FloatArray:
    """People within each radius of each point: Σ persons × (area share inside the circle).

    Parameters
    ----------
    points : array of Point
        One point per row (metric CRS).
    radii : array, shape (rows, k)
        The radii of each row, metres.
    spaces : array of Polygon
        The spaces (same CRS).
    persons : array
        People per space (NaN counts as 0).

    Returns
    -------
    ndarray, shape (rows, k)

    Examples
    --------
    >>> sq = shapely.box(0, 0, 10, 10)
    >>> persons_within(np.array([shapely.Point(0, 5)]), np.array([[100.0, 1.0]]),
    ...                np.array([sq]), np.array([100.0])).round(2).tolist()
    [[100.0, 1.57]]
    """
    out = np.zeros(radii.shape)
    if len(points) == 0 or len(spaces) == 0:
        return out
    xy = np.round(shapely.get_coordinates(points), 3)
    unique_xy, row_point = np.unique(xy, axis=0, return_inverse=True)
    row_point = row_point.ravel()
    centres = shapely.points(unique_xy)
    values = np.unique(radii)
    k, s = shapely.STRtree(spaces).query(centres, predicate="dwithin", distance=values.max())
    area = shapely.area(spaces)
    density = np.where(area > 0, np.nan_to_num(persons, nan=0.0) / np.where(area > 0, area, 1), 0)
    d_min = shapely.distance(centres[k], spaces[s])
    # the farthest a space reaches from a point: its bounding circle (of the spaces met)
    met, at = np.unique(s, return_inverse=True)
    bound = shapely.centroid(shapely.minimum_bounding_circle(spaces[met]))
    radius = shapely.minimum_bounding_radius(spaces[met])
    d_max = shapely.distance(centres[k], bound[at]) + radius[at]
    per_radius = np.zeros((len(centres), len(values)))
    for j, r in enumerate(values):  # a handful of chart distances, vectorised within
        # only the points whose rows ask for this radius (each class has its own two)
        wanted = np.zeros(len(centres), dtype=bool)
        wanted[row_point[(radii == r).any(axis=1)]] = True
        inside_area = np.where(wanted[k] & (d_max <= r), area[s], 0.0)
        part = wanted[k] & (d_max > r) & (d_min < r)
        if part.any():  # exact circle ∩ polygon area, in closed form
            pairs = np.c_[k[part], s[part]]
            inside_area[part] = circle_overlap_area(
                unique_xy, np.full(len(centres), r), spaces, pairs
            )
        per_radius[:, j] = np.bincount(k, weights=density[s] * inside_area, minlength=len(centres))
    col = np.searchsorted(values, radii)
    return per_radius[row_point[:, None], col]


def _method(chart_row: pd.Series, persons: str, by_width: bool) -> npt.NDArray[np.object_]:
    """The ``method`` text of each row."""
    reach = "edges at least as wide as the vehicle" if by_width else "every class alike"
    text = (
        f"nearest reachable point of the hostile-vehicle network ({reach}); "
        + "NCTC stand-off chart row '"
        + chart_row.astype(str)
        + f"'; persons = Σ {persons} × area share within the distance"
    )
    return np.asarray(text.to_numpy(), dtype=object)


def _reach_per_class(
    network: StreetNetwork,
    geoms: GeomArray,
    widths: pd.Series | None,
    vehicles: list[str],
    parking: pd.Series | None,
) -> list[pd.DataFrame]:
    """Per class: space position, closest point, distance and reach (one search per
    distinct set of edges: classes that fit the same edges share it)."""
    pieces, edge = _reachable(network)
    street_uid = network.edges["street_uid"].to_numpy()[edge]
    is_parking = (
        np.zeros(len(edge), dtype=bool)
        if parking is None
        else parking.reindex(street_uid).fillna(False).to_numpy(dtype=bool)
    )
    width = network.edges["width_m"].to_numpy(dtype=float)[edge]
    if "width_source" in network.edges:  # as the approach search: only a mapped width
        mapped = network.edges["width_source"].astype("string").to_numpy(na_value="") == "width"
        width = np.where(mapped[edge], width, np.nan)  # closes a street to a wider vehicle
    parts = []
    found: dict[bytes, tuple[IntArray, GeomArray, FloatArray, npt.NDArray[np.object_]]] = {}
    for vehicle in vehicles:
        keep = np.ones(len(edge), dtype=bool)
        if widths is not None and not np.isnan(widths[vehicle]):
            keep = np.isnan(width) | (width >= widths[vehicle])
        if not keep.any():
            continue
        key = np.packbits(keep).tobytes()
        if key not in found:
            found[key] = _closest(geoms, pieces[keep], is_parking[keep])
        space_i, point, dist, reach = found[key]
        frame = pd.DataFrame(
            {"_space": space_i, "vehicle": vehicle, "closest_m": dist, "reach": reach}
        )
        parts.append(frame.assign(_point=point))
    return parts


def _reachable(network: StreetNetwork) -> tuple[GeomArray, IntArray]:
    """Drivable line pieces and the position of their edge in ``network.edges``."""
    e = network.edges
    vehicle = e["hostile_vehicle"].to_numpy(dtype=bool)
    closed = e["blocked_by"].notna().to_numpy()
    geoms = np.asarray(e.geometry.values)
    open_pos = np.flatnonzero(vehicle & ~closed)
    pieces, edge = [geoms[open_pos]], [open_pos]
    bars = network.barriers
    if len(bars):
        at = bars.groupby("edge")["at_m"].agg(["min", "max"])
        pos = e.index.get_indexer(at.index)
        ok = (pos >= 0) & vehicle[np.clip(pos, 0, None)]
        pos, lo, hi = pos[ok], at["min"].to_numpy()[ok], at["max"].to_numpy()[ok]
        length = shapely.length(geoms[pos])
        # the parts from each end to its nearest barrier (a few edges: a short loop)
        ends = [
            (p, ops.substring(geoms[p], a, b))
            for p, a0, b0, n in zip(pos, lo, hi, length, strict=True)
            for a, b in ((0.0, a0), (b0, n))
            if b - a > SNAP_M
        ]
        if ends:
            edge.append(np.array([p for p, _ in ends], dtype=np.int64))
            pieces.append(np.array([g for _, g in ends], dtype=object))
    return np.concatenate(pieces), np.concatenate(edge).astype(np.int64)


def _closest(
    spaces: GeomArray, pieces: GeomArray, parking: npt.NDArray[np.bool_]
) -> tuple[IntArray, GeomArray, FloatArray, npt.NDArray[np.object_]]:
    """Per space: the closest reachable point, its distance to the outline and the reach."""
    n = len(spaces)
    point = np.empty(n, dtype=object)
    dist = np.zeros(n)
    reach = np.full(n, "street", dtype=object)
    tree = shapely.STRtree(pieces)
    s, p = tree.query(spaces, predicate="intersects")
    through = shapely.relate_pattern(pieces[p], spaces[s], "T********")  # interiors meet
    s, p = s[through], p[through]
    inside = np.zeros(n, dtype=bool)
    if len(s):
        centre = shapely.point_on_surface(spaces)
        part = shapely.intersection(pieces[p], spaces[s])
        near = shapely.get_point(shapely.shortest_line(part, centre[s]), 0)
        first = _first_of_each(s, shapely.distance(part, centre[s]), near)
        best = s[first]
        point[best] = near[first]
        inside[best] = True
        reach[best] = "inside"
    rest = np.flatnonzero(~inside)
    if len(rest):
        # every equally near piece (overlapping ways tie), then one chosen by position
        qi, nearest = tree.query_nearest(spaces[rest], all_matches=True)
        line = shapely.shortest_line(spaces[rest[qi]], pieces[nearest])
        ends = shapely.get_point(line, 1)
        first = _first_of_each(qi, shapely.length(line), ends)
        at, nearest = rest[qi[first]], nearest[first]
        point[at] = ends[first]
        dist[at] = shapely.length(line[first])
        reach[at] = np.where(parking[nearest], "parking", "street")
    return np.arange(n), point, dist, reach


def _first_of_each(group: IntArray, dist: FloatArray, points: GeomArray) -> IntArray:
    """Per group the row of least distance; ties by the point's x, then y (an order that
    does not depend on how the candidates were listed)."""
    xy = shapely.get_coordinates(points)
    order = np.lexsort((xy[:, 1], xy[:, 0], np.round(dist, 9), group))
    return order[np.r_[True, group[order][1:] != group[order][:-1]]]
