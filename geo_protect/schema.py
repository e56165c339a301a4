"""The data model: every layer geo_protect stores, with its columns and geometry type.

A *layer* is a GeoDataFrame in WGS84 (EPSG:4326) whose index, named ``uid``, is a
string unique within the city (``way/1020310740``, ``node/42``, ``register/market-1``).
Both stores (GeoPackage and PostGIS) build their tables from :data:`LAYERS`, so a layer
added here is stored, read back and migrated in one place.

Source layers (from OpenStreetMap and city registers) share :data:`PROVENANCE_COLUMNS`:
OSM type and id, tags as a JSON object, the file they came from and its data date.
Analysis layers (entry points, approaches, space metrics, assessment scores) are declared
here too, so that a store can read or write any layer without importing the code that
computes it: the data model depends on nothing but the error classes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely

from geo_protect.errors import ValidationError

__all__ = [
    "LAYERS",
    "PROVENANCE_COLUMNS",
    "SOURCE_LAYERS",
    "WGS84",
    "LayerSpec",
    "all_layers",
    "canonical_json",
    "conform",
    "empty_layer",
    "register_layer",
    "tags_of",
]

WGS84 = "EPSG:4326"

Dtype = Literal["string", "Int64", "float64", "boolean", "json"]
GeometryType = Literal["Point", "LineString", "MultiPolygon", "Geometry"]

#: Columns every source layer carries, for provenance (ODbL: keep OSM ids and dates).
PROVENANCE_COLUMNS: dict[str, Dtype] = {
    "osm_type": "string",  # node | way | relation, or empty for non-OSM features
    "osm_id": "Int64",
    "name": "string",
    "kind": "string",  # the class within the layer (square, bollard, worship...)
    "tags": "json",  # all OSM tags, a JSON object
    "source": "string",  # file name (or "overpass") the feature came from
    "data_date": "string",  # ISO date of the OSM snapshot
}


@dataclass(frozen=True)
class LayerSpec:
    """Columns and geometry type of one stored layer."""

    name: str
    geometry: GeometryType
    columns: Mapping[str, Dtype]
    description: str = ""
    analysis: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


LAYERS: dict[str, LayerSpec] = {}


def register_layer(spec: LayerSpec) -> LayerSpec:
    """Add a layer to the data model (idempotent for an identical spec)."""
    known = LAYERS.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"layer {spec.name!r} is already registered with another spec")
    LAYERS[spec.name] = spec
    return spec


def _source_layer(name: str, geometry: GeometryType, description: str, **extra: Dtype) -> LayerSpec:
    return register_layer(
        LayerSpec(name, geometry, {**PROVENANCE_COLUMNS, **extra}, description=description)
    )


_source_layer(
    "public_space",
    "MultiPolygon",
    "Squares, pedestrian areas, pedestrian-street corridors, markets, parks, forecourts, venues.",
)
_source_layer(
    "street",
    "LineString",
    "OSM highway ways with the flags of the walk and the hostile-vehicle networks.",
    highway="string",
    walk="boolean",
    hostile_vehicle="boolean",
    width_m="float64",
    lanes="float64",
    maxspeed_kmh="float64",
)
_source_layer("entrance", "Point", "Nodes tagged entrance=*.")
_source_layer(
    "barrier",
    "Geometry",
    "Nodes and ways tagged barrier=* (bollards, blocks, walls...); points or lines.",
    maxwidth_m="float64",
)
_source_layer(
    "poi",
    "Point",
    "Crowded-place points of interest (areas by their representative point).",
    tag="string",
    capacity="float64",
)
_source_layer("building", "MultiPolygon", "Building footprints.", levels="float64")
_source_layer("surveillance", "Point", "man_made=surveillance nodes (cameras, guards, ALPR...).")
_source_layer("landcover", "MultiPolygon", "Water and green areas, for the offline basemap.")

#: The layers an ingest writes, in a stable order.
SOURCE_LAYERS: tuple[str, ...] = (
    "public_space",
    "street",
    "entrance",
    "barrier",
    "poi",
    "building",
    "surveillance",
    "landcover",
)


# -- analysis layers (computed by geo_protect.analysis and geo_protect.assess) --

ENTRY_POINT = register_layer(
    LayerSpec(
        "entry_point",
        "Point",
        {
            "space_uid": "string",
            "kind": "string",
            "networks": "string",
            "bearing_deg": "float64",
            "width_m": "float64",
            "width_source": "string",
            "entry_class": "string",
            "street_uid": "string",
            "edge": "Int64",
            "at_m": "float64",
            "towards": "string",
            "impact_angle_deg": "float64",
            "worst_speed_kmh": "float64",
            "worst_speed_low_kmh": "float64",
            "worst_speed_high_kmh": "float64",
            "worst_vehicle": "string",
            "required_rating": "string",
        },
        description="Entry points of public spaces with their network, width and vehicle class.",
        analysis=True,
    )
)

APPROACH = register_layer(
    LayerSpec(
        "approach",
        "LineString",
        {
            "entry_uid": "string",
            "space_uid": "string",
            "vehicle": "string",
            "speed_kmh": "float64",
            "speed_low_kmh": "float64",
            "speed_high_kmh": "float64",
            "start_speed_kmh": "float64",
            "run_up_m": "float64",
            "impact_angle_deg": "float64",
            "energy_kj": "float64",
            "test_speed_kmh": "float64",
            "required_rating": "string",
            "method": "string",
        },
        description=(
            "Worst-case hostile-vehicle approach per entry point and vehicle class "
            "(flat-ground VDA, brief §2.2); the path is drawn from its start to the entry."
        ),
        analysis=True,
    )
)

#: The ``standoff`` layer: one Point per (space, vehicle class), uid ``"{space_uid}|{vehicle}"``.
STANDOFF = register_layer(
    LayerSpec(
        "standoff",
        "Point",
        {
            "space_uid": "string",
            "vehicle": "string",
            "explosive_kg": "float64",
            "reach": "string",
            "closest_m": "float64",
            "mandatory_m": "float64",
            "preferred_m": "float64",
            "persons_mandatory": "float64",
            "persons_preferred": "float64",
            "method": "string",
        },
        description=(
            "VBIED stand-off per space and vehicle class: the closest point the vehicle can "
            "reach, its explosive capacity, the NCTC mandatory / preferred evacuation "
            "distances and the people within them (issue 9)."
        ),
        analysis=True,
    )
)

SPACE_METRIC = register_layer(
    LayerSpec(
        "space_metric",
        "Point",
        {
            "name": "string",
            "label": "string",  # the name, else "<kind> by <nearest named street>" (issue 9)
            "kind": "string",
            "area_m2": "float64",
            "usable_area_m2": "float64",
            "design_density": "float64",
            "capacity_density": "float64",
            "capacity_egress": "float64",
            "capacity_persons": "float64",
            "limited_by": "string",
            "los": "string",
            "capacity_ordinary": "float64",
            "capacity_peak": "float64",
            "capacity_event": "float64",
            "expected_peak_persons": "float64",  # by use: occupancy_by_use (issue 9)
            "occupancy_rule": "string",
            "n_entries": "Int64",
            "n_pedestrian_only": "Int64",
            "n_vehicle_permeable": "Int64",
            "n_blocked": "Int64",
            "worst_speed_kmh": "float64",
            "worst_speed_low_kmh": "float64",
            "worst_speed_high_kmh": "float64",
            "worst_vehicle": "string",
            "worst_entry_uid": "string",
            "n_entries_over_30": "Int64",
            "n_entries_over_48": "Int64",
            "required_rating": "string",
            "worst_energy_kj": "float64",  # most energetic approach (issue 9)
            "reference_version": "string",
            "note": "string",
        },
        description="Per public space: capacity, level of service, entries and vehicle exposure.",
        analysis=True,
    )
)

#: The ``assessment`` layer: one Point per (space, threat), uid ``"{space_uid}|{threat}"``.
ASSESSMENT_LAYER = register_layer(
    LayerSpec(
        "assessment",
        "Point",
        {
            "space_uid": "string",
            "name": "string",
            "threat": "string",
            "attractiveness": "Int64",
            "vulnerability": "Int64",
            "likelihood": "Int64",
            "consequence": "Int64",
            "risk_raw": "Int64",
            "risk_100": "float64",
            "band": "string",
            "risk_index": "float64",  # people exposed × MJ, orders a band (issue 9)
            "label": "string",
            "why": "string",
            "status": "string",
            "assessors": "string",
            "assessed_on": "string",
            "evidence": "json",
            "overrides": "json",
            "n_overrides": "Int64",
            "questionnaire_version": "string",
            "reference_version": "string",
        },
        description=(
            "Risk per (space, threat): 1-5 ratings, R_100 = 100(L*C-1)/24, band; evidence and "
            "overrides as JSON; NA scores are 'not assessed'."
        ),
        analysis=True,
    )
)


def all_layers() -> dict[str, LayerSpec]:
    """Every layer of the data model (source and analysis layers), by name."""
    return dict(LAYERS)


def empty_layer(name: str) -> gpd.GeoDataFrame:
    """An empty GeoDataFrame with the columns, dtypes and CRS of layer ``name``."""
    spec = LAYERS[name]
    frame = pd.DataFrame(
        {col: pd.Series(dtype=_pandas_dtype(dt)) for col, dt in spec.columns.items()}
    )
    frame.index = pd.Index([], dtype="string", name="uid")
    return gpd.GeoDataFrame(
        frame, geometry=gpd.GeoSeries([], crs=WGS84, index=frame.index), crs=WGS84
    )


def conform(name: str, gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Validate a layer against its spec and return it with canonical dtypes.

    Checks that the CRS is WGS84, that the ``uid`` index is unique, that every required
    column is present and that geometries are non-empty and of the layer's type
    (polygons are promoted to MultiPolygon). Extra columns are dropped.

    Raises
    ------
    ValidationError
        Naming the layer and the first problem found.
    """
    spec = LAYERS[name]
    if gdf.crs is None or not gdf.crs.equals(WGS84):
        raise ValidationError(f"layer {name!r}: CRS must be {WGS84}, got {gdf.crs}")
    if gdf.index.has_duplicates:
        dup = gdf.index[gdf.index.duplicated()][0]
        raise ValidationError(f"layer {name!r}: uid {dup!r} is not unique")
    missing = [c for c in spec.columns if c not in gdf.columns]
    if missing:
        raise ValidationError(f"layer {name!r}: missing column(s) {', '.join(missing)}")
    geom = gdf.geometry.values
    if len(gdf) and (shapely.is_missing(geom).any() or shapely.is_empty(geom).any()):
        raise ValidationError(f"layer {name!r}: empty or missing geometries")
    plain = pd.DataFrame(gdf, copy=False)  # plain column access (no geometry checks)
    columns = {col: _canonical(plain[col], dt) for col, dt in spec.columns.items()}
    out = pd.DataFrame(columns, index=pd.Index(gdf.index.astype("string"), name="uid"))
    geometry = _promote(np.asarray(geom), spec.geometry, name)
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geometry, index=out.index, crs=WGS84))


