"""Reference tables in a long-running process: a table and its version always agree.

A service keeps running while an analyst edits ``data/reference``; the tables must never
be served from an old cache under a new version (or the reverse). The library is also
free of the environment: the active data folder is set by the surfaces.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import geo_protect
from geo_protect import reference
from geo_protect.errors import ConfigError

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped ``data/reference`` folder."""
    shutil.copytree(DATA / "reference", tmp_path / "reference")
    return tmp_path


def _bump(path: Path, old: str, new: str) -> None:
    """Rewrite a file and move its modification time on, as an editor saving it would."""
    stat = path.stat()
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_an_edited_table_is_read_again_with_its_new_version(data_copy: Path) -> None:
    before = reference.parameter("max_bollard_gap_m", data_copy)
    assert before == 1.2  # the CPNI figure in the shipped table (brief §2.4)
    old_version = reference.version(data_copy)

    _bump(
        data_copy / "reference" / "parameters.csv",
        "max_bollard_gap_m,1.2,",
        "max_bollard_gap_m,1.1,",
    )
    _bump(data_copy / "reference" / "manifest.toml", f'"{old_version}"', '"9999.1"')

    assert reference.parameter("max_bollard_gap_m", data_copy) == 1.1
    assert reference.version(data_copy) == "9999.1"


def test_a_removed_table_is_an_error_not_a_stale_copy(data_copy: Path) -> None:
    assert not reference.table("barrier_types", data_copy).empty
    (data_copy / "reference" / "barrier_types.csv").unlink()
    with pytest.raises(ConfigError, match=r"barrier_types\.csv: reference table not found"):
        reference.table("barrier_types", data_copy)


def test_manifest_without_version_names_the_file(data_copy: Path) -> None:
    (data_copy / "reference" / "manifest.toml").write_text("[tables]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"manifest\.toml: manifest without a `version`"):
        reference.version(data_copy)


def test_the_active_data_folder_is_set_by_the_caller_not_the_environment(
    data_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEO_PROTECT_DATA_DIR", str(data_copy))
    # the environment alone changes nothing in the library ...
    assert reference.reference_dir() == reference.DEFAULT_DATA_DIR.resolve() / "reference"
    # ... a surface makes its settings' folder the active one
    previous = reference.set_data_dir(data_copy)
    try:
        assert reference.reference_dir() == data_copy.resolve() / "reference"
    finally:
        reference.set_data_dir(previous)
    assert reference.reference_dir() == previous / "reference"


def test_readme_public_names_import_from_the_top_level() -> None:
    from geo_protect import City, Source, analyse_city, get_city, ingest_city, vehicle_classes

    assert callable(analyse_city) and callable(ingest_city)
    assert get_city("brasov").model_copy() == get_city("Brașov")
    assert isinstance(get_city("brasov"), City)
    assert Source(kind="osm", path=Path("x.osm")).licence == "ODbL-1.0"
    # the four threat vehicle classes of the domain brief (§2.2): car, van, two trucks
    assert {"M1", "N1", "N2", "N3"} <= set(vehicle_classes().index)
    assert geo_protect.reference is reference
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = geo_protect.nope  # type: ignore[attr-defined]
