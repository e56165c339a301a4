"""Site plan of one public space: a printable, self-contained SVG drawn from the city's layers.

The plan shows the space, the buildings, streets and other spaces around it, its entry
points by class, the worst approach path per vehicle class with its speed, the existing
barriers and cameras, the stand-off rings, a legend, a scale bar and a north arrow (grid
north of the city's metric CRS). It is plain SVG written from shapely geometries
projected to that CRS: no tiles, no scripts, nothing fetched, so it prints crisply and
works offline. Look and furniture: :mod:`geo_protect.outputs.plan_style`.

Each layer is clipped to the plan window with one :class:`shapely.STRtree` query and one
:func:`shapely.clip_by_rect`; :func:`plan_layers` projects and indexes a city once, for
every space of its reports. The window margin is in ``data/reference/site_plan.csv``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geo_protect import reference
from geo_protect.errors import ValidationError
from geo_protect.outputs import plan_style as st
from geo_protect.outputs.plan_style import escape

__all__ = ["PlanLayers", "plan_layers", "site_plan"]

ASPECT = (0.6, 1.25)  # height / width of the map panel, clamped
_NO_ROWS = np.empty(0, dtype=np.intp)


@dataclass(frozen=True)
class _Features:
    """One layer projected to the plan CRS: geometries, their tree, attributes by position."""

    geoms: np.ndarray
    frame: pd.DataFrame
    tree: shapely.STRtree
    groups: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanLayers:
    """A city's layers projected and indexed once for all its site plans (:func:`plan_layers`)."""

    crs: str
    layers: Mapping[str, _Features]
    vehicles: tuple[str, ...]
    margin_m: float
    padding_m: float

    def __getitem__(self, name: str) -> _Features:
        return self.layers[name]


def plan_layers(layers: Mapping[str, gpd.GeoDataFrame], *, crs: str) -> PlanLayers:
    """Project and index a city's layers once, for :func:`site_plan` of each of its spaces.

    Parameters
    ----------
    layers : mapping of str to GeoDataFrame
        The city's layers by name (``public_space``, ``building``, ``street``, ``barrier``,
        ``surveillance``, ``entry_point``, ``approach`` and, when present, ``standoff``);
        a missing layer is drawn as empty.
    crs : str
        The city's metric CRS (:attr:`geo_protect.cities.City.crs`).

    Returns
    -------
    PlanLayers
        The projected layers with their spatial indexes; of the approaches, the worst
        per space and vehicle class (highest ``speed_kmh``) is kept.

    Raises
    ------
    ValidationError
        When a layer has no CRS.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> spaces = gpd.GeoDataFrame(geometry=[shapely.box(25.59, 45.64, 25.591, 45.641)], crs=4326)
    >>> plan_layers({"public_space": spaces}, crs="EPSG:32635")["public_space"].geoms.shape
    (1,)
    """
    table = reference.table("site_plan").set_index("name")["value"]
    names = ("public_space", "building", "street", "barrier", "surveillance", "entry_point")
    out = {name: _features(layers.get(name), crs, name) for name in names}
    out["approach"] = _features(_worst_approaches(layers.get("approach")), crs, "approach")
    out["standoff"] = _features(layers.get("standoff"), crs, "standoff")
    for name in ("entry_point", "approach", "standoff"):
        f = out[name]
        if "space_uid" in f.frame.columns:
            by_space = f.frame.reset_index(drop=True).groupby("space_uid", sort=False)
            out[name] = _Features(f.geoms, f.frame, f.tree, by_space.indices)
    return PlanLayers(
        crs,
        out,
        tuple(reference.table("vehicle_classes")["vehicle"].astype(str)),
        float(table["window_margin_m"]),
        float(table["approach_padding_m"]),
    )


def _features(layer: gpd.GeoDataFrame | None, crs: str, name: str) -> _Features:
    if layer is None or layer.empty:
        empty = np.empty(0, dtype=object)
        return _Features(
            empty, pd.DataFrame(index=pd.Index([], name="uid")), shapely.STRtree(empty)
        )
    if layer.crs is None:
        raise ValidationError(f"layer {name!r}: no CRS; a site plan needs WGS84 or {crs}")
    projected = layer.to_crs(crs)
    geoms = np.asarray(projected.geometry.values, dtype=object)
    frame = pd.DataFrame(projected.drop(columns=projected.geometry.name))
    return _Features(geoms, frame, shapely.STRtree(geoms))


