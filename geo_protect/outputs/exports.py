"""Exports for analysts and field teams: GeoJSON, GeoPackage, CSV and printable site reports.

* GeoJSON follows RFC 7946: WGS84 longitude/latitude, no ``crs`` member, the ``uid``
  as a property (written by GDAL with ``RFC7946=YES``).
* GeoPackage: one file per city, one table per layer, GeoPackage 1.2 (:data:`GPKG_VERSION`,
  so that GDAL 3.6 — Debian 12, the QGIS of many field laptops — opens it without the
  "may only be partially supported" warning it gives for 1.4). Every table declares its
  geometry type; a layer of mixed geometries (barriers: bollard nodes and wall ways) is
  split into ``<layer>_point``, ``<layer>_line`` and, when it has any, ``<layer>_polygon``.
* CSV: the attributes, the ``uid``, the geometry as WKT and ``lon``/``lat`` of a
  representative point (for spreadsheets).
* Site reports: one HTML page per assessed space (Jinja2, print CSS for A4). PDF is not
  produced: no well-kept pure-Python HTML→PDF library is installed; print the HTML to PDF
  from a browser.

Every file is written to a temporary file in its folder, flushed and moved over the
previous one (:func:`geo_protect.atomic.replacing`): a failed export leaves the
previous export byte-identical, and :func:`export_city` moves its files in place only
once all of them are written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError, FieldError, GeometryError

from geo_protect.atomic import replacing
from geo_protect.errors import StoreError, ValidationError
from geo_protect.scenario.files import plan_barrier_template
from geo_protect.schema import LAYERS, WGS84
from geo_protect.store.base import Store

__all__ = [
    "EXPORTED_LAYERS",
    "EXPORT_FORMATS",
    "GPKG_VERSION",
    "export_city",
    "exportable_layers",
    "geopackage_tables",
    "write_csv",
    "write_geojson",
    "write_geopackage",
]

#: Formats :func:`export_city` can write.
EXPORT_FORMATS = ("geojson", "gpkg", "csv")

#: The layers an export holds, when the store has them.
EXPORTED_LAYERS = (
    "public_space",
    "entry_point",
    "approach",
    "space_metric",
    "assessment",
    "barrier",
    "surveillance",
)

#: GeoPackage version written (``VERSION`` dataset creation option of GDAL's GPKG driver:
#: ``application_id`` "GPKG", ``user_version`` 10200). GDAL 3.6 reads 1.0-1.3 fully.
GPKG_VERSION = "1.2"

#: Geometry family (GeoPackage table suffix) -> (single, multi) geometry type.
_FAMILIES: dict[str, tuple[str, str]] = {
    "point": ("Point", "MultiPoint"),
    "line": ("LineString", "MultiLineString"),
    "polygon": ("Polygon", "MultiPolygon"),
}
#: shapely type id -> family.
_FAMILY_OF_TYPE = {0: "point", 4: "point", 1: "line", 5: "line", 3: "polygon", 6: "polygon"}


_WRITE_ERRORS = (DataSourceError, DataLayerError, FieldError, GeometryError, OSError)

#: Writes one checked layer (or, for GeoPackage, all of them) to a path.
_Writer = Callable[[Path], None]


def exportable_layers(store: Store, city: str) -> dict[str, gpd.GeoDataFrame]:
    """The layers of :data:`EXPORTED_LAYERS` that ``store`` holds for ``city``, read at once.

    The layers are read with one :meth:`~geo_protect.store.base.Store.read_layers` call,
    so they come from one version of the city even while it is being rewritten (and the
    source layers that are not exported, such as buildings, are not read at all).

    Parameters
    ----------
    store : Store
        The store to read from.
    city : str
        The city's slug.

    Returns
    -------
    dict
        Layer name to WGS84 GeoDataFrame, in :data:`EXPORTED_LAYERS` order.
    """
    present = set(store.layers(city))
    return store.read_layers(city, [name for name in EXPORTED_LAYERS if name in present])


def _check(layer: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    if layer.crs is None or not layer.crs.equals(WGS84):
        raise ValidationError(f"{what}: CRS must be {WGS84} for export, got {layer.crs}")
    out = layer.copy()
    out.index = out.index.astype(str).rename("uid")
    return out


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """:func:`replacing` ``path``, with the writers' errors made StoreErrors."""
    with replacing(path) as tmp:
        try:
            yield tmp
        except _WRITE_ERRORS as exc:
            raise StoreError(
                f"{path}: export failed, the previous file is unchanged: {exc}"
            ) from exc


