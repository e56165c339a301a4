"""Test layers for the store tests: small hand-built features around Piața Sfatului, Brașov.

They are test data, not real OSM data. Used by the contract tests (both backends), the
PostGIS and GeoPackage specifics and the export tests.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from geo_protect.citydata import IngestReport
from geo_protect.schema import LAYERS, SOURCE_LAYERS, WGS84, conform, empty_layer, tags_of

__all__ = ["HOLE", "REPORT", "SQUARE", "assert_same_layer", "source_layers"]


def _frame(layer: str, rows: list[dict[str, Any]], geoms: list[Any]) -> gpd.GeoDataFrame:
    columns = LAYERS[layer].columns
    data = {c: [r.get(c) for r in rows] for c in columns}
    index = pd.Index([r["uid"] for r in rows], name="uid")
    return conform(layer, gpd.GeoDataFrame(data, geometry=geoms, index=index, crs=WGS84))


def _prov(
    uid: str, name: str | None, kind: str, tags: dict[str, str] | None, **extra: Any
) -> dict[str, Any]:
    osm_type, _, osm_id = uid.partition("/")
    return {
        "uid": uid,
        "osm_type": osm_type if osm_type in ("node", "way", "relation") else None,
        "osm_id": int(osm_id) if osm_id.isdigit() else None,
        "name": name,
        "kind": kind,
        "tags": tags,
        "source": "hand-built test data",
        "data_date": "2024-08-21",
        **extra,
    }


SQUARE = shapely.Polygon(
    [(25.5880, 45.6420), (25.5895, 45.6420), (25.5895, 45.6432), (25.5880, 45.6432)]
)
HOLE = shapely.Polygon(
    [(25.5880, 45.6420), (25.5895, 45.6420), (25.5895, 45.6432), (25.5880, 45.6432)],
    holes=[[(25.5885, 45.6424), (25.5889, 45.6424), (25.5889, 45.6428), (25.5885, 45.6428)]],
)


def source_layers(suffix: str = "") -> dict[str, gpd.GeoDataFrame]:
    """One small layer per source layer (``suffix`` makes the uids of a second version)."""
    sfatului = {"place": "square", "name": "Piața Sfatului", "name:de": "Marktplatz"}
    layers = {
        "public_space": _frame(
            "public_space",
            [
                _prov(f"way/100{suffix}", "Piața Sfatului", "square", sfatului),
                _prov(f"register/market-1{suffix}", "Târgul de Crăciun", "marketplace", None),
            ],
            [SQUARE, shapely.MultiPolygon([HOLE, shapely.box(25.59, 45.64, 25.591, 45.641)])],
        ),
        "street": _frame(
            "street",
            [
                _prov(
                    f"way/200{suffix}",
                    "Strada Republicii",
                    "pedestrian",
                    {"highway": "pedestrian", "name": "Strada Republicii"},
                    highway="pedestrian",
                    walk=True,
                    hostile_vehicle=False,
                    width_m=8.5,
                    lanes=None,
                    maxspeed_kmh=None,
                ),
                _prov(
                    f"way/201{suffix}",
                    None,
                    "primary",
                    {"highway": "primary", "lanes": "2", "maxspeed": "50"},
                    highway="primary",
                    walk=None,
                    hostile_vehicle=True,
                    width_m=None,
                    lanes=2.0,
                    maxspeed_kmh=50.0,
                ),
                _prov(
                    f"way/9876543210{suffix}",
                    "",
                    "service",
                    {},
                    highway="service",
                    walk=False,
                    hostile_vehicle=None,
                    width_m=3.25,
                    lanes=1.0,
                    maxspeed_kmh=20.0,
                ),
            ],
            [
                shapely.LineString([(25.5887, 45.6427), (25.5901, 45.6441)]),
                shapely.LineString([(25.5850, 45.6400), (25.5860, 45.6410), (25.5871, 45.6411)]),
                shapely.LineString([(25.5910, 45.6450), (25.5911, 45.6452)]),
            ],
        ),
        "entrance": _frame(
            "entrance",
            [_prov(f"node/300{suffix}", None, "main", {"entrance": "main"})],
            [shapely.Point(25.58875, 45.64281)],
        ),
        "barrier": _frame(
            "barrier",
            [
                _prov(
                    f"node/400{suffix}", None, "bollard", {"barrier": "bollard"}, maxwidth_m=None
                ),
                _prov(f"way/401{suffix}", "Zidul", "wall", {"barrier": "wall"}, maxwidth_m=1.2),
            ],
            [
                shapely.Point(25.5881, 45.6421),
                shapely.LineString([(25.588, 45.642), (25.589, 45.642)]),
            ],
        ),
        "poi": _frame(
            "poi",
            [
                _prov(
                    f"way/500{suffix}",
                    "Biserica Neagră",
                    "worship",
                    {"amenity": "place_of_worship", "name": "Biserica Neagră"},
                    tag="amenity=place_of_worship",
                    capacity=None,
                ),
                _prov(
                    f"node/501{suffix}",
                    "Teatrul Sică Alexandrescu",
                    "culture",
                    {"amenity": "theatre"},
                    tag="amenity=theatre",
                    capacity=640.0,
                ),
            ],
            [shapely.Point(25.5880, 45.6413), shapely.Point(25.5930, 45.6450)],
        ),
        "building": _frame(
            "building",
            [_prov(f"way/600{suffix}", "Casa Sfatului", "yes", {"building": "yes"}, levels=3.0)],
            [shapely.box(25.5886, 45.6425, 25.5889, 45.6428)],
        ),
        "surveillance": _frame(
            "surveillance",
            [_prov(f"node/700{suffix}", None, "camera", {"surveillance:type": "camera"})],
            [shapely.Point(25.58801, 45.64299)],
        ),
        "landcover": empty_layer("landcover"),
    }
    assert list(layers) == list(SOURCE_LAYERS)
    return layers


REPORT = IngestReport(
    counts={"public_space": 2, "street": 3},
    dropped={("street", "way with nodes outside the extract"): 171, ("poi", "no name"): 2},
    missing=["No surveillance cameras are mapped: survey them or import the city register."],
    sources=[("brasov_centre.osm.bz2", "2024-08-21"), ("overpass", None)],
)


def assert_same_layer(got: gpd.GeoDataFrame, expected: gpd.GeoDataFrame) -> None:
    """Same columns, dtypes, index (as a set, sorted), CRS, values and exact geometry."""
    expected = expected.sort_index()
    assert list(got.columns) == list(expected.columns)
    assert got.index.name == "uid"
    assert str(got.index.dtype) == "string"
    assert got.crs == WGS84
    assert got.geometry.name == "geometry"
    pd.testing.assert_frame_equal(
        pd.DataFrame(got.drop(columns="geometry")), pd.DataFrame(expected.drop(columns="geometry"))
    )
    a, b = got.geometry.to_numpy(), expected.geometry.to_numpy()
    assert shapely.equals_exact(a, b, tolerance=0).all()
    assert (shapely.get_type_id(a) == shapely.get_type_id(b)).all()
    if "tags" in expected.columns:
        assert tags_of(got).tolist() == tags_of(expected).tolist()