def _worst_approaches(approach: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """Per (space, vehicle) the approach row with the highest ``speed_kmh``."""
    if approach is None or approach.empty:
        return None
    fast = approach[approach["speed_kmh"].notna()]
    order = fast.sort_values("speed_kmh", ascending=False, kind="stable")
    return order.drop_duplicates(["space_uid", "vehicle"]).sort_values(["space_uid", "vehicle"])


@dataclass(frozen=True)
class _Rings:
    """The stand-off rings of a space: centre, radii (m, NaN when unknown) and vehicle."""

    x: float
    y: float
    mandatory_m: float
    preferred_m: float
    vehicle: str


def site_plan(
    space_uid: str,
    layers: Mapping[str, gpd.GeoDataFrame] | PlanLayers,
    *,
    crs: str,
    margin_m: float | None = None,
    title: str | None = None,
) -> str:
    """The site plan of one public space, as a self-contained inline SVG.

    The window is the space's bounding box grown by ``margin_m``, widened to hold the
    worst approach path of each vehicle class (with ``approach_padding_m`` of
    ``site_plan.csv`` around them); its height/width ratio is kept within 0.6–1.25. The
    stand-off rings (often hundreds of metres) are clipped to it, their radii in the
    legend. North is the grid north of ``crs``. Every text (OSM names included) is escaped.

    Parameters
    ----------
    space_uid : str
        The space (uid of the ``public_space`` layer).
    layers : mapping of str to GeoDataFrame, or PlanLayers
        The city's layers (:func:`plan_layers`; give its result when drawing many spaces).
    crs : str
        The city's metric CRS (:attr:`geo_protect.cities.City.crs`).
    margin_m : float, optional
        Least margin around the space (``window_margin_m`` of ``site_plan.csv`` by default).
    title : str, optional
        The SVG's ``<title>`` (``Site plan – <name>`` by default).

    Returns
    -------
    str
        The ``<svg>`` element.

    Raises
    ------
    ValidationError
        When the space is not in the ``public_space`` layer, or ``layers`` were indexed
        for another CRS.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> spaces = gpd.GeoDataFrame(
    ...     {"name": ["Piața <Mică>"], "data_date": ["2024-08-21"]},
    ...     geometry=[shapely.box(25.590, 45.640, 25.591, 45.641)],
    ...     index=pd.Index(["way/1"], name="uid"), crs=4326)
    >>> svg = site_plan("way/1", {"public_space": spaces}, crs="EPSG:32635")
    >>> svg.startswith("<svg") and "Piața &lt;Mică&gt;" in svg and st.ATTRIBUTION in svg
    True
    """
    plan = layers if isinstance(layers, PlanLayers) else plan_layers(layers, crs=crs)
    if plan.crs != crs:
        raise ValidationError(f"site plan: layers indexed for {plan.crs}, asked for {crs}")
    spaces = plan["public_space"]
    where = np.flatnonzero(spaces.frame.index.astype(str) == space_uid)
    if not len(where):
        raise ValidationError(f"layer 'public_space': no space {space_uid!r} to draw")
    pos = int(where[0])
    approaches = plan["approach"].groups.get(space_uid, _NO_ROWS)
    rings = _standoff(plan, space_uid)
    view = _window(plan, spaces.geoms[pos], approaches, margin_m)
    row = spaces.frame.iloc[pos]
    ident = f"sp{zlib.crc32(space_uid.encode()):08x}"
    body = [
        _basemap(plan, view, pos),
        st.path(spaces.geoms[[pos]], view, True, st.style(*st.SPACE, 5), "space"),
        _barriers(plan, view),
        _rings(rings, view),
        _approaches(plan, approaches, view, ident),
        _cameras(plan, view),
        _entries(plan, plan["entry_point"].groups.get(space_uid, _NO_ROWS), view),
    ]
    legend, legend_h = st.legend(_legend_items(plan, approaches, rings, view), view.height)
    name = _text(row.get("name")) or _text(row.get("label")) or space_uid
    return _svg(ident, title or f"Site plan – {name}", view, body, legend, legend_h, crs, row)


def _svg(
    ident: str,
    title: str,
    view: st.PlanView,
    body: list[str],
    legend: str,
    legend_h: int,
    crs: str,
    row: pd.Series,
) -> str:
    """The ``<svg>`` around the drawn map: title, clip, frame, furniture, attribution."""
    date = _text(row.get("data_date")) or "unknown date"
    foot = view.height + legend_h + st.ROW
    total = foot + st.ROW // 2
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {st.WIDTH} {total}" '
        f'class="site-plan-svg" role="img" aria-labelledby="{ident}-title" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="{st.FONT}">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<defs><clipPath id="{ident}-clip"><rect width="{st.WIDTH}" height="{view.height}"/>'
        f"</clipPath>{st.arrowheads(ident)}</defs>"
        f'<rect width="{st.WIDTH}" height="{total}" fill="{st.PAPER}"/>'
        f'<g clip-path="url(#{ident}-clip)">{"".join(body)}</g>'
        f'<rect class="frame" width="{st.WIDTH}" height="{view.height}" fill="none" '
        f'stroke="{st.INK}" stroke-width="2"/>'
        f"{st.north_arrow()}{st.scale_bar(view.maxx - view.minx, view.scale, view.height)}"
        f'{legend}<text class="attribution" x="10" y="{foot}" font-size="{st.FONT - 4}" '
        f'fill="{st.MUTED}">{escape(st.ATTRIBUTION)} · OSM data of {escape(date)} · '
        f"{escape(_crs_name(crs))}; the arrow points to grid north</text></svg>"
    )


