"""The live commands as a user runs them: ``serve`` refusing the GeoPackage store,
``sensors import`` from a file, ``replay`` of the real Melbourne counts over HTTP."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import psycopg
import pytest
from sqlalchemy.engine import URL

from geo_protect.citydata import CityData
from tests.live_service import Server, seeded_database

REPO = Path(__file__).resolve().parent.parent
COUNTS = REPO / "data" / "crowd" / "melbourne_pedestrian_counts_hourly_2019-01.csv"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "geo_protect.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as c:
        return list(c.execute(sql).fetchall())


def test_serve_refuses_the_geopackage_store() -> None:
    done = _cli("serve", "--no-mqtt", env={"GEO_PROTECT_STORE": "gpkg"})
    assert done.returncode == 2
    said = " ".join(done.stderr.split())
    assert "PostGIS only" in said and "GEO_PROTECT_STORE=postgis" in said


@pytest.fixture(scope="module")
def cli_db(
    pg_admin_url: URL, centre_data: CityData, centre_layers: dict[str, gpd.GeoDataFrame]
) -> Iterator[str]:
    name = f"geo_protect_cli_{os.getpid()}"
    with seeded_database(pg_admin_url, name, centre_data, dict(centre_layers)) as url:
        yield url


@pytest.mark.postgis
def test_sensors_import_registers_a_file_or_nothing(
    cli_db: str, tmp_path: Path, centre_layers: dict[str, gpd.GeoDataFrame]
) -> None:
    space = str(centre_layers["space_metric"].index[0])
    good = tmp_path / "sensors.csv"
    good.write_text(
        "sensor_id,kind,space_uid,name,area_m2,exit_width_m,installed_at\n"
        f"cam-1,area_counter,{space},North camera,,,2025-05-01T00:00:00Z\n"
        f"gate-1,line_counter,{space},Gate,,3.5,2025-05-01T00:00:00Z\n"
    )
    done = _cli("sensors", "import", "brasov", str(good), "--database-url", cli_db)
    assert done.returncode == 0, done.stderr
    stored = _rows(
        cli_db, "SELECT sensor_id, kind, exit_width_m FROM geo_protect.sensor ORDER BY 1"
    )
    assert stored == [("cam-1", "area_counter", None), ("gate-1", "line_counter", 3.5)]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "sensor_id,kind,space_uid,name,area_m2,exit_width_m,installed_at\n"
        f"cam-2,area_counter,{space},,,,2025-05-01T00:00:00Z\n"
        f"cam-3,thermometer,{space},,,,2025-05-01T00:00:00Z\n"
    )
    refused = _cli("sensors", "import", "brasov", str(bad), "--database-url", cli_db)
    assert refused.returncode == 2
    said = " ".join(refused.stderr.split())
    assert "bad.csv" in said and "kind" in said and "line 3" in said
    assert len(_rows(cli_db, "SELECT 1 FROM geo_protect.sensor")) == 2  # cam-2 not stored


def _first_hour(column: str) -> int | None:
    """The count of ``column`` in the file's first hour, read with the csv module."""
    with COUNTS.open(newline="") as f:
        row = next(csv.DictReader(f))
    value = row[column].strip()
    return None if value in ("-1", "undefined", "") else int(value)


@pytest.mark.postgis
def test_replay_over_http_sends_the_real_counts(cli_db: str) -> None:
    with Server(cli_db, workers=1, mqtt=False) as server:
        done = _cli(
            "replay", "brasov", "--via", "http", "--speed", "36000", "--hours", "2",
            "--url", server.url, "--database-url", cli_db,
            env={"GEO_PROTECT_API_TOKEN": server.token_for("replayer", ["operator@brasov"])},
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Melbourne" in done.stdout and "not Brașov's own counts" in done.stdout
    first = _rows(
        cli_db,
        "SELECT DISTINCT ON (sensor_id) s.name, r.present FROM geo_protect.reading r "
        "JOIN geo_protect.sensor s USING (sensor_id) WHERE s.source = 'replay:melbourne' "
        "ORDER BY sensor_id, r.observed_at",  # each sensor's first hour
    )
    assert first, "the replay stored readings"
    with (REPO / "data/reference/parameters.csv").open(newline="") as f:
        dwell = float(
            next(r["value"] for r in csv.DictReader(f) if r["name"] == "replay_dwell_time_s")
        )
    checked = 0
    for name, present in first:
        for column in ("Bourke Street Mall (North)", "Melbourne Central", "Town Hall (West)"):
            count = _first_hour(column)
            if column in str(name) and count is not None:
                # Little's law, rounded half up: present = flow x dwell / 3600 s
                assert present == int(count * dwell / 3600 + 0.5)
                checked += 1
    assert checked >= 1
