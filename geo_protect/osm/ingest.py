"""Ingest: a city's OSM data (local files or Overpass) into its source layers.

Every registry source is read by the reader of its kind, the elements are pooled
(one element per uid, the first source wins), classified by the taxonomy, merged with
the city's own register of spaces if one is given, clipped to the study area and
counted. The report says what was stored, what was dropped and why, and, in plain
words, which classes the city lacks and how to get them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_protect.cities import City, Source
from geo_protect.citydata import CityData, IngestReport
from geo_protect.errors import ConfigError
from geo_protect.osm.elements import elements_frame
from geo_protect.osm.study_area import clip_to_area, study_area
from geo_protect.osm.taxonomy import classify
from geo_protect.schema import SOURCE_LAYERS, WGS84, conform
from geo_protect.settings import Settings

__all__ = [
    "DEFAULT_OVERPASS_URL",
    "DEFAULT_TIMEOUT",
    "MISSING_CLASSES",
    "ingest_city",
    "missing_notes",
    "study_area",
]

#: Class of data -> how a note names it to the user.
MISSING_CLASSES: dict[str, str] = {
    "public spaces": "public spaces (squares, pedestrian areas and streets, markets, parks)",
    "walk network": "street data for the walk network",
    "hostile-vehicle network": "street data for the hostile-vehicle network",
    "entrances": "entrances",
    "barriers": "barriers (bollards, blocks, walls, gates)",
    "POIs": "crowded-place POIs (worship, culture, transport, retail...)",
    "buildings": "building footprints",
    "surveillance": "surveillance cameras",
}

DROP_DUPLICATE = "same element already read from an earlier source"
DROP_UNCLASSIFIED = "feature of a {layer} file that no taxonomy rule puts in {layer} or any layer"

#: Defaults of :class:`~geo_protect.settings.Settings` for callers without settings.
DEFAULT_OVERPASS_URL: str = Settings.model_fields["overpass_url"].default
DEFAULT_TIMEOUT: float = Settings.model_fields["http_timeout"].default


def ingest_city(
    city: City,
    *,
    source: Literal["local", "overpass"] = "local",
    spaces: Path | None = None,
    progress: Callable[[str], None] | None = None,
    overpass_url: str = DEFAULT_OVERPASS_URL,
    timeout: float = DEFAULT_TIMEOUT,
) -> CityData:
    """Build a city's source layers from its OSM data.

    Parameters
    ----------
    city : City
        The city (from :func:`geo_protect.get_city`).
    source : {"local", "overpass"}
        ``local``: the files listed in ``data/cities.toml``; ``overpass``: fetch the
        study area's elements from an Overpass server (network needed).
    spaces : Path, optional
        The city's own register of public spaces (``.geojson``/``.gpkg``, see
        :func:`geo_protect.osm.register.read_spaces`); its spaces replace OSM spaces with
        the same uid or OSM id and add the others.
    progress : callable, optional
        Called with a short message before each step.
    overpass_url : str
        Overpass interpreter URL (``source="overpass"``).
    timeout : float
        Seconds per Overpass request.

    Returns
    -------
    CityData
        Every source layer (WGS84, conformed) with the ingest report.

    Raises
    ------
    ConfigError
        If the study area is empty (bad bbox, boundary outside it) or ``source`` unknown.
    DataSourceError
        If a source file or the boundary file is missing or unreadable.

    Examples
    --------
    >>> from geo_protect import get_city
    >>> data = ingest_city(get_city("larissa"))
    >>> print(data.report.missing[0])
    Larissa: no public spaces (squares, pedestrian areas and streets, markets, parks), street
    data for the walk network, ... or building footprints locally — run `geo-protect ingest
    larissa --source overpass` with network, or place an extract in data/osm/larissa/ and
    list it in data/cities.toml
    >>> len(data.layers["public_space"]), len(data.layers["surveillance"])
    (0, 221)
    """
    say = progress or _quiet
    report = IngestReport()
    area = study_area(city)
    if source == "local":
        frames = [_read_local(city, src, report, say) for src in city.sources]
    elif source == "overpass":
        frames = [_fetch_overpass(city, report, say, url=overpass_url, timeout=timeout)]
    else:
        raise ConfigError(f"ingest source must be 'local' or 'overpass', got {source!r}")
    elements = _pool(frames, report)

    say(f"classifying {len(elements):,} elements")
    layers = classify(elements, crs=city.crs, report=report)
    if source == "local":
        _count_unclassified(city, elements, layers, report)
    if spaces is not None:
        say(f"reading the register of spaces {spaces.name}")
        layers["public_space"] = _merge_register(layers["public_space"], spaces, city)

    say("clipping to the study area")
    layers = {name: clip_to_area(name, layers[name], area, report) for name in SOURCE_LAYERS}
    report.counts = {name: len(layers[name]) for name in SOURCE_LAYERS}
    report.missing = missing_notes(city, layers, source=source)
    return CityData(city=city.slug, layers=layers, report=report)


def missing_notes(
    city: City, layers: Mapping[str, gpd.GeoDataFrame], *, source: str = "local"
) -> list[str]:
    """One plain sentence naming every class of data the city lacks, and what to do.

    Parameters
    ----------
    city : City
        The city.
    layers : Mapping of str to GeoDataFrame
        Its ingested source layers.
    source : str
        Where they came from (``local`` or ``overpass``), for the advice given.

    Returns
    -------
    list of str
        The sentence, or nothing when no class of data is missing.

    Examples
    --------
    >>> from geo_protect import get_city
    >>> from geo_protect.schema import empty_layer
    >>> layers = {"street": empty_layer("street")}
    >>> missing_notes(get_city("larissa"), layers)[0]  # doctest: +NORMALIZE_WHITESPACE
    'Larissa: no public spaces (squares, pedestrian areas and streets, markets, parks),
    street data for the walk network, street data for the hostile-vehicle network,
    entrances, barriers (bollards, blocks, walls, gates), crowded-place POIs (worship,
    culture, transport, retail...), building footprints or surveillance cameras locally —
    run `geo-protect ingest larissa --source overpass` with network, or place an extract
    in data/osm/larissa/ and list it in data/cities.toml'
    """
    present = _present(layers)
    lacking = [what for cls, what in MISSING_CLASSES.items() if not present[cls]]
    if not lacking:
        return []
    listed = lacking[0] if len(lacking) == 1 else f"{', '.join(lacking[:-1])} or {lacking[-1]}"
    if source == "overpass":
        register = " (public spaces: `--spaces`)" if not present["public spaces"] else ""
        return [
            f"{city.name_en}: OpenStreetMap has no {listed} mapped in the study area — "
            f"add them to OpenStreetMap, or load the city's own register{register}"
        ]
    return [
        f"{city.name_en}: no {listed} locally — run `geo-protect ingest {city.slug} "
        f"--source overpass` with network, or place an extract in "
        f"data/osm/{city.slug}/ and list it in data/cities.toml"
    ]


# --------------------------------------------------------------------------- reading


def _quiet(message: str) -> None:
    """Progress sink that shows nothing."""


def _read_local(
    city: City, src: Source, report: IngestReport, say: Callable[[str], None]
) -> gpd.GeoDataFrame:
    from geo_protect.osm.readers import read_source  # readers import their libraries lazily

    path = city.path(src)
    say(f"reading {path.name}")
    elements, drops = read_source(path, src)
    report.sources.append((path.name, _data_date(elements, src.data_date)))
    for key, n in drops.items():
        layer, reason = _drop_key(key, src.layer)
        report.drop(layer, reason, n)
    return elements


def _fetch_overpass(
    city: City, report: IngestReport, say: Callable[[str], None], *, url: str, timeout: float
) -> gpd.GeoDataFrame:
    from geo_protect.osm.overpass import fetch_elements

    say(f"fetching the study area from {url}")
    elements = fetch_elements(city, url=url, timeout=timeout)
    report.sources.append(("overpass", _data_date(elements, None)))
    for key, n in dict(elements.attrs.get("drops", {})).items():
        layer, reason = _drop_key(key, None)
        report.drop(layer, reason, n)
    return elements


def _drop_key(key: str, layer: str | None) -> tuple[str, str]:
    """``"street: reason"`` -> ``("street", "reason")``; plain reasons go to the source's layer."""
    head, sep, rest = key.partition(": ")
    if sep and head in SOURCE_LAYERS:
        return head, rest
    return layer or "elements", key