def _window(
    plan: PlanLayers,
    space: shapely.Geometry,
    approaches: np.ndarray,
    margin_m: float | None,
) -> st.PlanView:
    """The plan window: space + margin, approaches + padding, aspect clamped."""
    margin = plan.margin_m if margin_m is None else margin_m
    x0, y0, x1, y1 = shapely.bounds(space)
    boxes = [np.array([[x0 - margin, y0 - margin, x1 + margin, y1 + margin]])]
    pad = np.array([-1.0, -1.0, 1.0, 1.0]) * plan.padding_m
    if len(approaches):
        boxes.append(shapely.bounds(plan["approach"].geoms[approaches]) + pad)
    b = np.concatenate(boxes)
    minx, miny, maxx, maxy = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    w, h = maxx - minx, maxy - miny
    lo, hi = ASPECT
    if h < lo * w:
        miny, maxy = (miny + maxy - lo * w) / 2, (miny + maxy + lo * w) / 2
    elif h > hi * w:
        minx, maxx = (minx + maxx - h / hi) / 2, (minx + maxx + h / hi) / 2
    return st.PlanView(float(minx), float(miny), float(maxx), float(maxy))


def _clipped(plan: PlanLayers, name: str, view: st.PlanView) -> tuple[np.ndarray, np.ndarray]:
    """Positions and geometries of a layer clipped to the window (vectorised)."""
    feats = plan[name]
    near = np.sort(feats.tree.query(shapely.box(view.minx, view.miny, view.maxx, view.maxy)))
    clipped = shapely.clip_by_rect(feats.geoms[near], view.minx, view.miny, view.maxx, view.maxy)
    keep = ~shapely.is_empty(clipped)
    return near[keep], clipped[keep]


def _basemap(plan: PlanLayers, view: st.PlanView, own: int) -> str:
    """Other public spaces, buildings and streets (casings under fills), clipped."""
    pos, spaces = _clipped(plan, "public_space", view)
    parts = [st.path(spaces[pos != own], view, True, st.style(*st.OTHER_SPACE, 1.5), "other-space")]
    parts.append(
        st.path(
            _clipped(plan, "building", view)[1], view, True, st.style(*st.BUILDING, 1), "building"
        )
    )
    pos, streets = _clipped(plan, "street", view)
    frame = plan["street"].frame
    highway = frame["highway"].astype(str).to_numpy()[pos] if "highway" in frame else np.array([])
    return "".join(parts) + st.streets(streets, highway, view)


def _barriers(plan: PlanLayers, view: st.PlanView) -> str:
    """Barrier lines and points in the window, coloured by whether they stop a vehicle."""
    pos, geoms = _clipped(plan, "barrier", view)
    frame = plan["barrier"].frame
    kinds = frame["kind"].astype(str).to_numpy()[pos] if "kind" in frame else np.full(len(pos), "")
    stops = reference.table("barrier_types").set_index("barrier")["stops_vehicle"].astype(str)
    how = pd.Series(kinds).map(stops).fillna("no").to_numpy()
    out = []
    for key, (colour, _) in st.BARRIER_STYLE.items():
        mine = geoms[how == key]
        out.append(
            st.path(mine, view, False, f'stroke="{colour}" stroke-width="5"', "barrier-line")
        )
        points = shapely.get_coordinates(mine[shapely.get_type_id(mine) == 0])
        out.extend(
            f'<rect class="barrier" x="{x - 7:.0f}" y="{y - 7:.0f}" width="14" height="14" '
            f'fill="{colour}" stroke="{st.PAPER}" stroke-width="2"/>'
            for x, y in view.xy(points).tolist()
        )
    return "".join(out)


