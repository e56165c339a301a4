"""Barrier scenarios: named sets of edits on a city's baseline barriers.

A :class:`Scenario` never changes the baseline layers: it lists :class:`BarrierEdit` s to
apply on top of them. An edit *adds* a planned barrier (a point or a line of a type of
``data/reference/plan_barrier_types.csv``, with an optional crash rating and, for bollard
rows, a post spacing), *removes* an existing OSM barrier or *opens* one (a gate left open
for deliveries), naming it by its ``uid`` (``"node/123"``).

The models are strict (unknown fields are refused) and check everything that can be
checked without the city: the type and its geometry, the rating (through a rating parser,
:func:`~geo_protect.analysis.crash_ratings.parse_rating` by default), the spacing.
:func:`city_problems` checks edits against a city (inside its bounding box, existing
barriers). Geometries are shapely objects in WGS84 longitude/latitude, dumped as GeoJSON
geometry objects.

Validation options are passed as pydantic's validation context: ``rating_parser`` (a
callable raising :class:`~geo_protect.errors.GeoProtectError` or :class:`ValueError` on a
bad rating) and ``data_dir`` (the data folder of the reference tables).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import shapely
import shapely.geometry
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)
from shapely.geometry.base import BaseGeometry

from geo_protect.cities import City
from geo_protect.errors import GeoProtectError
from geo_protect.reference import parameter, table

__all__ = [
    "ACTIONS",
    "BarrierEdit",
    "Geometry",
    "RatingParser",
    "Scenario",
    "city_problems",
    "default_rating_parser",
    "plan_barrier_types",
]

#: What an edit does to the baseline.
ACTIONS: tuple[str, ...] = ("add", "remove", "open")

#: Checks a crash-rating string; raises on a bad one (its message is shown to the planner).
RatingParser = Callable[[str], object]

_UID = re.compile(r"^(node|way|relation)/\d+$")
_FAMILY = {"Point": "point", "LineString": "line"}


def _as_geometry(value: object) -> BaseGeometry | None:
    """A shapely geometry from a geometry, a GeoJSON geometry object or WKT."""
    if value is None:
        return None
    try:
        if isinstance(value, BaseGeometry):
            geom = value
        elif isinstance(value, dict):
            geom = shapely.geometry.shape(value)
        elif isinstance(value, str):
            geom = shapely.from_wkt(value)
        else:
            raise ValueError("expected a geometry (shapely, GeoJSON object or WKT)")
    except (shapely.errors.GEOSException, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a geometry: {exc}") from exc
    if isinstance(geom, shapely.MultiPoint | shapely.MultiLineString) and len(geom.geoms) == 1:
        geom = geom.geoms[0]  # QGIS saves single parts into multi layers
    return geom


#: A shapely geometry field: validated from shapely, GeoJSON or WKT; dumped as GeoJSON.
Geometry = Annotated[
    BaseGeometry,
    PlainValidator(_as_geometry),
    PlainSerializer(
        lambda g: shapely.geometry.mapping(g), return_type=dict, when_used="unless-none"
    ),
]


def plan_barrier_types(data_dir: Path | None = None) -> pd.DataFrame:
    """The barrier types a planner can add, indexed by ``type``.

    Parameters
    ----------
    data_dir : Path or None
        The data folder holding ``reference/`` (the active one by default).

    Returns
    -------
    DataFrame
        Columns ``point``, ``line`` (the geometries allowed), ``default_spacing_m``,
        ``stops_vehicle`` (yes, no, gap, rated), ``description``, ``confidence``, ``source``.

    Examples
    --------
    >>> types = plan_barrier_types()
    >>> types.loc["wall", ["point", "line"]].tolist()
    [False, True]
    >>> float(types.loc["bollard_row", "default_spacing_m"])
    1.4
    """
    return table("plan_barrier_types", data_dir).set_index("type")


def default_rating_parser() -> RatingParser:
    """The crash-rating parser, :func:`geo_protect.analysis.crash_ratings.parse_rating`.

    Imported when first needed, so that reading the models does not load the rating tables.

    Examples
    --------
    >>> parse = default_rating_parser()
    >>> parse("V/7200[N2A]/48/90:0.0").speed_kmh
    48.0
    """
    from geo_protect.analysis.crash_ratings import parse_rating

    return parse_rating


def _context(info: ValidationInfo, key: str) -> Any:
    return info.context.get(key) if isinstance(info.context, dict) else None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BarrierEdit(_Strict):
    """One edit of a scenario: add a planned barrier, remove or open an existing one.

    Examples
    --------
    >>> from shapely import LineString
    >>> row = BarrierEdit(
    ...     kind="bollard_row",
    ...     geometry=LineString([(25.588, 45.642), (25.589, 45.642)]),
    ...     spacing_m=1.4,
    ... )
    >>> row.model_dump(mode="json")["geometry"]["type"]
    'LineString'
    >>> BarrierEdit(action="open", osm_id="node/123").action
    'open'
    """

    action: Literal["add", "remove", "open"] = "add"
    kind: str | None = None
    geometry: Geometry | None = None
    rating: str | None = None
    spacing_m: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    osm_id: str | None = None
    note: str = ""

    @field_validator("rating")
    @classmethod
    def _rating_parses(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        parse: RatingParser = _context(info, "rating_parser") or default_rating_parser()
        try:
            parse(value)
        except GeoProtectError as exc:
            raise ValueError(str(exc).removeprefix("rating: ")) from exc
        return value

    @field_validator("osm_id")
    @classmethod
    def _osm_id_is_a_uid(cls, value: str | None) -> str | None:
        if value is not None and not _UID.match(value):
            raise ValueError(f"{value!r} is not an OSM id like 'node/123' or 'way/45'")
        return value

    @model_validator(mode="after")
    def _fits_action(self, info: ValidationInfo) -> BarrierEdit:
        if self.action == "add":
            self._check_addition(_context(info, "data_dir"))
            return self
        if self.osm_id is None:
            raise ValueError(f"osm_id: {self.action} needs the OSM id of an existing barrier")
        extra = [f for f in ("kind", "geometry", "rating", "spacing_m") if getattr(self, f)]
        if extra:
            raise ValueError(f"{extra[0]}: not used by {self.action} (only osm_id and note)")
        return self

    def _check_addition(self, data_dir: Path | None) -> None:
        if self.osm_id is not None:
            raise ValueError("osm_id: an added barrier is new; osm_id is for remove and open")
        types = plan_barrier_types(data_dir)
        if self.kind is None or self.kind not in types.index:
            known = ", ".join(types.index)
            raise ValueError(f"kind: unknown barrier type {self.kind!r} (known: {known})")
        spec = types.loc[self.kind]
        _check_geometry(self.geometry, self.kind, spec)
        if self.spacing_m is not None:
            if pd.isna(spec["default_spacing_m"]):
                raise ValueError(f"spacing_m: only a row of posts has a spacing, not {self.kind}")
            post = parameter("bollard_diameter_m", data_dir)
            if self.spacing_m <= post:
                raise ValueError(
                    f"spacing_m: {self.spacing_m} m leaves no gap between posts of "
                    f"{post} m (bollard_diameter_m); spacing is centre to centre"
                )

    def spacing(self, data_dir: Path | None = None) -> float | None:
        """Centre-to-centre post spacing (m): the edit's, else its type's default.

        Examples
        --------
        >>> BarrierEdit(kind="bollard_row", geometry="LINESTRING (25 45, 25.001 45)").spacing()
        1.4
        """
        if self.action != "add" or self.kind is None:
            return None
        if self.spacing_m is not None:
            return self.spacing_m
        default = plan_barrier_types(data_dir).loc[self.kind, "default_spacing_m"]
        return None if pd.isna(default) else float(default)

    def clear_gap_m(self, data_dir: Path | None = None) -> float | None:
        """The clear gap between posts (m): spacing minus ``bollard_diameter_m``.

        Examples
        --------
        >>> row = BarrierEdit(kind="bollard_row", geometry="LINESTRING (25 45, 25.001 45)")
        >>> round(row.clear_gap_m(), 3)  # 1.4 m centres, 0.2 m posts
        1.2
        """
        spacing = self.spacing(data_dir)
        if spacing is None:
            return None
        return spacing - parameter("bollard_diameter_m", data_dir)


def _check_geometry(geom: BaseGeometry | None, kind: str, spec: pd.Series) -> None:
    allowed = [f for f in ("point", "line") if bool(spec[f])]
    if geom is None or geom.is_empty:
        raise ValueError(f"geometry: empty; a {kind} needs a {' or a '.join(allowed)}")
    family = _FAMILY.get(geom.geom_type)
    if family is None:
        raise ValueError(f"geometry: a {geom.geom_type}; a {kind} is a {' or a '.join(allowed)}")
    if family not in allowed:
        raise ValueError(f"geometry: a {kind} needs a {allowed[0]}, got a {family}")
    w, s, e, n = geom.bounds
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise ValueError("geometry: coordinates are not WGS84 longitude/latitude")
    if family == "line" and not geom.is_simple:
        raise ValueError("geometry: the line intersects itself")
    if family == "line" and geom.length == 0:
        raise ValueError("geometry: the line has zero length")


class Scenario(_Strict):
    """A named set of barrier edits on one city's baseline.

    Examples
    --------
    >>> import datetime as dt
    >>> sc = Scenario(
    ...     name="market day",
    ...     city="brasov",
    ...     author="planner",
    ...     created=dt.datetime(2026, 5, 1, 9, tzinfo=dt.timezone.utc),
    ...     edits=[BarrierEdit(action="open", osm_id="node/123")],
    ... )
    >>> Scenario.model_validate_json(sc.model_dump_json()) == sc
    True
    """

    name: str = Field(min_length=1)
    city: str = Field(min_length=1)
    author: str | None = None
    created: dt.datetime
    description: str = ""
    edits: list[BarrierEdit] = Field(min_length=1)

    @field_validator("created")
    @classmethod
    def _created_in_utc(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone (UTC)")
        return value.astimezone(dt.UTC)

    @model_validator(mode="after")
    def _one_edit_per_barrier(self) -> Scenario:
        seen: set[str] = set()
        for i, edit in enumerate(self.edits):
            if edit.osm_id is not None and edit.osm_id in seen:
                raise ValueError(f"edits[{i}]: {edit.osm_id} is edited twice")
            seen.add(edit.osm_id or "")
        return self


def city_problems(
    edits: Sequence[BarrierEdit], *, city: City, barriers: pd.DataFrame
) -> list[tuple[int, str, str]]:
    """What is wrong with edits on ``city``: outside its bbox, an unknown barrier.

    Parameters
    ----------
    edits : sequence of BarrierEdit
        The edits (already valid on their own).
    city : City
        The city (its ``bbox``).
    barriers : DataFrame
        The city's stored ``barrier`` layer, indexed by uid (``"node/123"``).

    Returns
    -------
    list of (int, str, str)
        ``(position of the edit, field, problem)``, in edit order; empty when all is well.

    Examples
    --------
    >>> from geo_protect.cities import get_city
    >>> city = get_city("brasov")
    >>> far = BarrierEdit(kind="block", geometry="POINT (2.35 48.85)")
    >>> gone = BarrierEdit(action="remove", osm_id="node/1")
    >>> [p[:2] for p in city_problems([far, gone], city=city, barriers=pd.DataFrame())]
    [(0, 'geometry'), (1, 'osm_id')]
    """
    area = shapely.box(*city.bbox)
    known = set(barriers.index.astype(str))
    problems: list[tuple[int, str, str]] = []
    for i, edit in enumerate(edits):
        if edit.geometry is not None and not area.covers(edit.geometry):
            problems.append((i, "geometry", f"outside {city.slug}'s bbox {list(city.bbox)}"))
        if edit.osm_id is not None and edit.osm_id not in known:
            problems.append((i, "osm_id", f"no barrier {edit.osm_id} in {city.slug}'s barriers"))
    return problems
