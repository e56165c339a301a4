"""Look and furniture of the site plans: colours, legend, scale bar, north arrow, arrowheads.

Purely visual choices (colours, widths, sizes in plan units) live here, as for the risk
maps (:mod:`geo_protect.outputs.maps.style`); the plans themselves are drawn by
:mod:`geo_protect.outputs.site_plan`. A plan is :data:`WIDTH` units wide, with its map
panel on top and the legend and attribution below it; the theme is light, for print.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

__all__ = [
    "ATTRIBUTION",
    "BARRIER_STYLE",
    "ENTRY_STYLE",
    "STREET_STYLE",
    "VEHICLE_COLOURS",
    "WIDTH",
    "LegendItem",
    "PlanView",
    "arrowheads",
    "base_legend",
    "escape",
    "legend",
    "north_arrow",
    "path",
    "path_data",
    "scale_bar",
    "scale_bar_length",
    "streets",
    "style",
]

#: ODbL attribution printed on every plan.
ATTRIBUTION = "© OpenStreetMap contributors, ODbL"
WIDTH = 2000  # plan units across the figure; coordinates are whole units
FONT = 26
ROW = 38  # legend row height
PAPER, INK, MUTED = "#ffffff", "#212121", "#616161"
SPACE = ("#fff3c4", "#e65100")  # fill, outline
OTHER_SPACE = ("#f4f1e6", "#c9bd98")
BUILDING = ("#cfcfcf", "#a3a3a3")
CASING = "#9a9a9a"
ENTRY_STYLE: dict[str, tuple[str, str]] = {
    "vehicle_permeable": ("#e53935", "entry, vehicle-permeable"),
    "pedestrian_only": ("#1e88e5", "entry, pedestrian only"),
    "blocked": ("#757575", "entry, blocked by a barrier"),
}
#: By ``stops_vehicle`` of the ``barrier_types`` reference table.
BARRIER_STYLE: dict[str, tuple[str, str]] = {
    "yes": ("#263238", "barrier, stops a vehicle"),
    "gap": ("#7b1fa2", "bollards / planters (gap rule)"),
    "no": ("#90a4ae", "barrier, does not stop a vehicle"),
}
CAMERA = ("#c2185b", "camera (surveillance)")
STANDOFF = "#d32f2f"
#: Approach colours, by the order of the ``vehicle_classes`` table; :data:`MUTED` otherwise.
VEHICLE_COLOURS = ("#ff8f00", "#8e24aa", "#00897b", "#3949ab", "#6d4c41", "#00acc1")
ARROW_COLOURS = (*VEHICLE_COLOURS, MUTED)
#: Street display classes, bottom to top: highway values, width drawn (m), fill (None: a
#: thin dashed line without casing).
STREET_STYLE: tuple[tuple[str, tuple[str, ...], float, str | None], ...] = (
    ("path", ("footway", "path", "steps", "cycleway", "bridleway", "corridor", "track"), 1.5, None),
    ("minor", ("residential", "unclassified", "service", "road", "busway"), 6.0, "#f7f7f7"),
    ("pedestrian", ("pedestrian", "living_street"), 6.0, "#f3ead2"),
    ("secondary", ("secondary", "secondary_link", "tertiary", "tertiary_link"), 9.0, "#fdfdfd"),
    ("major", ("motorway", "motorway_link", "trunk", "trunk_link", "primary"), 12.0, "#ffffff"),
    ("major_link", ("primary_link",), 12.0, "#ffffff"),
)
_HALO = f'stroke="{PAPER}" stroke-width="5" paint-order="stroke"'

LegendItem = tuple[str, str, str, str]  # shape, fill, stroke, label


@dataclass(frozen=True)
class PlanView:
    """A plan window in a metric CRS and its mapping to plan units (x right, y down).

    Examples
    --------
    >>> view = PlanView(0.0, 0.0, 200.0, 100.0)
    >>> view.scale, view.height, view.xy(np.array([[50.0, 100.0]])).tolist()
    (10.0, 1000, [[500.0, -0.0]])
    """

    minx: float
    miny: float
    maxx: float
    maxy: float

    @property
    def scale(self) -> float:
        """Plan units per metre."""
        return WIDTH / (self.maxx - self.minx)

    @property
    def height(self) -> int:
        """Height of the map panel (plan units)."""
        return round((self.maxy - self.miny) * self.scale)

    def xy(self, coords: np.ndarray) -> np.ndarray:
        """Metric coordinates (n × 2) in plan units."""
        return (coords - (self.minx, self.maxy)) * (self.scale, -self.scale)


def path_data(geoms: np.ndarray, view: PlanView, closed: bool) -> str:
    """SVG path data of the lines (or, if ``closed``, polygon rings) among ``geoms``.

    Coordinates are whole plan units; other geometry types are skipped.

    Examples
    --------
    >>> view = PlanView(0.0, 0.0, 200.0, 100.0)
    >>> path_data(np.array([shapely.box(0, 0, 10, 10)]), view, True)
    'M100 1000 100 900 0 900 0 1000 100 1000Z'
    """
    parts = shapely.get_parts(geoms)
    types = shapely.get_type_id(parts)
    parts = shapely.get_rings(parts[types == 3]) if closed else parts[np.isin(types, (1, 2))]
    if not len(parts):
        return ""
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    tokens = list(map(str, np.rint(view.xy(coords)).astype(np.int64).ravel().tolist()))
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    for i in starts.tolist():
        tokens[2 * i] = "M" + tokens[2 * i]
    if closed:
        for i in (np.r_[starts[1:], len(idx)] - 1).tolist():
            tokens[2 * i + 1] += "Z"
    return " ".join(tokens)


def style(fill: str, stroke: str, width: float) -> str:
    """Fill, stroke and stroke width as SVG attributes.

    Examples
    --------
    >>> style("#fff", "#000", 2)
    'fill="#fff" stroke="#000" stroke-width="2"'
    """
    return f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"'


def path(geoms: np.ndarray, view: PlanView, closed: bool, attrs: str, cls: str) -> str:
    """One ``<path>`` of class ``cls`` for all ``geoms`` (empty when nothing to draw).

    Examples
    --------
    >>> path(np.array([shapely.LineString([(0, 0), (10, 0)])]), PlanView(0, 0, 200, 100),
    ...      False, 'stroke="#000"', "street")
    '<path class="street" d="M0 1000 100 1000" fill="none" stroke="#000"/>'
    """
    d = path_data(geoms, view, closed)
    rule = ' fill-rule="evenodd"' if closed else ' fill="none"'
    return f'<path class="{cls}" d="{d}"{rule} {attrs}/>' if d else ""


def streets(geoms: np.ndarray, highway: np.ndarray, view: PlanView) -> str:
    """Streets by :data:`STREET_STYLE` class: all casings first, then the fills on top.

    Parameters
    ----------
    geoms : ndarray of LineString
        The streets, in the metric CRS of ``view``.
    highway : ndarray of str
        Their OSM ``highway`` values.
    view : PlanView
        The plan window.

    Examples
    --------
    >>> line = np.array([shapely.LineString([(0, 50), (200, 50)])])
    >>> streets(line, np.array(["primary"]), PlanView(0, 0, 200, 100)).count("<path")
    2
    """
    casings, fills = [], []
    for cls, values, width_m, fill in STREET_STYLE:
        d = path_data(geoms[np.isin(highway, values)], view, False)
        if not d:
            continue
        w = max(width_m * view.scale, 2.0)
        if fill is None:
            fills.append(
                f'<path class="street street-{cls}" d="{d}" fill="none" stroke="{MUTED}" '
                f'stroke-width="{w / 2:.1f}" stroke-dasharray="6 5"/>'
            )
            continue
        line = f'd="{d}" fill="none" stroke-linecap="round" stroke-linejoin="round"'
        casings.append(
            f'<path class="street-casing" {line} stroke="{CASING}" stroke-width="{w + 3:.1f}"/>'
        )
        fills.append(
            f'<path class="street street-{cls}" {line} stroke="{fill}" stroke-width="{w:.1f}"/>'
        )
    return "".join(casings + fills)


def escape(text: str) -> str:
    """``text`` safe in SVG/XML text and attributes.

    Examples
    --------
    >>> escape('Piața "<Mică>" & co')
    'Piața &quot;&lt;Mică&gt;&quot; &amp; co'
    """
    return html.escape(text, quote=True)


def scale_bar_length(width_m: float, *, fraction: float = 0.25) -> float:
    """The round length (1, 2 or 5 × 10ⁿ m) of a scale bar at most ``fraction`` of ``width_m``.

    Parameters
    ----------
    width_m : float
        Width of the map (m).
    fraction : float
        Largest share of the width the bar may take.

    Examples
    --------
    >>> scale_bar_length(220), scale_bar_length(1000), scale_bar_length(30)
    (50.0, 200.0, 5.0)
    """
    target = width_m * fraction
    power = 10.0 ** math.floor(math.log10(target))
    return max(m * power for m in (1.0, 2.0, 5.0) if m * power <= target)


def scale_bar(width_m: float, scale: float, bottom: float) -> str:
    """A scale bar of :func:`scale_bar_length` at the bottom left of the map panel.

    Parameters
    ----------
    width_m : float
        Width of the map (m).
    scale : float
        Plan units per metre.
    bottom : float
        Height of the map panel (plan units).

    Examples
    --------
    >>> 'x1="40.00" y1="460" x2="140.00"' in scale_bar(220, 2.0, 500)
    True
    """
    metres = scale_bar_length(width_m)
    x0, y = 40.0, bottom - 40.0
    x1 = x0 + metres * scale
    return (
        f'<g class="scale-bar-group"><line class="scale-bar" x1="{x0:.2f}" y1="{y:.0f}" '
        f'x2="{x1:.2f}" y2="{y:.0f}" stroke="{INK}" stroke-width="8" stroke-linecap="butt"/>'
        f'<path d="M{x0:.2f} {y - 14:.0f}v28M{x1:.2f} {y - 14:.0f}v28" stroke="{INK}" '
        f'stroke-width="3"/><text class="scale-label" x="{(x0 + x1) / 2:.0f}" y="{y - 16:.0f}" '
        f'text-anchor="middle" {_HALO}>{metres:g} m</text></g>'
    )


def north_arrow() -> str:
    """A north arrow at the top right of the map panel, pointing up (grid north).

    Examples
    --------
    >>> north_arrow().startswith('<g class="north-arrow">')
    True
    """
    x, y = WIDTH - 60, 30
    return (
        f'<g class="north-arrow"><path d="M{x} {y}l22 60l-22 -14l-22 14Z" fill="{INK}" '
        f'stroke="{PAPER}" stroke-width="3"/><text x="{x}" y="{y + 92}" text-anchor="middle" '
        f'font-weight="bold" {_HALO}>N</text></g>'
    )


def arrowheads(ident: str) -> str:
    """``<marker>`` arrowheads ``{ident}-arrow-<i>``, one per colour of :data:`ARROW_COLOURS`.

    Examples
    --------
    >>> arrowheads("p").count("<marker") == len(ARROW_COLOURS)
    True
    """
    return "".join(
        f'<marker id="{ident}-arrow-{i}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5" '
        f'markerHeight="5" orient="auto-start-reverse"><path d="M0 0L10 5L0 10Z" fill="{c}"/>'
        "</marker>"
        for i, c in enumerate(ARROW_COLOURS)
    )


def legend(items: Sequence[LegendItem], top: float) -> tuple[str, int]:
    """The legend under the map panel, in three columns; returns it and its height.

    Parameters
    ----------
    items : sequence of (shape, fill, stroke, label)
        Shape one of ``fill``, ``line``, ``dash``, ``arrow``, ``dot``, ``square``,
        ``triangle``, ``ring``, ``dashring``.
    top : float
        Where the legend starts (plan units).

    Examples
    --------
    >>> svg, height = legend([("dot", "#e53935", "", "entry <a>")], 500)
    >>> "entry &lt;a&gt;" in svg, height
    (True, 76)
    """
    per_col = max(math.ceil(len(items) / 3), 1)
    out = ['<g class="legend">']
    for i, (shape, fill, stroke, label) in enumerate(items):
        x, y = 10 + (i // per_col) * (WIDTH // 3), top + ROW * (1 + i % per_col)
        out.append(_swatch(shape, x, y - 9, fill, stroke))
        out.append(f'<text x="{x + 50}" y="{y:.0f}" fill="{INK}">{escape(label)}</text>')
    out.append("</g>")
    return "".join(out), ROW * (per_col + 1)


def base_legend() -> list[LegendItem]:
    """The legend rows every plan has (space, context, entries, barriers, cameras).

    Examples
    --------
    >>> base_legend()[0]
    ('fill', '#fff3c4', '#e65100', 'this space')
    """
    return [
        ("fill", *SPACE, "this space"),
        ("fill", *OTHER_SPACE, "other public space"),
        ("fill", *BUILDING, "building"),
        ("line", "#f7f7f7", CASING, "street"),
        ("dash", MUTED, MUTED, "footway / path"),
        *[("dot", c, c, label) for c, label in ENTRY_STYLE.values()],
        *[("square", c, c, label) for c, label in BARRIER_STYLE.values()],
        ("triangle", CAMERA[0], CAMERA[0], CAMERA[1]),
    ]


def _swatch(shape: str, x: float, y: float, fill: str, stroke: str) -> str:
    """One legend symbol, 38 units wide, centred on height ``y``."""
    line = f'<path d="M{x} {y:.0f}h38" fill="none" '
    cx, cy = f'cx="{x + 19}"', f'cy="{y:.0f}"'
    swatches = {
        "fill": f'<rect x="{x}" y="{y - 11:.0f}" width="38" height="22" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="2"/>',
        "line": f'{line}stroke="{stroke}" stroke-width="12"/>'
        f'{line}stroke="{fill}" stroke-width="8"/>',
        "dash": f'{line}stroke="{fill}" stroke-width="4" stroke-dasharray="6 5"/>',
        "arrow": f'{line}stroke="{fill}" stroke-width="6"/>',
        "dot": f'<circle {cx} {cy} r="11" fill="{fill}"/>',
        "square": f'<rect x="{x + 12}" y="{y - 7:.0f}" width="14" height="14" fill="{fill}"/>',
        "triangle": f'<path d="M{x + 19} {y - 12:.0f}l11 20h-22Z" fill="{fill}"/>',
        "ring": f'<circle {cx} {cy} r="13" fill="none" stroke="{fill}" stroke-width="3"/>',
        "dashring": f'<circle {cx} {cy} r="13" fill="none" stroke="{fill}" stroke-width="3" '
        'stroke-dasharray="8 5"/>',
    }
    return swatches[shape]