def _cameras(plan: PlanLayers, view: st.PlanView) -> str:
    """Cameras (``surveillance`` layer) in the window, as triangles with a tooltip."""
    pos, geoms = _clipped(plan, "surveillance", view)
    frame = plan["surveillance"].frame
    names = frame["name"].to_numpy()[pos] if "name" in frame else np.full(len(pos), None)
    return "".join(
        f'<path class="camera" d="M{x:.0f} {y - 12:.0f}l11 20h-22Z" fill="{st.CAMERA[0]}" '
        f'stroke="{st.PAPER}" stroke-width="2"><title>camera {escape(_text(n))}</title></path>'
        for (x, y), n in zip(view.xy(shapely.get_coordinates(geoms)).tolist(), names, strict=True)
    )


def _entries(plan: PlanLayers, rows: np.ndarray, view: st.PlanView) -> str:
    """The space's entry points, coloured by class, with kind and worst speed as tooltip."""
    feats = plan["entry_point"]
    frame = feats.frame.iloc[rows]
    xy = view.xy(shapely.get_coordinates(feats.geoms[rows])).tolist()
    out = []
    for (x, y), (_, row) in zip(xy, frame.iterrows(), strict=True):
        cls = _text(row.get("entry_class")) or "unknown"
        colour = st.ENTRY_STYLE.get(cls, (st.MUTED, ""))[0]
        tip = f"{_text(row.get('kind'))} entry, {cls.replace('_', ' ')}"
        if _finite(row.get("worst_speed_kmh")):
            tip += f", worst {_num(row.get('worst_speed_kmh'))} km/h"
            tip += f" ({_text(row.get('worst_vehicle'))})"
        out.append(
            f'<circle class="entry entry-{escape(cls)}" cx="{x:.0f}" cy="{y:.0f}" r="11" '
            f'fill="{colour}" stroke="{st.PAPER}" stroke-width="3"><title>{escape(tip)}</title>'
            "</circle>"
        )
    return "".join(out)


def _colour_index(plan: PlanLayers, vehicle: str) -> int:
    """Index in :data:`~plan_style.ARROW_COLOURS` of a vehicle class (last: unknown)."""
    if vehicle not in plan.vehicles:
        return len(st.ARROW_COLOURS) - 1
    return plan.vehicles.index(vehicle) % len(st.VEHICLE_COLOURS)


def _approaches(plan: PlanLayers, rows: np.ndarray, view: st.PlanView, ident: str) -> str:
    """The worst approach path per vehicle class (longest below), arrow at the entry, labelled
    at its start."""
    feats = plan["approach"]
    out, labels = [], []
    used: list[tuple[float, float]] = []
    longest_first = rows[np.argsort(-shapely.length(feats.geoms[rows]), kind="stable")]
    for p in longest_first.tolist():
        row = feats.frame.iloc[p]
        vehicle = _text(row.get("vehicle"))
        i = _colour_index(plan, vehicle)
        colour, label = st.ARROW_COLOURS[i], f"{vehicle} {_speed(row)}"
        out.append(
            f'<path class="approach" data-vehicle="{escape(vehicle)}" '
            f'd="{st.path_data(feats.geoms[[p]], view, False)}" fill="none" stroke="{colour}" '
            f'stroke-width="6" stroke-linecap="round" marker-end="url(#{ident}-arrow-{i})">'
            f"<title>{escape(label)}, run-up {_num(row.get('run_up_m'))} m</title></path>"
        )
        x, y = view.xy(shapely.get_coordinates(feats.geoms[p])[:1])[0].tolist()
        x, y = min(max(x, 10.0), st.WIDTH - 260.0), min(max(y, 40.0), view.height - 80.0)
        while any(abs(x - ux) < 220 and abs(y - uy) < st.FONT + 4 for ux, uy in used):
            y += st.FONT + 4
        used.append((x, y))
        labels.append(
            f'<text class="approach-label" x="{x:.0f}" y="{y:.0f}" fill="{colour}" '
            f'font-weight="bold" stroke="{st.PAPER}" stroke-width="5" paint-order="stroke">'
            f"{escape(label)}</text>"
        )
    return "".join(out + labels)