def _geojson_writer(layer: gpd.GeoDataFrame, path: Path) -> _Writer:
    checked = _check(layer, str(path)).reset_index()

    def write(tmp: Path) -> None:
        checked.to_file(tmp, driver="GeoJSON", engine="pyogrio", RFC7946="YES", WRITE_NAME="NO")

    return write


def geopackage_tables(
    name: str, layer: gpd.GeoDataFrame
) -> dict[str, tuple[gpd.GeoDataFrame, str]]:
    """The GeoPackage tables of one layer, each with its declared geometry type.

    A layer whose data model allows one geometry type (:data:`geo_protect.schema.LAYERS`)
    is one table named after it. A layer of mixed geometries (``barrier``), or one outside
    the data model holding several families, is split by family into ``<name>_point``,
    ``<name>_line`` (both always written, possibly empty, for a layer the model declares
    mixed) and ``<name>_polygon`` (when it has polygons). A family with any multi-part
    geometry is declared multi (``MultiLineString``) and its single parts promoted.

    Parameters
    ----------
    name : str
        The layer's name.
    layer : GeoDataFrame
        The layer.

    Returns
    -------
    dict
        Table name -> (rows, OGR geometry type), in a stable order.

    Examples
    --------
    >>> from shapely import LineString, Point
    >>> barriers = gpd.GeoDataFrame(
    ...     {"kind": ["bollard", "wall"]},
    ...     geometry=[Point(25.58, 45.64), LineString([(25.58, 45.64), (25.59, 45.64)])],
    ...     crs=WGS84,
    ... )
    >>> {t: (len(rows), kind) for t, (rows, kind) in geopackage_tables("barrier", barriers).items()}
    {'barrier_point': (1, 'Point'), 'barrier_line': (1, 'LineString')}
    """
    spec = LAYERS.get(name)
    types = shapely.get_type_id(np.asarray(layer.geometry.values))
    family = np.array([_FAMILY_OF_TYPE.get(int(t), "other") for t in types], dtype=object)
    if "other" in set(family):
        raise ValidationError(f"layer {name!r}: geometry collections cannot go to a GeoPackage")
    declared = spec.geometry if spec is not None else "Geometry"
    if declared != "Geometry":
        return {name: (layer, declared)}
    present = set(family)
    if spec is None and len(present) == 1:
        (only,) = present
        return {name: (layer, _declared(only, types))}
    wanted = ["point", "line"] if spec is not None else []
    families = [f for f in _FAMILIES if f in present or f in wanted]
    return {f"{name}_{f}": (layer[family == f], _declared(f, types[family == f])) for f in families}


def _declared(family: str, types: np.ndarray) -> str:
    single, multi = _FAMILIES[family]
    return multi if family == "polygon" or np.isin(types, (4, 5, 6)).any() else single


def _geopackage_writer(
    layers: Mapping[str, gpd.GeoDataFrame], path: Path, *, plan: bool = False
) -> _Writer:
    if not layers:
        raise ValidationError(f"{path}: no layers to write")
    tables: dict[str, tuple[pd.DataFrame, str]] = {}
    for name, layer in layers.items():
        checked = _check(layer, f"{path}, layer {name!r}")
        for table_name, (rows, kind) in geopackage_tables(name, checked).items():
            frame = rows.reset_index()
            if not len(frame):  # pyogrio cannot infer field types from an empty object column
                frame = frame.astype({c: "string" for c in frame if frame[c].dtype == object})
            tables[table_name] = (frame, kind)
    if plan:  # the empty tables a planner draws a barrier scenario in
        tables.update(plan_barrier_template())

    def write(tmp: Path) -> None:
        for table_name, (frame, kind) in tables.items():
            pyogrio.write_dataframe(
                frame,
                tmp,
                layer=table_name,
                driver="GPKG",
                geometry_type=kind,
                promote_to_multi=kind.startswith("Multi"),
                dataset_options={"VERSION": GPKG_VERSION},
            )

    return write


def _csv_writer(layer: gpd.GeoDataFrame, path: Path) -> _Writer:
    layer = _check(layer, str(path))
    geoms = layer.geometry.to_numpy()
    points = shapely.point_on_surface(geoms)
    frame = pd.DataFrame(layer.drop(columns=layer.geometry.name))
    frame["lon"] = np.round(shapely.get_x(points), 7)
    frame["lat"] = np.round(shapely.get_y(points), 7)
    frame["wkt"] = shapely.to_wkt(geoms, rounding_precision=7)

    def write(tmp: Path) -> None:
        frame.to_csv(tmp, index=True, index_label="uid")

    return write


