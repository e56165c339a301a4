"""The offline basemap: a city's buildings, streets and landcover drawn from its OSM layers.

Tens of thousands of building footprints as GeoJSON features would weigh megabytes and
cost Leaflet one layer object each. Here every basemap class becomes **one** Leaflet
path (a multi-polygon or multi-polyline on the canvas renderer, not interactive), with its
coordinates quantised to integers and delta-encoded: about a third of the size of GeoJSON
and one draw call per class.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import shapely
from folium.map import Layer
from jinja2 import Template

__all__ = ["DECODER_JS", "CompactLayer", "encode"]

#: JavaScript that turns an encoded layer back into Leaflet latlng arrays.
DECODER_JS = """
function gpDecode(e) {
  var d = e.d, n = e.n, s = e.s, out = [], k = 0, x = 0, y = 0;
  for (var i = 0; i < n.length; i++) {
    var ring = new Array(n[i]);
    for (var j = 0; j < n[i]; j++) { x += d[k++]; y += d[k++]; ring[j] = [y / s, x / s]; }
    out.push(ring);
  }
  if (!e.p) { return out; }
  var polys = [], r = 0;
  for (var q = 0; q < e.p.length; q++) { polys.push(out.slice(r, r + e.p[q])); r += e.p[q]; }
  return polys;
}
"""


def encode(geoms: np.ndarray, *, decimals: int) -> dict[str, Any]:
    """Delta-encode polygons or lines (WGS84) for :data:`DECODER_JS`.

    Parameters
    ----------
    geoms : ndarray
        Polygons/MultiPolygons or LineStrings/MultiLineStrings, lon/lat.
    decimals : int
        Decimal places kept; coordinates become integers ``round(value * 10**decimals)``.

    Returns
    -------
    dict
        ``s`` the scale, ``n`` vertices per ring or line, ``d`` the flat deltas
        (lon, lat, lon, lat...) and, for polygons, ``p`` the rings per polygon.
        Polygon rings drop their closing vertex (Leaflet closes them).
    """
    scale = 10**decimals
    parts = shapely.get_parts(geoms[~shapely.is_empty(geoms)])
    polygonal = bool(len(parts)) and bool((shapely.get_type_id(parts) == 3).all())
    if polygonal:
        rings, poly_index = shapely.get_rings(parts, return_index=True)
        rings_per_poly = np.bincount(poly_index, minlength=len(parts))
    else:
        rings = parts
    coords, ring_index = shapely.get_coordinates(rings, return_index=True)
    counts = np.bincount(ring_index, minlength=len(rings))
    if polygonal:  # drop the closing vertex of each ring
        last = np.cumsum(counts) - 1
        keep = np.ones(len(coords), dtype=bool)
        keep[last] = False
        coords, counts = coords[keep], counts - 1
    quantised = np.rint(coords * scale).astype(np.int64)
    deltas = np.diff(quantised, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    out: dict[str, Any] = {"s": scale, "n": counts.tolist(), "d": deltas.ravel().tolist()}
    if polygonal:
        out["p"] = rings_per_poly.tolist()
    return out


class CompactLayer(Layer):
    """One basemap class as a single non-interactive Leaflet path, toggled in the layer control.

    Parameters
    ----------
    parts
        ``(encoded, style)`` pairs, each drawn as one ``L.polygon`` (when the encoding has
        polygons) or ``L.polyline``, in order, on ``pane``.
    name
        Name in the layer control.
    pane
        Leaflet pane (created by the map) that fixes the stacking order.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.layerGroup([
        {%- for data, polygon, style in this.parts %}
            L.{{ 'polygon' if polygon else 'polyline' }}(gpDecode({{ data }}),
                Object.assign({interactive: false, pane: {{ this.pane|tojson }}},
                              {{ style|tojson }})),
        {%- endfor %}
        ]);
        {% endmacro %}
        """
    )

    def __init__(
        self,
        parts: Sequence[tuple[dict[str, Any], Mapping[str, Any]]],
        *,
        name: str,
        pane: str,
        show: bool = True,
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "CompactLayer"
        self.parts = [
            (json.dumps(data, separators=(",", ":")), "p" in data, dict(style))
            for data, style in parts
        ]
        self.pane = pane

    def size(self) -> int:
        """Characters of encoded data (for tests and benchmarks)."""
        return sum(len(data) for data, _, _ in self.parts)