def _data_date(elements: gpd.GeoDataFrame, fallback: str | None) -> str | None:
    dates = elements["data_date"].dropna() if "data_date" in elements else pd.Series([])
    return str(dates.iloc[0]) if len(dates) else fallback


def _pool(frames: list[gpd.GeoDataFrame], report: IngestReport) -> gpd.GeoDataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return elements_frame([], source="", data_date=None)
    pooled = pd.concat(frames) if len(frames) > 1 else frames[0]
    dup = pooled.index.duplicated(keep="first")
    report.drop("elements", DROP_DUPLICATE, int(dup.sum()))
    return gpd.GeoDataFrame(pooled[~dup], geometry="geometry", crs=WGS84)


def _count_unclassified(
    city: City,
    elements: gpd.GeoDataFrame,
    layers: Mapping[str, gpd.GeoDataFrame],
    report: IngestReport,
) -> None:
    """Count features of single-layer sources (GeoJSON, CSV) that the taxonomy did not keep there.

    A feature of such a file that the taxonomy put in another layer (a camera in a POI
    file goes to ``surveillance``) is kept there, so it is not counted as dropped.
    """
    for src in city.sources:
        if src.layer is None:
            continue
        uids = elements.index[(elements["source"] == city.path(src).name).to_numpy(dtype=bool)]
        elsewhere = np.zeros(len(uids), dtype=bool)
        for name, layer in layers.items():
            if name != src.layer:
                elsewhere |= uids.isin(layer.index)
        lost = ~uids.isin(layers[src.layer].index) & ~elsewhere
        report.drop(src.layer, DROP_UNCLASSIFIED.format(layer=src.layer), int(lost.sum()))


