"""The embedded store: one GeoPackage per city, readable by QGIS.

``<folder>/<city>.gpkg`` holds one table per layer (named after it, geometry column
``geom`` in EPSG:4326, the ``uid`` as a text column) and the non-spatial table
``geo_protect_city`` with one row: ingest time, reference version, ingest report and
the list of stored layers; once one is saved, the non-spatial table ``scenario`` holds
the barrier scenarios (:mod:`geo_protect.store.scenarios`; a re-ingest keeps them). The
files are GeoPackage 1.2 (:data:`GPKG_VERSION`), which GDAL 3.6 (Debian 12's QGIS) opens
without a version warning; the ``barrier`` table keeps its mixed points and lines
(geometry type GEOMETRY) because the store's contract is one table per layer — the GIS
export (:mod:`geo_protect.outputs.exports`) splits it.

Every write builds a temporary GeoPackage in the same folder, flushes it to disk and
moves it over the old one with :func:`os.replace`
(:func:`geo_protect.atomic.replacing`), so a reader sees the old file or the new
one, and a failure leaves the old file untouched. Reads go through one read-only SQLite
connection and one read transaction per call: the connection keeps the file it opened,
so :meth:`GeoPackageStore.read_layers` sees one version of the city even while a writer
replaces it.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError, FieldError, GeometryError

from geo_protect.atomic import replacing
from geo_protect.citydata import IngestReport
from geo_protect.errors import StoreError, UnknownCityError
from geo_protect.schema import conform, empty_layer
from geo_protect.store._common import (
    CityInfo,
    check_slug,
    layer_frame,
    order_layers,
    report_from_json,
    report_to_json,
    spec_of,
)
from geo_protect.store.audit import Actor
from geo_protect.store.scenarios import (
    ScenarioDocument,
    StoredScenario,
    gpkg_scenarios,
    missing_scenario,
    write_gpkg_scenarios,
)

__all__ = ["GPKG_VERSION", "META_TABLE", "GeoPackageStore"]

#: GeoPackage version of the files (GDAL's ``VERSION`` dataset creation option).
GPKG_VERSION = "1.2"

#: The non-spatial table with the city record.
META_TABLE = "geo_protect_city"

_OGR_GEOMETRY = {"Point": "Point", "LineString": "LineString", "MultiPolygon": "MultiPolygon"}
_GDAL_ERRORS = (DataSourceError, DataLayerError, FieldError, GeometryError, OSError, sqlite3.Error)


class _Meta(TypedDict):
    slug: str
    ingested_at: str
    reference_version: str
    report: str
    layers: list[str]


class GeoPackageStore:
    """A folder of GeoPackages, one per city.

    Parameters
    ----------
    folder
        Where the ``<city>.gpkg`` files live (created on the first write).
    reference_version
        Version of the reference tables recorded with each ingest; by default the one
        of the configured data folder (:func:`geo_protect.reference.version`).
    """

    def __init__(self, folder: Path, *, reference_version: str | None = None) -> None:
        self.folder = Path(folder)
        self._reference_version = reference_version

    def __repr__(self) -> str:
        return f"GeoPackageStore({str(self.folder)!r})"

    # -- contract -------------------------------------------------------------------

    def replace_city(
        self, city: str, layers: Mapping[str, gpd.GeoDataFrame], report: IngestReport
    ) -> None:
        """Replace the city's GeoPackage by one with ``layers`` and ``report``."""
        check_slug(city)
        meta = {
            "slug": city,
            "ingested_at": datetime.now(UTC).isoformat(),
            "reference_version": self._reference(),
            "report": report_to_json(report),
        }
        self._rewrite(city, layers, meta=meta)

    def write_layers(
        self, city: str, layers: Mapping[str, gpd.GeoDataFrame], *, actor: Actor | None = None
    ) -> None:
        """Replace the given layers of an ingested city, keeping the others (no audit)."""
        self._existing(city)
        self._rewrite(city, layers, meta=None)

    def read_layer(self, city: str, layer: str) -> gpd.GeoDataFrame:
        """One layer of a city, sorted by ``uid`` (an empty layer if it was not stored)."""
        return self.read_layers(city, [layer])[layer]

    def read_layers(
        self, city: str, names: Iterable[str] | None = None
    ) -> dict[str, gpd.GeoDataFrame]:
        """Several layers of a city from one version of its GeoPackage.

        Parameters
        ----------
        city : str
            The city's slug.
        names : iterable of str, optional
            The layers to read (an empty layer for each one not stored); by default
            every stored layer, in the order of :meth:`layers`.

        Returns
        -------
        dict of str to GeoDataFrame
            Layer name to layer, sorted by ``uid``, in the order asked for.

        Raises
        ------
        UnknownCityError
            The city has no GeoPackage.
        StoreError
            A name is not a registered layer, or the file cannot be read.
        """
        wanted = None if names is None else [spec_of(name).name for name in names]
        path = self._existing(city)
        try:
            with closing(_connect(path)) as con:
                con.execute("BEGIN")  # one read transaction: one version of the file
                stored = _read_meta(path, con)["layers"]
                chosen = list(stored) if wanted is None else wanted
                layers = {
                    name: _read_table(path, con, name) if name in stored else empty_layer(name)
                    for name in chosen
                }
                con.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot read the city's layers: {exc}") from exc
        return layers

    def report(self, city: str) -> IngestReport:
        """The ingest report stored with the city."""
        return report_from_json(self._meta(self._existing(city))["report"])

    def cities(self) -> list[str]:
        """Slugs of the cities with a GeoPackage in the folder."""
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("[!.]*.gpkg") if p.is_file())

    def layers(self, city: str) -> list[str]:
        """Names of the layers stored for ``city`` (empty ones included)."""
        return list(self._meta(self._existing(city))["layers"])

    def save_scenario(self, city: str, scenario: ScenarioDocument, *, actor: Actor) -> None:
        """Store ``scenario`` in the city's file (table ``scenario``), replacing its namesake.

        The embedded store keeps no audit trail: ``actor`` is accepted for the contract.

        The file is copied, the copy's ``scenario`` table rewritten and moved over the
        old file: the layer tables are not rewritten.
        """
        record = StoredScenario.of(city, scenario)
        path = self._existing(city)
        with self._lock(city):
            try:
                with replacing(path) as tmp:
                    shutil.copyfile(path, tmp)
                    with closing(_connect(tmp)) as con:
                        kept = [r for r in gpkg_scenarios(city, con) if r.name != record.name]
                    write_gpkg_scenarios(tmp, [*kept, record], GPKG_VERSION)
            except _GDAL_ERRORS as exc:
                raise StoreError(f"{path}: saving scenario {record.name!r} failed: {exc}") from exc

    def scenarios(self, city: str) -> list[str]:
        """Names of the scenarios stored for ``city``, sorted."""
        return [r.name for r in self._scenarios(city)]

    def read_scenario(self, city: str, name: str) -> StoredScenario:
        """The scenario ``name`` of ``city`` (:class:`MissingDataError` if it has none)."""
        records = self._scenarios(city)
        found = [r for r in records if r.name == name]
        if not found:
            where = f"the GeoPackage store {self.folder}"
            raise missing_scenario(city, name, [r.name for r in records], where)
        return found[0]

    # -- extras ---------------------------------------------------------------------

    def info(self, city: str) -> CityInfo:
        """Ingest time, reference version and layers of a stored city."""
        meta = self._meta(self._existing(city))
        return CityInfo(
            slug=city,
            ingested_at=datetime.fromisoformat(meta["ingested_at"]),
            reference_version=meta["reference_version"],
            layers=list(meta["layers"]),
        )

    def path(self, city: str) -> Path:
        """The GeoPackage of ``city`` (whether it exists or not)."""
        return self.folder / f"{check_slug(city)}.gpkg"

    def close(self) -> None:
        """Nothing to release (files are opened per call); for symmetry with PostGIS."""

    # -- internals ------------------------------------------------------------------

    def _reference(self) -> str:
        if self._reference_version is None:
            from geo_protect.reference import version

            self._reference_version = version()
        return self._reference_version

    def _existing(self, city: str) -> Path:
        path = self.path(city)
        if not path.is_file():
            raise UnknownCityError(
                f"city {city!r} is not in the GeoPackage store {self.folder} "
                f"(no {path.name}): ingest it first"
            )
        return path

    def _scenarios(self, city: str) -> list[StoredScenario]:
        path = self._existing(city)
        try:
            with closing(_connect(path)) as con:
                return gpkg_scenarios(city, con)
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"{path}: cannot read the scenario table: {exc}") from exc

    def _meta(self, path: Path) -> _Meta:
        try:
            with closing(_connect(path)) as con:
                return _read_meta(path, con)
        except sqlite3.Error as exc:
            raise StoreError(
                f"{path}: not a geo_protect GeoPackage ({exc}); re-ingest the city"
            ) from exc

    def _rewrite(
        self,
        city: str,
        layers: Mapping[str, gpd.GeoDataFrame],
        *,
        meta: dict[str, str] | None,
    ) -> None:
        """Write a new GeoPackage next to the old one and move it over it.

        With ``meta`` the new file holds only ``layers`` (and the city's scenarios);
        without, it starts as a copy of the current file. Writers of one city queue on a
        lock file (``.<city>.lock``).
        """
        target = self.path(city)
        names = list(layers)
        for name in names:
            spec_of(name)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the GeoPackage store folder {self.folder}: {exc}"
            ) from exc
        with self._lock(city):
            try:
                with replacing(target) as tmp:
                    self._fill(tmp, city, layers, meta)
            except _GDAL_ERRORS as exc:
                raise StoreError(
                    f"{target}: writing {', '.join(names) or 'the city'} failed: {exc}"
                ) from exc

    def _fill(
        self,
        tmp: Path,
        city: str,
        layers: Mapping[str, gpd.GeoDataFrame],
        meta: dict[str, str] | None,
    ) -> None:
        """Write the new GeoPackage of ``city`` at ``tmp`` (see :meth:`_rewrite`)."""
        names = list(layers)
        if meta is None:
            shutil.copyfile(self._existing(city), tmp)
            old = self._meta(tmp)
            record = {k: str(v) for k, v in old.items() if k != "layers"}
            stored = [*old["layers"], *names]
        else:
            record, stored = dict(meta), names
        for name in names:
            self._write_layer(tmp, name, conform(name, layers[name]))
        kept = self._scenarios(city) if meta is not None and self.path(city).is_file() else []
        if kept:  # scenarios are edits on the city, not layers: a re-ingest keeps them
            write_gpkg_scenarios(tmp, kept, GPKG_VERSION)
        record["layers"] = json.dumps(order_layers(stored))
        pyogrio.write_dataframe(
            pd.DataFrame({k: [v] for k, v in record.items()}),
            tmp,
            layer=META_TABLE,
            driver="GPKG",
            dataset_options={"VERSION": GPKG_VERSION},
        )

    @contextmanager
    def _lock(self, city: str) -> Iterator[None]:
        """An exclusive advisory lock on ``.<city>.lock`` (serialises writers of a city)."""
        path = self.folder / f".{city}.lock"
        try:
            handle = path.open("a")
        except OSError as exc:
            raise StoreError(f"cannot create the lock file {path}: {exc}") from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _write_layer(path: Path, name: str, layer: gpd.GeoDataFrame) -> None:
        spec = spec_of(name)
        frame = layer.reset_index()
        if not len(frame):
            # pyogrio cannot infer field types from an empty object column
            frame = frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object})
        pyogrio.write_dataframe(
            frame,
            path,
            layer=name,
            driver="GPKG",
            geometry_type=_OGR_GEOMETRY.get(spec.geometry, "Unknown"),
            promote_to_multi=False,
            dataset_options={"VERSION": GPKG_VERSION},
        )


