"""The city registry: which cities exist, where they are and what data each one has."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pyproj import CRS
from pyproj.exceptions import CRSError

from geo_protect.errors import ConfigError, UnknownCityError
from geo_protect.reference import data_dir as active_data_dir

__all__ = ["City", "Source", "get_city", "load_cities"]

SourceKind = Literal["osm", "overpass_json", "graphml", "geojson", "csv"]
LayerName = Literal[
    "street", "public_space", "poi", "entrance", "barrier", "building", "surveillance"
]


class Source(BaseModel):
    """One local data file of a city."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SourceKind
    path: Path
    layer: LayerName | None = None
    network: Literal["walk", "drive"] | None = None
    data_date: str | None = None
    licence: str = "ODbL-1.0"
    note: str = ""

    @model_validator(mode="after")
    def _kind_options(self) -> Source:
        if self.kind == "geojson" and self.layer is None:
            raise ValueError("a geojson source needs `layer` (street, public_space or poi)")
        if self.kind == "graphml" and self.network is None:
            raise ValueError("a graphml source needs `network` (walk or drive)")
        return self


class City(BaseModel):
    """A city of the registry, with its study area and metric CRS."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slug: str
    name: str
    name_en: str
    country: str = Field(min_length=2, max_length=2)
    centre: tuple[float, float]
    bbox: tuple[float, float, float, float]
    crs: str
    timezone: str
    boundary: Path | None = None
    sources: tuple[Source, ...] = ()
    data_dir: Path

    @field_validator("bbox")
    @classmethod
    def _bbox_not_empty(
        cls, v: tuple[float, float, float, float]
    ) -> tuple[float, float, float, float]:
        w, s, e, n = v
        if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
            raise ValueError(
                f"bbox {list(v)} is empty or not [west, south, east, north] in degrees"
            )
        return v

    @field_validator("crs")
    @classmethod
    def _crs_is_metric(cls, v: str) -> str:
        try:
            crs = CRS.from_user_input(v)
        except CRSError as exc:
            raise ValueError(f"unknown CRS {v!r}") from exc
        unit = crs.axis_info[0].unit_name if crs.axis_info else ""
        if not crs.is_projected or unit not in {"metre", "meter"}:
            raise ValueError(f"{v} is not a projected CRS in metres")
        return v

    def path(self, source: Source | Path) -> Path:
        """Absolute path of a source file (paths in the registry are relative to ``data/``)."""
        p = source.path if isinstance(source, Source) else source
        return p if p.is_absolute() else self.data_dir / p

    @property
    def boundary_path(self) -> Path | None:
        """Absolute path of the boundary file, if the city has one."""
        return None if self.boundary is None else self.path(self.boundary)

    @property
    def label(self) -> str:
        """Name for display: the local name, with the English one when it differs."""
        return self.name if self.name == self.name_en else f"{self.name} ({self.name_en})"


@cache
def _load(registry: Path) -> dict[str, City]:
    try:
        raw = tomllib.loads(registry.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{registry}: city registry not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{registry}: not valid TOML: {exc}") from exc
    cities: dict[str, City] = {}
    for slug, entry in raw.get("cities", {}).items():
        try:
            cities[slug] = City(slug=slug, data_dir=registry.parent, **entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(entry)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"{registry}: city {slug!r}: {problems}") from exc
    if not cities:
        raise ConfigError(f"{registry}: no [cities.<slug>] entries")
    return cities


def load_cities(data_dir: Path | None = None) -> dict[str, City]:
    """Read the city registry (``cities.toml``) of a data folder.

    Parameters
    ----------
    data_dir
        Folder holding ``cities.toml``; the active data folder by default
        (:func:`geo_protect.reference.set_data_dir`).

    Returns
    -------
    dict
        City slug to :class:`City`, in registry order.

    Examples
    --------
    >>> sorted(load_cities())
    ['brasov', 'eindhoven', 'larissa', 'malaga', 'vilnius']
    """
    folder = active_data_dir(data_dir)
    return _load(folder / "cities.toml")


def get_city(slug: str, data_dir: Path | None = None) -> City:
    """Return one city of the registry, by slug (case- and accent-insensitive).

    Raises
    ------
    UnknownCityError
        If no city has that slug; the message lists the known ones.

    Examples
    --------
    >>> get_city("Brașov").crs
    'EPSG:32635'
    """
    cities = load_cities(data_dir)
    key = _slugify(slug)
    for city in cities.values():
        if key in {city.slug, _slugify(city.name), _slugify(city.name_en)}:
            return city
    raise UnknownCityError(f"unknown city {slug!r}; known cities: {', '.join(cities)}")


def _slugify(text: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace(" ", "-")
