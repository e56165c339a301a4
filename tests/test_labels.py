"""Labels of unnamed spaces: nearest named street, else named POI, else the kind alone."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

from geo_protect.analysis.labels import space_labels

CRS = "EPSG:32635"


def _spaces() -> gpd.GeoDataFrame:
    # three 40 m squares, 1 km apart; only the second is named
    boxes = [shapely.box(x, 0, x + 40, 40) for x in (0.0, 1000.0, 2000.0)]
    return gpd.GeoDataFrame(
        {"name": [None, "Piața Sfatului", ""], "kind": ["park", "square", "pedestrian_area"]},
        geometry=boxes,
        index=pd.Index(["way/1", "relation/2", "way/3"], name="uid"),
        crs=CRS,
    )


def _streets() -> gpd.GeoDataFrame:
    # way/1: an unnamed service road touches it (0 m), Strada Lungă is 10 m east of its edge,
    # Strada Mureșenilor 30 m north; way/3 has only a street 100 m away (beyond 60 m)
    return gpd.GeoDataFrame(
        {"name": [None, "Strada Mureșenilor", "Strada Lungă", "Strada Departe"]},
        geometry=[
            shapely.LineString([(40, -20), (40, 60)]),
            shapely.LineString([(-20, 70), (60, 70)]),
            shapely.LineString([(50, -20), (50, 60)]),
            shapely.LineString([(2140, -20), (2140, 60)]),
        ],
        crs=CRS,
    )


def test_an_unnamed_space_takes_the_nearest_named_street_and_a_named_one_keeps_its_name() -> None:
    labels = space_labels(_spaces(), _streets(), None)
    assert labels["way/1"] == "park by Strada Lungă"  # 10 m beats 30 m; the unnamed road is skipped
    assert labels["relation/2"] == "Piața Sfatului"
    assert labels["way/3"] == "unnamed pedestrian area"  # the only street is 100 m > 60 m away
    assert labels.index.equals(_spaces().index)


def test_without_a_street_a_named_poi_within_150_m_labels_the_space() -> None:
    pois = gpd.GeoDataFrame(
        {"name": ["Biserica Neagră", None]},
        geometry=[shapely.Point(2000 + 40 + 120, 20), shapely.Point(2041, 20)],  # 120 m and 1 m
        crs=CRS,
    )
    labels = space_labels(_spaces(), _streets(), pois)
    assert labels["way/3"] == "pedestrian area near Biserica Neagră"  # the unnamed POI is skipped
    assert labels["way/1"] == "park by Strada Lungă"  # a street comes before a POI


def test_labels_are_measured_in_metres_from_wgs84_input() -> None:
    wgs = _spaces().set_crs(None, allow_override=True).set_crs(CRS).to_crs("EPSG:4326")
    streets = _streets().to_crs("EPSG:4326")
    labels = space_labels(wgs, streets, None, crs=CRS)
    assert labels.tolist() == ["park by Strada Lungă", "Piața Sfatului", "unnamed pedestrian area"]
