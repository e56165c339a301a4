"""The geo-protect command line: the main job end to end, and clear failures on bad input."""

from __future__ import annotations

import bz2
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo_protect.cli import app
from geo_protect.store.geopackage import GeoPackageStore

runner = CliRunner()

CENTRE_ENTRY = """
[cities.brasov]
name = "Brașov"
name_en = "Brasov"
country = "RO"
centre = [45.6427, 25.5887]
bbox = [25.575, 45.633, 25.605, 45.652]
crs = "EPSG:32635"
timezone = "Europe/Bucharest"

[[cities.brasov.sources]]
kind = "osm"
path = "osm/brasov_centre.osm.bz2"
data_date = "2024-08-21"

[cities.larissa]
name = "Λάρισα"
name_en = "Larissa"
country = "GR"
centre = [39.6390, 22.4191]
bbox = [22.1758, 39.5039, 22.5141, 39.7533]
crs = "EPSG:32634"
timezone = "Europe/Athens"
"""


@pytest.fixture
def workspace(tmp_path: Path, data_dir: Path, brasov_centre: Path) -> dict[str, str]:
    """A data folder with Brașov (centre clip) and Larissa (no data), and its settings."""
    data = tmp_path / "data"
    (data / "osm").mkdir(parents=True)
    shutil.copytree(data_dir / "reference", data / "reference")
    shutil.copytree(data_dir / "assessment", data / "assessment")
    shutil.copy(brasov_centre, data / "osm" / brasov_centre.name)
    (data / "cities.toml").write_text(CENTRE_ENTRY, encoding="utf-8")
    return {
        "GEO_PROTECT_DATA_DIR": str(data),
        "GEO_PROTECT_STORE_DIR": str(tmp_path / "store"),
        "GEO_PROTECT_MAPS_DIR": str(tmp_path / "maps"),
        "GEO_PROTECT_STORE": "gpkg",
    }


def test_main_job_writes_maps_scores_and_comparison(workspace: dict[str, str]) -> None:
    result = runner.invoke(app, ["run"], env=workspace)
    assert result.exit_code == 0, result.output
    maps = Path(workspace["GEO_PROTECT_MAPS_DIR"])
    index = (maps / "index.html").read_text(encoding="utf-8")
    assert "brasov.html" in index and "no data offline" in index
    assert (maps / "brasov.html").is_file()
    assert (maps / "comparison" / "comparison.html").is_file()
    assert (maps / "assessments" / "brasov.yaml").is_file()
    site = maps / "sites" / "brasov" / "brasov_relation-9620387.html"
    assert "Piața Sfatului" in site.read_text(encoding="utf-8")
    # said plainly, with what to do
    assert "Larissa: no public spaces" in result.output
    assert "street data for the walk network" in result.output
    assert "geo-protect ingest larissa --source overpass" in result.output
    store = GeoPackageStore(Path(workspace["GEO_PROTECT_STORE_DIR"]))
    assert {"entry_point", "approach", "space_metric", "assessment"} <= set(store.layers("brasov"))

    why = runner.invoke(app, ["why", "brasov", "Piața Sfatului"], env=workspace)
    assert why.exit_code == 0, why.output
    assert "VEHICLE_RAMMING" in why.output and "110" in why.output

    exported = runner.invoke(app, ["export", "brasov", "--format", "geojson"], env=workspace)
    assert exported.exit_code == 0, exported.output
    assert (maps / "exports" / "brasov" / "brasov_entry_point.geojson").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "atlantis"], "unknown city 'atlantis'"),
        (["analyse", "brasov"], "not ingested yet"),
        (["ingest", "brasov", "--source", "carrier-pigeon"], "--source must be local or overpass"),
        (["ingest"], "give a city"),
        (["reference", "nope"], "nope.csv: reference table not found"),
    ],
)
def test_bad_requests_exit_non_zero_with_a_message(
    workspace: dict[str, str], args: list[str], message: str
) -> None:
    result = runner.invoke(app, args, env=workspace)
    assert result.exit_code == 2
    assert message in result.output


def test_database_down_is_a_clear_error(workspace: dict[str, str]) -> None:
    env = {**workspace, "GEO_PROTECT_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/x"}
    result = runner.invoke(app, ["ingest", "brasov", "--store", "postgis"], env=env)
    assert result.exit_code == 2
    assert "127.0.0.1:9" in result.output


def test_corrupt_extract_leaves_the_store_as_it_was(workspace: dict[str, str]) -> None:
    assert runner.invoke(app, ["ingest", "brasov"], env=workspace).exit_code == 0
    store = GeoPackageStore(Path(workspace["GEO_PROTECT_STORE_DIR"]))
    before = store.read_layer("brasov", "public_space")

    clip = Path(workspace["GEO_PROTECT_DATA_DIR"]) / "osm" / "brasov_centre.osm.bz2"
    xml = bz2.decompress(clip.read_bytes())
    clip.write_bytes(bz2.compress(xml[: len(xml) // 2]))  # an extract cut off half way
    result = runner.invoke(app, ["ingest", "brasov"], env=workspace)
    assert result.exit_code == 2
    assert "brasov_centre.osm.bz2" in result.output
    after = store.read_layer("brasov", "public_space")
    assert after.index.equals(before.index)


def test_reference_tables_are_listed_with_their_provenance(workspace: dict[str, str]) -> None:
    listing = runner.invoke(app, ["reference"], env=workspace)
    assert listing.exit_code == 0 and "vehicle_classes" in listing.output
    shown = runner.invoke(app, ["reference", "parameters"], env={**workspace, "COLUMNS": "250"})
    assert shown.exit_code == 0
    assert "max_bollard_gap_m" in shown.output and "CPNI" in shown.output
