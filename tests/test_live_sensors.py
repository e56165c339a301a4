"""Sensor files (CSV and GeoJSON): the table they give, round trips, and every rejection.

The spaces are hand-built boxes in central Brașov (synthetic geometry); the city is the
registry's Brașov (its bbox, metric CRS EPSG:32635 and time zone Europe/Bucharest).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyproj
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from geo_protect.cities import City, get_city
from geo_protect.errors import DataSourceError, ItemsValidationError, ValidationError
from geo_protect.live.readings import validate_batch
from geo_protect.live.sensors import SENSOR_COLUMNS, read_sensor_file, sensor_infos

BIG = shapely.box(25.585, 45.640, 25.590, 45.645)
EAST = shapely.box(25.590, 45.640, 25.592, 45.642)
INNER = shapely.box(25.586, 45.641, 25.587, 45.642)  # inside BIG
# 0.0005 deg of longitude over BIG, 0.0015 over EAST: EAST overlaps most
ZONE = shapely.box(25.5895, 45.6405, 25.5915, 45.6415)
HEADER = "sensor_id,kind,space_uid,name,area_m2,exit_width_m,installed_at,zone,lon,lat"


@pytest.fixture(scope="module")
def city() -> City:
    return get_city("brasov")


@pytest.fixture(scope="module")
def spaces() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["Big square", "East square", "Inner plaza"]},
        geometry=[BIG, EAST, INNER],
        index=pd.Index(["way/1", "way/2", "relation/3"], name="uid"),
        crs="EPSG:4326",
    )


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def csv_file(folder: Path, *rows: str, header: str = HEADER) -> Path:
    return write(folder, "sensors.csv", "\n".join([header, *rows]) + "\n")


def geojson_file(folder: Path, features: list[dict[str, Any]], **extra: Any) -> Path:
    doc = {"type": "FeatureCollection", "features": features, **extra}
    return write(folder, "sensors.geojson", json.dumps(doc))


def feature(props: dict[str, Any], geom: shapely.Geometry | None = None) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": props,
        "geometry": None if geom is None else shapely.geometry.mapping(geom),
    }


GOOD_ROWS = (
    "gate-n,line_counter,way/1,North gate,,4.5,2026-03-01T08:00:00+02:00,,,",
    f'zone-e,area_counter,,East zone,,,2026-03-01,"{ZONE.wkt}",,',
    "cam-c,density,,Centre camera,120,,2026-07-01 09:30,,25.5865,45.6415",
)
GOOD_FEATURES = [
    feature(
        {
            "sensor_id": "gate-n",
            "kind": "line_counter",
            "space_uid": "way/1",
            "name": "North gate",
            "exit_width_m": 4.5,
            "installed_at": "2026-03-01T08:00:00+02:00",
        }
    ),
    feature(
        {
            "sensor_id": "zone-e",
            "kind": "area_counter",
            "name": "East zone",
            "installed_at": "2026-03-01",
        },
        ZONE,
    ),
    feature(
        {
            "sensor_id": "cam-c",
            "kind": "density",
            "name": "Centre camera",
            "area_m2": 120,
            "installed_at": "2026-07-01 09:30",
        },
        shapely.Point(25.5865, 45.6415),
    ),
]


def read(path: Path, city: City, spaces: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return read_sensor_file(path, city=city, spaces=spaces)


def test_csv_sensors_with_space_zone_and_location(
    tmp_path: Path, city: City, spaces: gpd.GeoDataFrame
) -> None:
    out = read(csv_file(tmp_path, *GOOD_ROWS), city, spaces)
    assert list(out.index) == ["gate-n", "zone-e", "cam-c"] and out.index.name == "sensor_id"
    assert list(out.columns) == [*SENSOR_COLUMNS, "geometry"]
    assert out.crs == "EPSG:4326"
    assert {c: str(out[c].dtype) for c in SENSOR_COLUMNS} == SENSOR_COLUMNS
    # given; the zone overlaps EAST most; the point lies in INNER and BIG, INNER is smaller
    assert out["space_uid"].tolist() == ["way/1", "way/2", "relation/3"]
    assert out["kind"].tolist() == ["line_counter", "area_counter", "density"]
    assert out.loc["gate-n", "exit_width_m"] == 4.5
    assert out.loc["cam-c", "area_m2"] == 120.0
    assert math.isnan(out.loc["gate-n", "area_m2"])  # a whole space: the service takes its area
    # the zone's own area by hand: 0.002 deg lon x 0.001 deg lat at 45.641 N
    by_hand = 0.002 * 111_320 * math.cos(math.radians(45.641)) * 0.001 * 111_132
    assert out.loc["zone-e", "area_m2"] == pytest.approx(by_hand, rel=0.01)
    # a zone is the geometry; other sensors have none
    assert out.loc["zone-e", "geometry"].equals(ZONE)
    assert out.loc["gate-n", "geometry"] is None and out.loc["cam-c", "geometry"] is None
    # times in UTC; a date or a zone-less time is Brașov's local time (EET +2, EEST +3)
    assert out["installed_at"].tolist() == [
        pd.Timestamp("2026-03-01T06:00:00Z"),
        pd.Timestamp("2026-02-28T22:00:00Z"),
        pd.Timestamp("2026-07-01T06:30:00Z"),
    ]
    assert set(out["source"]) == {"sensors.csv"}


def test_geojson_gives_the_same_sensors_as_csv(
    tmp_path: Path, city: City, spaces: gpd.GeoDataFrame
) -> None:
    from_csv = read(csv_file(tmp_path, *GOOD_ROWS), city, spaces)
    from_geojson = read(geojson_file(tmp_path, GOOD_FEATURES), city, spaces)
    assert set(from_geojson["source"]) == {"sensors.geojson"}
    assert_geodataframe_equal(from_geojson.drop(columns="source"), from_csv.drop(columns="source"))


def _to_csv(frame: gpd.GeoDataFrame, path: Path) -> Path:
    table = pd.DataFrame(
        {
            "sensor_id": frame.index,
            **{c: frame[c] for c in ("kind", "space_uid", "name", "area_m2", "exit_width_m")},
            "installed_at": [t.isoformat() for t in frame["installed_at"]],
            "zone": [None if g is None else g.wkt for g in frame.geometry],
        }
    )
    table.to_csv(path, index=False)
    return path


def _to_geojson(frame: gpd.GeoDataFrame, path: Path) -> Path:
    features = []
    for sid, row in frame.iterrows():
        props = {
            "sensor_id": sid,
            "kind": row["kind"],
            "space_uid": None if pd.isna(row["space_uid"]) else row["space_uid"],
            "name": None if pd.isna(row["name"]) else row["name"],
            "area_m2": None if math.isnan(row["area_m2"]) else row["area_m2"],
            "exit_width_m": None if math.isnan(row["exit_width_m"]) else row["exit_width_m"],
            "installed_at": row["installed_at"].isoformat(),
        }
        features.append(feature(props, row.geometry))
    return geojson_file(path.parent, features) if path.name == "sensors.geojson" else path


def test_round_trip_through_csv_and_geojson(
    tmp_path: Path, city: City, spaces: gpd.GeoDataFrame
) -> None:
    first = read(csv_file(tmp_path, *GOOD_ROWS), city, spaces)
    again = read(_to_csv(first, tmp_path / "again.csv"), city, spaces)
    assert_geodataframe_equal(again.drop(columns="source"), first.drop(columns="source"))
    (tmp_path / "gj").mkdir()
    back = read(_to_geojson(first, tmp_path / "gj" / "sensors.geojson"), city, spaces)
    assert_geodataframe_equal(back.drop(columns="source"), first.drop(columns="source"))


def test_geojson_in_a_named_metric_crs_is_converted(
    tmp_path: Path, city: City, spaces: gpd.GeoDataFrame
) -> None:
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32635", always_xy=True)
    zone_utm = shapely.Polygon([to_utm.transform(x, y) for x, y in ZONE.exterior.coords])
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32635"}}
    props = {"sensor_id": "z", "kind": "area_counter", "installed_at": "2026-03-01"}
    out = read(geojson_file(tmp_path, [feature(props, zone_utm)], crs=crs), city, spaces)
    assert out.loc["z", "space_uid"] == "way/2"
    got = out.loc["z", "geometry"]
    assert shapely.equals_exact(got, ZONE, tolerance=1e-9)


def test_a_crs_that_cannot_be_converted_is_an_error(
    tmp_path: Path, city: City, spaces: gpd.GeoDataFrame
) -> None:
    crs = {"type": "name", "properties": {"name": "EPSG:999999"}}
    path = geojson_file(tmp_path, GOOD_FEATURES, crs=crs)
    with pytest.raises(ValidationError, match=r"CRS 'EPSG:999999' cannot be converted"):
        read(path, city, spaces)


def rejected(path: Path, city: City, spaces: gpd.GeoDataFrame) -> ItemsValidationError:
    with pytest.raises(ItemsValidationError) as info:
        read(path, city, spaces)
    assert str(info.value).startswith(f"{path}: ")
    return info.value


GOOD = "ok,area_counter,way/1,,,,2026-03-01,,,"


@pytest.mark.parametrize(
    ("row", "field", "says"),
    [
        ("s1,turnstile,way/1,,,,2026-03-01,,,", "kind", "unknown kind 'turnstile' (known: "),
        ("s1,,way/1,,,,2026-03-01,,,", "kind", "missing (known: line_counter, area_counter"),
        ("s1,area_counter,way/99,,,,2026-03-01,,,", "space_uid", "unknown space_uid 'way/99'"),
        (
            's1,area_counter,,,,,2026-03-01,"POLYGON ((26.1 45.6, 26.2 45.6, 26.2 45.7, '
            '26.1 45.6))",,',
            "zone",
            "outside Brasov's bbox [25.5035, 45.5271, 25.689, 45.7524]",
        ),
        (
            's1,area_counter,,,,,2026-03-01,"POLYGON ((25.586 45.641, 25.587 45.642, '
            '25.587 45.641, 25.586 45.642, 25.586 45.641))",,',
            "zone",
            "invalid polygon: Self-intersection",
        ),
        ('s1,area_counter,,,,,2026-03-01,"POLYGON ((25.5 45",,', "zone", "not WKT"),
        ('s1,area_counter,,,,,2026-03-01,"POINT (25.586 45.641)",,', "zone", "a zone is a Polygon"),
        ("s1,area_counter,way/1,,,,01/03/2026,,,", "installed_at", "not an ISO 8601 date"),
        ("s1,area_counter,way/1,,,,2026-02-30,,,", "installed_at", "not an ISO 8601 date"),
        ("s1,area_counter,way/1,,,,,,,", "installed_at", "required (ISO 8601"),
        ("s1,area_counter,way/1,,-5,,2026-03-01,,,", "area_m2", "must be a positive finite"),
        ("s1,area_counter,way/1,,,wide,2026-03-01,,,", "exit_width_m", "expected a number"),
        ("s1,area_counter,,,,,2026-03-01,,25.60,45.65", "lon", "lies in no public space"),
        ("s1,area_counter,,,,,2026-03-01,,25.586,", "lon", "needs both lon and lat"),
        ("s1,area_counter,,,,,2026-03-01,,10.0,45.6", "lon", "outside Brasov's bbox"),
        ("s1,area_counter,,,,,2026-03-01,,,", "space_uid", "needs a space_uid, a zone or a loc"),
        (f"{'x' * 129},area_counter,way/1,,,,2026-03-01,,,", "sensor_id", "1-128 characters"),
    ],
)
def test_csv_rejections_name_line_field_and_problem(
    tmp_path: Path, city: City, spaces: gpd.GeoDataFrame, row: str, field: str, says: str
) -> None:
    exc = rejected(csv_file(tmp_path, GOOD, row), city, spaces)
    assert len(exc.problems) == 1, exc.problems
    p = exc.problems[0]
    assert (p.index, p.field) == (3, field)  # header line 1, GOOD line 2
    assert says in p.reason
    assert "line 3" in str(exc) and f"field {field!r}: " in str(exc)


def test_duplicate_sensor_id_names_both_lines(
    tmp_path: Path, city: City, spaces: gpd.GeoDataFrame
) -> None:
    exc = rejected(
        csv_file(tmp_path, GOOD, "s2,density,way/2,,,,2026-03-01,,,", GOOD), city, spaces
    )
    (p,) = exc.problems
    assert (p.index, p.field, p.sensor_id) == (4, "sensor_id", "ok")
    assert str(exc).endswith("line 4 (sensor 'ok'), field 'sensor_id': duplicate of line 2")


def test_every_problem_is_listed_and_nothing_is_returned(
    tmp_path: Path, city: City, spaces: gpd.GeoDataFrame
) -> None:
    path = csv_file(
        tmp_path,
        GOOD,
        "s2,turnstile,way/1,,,,2026-03-01,,,",
        "s3,density,way/9,,0,,yesterday,,,",
    )
    exc = rejected(path, city, spaces)
    assert [(p.index, p.field) for p in exc.problems] == [
        (3, "kind"),
        (4, "space_uid"),
        (4, "area_m2"),
        (4, "installed_at"),
    ]
    assert "4 problems:" in str(exc)
    assert "\n  - line 4 (sensor 's3'), field 'installed_at': not an ISO 8601" in str(exc)


def test_file_level_problems(tmp_path: Path, city: City, spaces: gpd.GeoDataFrame) -> None:
    exc = rejected(csv_file(tmp_path, GOOD + ",7", header=HEADER + ",colour"), city, spaces)
    assert exc.problems[0].index is None
    assert "unknown column(s) colour" in exc.problems[0].reason
    exc = rejected(csv_file(tmp_path), city, spaces)
    assert exc.problems[0].reason == "no sensors in the file"
    with pytest.raises(ValidationError, match=r"a sensor file is a \.csv, \.geojson, \.json file"):
        read(write(tmp_path, "sensors.xlsx", "x"), city, spaces)
    with pytest.raises(ValidationError, match="empty file"):
        read(write(tmp_path, "empty.csv", ""), city, spaces)
    with pytest.raises(DataSourceError, match="cannot read the sensor file"):
        read(write(tmp_path, "broken.geojson", '{"type": "FeatureColl'), city, spaces)
    with pytest.raises(ValidationError, match="not a GeoJSON FeatureCollection"):
        read(
            write(tmp_path, "point.geojson", '{"type": "Point", "coordinates": [1, 2]}'),
            city,
            spaces,
        )
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(
        (HEADER + "\ns1,area_counter,way/1,Piaţa\xe9,,,2026-03-01,,,\n").encode(
            "latin-1", "replace"
        )
    )
    with pytest.raises(DataSourceError, match="cannot read the sensor file"):
        read(latin1, city, spaces)


def test_geojson_rejections_name_the_feature(
    tmp_path: Path, city: City, spaces: gpd.GeoDataFrame
) -> None:
    props = {"kind": "area_counter", "installed_at": "2026-03-01"}
    features = [
        feature({**props, "sensor_id": 17}, INNER),
        feature({**props, "sensor_id": "mp"}, shapely.MultiPolygon([INNER, EAST])),
        feature({**props, "sensor_id": "colour", "colour": "red", "space_uid": "way/1"}),
        feature({**props, "sensor_id": "ts", "space_uid": "way/1", "installed_at": 2026}),
        feature({**props, "sensor_id": "far"}, shapely.Point(25.60, 45.65)),
    ]
    exc = rejected(geojson_file(tmp_path, features), city, spaces)
    assert [(p.index, p.field) for p in exc.problems] == [
        (1, "sensor_id"),
        (2, "geometry"),
        (3, "colour"),
        (4, "installed_at"),
        (5, "geometry"),
    ]
    assert "feature 1, field 'sensor_id': required, a string of 1-128 characters: 17" in str(exc)
    assert "a zone is a Polygon (a location a Point), got MultiPolygon" in exc.problems[1].reason
    assert "expected an ISO 8601 string, got int 2026" in exc.problems[3].reason
    assert exc.problems[4].reason == "the location lies in no public space of Brasov"


def test_sensor_infos_feed_the_reading_validator(
    tmp_path: Path, city: City, spaces: gpd.GeoDataFrame
) -> None:
    infos = sensor_infos(read(csv_file(tmp_path, *GOOD_ROWS), city, spaces))
    assert infos["zone-e"].kind == "area_counter"
    assert infos["zone-e"].installed_at == dt.datetime(2026, 2, 28, 22, tzinfo=dt.UTC)
    now = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    ok = {"sensor_id": "zone-e", "observed_at": "2026-03-01T00:00:00+02:00", "present": 3}
    assert validate_batch([ok], infos, now=now, max_items=10, future_skew_s=0)[0].present == 3
    early = {**ok, "observed_at": "2026-02-28T23:59:00+02:00"}
    with pytest.raises(ItemsValidationError, match="before the sensor was installed"):
        validate_batch([early], infos, now=now, max_items=10, future_skew_s=0)


def test_a_zone_over_no_space_stands_for_itself_and_a_given_space_wins(
    tmp_path: Path, city: City, spaces: gpd.GeoDataFrame
) -> None:
    away = shapely.box(25.60, 45.65, 25.601, 45.651)
    path = csv_file(
        tmp_path,
        f'own,density,,,,,2026-03-01,"{away.wkt}",,',
        f'given,area_counter,way/1,,,,2026-03-01,"{ZONE.wkt}",,',
    )
    out = read(path, city, spaces)
    assert pd.isna(out.loc["own", "space_uid"]) and out.loc["own", "geometry"].equals(away)
    assert out.loc["given", "space_uid"] == "way/1"  # not way/2, which the zone overlaps most