def _merge_register(osm: gpd.GeoDataFrame, path: Path, city: City) -> gpd.GeoDataFrame:
    """Register spaces replace OSM spaces with the same uid or OSM id, and add the rest."""
    from geo_protect.osm.register import read_spaces

    register = read_spaces(path, city=city)
    same_uid = osm.index.isin(register.index)
    reg_ids = register["osm_id"].dropna()
    same_id = osm["osm_id"].isin(reg_ids.to_numpy()).to_numpy(dtype=bool, na_value=False)
    typed = register.dropna(subset=["osm_type", "osm_id"])
    if len(typed):
        pairs = set(zip(typed["osm_type"], typed["osm_id"], strict=True))
        same_id &= np.array(
            [(t, i) in pairs for t, i in zip(osm["osm_type"], osm["osm_id"], strict=True)],
            dtype=bool,
        )
    kept = osm[~(same_uid | same_id)]
    merged = pd.concat([kept, register]) if len(kept) else register
    return conform("public_space", gpd.GeoDataFrame(merged, geometry="geometry", crs=WGS84))


def _present(layers: Mapping[str, gpd.GeoDataFrame]) -> dict[str, bool]:
    def n(name: str) -> int:
        layer = layers.get(name)
        return 0 if layer is None else len(layer)

    street = layers.get("street")
    walk = street is not None and bool(street["walk"].fillna(False).astype(bool).any())
    vehicle = street is not None and bool(
        street["hostile_vehicle"].fillna(False).astype(bool).any()
    )
    return {
        "public spaces": n("public_space") > 0,
        "walk network": walk,
        "hostile-vehicle network": vehicle,
        "entrances": n("entrance") > 0,
        "barriers": n("barrier") > 0,
        "POIs": n("poi") > 0,
        "buildings": n("building") > 0,
        "surveillance": n("surveillance") > 0,
    }
