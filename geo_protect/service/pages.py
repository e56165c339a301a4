"""The control-room page and the layer it draws.

The page is one HTML document (``templates/control.html``) with vendored Leaflet and
Leaflet.VectorGrid and its own scripts (``static/control/``): it loads the city's spaces
once (:func:`spaces_geojson`, outlines simplified for the screen: the layer the live state
colours), the alerts and the sensor register, then follows the city's event stream. The
dense context layers — buildings, streets, entries — are not sent whole: the page draws
them from the service's vector tiles (``/tiles/{city}/{layer}/{z}/{x}/{y}.mvt``,
``basemap.js``), fetched per view and zoom. Nothing is fetched from outside the service.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import jinja2
import orjson
import pandas as pd
import shapely

from geo_protect.cities import City
from geo_protect.live.state import default_stale_after_s
from geo_protect.service.runtime import Runtime

__all__ = ["control_page", "spaces_geojson"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Outline simplification for the screen, degrees (about a metre).
_SIMPLIFY_DEG = 1e-5
#: Coordinate decimals sent to the browser (about 0.1 m).
_DECIMALS = 6


@functools.cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def control_page(city: City) -> str:
    """The HTML of ``/control/{city}``."""
    return (
        _env()
        .get_template("control.html")
        .render(city=city.slug, city_name=city.name, stale_after_s=default_stale_after_s())
    )


#: Seconds the spaces layer of a city is served from memory before it is built again.
_LAYER_TTL_S = 60.0
_built: dict[str, tuple[float, bytes]] = {}


def spaces_geojson(rt: Runtime, city: str) -> bytes:
    """The city's spaces as GeoJSON: outline, name, worst baseline risk and exposure
    (built once a minute at most per process: the baseline changes only on a re-run)."""
    hit = _built.get(city)
    if hit is not None and time.monotonic() - hit[0] < _LAYER_TTL_S:
        return hit[1]
    body = _spaces_geojson(rt, city)
    _built[city] = (time.monotonic(), body)
    return body


def _spaces_geojson(rt: Runtime, city: str) -> bytes:
    layers = rt.store.read_layers(city, ["public_space", "space_metric", "assessment"])
    spaces, metric, scores = layers["public_space"], layers["space_metric"], layers["assessment"]
    worst = (
        scores.assign(r=scores["risk_100"].astype(float))
        .sort_values("r", ascending=False, na_position="last")
        .drop_duplicates("space_uid")
        .set_index("space_uid")
    )
    shapes = shapely.set_precision(
        shapely.simplify(spaces.geometry.values, _SIMPLIFY_DEG, preserve_topology=True),
        10.0**-_DECIMALS,
    )
    features = []
    for uid, shape in zip(spaces.index.astype(str), shapes, strict=True):
        m = metric.loc[uid] if uid in metric.index else None
        w = worst.loc[uid] if uid in worst.index else None
        features.append(
            {
                "type": "Feature",
                "id": uid,
                "geometry": shapely.geometry.mapping(shape),
                "properties": {
                    "uid": uid,
                    "name": _text(m["label"] if m is not None else spaces.at[uid, "name"]),
                    "kind": _text(spaces.at[uid, "kind"]),
                    "risk_100": _number(w["r"]) if w is not None else None,
                    "band": _text(w["band"]) if w is not None else None,
                    "threat": _text(w["threat"]) if w is not None and "threat" in w else None,
                    "worst_speed_kmh": _number(m["worst_speed_kmh"]) if m is not None else None,
                    "capacity_persons": _number(m["capacity_persons"]) if m is not None else None,
                },
            }
        )
    return orjson.dumps({"type": "FeatureCollection", "features": features})


def _text(value: object) -> str | None:
    return None if value is None or pd.isna(value) else str(value)  # type: ignore[arg-type]


def _number(value: object) -> float | None:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if pd.isna(f) else round(f, 2)