def _legend_items(
    plan: PlanLayers, rows: np.ndarray, rings: _Rings | None, view: st.PlanView
) -> list[st.LegendItem]:
    """The legend rows: the fixed ones, the vehicle classes drawn, the stand-off rings."""
    frame = plan["approach"].frame.iloc[rows]
    vehicles = sorted({_text(v) for v in frame["vehicle"]}) if "vehicle" in frame else []
    items = st.base_legend() + [
        ("arrow", st.ARROW_COLOURS[_colour_index(plan, v)], "", f"worst approach, {v} (km/h)")
        for v in vehicles
    ]
    if rings is None:
        return items
    window = shapely.box(view.minx, view.miny, view.maxx, view.maxy)
    centre = shapely.Point(rings.x, rings.y)
    for shape, kind, r in (
        ("ring", "mandatory", rings.mandatory_m),
        ("dashring", "preferred", rings.preferred_m),
    ):
        if math.isfinite(r) and r > 0:
            seen = shapely.intersects(centre.buffer(r, quad_segs=16).exterior, window)
            where = "" if seen else ", beyond the plan"
            label = f"stand-off {rings.vehicle}, {kind} {r:.0f} m{where}"
            items.append((shape, st.STANDOFF, "", label))
    return items


def _speed(row: pd.Series) -> str:
    """``84 km/h``, or ``70–96 km/h`` when the approach has a speed range (not one value)."""
    low, high = row.get("speed_low_kmh"), row.get("speed_high_kmh")
    if _finite(low) and _finite(high) and _num(low) != _num(high):
        return f"{_num(low)}–{_num(high)} km/h"
    return f"{_num(row.get('speed_kmh'))} km/h"


def _standoff(plan: PlanLayers, space_uid: str) -> _Rings | None:
    """The stand-off of a space for its largest class (largest preferred or mandatory)."""
    feats = plan["standoff"]
    rows = feats.groups.get(space_uid)
    if rows is None or not len(rows):
        return None
    frame = feats.frame.iloc[rows]
    mandatory, preferred = _col(frame, "mandatory_m"), _col(frame, "preferred_m")
    size = np.fmax(mandatory, preferred)
    if not np.isfinite(size).any() or np.nanmax(size) <= 0:
        return None
    best = int(np.nanargmax(size))
    x, y = shapely.get_coordinates(shapely.centroid(feats.geoms[rows[best]]))[0].tolist()
    vehicle = _text(frame.iloc[best].get("vehicle"))
    return _Rings(x, y, float(mandatory[best]), float(preferred[best]), vehicle)


def _rings(rings: _Rings | None, view: st.PlanView) -> str:
    """Stand-off circles: mandatory solid, preferred dashed."""
    if rings is None:
        return ""
    cx, cy = view.xy(np.array([[rings.x, rings.y]]))[0].tolist()
    out = []
    for kind, r, dash in (
        ("mandatory", rings.mandatory_m, ""),
        ("preferred", rings.preferred_m, ' stroke-dasharray="14 9"'),
    ):
        if math.isfinite(r) and r > 0:
            tip = f"stand-off {rings.vehicle}, {kind}: {r:.0f} m"
            out.append(
                f'<circle class="standoff standoff-{kind}" cx="{cx:.1f}" cy="{cy:.1f}" '
                f'r="{r * view.scale:.2f}" fill="none" stroke="{st.STANDOFF}" stroke-width="3"'
                f"{dash}><title>{escape(tip)}</title></circle>"
            )
    return "".join(out)


@cache
def _crs_name(crs: str) -> str:
    return f"{CRS.from_user_input(crs).name} ({crs})"


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as floats (NaN where missing or not a number; all NaN when absent)."""
    if name not in frame:
        return np.full(len(frame), np.nan)
    values: np.ndarray = pd.to_numeric(frame[name], errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )
    return values


def _finite(value: object) -> bool:
    return isinstance(value, int | float | np.number) and math.isfinite(float(value))


def _num(value: object) -> str:
    return f"{float(value):.0f}" if _finite(value) else "?"  # type: ignore[arg-type]


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