def tags_of(layer: gpd.GeoDataFrame) -> pd.Series:
    """The ``tags`` column parsed into dicts, index-aligned with ``layer``."""
    return layer["tags"].map(lambda t: json.loads(t) if isinstance(t, str) and t else {})


def canonical_json(value: object) -> str:
    """The one JSON text form of stored objects (tags, evidence): compact, keys sorted."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _canonical(values: pd.Series, dt: Dtype) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """A column's values in the canonical dtype of ``dt`` (JSON as compact text)."""
    if dt == "json":
        if values.dtype == pd.StringDtype() and str(values.dtype) == "string":
            return values.fillna("{}").array
        return pd.array(values.map(_json_text).to_numpy(dtype=object), dtype="string")
    want = pd.api.types.pandas_dtype(_pandas_dtype(dt))
    same = values.dtype == want and str(values.dtype) == str(want)  # "str" is not "string"
    return values.array if same else values.astype(want).array


def _json_text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "{}"
    if isinstance(value, str):
        return value
    return canonical_json(value)


def _pandas_dtype(dt: Dtype) -> str:
    return "string" if dt == "json" else dt


def _promote(geoms: np.ndarray, kind: GeometryType, name: str) -> np.ndarray:
    if kind == "Geometry" or len(geoms) == 0:
        return geoms
    types = shapely.get_type_id(geoms)
    if kind == "MultiPolygon":
        ok = np.isin(types, (3, 6))
        if not ok.all():
            raise ValidationError(
                f"layer {name!r}: expected polygons, got {_type_names(geoms[~ok])}"
            )
        single = types == 3
        geoms = geoms.copy()
        geoms[single] = (
            shapely.multipolygons(geoms[single][:, None]) if single.any() else geoms[single]
        )
        return geoms
    wanted = {"Point": 0, "LineString": 1}[kind]
    ok = types == wanted
    if not ok.all():
        raise ValidationError(f"layer {name!r}: expected {kind}, got {_type_names(geoms[~ok])}")
    return geoms


def _type_names(geoms: np.ndarray) -> str:
    return ", ".join(sorted(set(shapely.get_type_id(geoms).astype(str))))