# -- reading through SQLite -------------------------------------------------------------

#: Bytes of the envelope after the GeoPackage binary header, by envelope indicator.
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def _connect(path: Path) -> sqlite3.Connection:
    """A read-only connection that leaves transactions to the caller."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)


def _read_meta(path: Path, con: sqlite3.Connection) -> _Meta:
    query = f'SELECT slug, ingested_at, reference_version, report, layers FROM "{META_TABLE}"'
    row = con.execute(query).fetchone()
    if row is None:
        raise StoreError(f"{path}: table {META_TABLE} is empty; re-ingest the city")
    slug, ingested_at, reference_version, report, layers = (str(v) for v in row)
    return _Meta(
        slug=slug,
        ingested_at=ingested_at,
        reference_version=reference_version,
        report=report,
        layers=json.loads(layers),
    )


def _read_table(path: Path, con: sqlite3.Connection, layer: str) -> gpd.GeoDataFrame:
    """One stored layer, read with ``con`` (in the caller's transaction)."""
    spec = spec_of(layer)
    found = {str(row[1]) for row in con.execute(f'PRAGMA table_info("{layer}")')}
    if not found:
        raise StoreError(
            f"{path}: layer {layer!r} is listed in {META_TABLE} but has no table; "
            "re-ingest the city or rewrite the layer"
        )
    geom = con.execute(
        "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
    ).fetchone()
    missing = [c for c in ("uid", *spec.columns) if c not in found]
    if geom is None or missing:
        lacking = ", ".join([*missing, *([] if geom else ["a geometry column"])])
        raise StoreError(
            f"{path}: layer {layer!r} lacks {lacking}; re-ingest the city or rewrite the layer"
        )
    columns = ", ".join(f'"{c}"' for c in ("uid", *spec.columns, str(geom[0])))
    rows = con.execute(f'SELECT {columns} FROM "{layer}"').fetchall()
    if not rows:
        return empty_layer(layer)
    values = list(zip(*rows, strict=True))
    data: dict[str, Any] = dict(zip(spec.columns, values[1:-1], strict=True))
    geometry = shapely.from_wkb([_wkb(path, layer, blob) for blob in values[-1]])
    return layer_frame(spec, values[0], data, geometry)


def _wkb(path: Path, layer: str, blob: bytes | None) -> bytes | None:
    """The WKB inside a GeoPackage geometry blob (``None`` for a NULL geometry)."""
    if blob is None:
        return None
    flags = blob[3] if len(blob) >= 8 and blob[:2] == b"GP" else -1
    envelope = _ENVELOPE_BYTES.get((flags >> 1) & 0b111) if flags >= 0 else None
    if envelope is None or flags & 0b100000:  # not GeoPackage binary, or its extended form
        raise StoreError(
            f"{path}: layer {layer!r} holds a geometry that is not standard GeoPackage "
            "binary; re-ingest the city or rewrite the layer"
        )
    return blob[8 + envelope :]
