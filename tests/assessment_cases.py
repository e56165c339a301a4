"""Hand-built inputs with known answers for the assessment, risk, compare and export tests.

Three spaces laid out in a metric CRS (Brașov's UTM zone) and stored in WGS84:

* ``way/1`` "Piața A", a 100 m × 100 m square: worst approach 52 km/h through two
  vehicle-permeable entries, capacity 16 000; a church 10 m outside its edge and a town
  hall inside (POI score 3 + 3 = 6 → attractiveness 3), a bollard 5 m away.
* ``way/2`` "Strada B", 50 m × 20 m: no vehicle-permeable entry, capacity 500, no POIs,
  a wall 5 m away, a camera inside.
* ``way/3`` "Piața C", 30 m × 30 m: one permeable entry but no computed speed, unknown
  capacity (nothing can be pre-filled but the attractiveness).

A shop 200 m from A and B lies outside the 75 m POI radius.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

from geo_protect.assess.evidence import prefill
from geo_protect.assess.questionnaire import CityAssessment

CRS = "EPSG:32635"
X0, Y0 = 409_000.0, 5_054_000.0


def _frame(data: dict[str, list[object]], geoms: list[object], uids: list[str]) -> gpd.GeoDataFrame:
    index = pd.Index(uids, dtype="string", name="uid")
    return gpd.GeoDataFrame(data, geometry=geoms, index=index, crs=CRS).to_crs("EPSG:4326")


def spaces(dx: float = 0.0) -> gpd.GeoDataFrame:
    x = X0 + dx
    return _frame(
        {
            "name": ["Piața A", "Strada B", "Piața C"],
            "kind": ["square", "pedestrian_street", "marketplace"],
        },
        [
            shapely.box(x, Y0, x + 100, Y0 + 100),
            shapely.box(x + 500, Y0, x + 550, Y0 + 20),
            shapely.box(x + 1000, Y0, x + 1030, Y0 + 30),
        ],
        ["way/1", "way/2", "way/3"],
    )


def space_metric(uids: pd.Index | None = None) -> pd.DataFrame:
    index = (
        pd.Index(["way/1", "way/2", "way/3"], dtype="string", name="uid") if uids is None else uids
    )
    return pd.DataFrame(
        {
            "worst_speed_kmh": pd.array([52.0, None, None], dtype="Float64"),
            "n_vehicle_permeable": pd.array([2, 0, 1], dtype="Int64"),
            "capacity_persons": pd.array([16000.0, 500.0, None], dtype="Float64"),
            "design_density": pd.array([2.0, 2.0, 2.0], dtype="Float64"),
            "area_m2": pd.array([10000.0, 1000.0, 900.0], dtype="Float64"),
        },
        index=index,
    )


def pois(dx: float = 0.0) -> gpd.GeoDataFrame:
    x = X0 + dx
    return _frame(
        {"kind": ["worship", "civic", "retail"], "name": ["Biserica", "Primăria", "Magazin"]},
        [
            shapely.Point(x - 10, Y0 + 50),
            shapely.Point(x + 50, Y0 + 50),
            shapely.Point(x + 300, Y0 + 50),
        ],
        ["node/1", "node/2", "node/3"],
    )


def barriers(dx: float = 0.0) -> gpd.GeoDataFrame:
    x = X0 + dx
    return _frame(
        {"kind": ["bollard", "wall"], "name": [None, "old wall"]},
        [shapely.Point(x + 105, Y0), shapely.LineString([(x + 500, Y0 - 5), (x + 550, Y0 - 5)])],
        ["node/9", "way/9"],
    )


def surveillance(dx: float = 0.0) -> gpd.GeoDataFrame:
    x = X0 + dx
    return _frame(
        {"kind": ["camera"], "name": [None]}, [shapely.Point(x + 520, Y0 + 10)], ["node/20"]
    )


def draft(*, with_surveillance: bool = True) -> CityAssessment:
    """The pre-filled assessment of the hand-built spaces (reference version "test")."""
    return prefill(
        spaces(),
        city="brasov",
        crs=CRS,
        space_metric=space_metric(),
        pois=pois(),
        barriers=barriers(),
        surveillance=surveillance() if with_surveillance else None,
        reference_version="test",
    )
