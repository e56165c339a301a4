"""A city's layers in memory, with the report of how they were made."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd

from geo_protect.cities import City
from geo_protect.errors import ValidationError
from geo_protect.schema import SOURCE_LAYERS, empty_layer

__all__ = ["CityData", "IngestReport", "find_space"]


@dataclass
class IngestReport:
    """What an ingest found, dropped and could not find, per layer.

    Attributes
    ----------
    counts
        Features stored per layer.
    dropped
        ``{(layer, reason): n}``, e.g. ``("street", "way with nodes outside the extract"): 171``.
    missing
        Plain-language notes for classes the city's data lacks, each saying what to do.
    sources
        Files (or ``overpass``) read, with their data date.
    """

    counts: dict[str, int] = field(default_factory=dict)
    dropped: dict[tuple[str, str], int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    sources: list[tuple[str, str | None]] = field(default_factory=list)

    def drop(self, layer: str, reason: str, n: int = 1) -> None:
        """Count ``n`` features of ``layer`` dropped for ``reason``."""
        if n:
            self.dropped[(layer, reason)] = self.dropped.get((layer, reason), 0) + n


@dataclass
class CityData:
    """The source layers of one city (WGS84 GeoDataFrames, see :mod:`geo_protect.schema`)."""

    city: str
    layers: dict[str, gpd.GeoDataFrame]
    report: IngestReport = field(default_factory=IngestReport)

    def __post_init__(self) -> None:
        for name in SOURCE_LAYERS:
            if name not in self.layers:  # (building an empty layer is not free)
                self.layers[name] = empty_layer(name)

    def __getitem__(self, layer: str) -> gpd.GeoDataFrame:
        return self.layers[layer]


def find_space(spaces: gpd.GeoDataFrame, query: str, *, city: City) -> str:
    """The uid of the public space a person names: by uid, or by name (case-insensitive).

    Of several spaces with the same name, the largest is taken (a square is usually
    meant rather than a small plaza of the same name elsewhere).

    Parameters
    ----------
    spaces : GeoDataFrame
        The city's ``public_space`` layer.
    query : str
        A uid (``relation/9620387``) or a name (``Piața Sfatului``).
    city : City
        The city (for its metric CRS and the message).

    Returns
    -------
    str
        The space's uid.

    Raises
    ------
    ValidationError
        If no space has that uid or name.

    Examples
    --------
    >>> import shapely
    >>> from geo_protect.cities import get_city
    >>> big = shapely.box(25.58, 45.64, 25.581, 45.641)
    >>> small = shapely.box(25.59, 45.64, 25.5901, 45.6401)
    >>> spaces = gpd.GeoDataFrame({"name": ["Piața Mare", "Piața Mare"]}, geometry=[big, small],
    ...                           index=["way/1", "way/2"], crs="EPSG:4326")
    >>> find_space(spaces, "piața mare", city=get_city("brasov"))
    'way/1'
    """
    if query in spaces.index:
        return query
    names = spaces["name"].astype("string").str.casefold()
    hits = spaces.index[(names == query.casefold()).fillna(False).to_numpy(dtype=bool)]
    if len(hits) == 0:
        raise ValidationError(f"{city.name_en}: no public space with uid or name {query!r}")
    if len(hits) == 1:
        return str(hits[0])
    return str(spaces.loc[hits].to_crs(city.crs).area.idxmax())
