"""Durable atomic file replacement (geo_protect.atomic) and its use by the GeoPackage store.

What a crash would leave cannot be tested without pulling the plug; what is tested here is
the part that can be observed: the temporary file lives in the target's folder, a failure
at any point leaves the old file byte-identical and no temporary file, and (under
``strace``) the temporary file is fsync-ed before the rename and the folder after it.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import geopandas as gpd
import pytest

from geo_protect.atomic import SIDECARS, replacing, temporary_path
from geo_protect.errors import StoreError
from geo_protect.store import GeoPackageStore
from tests.needs import unavailable
from tests.store_cases import REPORT, assert_same_layer, source_layers

REPO_ROOT = Path(__file__).resolve().parent.parent


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_temporary_path_is_hidden_next_to_the_target(tmp_path: Path) -> None:
    """Fails at HEAD: there was no shared helper (geo_protect.atomic did not exist)."""
    target = tmp_path / "exports" / "brasov.gpkg"
    tmp = temporary_path(target)
    assert tmp.parent == target.parent  # same folder: os.replace stays one atomic rename
    assert tmp.name.startswith(".brasov.") and tmp.name.endswith(".tmp.gpkg")
    assert temporary_path(target) != tmp


def test_replacing_moves_the_new_file_in_place(tmp_path: Path) -> None:
    """Fails at HEAD: geo_protect.atomic did not exist."""
    target = tmp_path / "report.csv"
    target.write_text("old\n", encoding="utf-8")
    with replacing(target) as tmp:
        assert tmp.parent == tmp_path and not tmp.exists()
        tmp.write_text("new\n", encoding="utf-8")
        assert target.read_text(encoding="utf-8") == "old\n"  # not yet replaced
    assert target.read_text(encoding="utf-8") == "new\n"
    assert _names(tmp_path) == ["report.csv"]


def test_replacing_failure_keeps_the_old_bytes_and_no_temp(tmp_path: Path) -> None:
    """A failure half-way (a SQLite file with its journal) leaves nothing behind.

    Fails at HEAD: geo_protect.atomic did not exist.
    """
    target = tmp_path / "city.gpkg"
    target.write_bytes(b"previous GeoPackage bytes")
    with pytest.raises(RuntimeError, match="half-way"), replacing(target) as tmp:
        con = sqlite3.connect(tmp)
        con.execute("CREATE TABLE t (x)")
        con.execute("BEGIN")
        con.execute("INSERT INTO t VALUES (1)")  # leaves tmp + '-journal' on disk
        assert Path(f"{tmp}{SIDECARS[0]}").exists()
        raise RuntimeError("failed half-way")
    con.close()
    assert target.read_bytes() == b"previous GeoPackage bytes"
    assert _names(tmp_path) == ["city.gpkg"]


def test_replacing_errors_name_the_file(tmp_path: Path) -> None:
    """Nothing written, or a target that cannot be replaced: StoreError, no temp left.

    Fails at HEAD: geo_protect.atomic did not exist.
    """
    target = tmp_path / "city.gpkg"
    target.write_bytes(b"old")
    with pytest.raises(StoreError, match=r"city\.gpkg: nothing was written"), replacing(target):
        pass
    assert target.read_bytes() == b"old"
    folder = tmp_path / "taken.gpkg"
    (folder / "inside").mkdir(parents=True)  # a non-empty folder cannot be replaced
    cannot_move = r"taken\.gpkg: cannot move \.taken\..*\.tmp\.gpkg"
    with pytest.raises(StoreError, match=cannot_move), replacing(folder) as tmp:
        tmp.write_bytes(b"new")
    assert _names(tmp_path) == ["city.gpkg", "taken.gpkg"]


class _During(Mapping[str, gpd.GeoDataFrame]):
    """Layers whose ``at`` entry, when the store reaches it, first runs ``during``."""

    def __init__(
        self, layers: dict[str, gpd.GeoDataFrame], at: str, during: Callable[[], None]
    ) -> None:
        self._layers, self._at, self._during = layers, at, during

    def __getitem__(self, key: str) -> gpd.GeoDataFrame:
        if key == self._at:
            self._during()
        return self._layers[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)


@pytest.mark.parametrize("operation", ["replace_city", "write_layers"])
def test_geopackage_write_fails_half_way_without_a_trace(tmp_path: Path, operation: str) -> None:
    """An I/O error after some layers are written: temp was next to the file, now gone.

    (Passes at HEAD too: the store already wrote a temporary file in the same folder; this
    pins that down now that it goes through :func:`replacing`.)
    """
    store = GeoPackageStore(tmp_path, reference_version="test")
    old = source_layers()
    store.replace_city("brasov", old, REPORT)
    before = (tmp_path / "brasov.gpkg").read_bytes()
    during: list[str] = []

    def disk_full() -> None:
        during.extend(_names(tmp_path))
        raise OSError(28, "No space left on device")

    layers = _During(source_layers(suffix="4"), "poi", disk_full)
    with pytest.raises(StoreError, match=r"brasov\.gpkg: writing .* failed: .*No space left"):
        if operation == "replace_city":
            store.replace_city("brasov", layers, REPORT)
        else:
            store.write_layers("brasov", layers)
    temps = [n for n in during if re.fullmatch(r"\.brasov\.[0-9a-f]{32}\.tmp\.gpkg", n)]
    assert len(temps) == 1 and "brasov.gpkg" in during  # the temp sat next to the file
    assert (tmp_path / "brasov.gpkg").read_bytes() == before
    assert _names(tmp_path) == [".brasov.lock", "brasov.gpkg"]
    for name, layer in old.items():
        assert_same_layer(store.read_layer("brasov", name), layer)


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from geo_protect.store import GeoPackageStore
    from tests.store_cases import REPORT, source_layers

    store = GeoPackageStore(Path(sys.argv[1]), reference_version="test")
    store.replace_city("brasov", source_layers(), REPORT)
    store.write_layers("brasov", {"street": source_layers(suffix="6")["street"]})
    """
)


