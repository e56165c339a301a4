"""``geo-protect scenario`` end to end: a GeoPackage drawn as the README describes.

The store holds the Brașov centre clip (real OSM data, ODbL), ingested and analysed once
for the module (the session's ``centre_data`` / ``centre_layers``); each test works on its
own copy. The planner's file is the city's ``export --format gpkg``, with a feature
appended to its ``plan_barrier_line`` layer through GDAL, as QGIS saves an edit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

from geo_protect.citydata import CityData
from geo_protect.cli import app
from geo_protect.pipeline.scenarios import stored_scenario
from geo_protect.reference import parameter
from geo_protect.store.geopackage import GeoPackageStore
from tests.builders import BRASOV_CENTRE_ENTRY, line_across

runner = CliRunner()

SFATULUI = "relation/9620387"
REPUBLICII = SFATULUI + "#4"  # Strada Republicii meets Piața Sfatului
UTM = "EPSG:32635"  # the crs of BRASOV_CENTRE_ENTRY
SPACING_M = 1.3


@pytest.fixture(scope="module")
def analysed_store(
    tmp_path_factory: pytest.TempPathFactory,
    centre_data: CityData,
    centre_layers: dict[str, gpd.GeoDataFrame],
) -> Path:
    """A GeoPackage store with the centre clip ingested, analysed and scored."""
    folder = tmp_path_factory.mktemp("scenario_store") / "store"
    GeoPackageStore(folder, reference_version="test").replace_city(
        "brasov", centre_layers, centre_data.report
    )
    return folder


@pytest.fixture
def workspace(
    tmp_path: Path, data_dir: Path, brasov_centre: Path, analysed_store: Path
) -> dict[str, str]:
    """Settings of a data folder with the centre clip as Brașov and a copy of the store."""
    data = tmp_path / "data"
    (data / "osm").mkdir(parents=True)
    shutil.copytree(data_dir / "reference", data / "reference")
    shutil.copytree(data_dir / "assessment", data / "assessment")
    shutil.copy(brasov_centre, data / "osm" / brasov_centre.name)
    (data / "cities.toml").write_text(BRASOV_CENTRE_ENTRY, encoding="utf-8")
    shutil.copytree(analysed_store, tmp_path / "store")
    return {
        "GEO_PROTECT_DATA_DIR": str(data),
        "GEO_PROTECT_STORE_DIR": str(tmp_path / "store"),
        "GEO_PROTECT_MAPS_DIR": str(tmp_path / "maps"),
        "GEO_PROTECT_STORE": "gpkg",
        "COLUMNS": "200",  # rich tables at full width: uids are not cut
    }


def _exported(workspace: dict[str, str]) -> Path:
    """``geo-protect export brasov --format gpkg``: the file a planner opens in QGIS."""
    result = runner.invoke(app, ["export", "brasov", "--format", "gpkg"], env=workspace)
    assert result.exit_code == 0, result.output
    path = Path(workspace["GEO_PROTECT_MAPS_DIR"]) / "exports" / "brasov" / "brasov.gpkg"
    assert path.is_file()
    return path


def _draw(path: Path, geometry: shapely.LineString, **fields: object) -> None:
    """Append one feature to ``plan_barrier_line`` with the layer's own fields (as QGIS)."""
    info = pyogrio.read_info(path, layer="plan_barrier_line")
    assert info["features"] == 0 and info["crs"] == "EPSG:4326"
    assert set(fields) <= set(info["fields"])
    row = {name: [fields.get(name)] for name in info["fields"]}
    frame = gpd.GeoDataFrame(row, geometry=[geometry], crs="EPSG:4326")
    frame = frame.astype(
        {n: "string" for n, t in zip(info["fields"], info["dtypes"], strict=True) if t == "object"}
    )
    pyogrio.write_dataframe(frame, path, layer="plan_barrier_line", driver="GPKG", append=True)


def test_a_bollard_row_drawn_in_the_export_blocks_the_entry_and_is_stored(
    workspace: dict[str, str],
) -> None:
    plan = _exported(workspace)
    entries = pyogrio.read_dataframe(plan, layer="entry_point").set_index("uid")
    entry = entries.loc[REPUBLICII]
    assert entry["entry_class"] == "vehicle_permeable"  # open to vehicles before the row
    width = float(entry["width_m"])
    line = line_across(entry, UTM, back_m=1.0, length_m=width + 6.0)
    _draw(plan, line, type="bollard_row", spacing_m=SPACING_M, note="Republicii row")
    # why it must close: 1.3 m centres leave a 1.1 m clear gap, within the bollard gap limit
    assert SPACING_M - parameter("bollard_diameter_m") <= parameter("max_bollard_gap_m")

    store = GeoPackageStore(Path(workspace["GEO_PROTECT_STORE_DIR"]))
    before = store.read_layers("brasov")
    result = runner.invoke(
        app, ["scenario", "brasov", str(plan), "--name", "rows", "--author", "test"], env=workspace
    )
    assert result.exit_code == 0, result.output
    [row] = [line for line in result.output.splitlines() if REPUBLICII in line]
    assert "vehicle_permeable → blocked" in row  # the entry's row names the change

    folder = Path(workspace["GEO_PROTECT_MAPS_DIR"]) / "scenarios"
    assert (folder / "brasov_rows.gpkg").is_file() and (folder / "brasov_rows.html").is_file()
    changed = pyogrio.read_dataframe(folder / "brasov_rows.gpkg", layer="entry_change")
    after_class = changed.set_index(changed.columns[0]).loc[REPUBLICII, "entry_class_after"]
    assert after_class == "blocked"

    assert store.scenarios("brasov") == ["rows"]
    kept = stored_scenario(store, "brasov", "rows")
    assert (kept.name, kept.city, kept.author) == ("rows", "brasov", "test")
    [edit] = kept.edits
    assert (edit.kind, edit.spacing_m, edit.note) == ("bollard_row", SPACING_M, "Republicii row")
    assert shapely.equals_exact(edit.geometry, line, tolerance=1e-12)  # float64 both ways

    after = store.read_layers("brasov")
    assert list(after) == list(before)  # no layer added or dropped
    for name, layer in before.items():  # the baseline, entry_point included, as it was
        pd.testing.assert_frame_equal(pd.DataFrame(after[name]), pd.DataFrame(layer))


def test_a_bad_type_exits_2_naming_feature_and_field_and_stores_nothing(
    workspace: dict[str, str],
) -> None:
    plan = _exported(workspace)
    entry = pyogrio.read_dataframe(plan, layer="entry_point").set_index("uid").loc[REPUBLICII]
    _draw(plan, line_across(entry, UTM, back_m=1.0, length_m=12.0), type="moat")
    result = runner.invoke(app, ["scenario", "brasov", str(plan), "--name", "moat"], env=workspace)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())  # rich wraps long lines
    assert "layer plan_barrier_line, feature 1, field 'type'" in message
    assert "unknown barrier type 'moat'" in message
    store = GeoPackageStore(Path(workspace["GEO_PROTECT_STORE_DIR"]))
    assert store.scenarios("brasov") == []
    assert not (Path(workspace["GEO_PROTECT_MAPS_DIR"]) / "scenarios").exists()
