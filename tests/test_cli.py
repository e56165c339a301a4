"""The geo-protect command line: the main job end to end, and clear failures on bad input."""

from __future__ import annotations

import bz2
import datetime as dt
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo_protect.cli import app
from geo_protect.store.geopackage import GeoPackageStore
from tests.builders import BRASOV_CENTRE_ENTRY

runner = CliRunner()
QFILE = "questionnaire-v1.yaml"

CENTRE_ENTRY = (
    BRASOV_CENTRE_ENTRY
    + """
[cities.larissa]
name = "Λάρισα"
name_en = "Larissa"
country = "GR"
centre = [39.6390, 22.4191]
bbox = [22.1758, 39.5039, 22.5141, 39.7533]
crs = "EPSG:32634"
timezone = "Europe/Athens"
"""
)


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


SFATULUI = "relation/9620387"  # Piața Sfatului
GONE = "way/999999999"  # a space the assessors worked on that is no longer in the data


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_rerun_keeps_the_assessors_work_and_why_explains_what_is_stored(
    workspace: dict[str, str],
) -> None:
    """At HEAD the second ``run`` rewrote brasov.yaml with a fresh pre-fill (the override,
    the answer and the vanished space were lost, and the stored score had V = 5 again), and
    ``why`` re-pre-filled and wrote the store, never showing the override."""
    from geo_protect.assess.files import read_assessment, write_assessment
    from geo_protect.assess.questionnaire import load_questionnaire, override

    assert runner.invoke(app, ["run"], env=workspace).exit_code == 0
    maps = Path(workspace["GEO_PROTECT_MAPS_DIR"])
    path = maps / "assessments" / "brasov.yaml"
    q = load_questionnaire(Path(workspace["GEO_PROTECT_DATA_DIR"]) / "assessment" / QFILE)
    day = dt.date(2026, 11, 20)
    worked = override(
        read_assessment(path, questionnaire=q), SFATULUI, "VEHICLE_RAMMING", "vulnerability", 1,
        by="I. Popescu", reason="rising bollards installed", at=day, questionnaire=q,
    )  # fmt: skip
    previous = worked.site(SFATULUI).scenario("VEHICLE_RAMMING").vulnerability.overrides[0]
    worked.site(SFATULUI).site["use"] = "Christmas market"
    gone = worked.site(SFATULUI).model_copy(deep=True, update={"space_uid": GONE})
    worked.sites.append(gone)
    write_assessment(worked, path)

    again = runner.invoke(app, ["run"], env=workspace)
    assert again.exit_code == 0, again.output
    # Sfatului and the vanished copy: one override and one answer ("use") each
    assert f"Brasov: kept 2 overrides and 2 answers from {path}" in again.output
    assert GONE in again.output and "no longer in the data" in again.output

    back = read_assessment(path, questionnaire=q)
    ram = back.site(SFATULUI).scenario("VEHICLE_RAMMING")
    assert ram.vulnerability.value == 1 and ram.vulnerability.overrides == [previous]
    assert back.site(SFATULUI).site["use"] == "Christmas market"
    assert back.site(GONE).scenario("VEHICLE_RAMMING").vulnerability.value == 1

    store = GeoPackageStore(Path(workspace["GEO_PROTECT_STORE_DIR"]))
    row = store.read_layer("brasov", "assessment").loc[f"{SFATULUI}|VEHICLE_RAMMING"]
    a = ram.attractiveness.value
    assert a is not None
    assert row["vulnerability"] == 1 and row["n_overrides"] == 1
    assert row["likelihood"] == int((a + 1) / 2 + 0.5)  # L = round_half_up((A + V) / 2)

    # the assessors' file goes back in with --from; `why` explains it and writes nothing
    assert (
        runner.invoke(app, ["assess", "brasov", "--from", str(path)], env=workspace).exit_code == 0
    )
    before = _snapshot(Path(workspace["GEO_PROTECT_STORE_DIR"]))
    why = runner.invoke(app, ["why", "brasov", "Piața Sfatului"], env=workspace)
    assert why.exit_code == 0, why.output
    assert _snapshot(Path(workspace["GEO_PROTECT_STORE_DIR"])) == before
    assert (
        f"vulnerability overridden {previous.previous} → 1 by I. Popescu on 2026-11-20: "
        "rising bollards installed"
    ) in " ".join(why.output.split())
    stored = store.read_layer("brasov", "assessment").loc[f"{SFATULUI}|VEHICLE_RAMMING"]
    assert stored["vulnerability"] == 1


def test_an_invalid_assessors_file_stops_the_city_and_is_left_untouched(
    workspace: dict[str, str],
) -> None:
    """At HEAD ``run`` silently replaced the broken file with a fresh pre-fill (exit 0)."""
    import yaml

    from geo_protect.assess.files import write_assessment
    from tests import assessment_cases as cases

    path = Path(workspace["GEO_PROTECT_MAPS_DIR"]) / "assessments" / "brasov.yaml"
    write_assessment(cases.draft(), path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    ram = next(s for s in raw["sites"][0]["scenarios"] if s["threat"] == "VEHICLE_RAMMING")
    ram["vulnerability"] = {"value": 9, "evidence": None, "overrides": []}
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    before = path.read_bytes()

    result = runner.invoke(app, ["run"], env={**workspace, "COLUMNS": "300"})
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "brasov.yaml" in text
    assert "site way/1, threat 'VEHICLE_RAMMING', vulnerability: value 9 out of range" in text
    assert path.read_bytes() == before
    store = GeoPackageStore(Path(workspace["GEO_PROTECT_STORE_DIR"]))
    assert "brasov" not in store.cities()  # stopped before anything was written


def test_why_is_read_only_and_shows_the_stored_override(
    workspace: dict[str, str], tmp_path: Path
) -> None:
    """At HEAD ``why`` called ``pipeline.assess``: it pre-filled again, wrote V = 5 over the
    assessor's 1 in the store and printed no override."""
    from geo_protect.assess.files import read_assessment, write_assessment
    from geo_protect.assess.questionnaire import load_questionnaire, override

    assert runner.invoke(app, ["run"], env=workspace).exit_code == 0
    q = load_questionnaire(Path(workspace["GEO_PROTECT_DATA_DIR"]) / "assessment" / QFILE)
    draft = Path(workspace["GEO_PROTECT_MAPS_DIR"]) / "assessments" / "brasov.yaml"
    filled = override(
        read_assessment(draft, questionnaire=q), SFATULUI, "VEHICLE_RAMMING", "vulnerability", 1,
        by="A. Field", reason="vehicle gates closed", at=dt.date(2026, 5, 4), questionnaire=q,
    )  # fmt: skip
    was = filled.site(SFATULUI).scenario("VEHICLE_RAMMING").vulnerability.overrides[0].previous
    returned = write_assessment(filled, tmp_path / "returned.yaml")
    assert (
        runner.invoke(app, ["assess", "brasov", "--from", str(returned)], env=workspace).exit_code
        == 0
    )

    store_dir = Path(workspace["GEO_PROTECT_STORE_DIR"])
    before = _snapshot(store_dir)
    why = runner.invoke(app, ["why", "brasov", SFATULUI], env=workspace)
    assert why.exit_code == 0, why.output
    assert _snapshot(store_dir) == before
    text = " ".join(why.output.split())
    assert (
        f"vulnerability overridden {was} → 1 by A. Field on 2026-05-04: vehicle gates closed"
        in text
    )
    row = GeoPackageStore(store_dir).read_layer("brasov", "assessment")
    assert row.loc[f"{SFATULUI}|VEHICLE_RAMMING", "vulnerability"] == 1