def _write_all(writers: Mapping[Path, _Writer]) -> list[Path]:
    """Write every file to its temporary path, then move them all in place."""
    with ExitStack() as stack:
        for path, write in writers.items():
            write(stack.enter_context(_replacing(path)))
    return list(writers)


def write_geojson(layer: gpd.GeoDataFrame, path: Path) -> Path:
    """Write a layer as RFC 7946 GeoJSON (WGS84 lon/lat, ``uid`` as a property).

    Parameters
    ----------
    layer : GeoDataFrame
        The layer, in WGS84.
    path : Path
        The file to write (replaced atomically; its folder is created).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValidationError
        If the layer is not in WGS84.
    StoreError
        If the file cannot be written (the previous file is left unchanged).
    """
    path = Path(path)
    return _write_all({path: _geojson_writer(layer, path)})[0]


def write_geopackage(layers: Mapping[str, gpd.GeoDataFrame], path: Path) -> Path:
    """Write layers as the tables of one GeoPackage (the file is replaced atomically).

    Parameters
    ----------
    layers : Mapping of str to GeoDataFrame
        Table name to layer, each in WGS84.
    path : Path
        The GeoPackage to write (its folder is created).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValidationError
        If there are no layers or one is not in WGS84 (nothing is written).
    StoreError
        If a layer cannot be written (the previous file is left unchanged).
    """
    path = Path(path)
    return _write_all({path: _geopackage_writer(layers, path)})[0]


def write_csv(layer: gpd.GeoDataFrame, path: Path) -> Path:
    """Write a layer as CSV: ``uid``, its attributes, ``lon``, ``lat`` and ``wkt``.

    Parameters
    ----------
    layer : GeoDataFrame
        The layer, in WGS84.
    path : Path
        The file to write (replaced atomically; its folder is created).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValidationError
        If the layer is not in WGS84.
    StoreError
        If the file cannot be written (the previous file is left unchanged).
    """
    path = Path(path)
    return _write_all({path: _csv_writer(layer, path)})[0]


def export_city(
    city: str,
    layers: Mapping[str, gpd.GeoDataFrame],
    out_dir: Path,
    *,
    formats: Iterable[str] = EXPORT_FORMATS,
) -> list[Path]:
    """Export a city's layers (e.g. ``public_space``, ``entry_point``, ``assessment``).

    Writes ``<city>_<layer>.geojson`` and ``<city>_<layer>.csv`` per layer and one
    ``<city>.gpkg`` with every layer (a mixed-geometry layer split by geometry type, see
    :func:`geopackage_tables`) and the empty ``plan_barrier_point`` and ``plan_barrier_line``
    tables a planner draws a barrier scenario in (see
    :func:`geo_protect.scenario.files.plan_barrier_template`). Every layer is checked
    before anything is written, and the files replace the previous ones only once all of
    them are written, so a failed export leaves the previous one as it was.

    Parameters
    ----------
    city : str
        The city's slug (the prefix of the file names).
    layers : Mapping of str to GeoDataFrame
        Layer name to layer, each in WGS84.
    out_dir : Path
        The folder to write to (created if needed).
    formats : iterable of str
        Some of :data:`EXPORT_FORMATS`.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ValidationError
        An unknown format, or a layer not in WGS84 (nothing is written).
    StoreError
        A file cannot be written (the previous files are left unchanged).
    """
    fmts = list(formats)
    unknown = sorted(set(fmts) - set(EXPORT_FORMATS))
    if unknown:
        raise ValidationError(
            f"export formats: unknown {', '.join(unknown)} (known: {', '.join(EXPORT_FORMATS)})"
        )
    out_dir = Path(out_dir)
    writers: dict[Path, _Writer] = {}
    for name, layer in layers.items():
        if "geojson" in fmts:
            path = out_dir / f"{city}_{name}.geojson"
            writers[path] = _geojson_writer(layer, path)
        if "csv" in fmts:
            path = out_dir / f"{city}_{name}.csv"
            writers[path] = _csv_writer(layer, path)
    if "gpkg" in fmts and layers:
        path = out_dir / f"{city}.gpkg"
        writers[path] = _geopackage_writer(layers, path, plan=True)
    return _write_all(writers)
