"""Visual style of the risk maps: colours, stylesheet, legend and the list-of-spaces control.

Purely visual choices (colours, widths, radii) live here, not in the reference tables.
The look is a dark control-room theme: a muted basemap under saturated risk colours.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from branca.element import MacroElement
from jinja2 import Template

__all__ = [
    "ATTRIBUTION",
    "BAND_COLOURS",
    "BAND_ORDER",
    "BARRIER_COLOURS",
    "BASEMAP",
    "ENTRY_COLOURS",
    "LOS_COLOURS",
    "NEUTRAL",
    "POI_COLOUR",
    "STREET_CLASSES",
    "SURVEILLANCE_COLOUR",
    "LegendSection",
    "MapChrome",
]

#: Always visible, whatever the basemap (ODbL 4.3).
ATTRIBUTION = (
    '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap contributors</a> (ODbL)'
)

BAND_ORDER: tuple[str, ...] = ("low", "medium", "high", "very high")
BAND_COLOURS: dict[str, str] = {
    "low": "#3fb56b",
    "medium": "#f2c12e",
    "high": "#f5732a",
    "very high": "#e8244f",  # top band, as in data/reference/risk_bands.csv
}
NEUTRAL = "#7d8da3"
ENTRY_COLOURS: dict[str, str] = {
    "pedestrian_only": "#47c8f5",
    "vehicle_permeable": "#ff3b3b",
    "blocked": "#a7b3c2",
}
ENTRY_LABELS: dict[str, str] = {
    "pedestrian_only": "pedestrian only",
    "vehicle_permeable": "vehicle-permeable",
    "blocked": "blocked (barrier)",
}
LOS_COLOURS: dict[str, str] = {
    "A": "#1a9850",
    "B": "#91cf60",
    "C": "#d9ef8b",
    "D": "#fee08b",
    "E": "#fc8d59",
    "F": "#d73027",
}
BARRIER_COLOURS: dict[str, str] = {"yes": "#f4f6f8", "gap": "#b9a3ff", "no": "#66768a"}
BARRIER_LABELS: dict[str, str] = {
    "yes": "stops a vehicle",
    "gap": "stops a vehicle if gaps ≤ rule",
    "no": "does not stop a vehicle",
}
SURVEILLANCE_COLOUR = "#c77dff"
POI_COLOUR = "#ffd166"

#: Basemap colours (dark theme).
BASEMAP: dict[str, dict[str, Any]] = {
    "background": {"color": "#10161d"},
    "water": {"stroke": False, "fill": True, "fillColor": "#173a57", "fillOpacity": 1.0},
    "green": {"stroke": False, "fill": True, "fillColor": "#18301f", "fillOpacity": 1.0},
    "building": {
        "stroke": True,
        "color": "#323d4a",
        "weight": 0.6,
        "fill": True,
        "fillColor": "#262f3a",
        "fillOpacity": 1.0,
    },
}

#: Street display classes: OSM highway values and line style, drawn bottom to top.
STREET_CLASSES: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "paths": (
        ("footway", "path", "steps", "cycleway", "bridleway", "corridor", "track"),
        {"color": "#3b4656", "weight": 1.0, "dashArray": "3 3"},
    ),
    "pedestrian": (("pedestrian", "living_street"), {"color": "#4d5b4f", "weight": 2.5}),
    "minor": (
        ("residential", "unclassified", "service", "road", "busway"),
        {"color": "#4a5565", "weight": 1.8},
    ),
    "secondary": (
        ("secondary", "secondary_link", "tertiary", "tertiary_link"),
        {"color": "#677487", "weight": 3.0},
    ),
    "major": (
        ("motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link"),
        {"color": "#8a95a5", "weight": 4.0},
    ),
}

ENTRY_RADIUS = {"base": 4.0, "per_kmh": 0.12, "max": 13.0}
CROWD_RADIUS = {"min": 5.0, "per_sqrt_person": 0.12, "max": 30.0}

LegendSection = tuple[str, Sequence[tuple[str, str, str]]]  # title, [(colour, label, shape)]

_CSS = """
html, body { background: #10161d; }
.leaflet-container { background: #10161d; font: 12px/1.4 "Inter", "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; color: #dde3ea; }
.leaflet-control-layers, .gp-panel, .leaflet-bar a, .leaflet-control-scale-line {
  background: rgba(20, 27, 36, 0.92) !important; color: #dde3ea !important;
  border: 1px solid #2f3b4a !important; box-shadow: 0 2px 8px rgba(0,0,0,.5); }
.leaflet-control-layers { border-radius: 4px; padding: 6px 10px 6px 6px; }
.leaflet-control-layers-overlays label { margin: 2px 0; }
.leaflet-control-layers-separator { border-top-color: #2f3b4a; }
.leaflet-bar a:hover { background: #243041 !important; }
.leaflet-control-attribution { background: rgba(16, 22, 29, 0.85) !important; color: #aab4c0; }
.leaflet-control-attribution a { color: #7fc4ff; }
.leaflet-popup-content-wrapper, .leaflet-popup-tip { background: #18212c; color: #e6ebf0;
  border: 1px solid #33414f; }
.leaflet-popup-content { margin: 10px 12px; }
.leaflet-popup-content table { border-collapse: collapse; }
.leaflet-popup-content th { text-align: left; color: #8fa1b5; font-weight: 500;
  padding: 1px 10px 1px 0; vertical-align: top; }
.leaflet-popup-content td { padding: 1px 0; max-width: 260px; }
.leaflet-tooltip { background: #18212c; color: #e6ebf0; border: 1px solid #33414f; }
.leaflet-container a.leaflet-popup-close-button { color: #8fa1b5; }
.gp-panel { border-radius: 4px; padding: 8px 10px; }
.gp-title { font-size: 14px; font-weight: 600; letter-spacing: .02em; }
.gp-sub { color: #8fa1b5; font-size: 11px; }
.gp-legend { max-height: 46vh; overflow-y: auto; min-width: 170px; }
.gp-legend h4 { margin: 6px 0 3px; font-size: 11px; text-transform: uppercase;
  letter-spacing: .06em; color: #8fa1b5; font-weight: 600; }
.gp-legend div.gp-row { display: flex; align-items: center; margin: 2px 0; }
.gp-sw { display: inline-block; width: 14px; height: 10px; margin-right: 7px;
  border: 1px solid rgba(255,255,255,.35); flex: none; }
.gp-sw.circle { border-radius: 50%; width: 10px; height: 10px; margin: 0 9px 0 2px; }
.gp-sw.line { height: 0; border: none; border-top: 3px solid; }
.gp-list { width: 230px; }
.gp-list input { width: 100%; box-sizing: border-box; margin: 6px 0; padding: 4px 6px;
  background: #0f151c; color: #dde3ea; border: 1px solid #33414f; border-radius: 3px; }
.gp-list ul { list-style: none; margin: 0; padding: 0; max-height: 34vh; overflow-y: auto; }
.gp-list li { cursor: pointer; padding: 3px 2px; display: flex; align-items: center;
  border-bottom: 1px solid #1f2a36; }
.gp-list li:hover { background: #223041; }
.gp-list li span.gp-name { flex: 1; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.gp-list li span.gp-band { color: #8fa1b5; font-size: 11px; margin-left: 6px; }
.gp-indicative { color: #f2c12e; font-size: 11px; }
"""


def _legend_html(sections: Sequence[LegendSection]) -> str:
    parts = []
    for title, rows in sections:
        parts.append(f"<h4>{html.escape(title)}</h4>")
        for colour, label, shape in rows:
            style = f"border-top-color:{colour}" if shape == "line" else f"background:{colour}"
            parts.append(
                f'<div class="gp-row"><span class="gp-sw {shape}" style="{style}"></span>'
                f"{html.escape(label)}</div>"
            )
    return "".join(parts)


class MapChrome(MacroElement):  # type: ignore[misc]
    """Stylesheet, title, legend, list of spaces and the OSM attribution of a risk map.

    Parameters
    ----------
    title, subtitle
        Shown in the title panel (top left).
    legend
        Sections of the legend, one per colour scale on the map.
    spaces
        The folium layer of the public spaces (for the list); None for no list.
    band_colours
        Colour per band, for the dots of the list.
    """

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>{{ this.css }}</style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        (function (map) {
          map.attributionControl.setPrefix(false);
          map.attributionControl.addAttribution({{ this.attribution|tojson }});
          function panel(position, cls, html) {
            var c = L.control({position: position});
            c.onAdd = function () {
              var div = L.DomUtil.create('div', 'gp-panel ' + cls);
              div.innerHTML = html;
              L.DomEvent.disableClickPropagation(div);
              L.DomEvent.disableScrollPropagation(div);
              return div;
            };
            c.addTo(map);
            return c;
          }
          panel('topleft', 'gp-head', {{ this.head|tojson }});
          panel('bottomright', 'gp-legend', {{ this.legend|tojson }});
          {%- if this.spaces %}
          var list = panel('topleft', 'gp-list',
            '<div class="gp-title">Spaces</div>' +
            '<input type="search" placeholder="Find a space…" aria-label="Find a space">' +
            '<ul></ul>');
          var layer = {{ this.spaces }}, items = [], rank = {{ this.rank|tojson }},
              colours = {{ this.band_colours|tojson }};
          layer.eachLayer(function (l) { items.push(l); });
          items.sort(function (a, b) {
            var pa = a.feature.properties, pb = b.feature.properties;
            return (rank[pb._band] || 0) - (rank[pa._band] || 0) ||
                   String(pa.name).localeCompare(String(pb.name));
          });
          var ul = list.getContainer().querySelector('ul');
          var input = list.getContainer().querySelector('input');
          items.forEach(function (l) {
            var p = l.feature.properties, li = document.createElement('li');
            li.innerHTML = '<span class="gp-sw circle" style="background:' +
              (colours[p._band] || {{ this.neutral|tojson }}) + '"></span>' +
              '<span class="gp-name"></span><span class="gp-band"></span>';
            li.querySelector('.gp-name').textContent = p.name;
            li.querySelector('.gp-band').textContent = p._band || '';
            li.dataset.uid = l.feature.id;
            li.onclick = function () {
              if (!map.hasLayer(layer)) { map.addLayer(layer); }
              map.fitBounds(l.getBounds(), {maxZoom: 18, padding: [40, 40]});
              l.fire('click', {latlng: l.getBounds().getCenter()}, true);
            };
            ul.appendChild(li);
          });
          input.oninput = function () {
            var q = input.value.toLowerCase();
            Array.prototype.forEach.call(ul.children, function (li) {
              li.style.display = li.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
            });
          };
          {%- endif %}
        })({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        *,
        title: str,
        subtitle: str,
        legend: Sequence[LegendSection],
        spaces: str | None,
        attribution: str = ATTRIBUTION,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "MapChrome"
        self.css = _CSS
        self.head = (
            f'<div class="gp-title">{html.escape(title)}</div>'
            f'<div class="gp-sub">{html.escape(subtitle)}</div>'
        )
        self.legend = _legend_html(legend)
        self.spaces = spaces
        self.rank = {band: i + 1 for i, band in enumerate(BAND_ORDER)}
        self.band_colours = BAND_COLOURS
        self.neutral = NEUTRAL
        self.attribution = attribution