def _strace() -> str:
    found = shutil.which("strace")
    if found is None:
        unavailable("strace is not installed (apt-get install strace)")
    probe = subprocess.run([found, "-o", "/dev/null", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        unavailable(f"strace cannot trace here: {probe.stderr.decode(errors='replace').strip()}")
    return found


def test_geopackage_store_fsyncs_the_file_before_the_rename_and_the_folder_after(
    tmp_path: Path,
) -> None:
    """The system calls of a real ``replace_city`` and ``write_layers``, traced by strace.

    Fails at HEAD: nothing flushed the folder after the rename, so after a power cut the
    folder could still name the old file, or neither. (SQLite already fsyncs the
    temporary file when GDAL commits, so that half held at HEAD by luck of the driver;
    the store now fsyncs the file itself, whatever GDAL's ``OGR_SQLITE_SYNCHRONOUS``.)
    """
    strace, store = _strace(), tmp_path / "store"
    log = tmp_path / "trace.txt"
    traced = "trace=fsync,fdatasync,rename,renameat,renameat2"
    command = [strace, "-f", "-y", "-e", traced, "-o", str(log), sys.executable, "-c", WRITER]
    subprocess.run([*command, str(store)], cwd=REPO_ROOT, check=True, capture_output=True)
    calls = [line.split(None, 1)[1] for line in log.read_text().splitlines() if "(" in line]
    renames = [i for i, c in enumerate(calls) if c.startswith("rename") and 'brasov.gpkg"' in c]
    assert len(renames) == 2  # replace_city, then write_layers
    folder = re.escape(str(store.resolve()))
    for at in renames:
        tmp = re.search(r'"([^"]*\.brasov\.[0-9a-f]{32}\.tmp\.gpkg)"', calls[at])
        assert tmp is not None, calls[at]
        synced = [c for c in calls[:at] if re.match(r"f(data)?sync\(\d+<", c)]
        assert any(f"<{tmp.group(1)}>" in c for c in synced), "temp file not fsync-ed"
        after = calls[at + 1] if at + 1 < len(calls) else "nothing"
        assert re.match(rf"fsync\(\d+<{folder}>\)", after), f"after the rename: {after}"
