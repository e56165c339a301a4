"""The steps of the main job that are not assessment: ingest, analyse, run, compare, draw."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

import geopandas as gpd

from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.pipeline.assessing import assess_city, draft_assessment, read_assessors_work
from geo_protect.pipeline.store_io import CityOutcome, Progress, _quiet, load_city_data
from geo_protect.store.audit import Actor
from geo_protect.store.base import Store

__all__ = ["analyse", "compare_cities", "draw_maps", "evaluate", "ingest", "run_city"]


def ingest(
    store: Store,
    city: City,
    *,
    source: Literal["local", "overpass"] = "local",
    spaces: Path | None = None,
    overpass_url: str | None = None,
    timeout: float | None = None,
    progress: Progress = _quiet,
) -> CityData:
    """Ingest one city and replace it in the store (atomically)."""
    from geo_protect.osm.ingest import DEFAULT_OVERPASS_URL, DEFAULT_TIMEOUT, ingest_city

    data = ingest_city(
        city,
        source=source,
        spaces=spaces,
        progress=progress,
        overpass_url=overpass_url or DEFAULT_OVERPASS_URL,
        timeout=timeout or DEFAULT_TIMEOUT,
    )
    progress("writing to the store")
    store.replace_city(city.slug, data.layers, data.report)
    return data


def analyse(
    store: Store, city: City, *, data: CityData | None = None, progress: Progress = _quiet
) -> dict[str, gpd.GeoDataFrame]:
    """Entry points, crowd capacity and vehicle approach speeds of a city, stored.

    Raises
    ------
    MissingDataError
        When the city has no public spaces (nothing to analyse).
    """
    from geo_protect.analysis.city import analyse_city

    data = data or load_city_data(store, city)
    progress("analysing entries, crowd capacity and approach speeds")
    results = analyse_city(city, data)
    progress("writing the analysis layers")
    store.write_layers(city.slug, results)
    return results


def run_city(
    store: Store,
    city: City,
    out_dir: Path,
    *,
    actor: Actor | None = None,
    progress: Progress = _quiet,
) -> CityOutcome:
    """The main job for one city: ingest, then (when it has public spaces) analyse,
    assess and write the assessors' files. Each step is stored as it completes; the
    scores are written by ``actor`` (the audit trail; required by the PostGIS store).

    The assessors' file is never discarded: it is read first (one that no longer
    validates stops this city before anything is written), the fresh pre-fill is merged
    into it (:func:`reassess`), and it is rewritten atomically; ``outcome.kept`` and
    ``outcome.kept_from`` say what was kept from where.

    Raises
    ------
    ValidationError
        When the existing assessors' file does not validate (left untouched).
    """
    outcome = CityOutcome(city)
    existing = read_assessors_work(city, out_dir)
    data = ingest(store, city, progress=progress)
    outcome.report = data.report
    outcome.layers = dict(data.layers)
    if data["public_space"].empty:
        outcome.notes.append(f"{city.name_en}: no public spaces in the offline data")
        return outcome
    results = analyse(store, city, data=data, progress=progress)
    outcome.layers.update(results)
    assessed = assess_city(
        store,
        city,
        out_dir,
        data=data,
        existing=existing,
        space_metric=results["space_metric"],
        analysis=results,
        actor=actor,
        progress=progress,
    )
    outcome.kept = assessed.kept
    outcome.kept_from = assessed.draft if assessed.kept is not None else None
    outcome.layers["assessment"] = assessed.scores
    return outcome


def evaluate(city: City, data: CityData | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Every layer of a city computed in memory, without a store.

    Ingests the city (unless ``data`` is given), analyses it and scores its spaces from
    the evidence: the source layers plus ``entry_point``, ``approach``, ``standoff``,
    ``space_metric`` and ``assessment``. For notebooks, benchmarks and what-if runs.

    Raises
    ------
    MissingDataError
        When the city has no public spaces.
    """
    from geo_protect.analysis.city import analyse_city
    from geo_protect.assess.scores import score
    from geo_protect.osm.ingest import ingest_city

    data = data or ingest_city(city)
    layers = dict(data.layers)
    layers.update(analyse_city(city, data))
    assessment = draft_assessment(
        city, data, layers["space_metric"], standoff=layers.get("standoff")
    )
    layers["assessment"] = score(assessment, data["public_space"])
    return layers


def compare_cities(store: Store, cities: Iterable[City], out_dir: Path) -> Path:
    """Write the cross-city hotspot comparison; returns its HTML report."""
    from geo_protect.outputs.comparison import compare, results_from_store

    cities = list(cities)
    results = results_from_store(
        store, [c.slug for c in cities], labels={c.slug: c.label for c in cities}
    )
    compare(results, out_dir)
    return out_dir / "comparison.html"


def draw_maps(
    outcomes: Mapping[str, CityOutcome],
    out_dir: Path,
    *,
    tile_url: str | None = None,
    tile_attribution: str | None = None,
    progress: Progress = _quiet,
) -> Path:
    """One interactive map per city with data, and an index page; returns the index.

    A city with public spaces gets a risk map; one without spaces but with POIs, cameras
    or barriers gets a context map of what exists, saying that no risk is computed.
    """
    from geo_protect.outputs.maps.city_map import write_city_map
    from geo_protect.outputs.maps.context_map import has_context, write_context_map
    from geo_protect.outputs.maps.index_page import summarise, write_index

    summaries = []
    for outcome in outcomes.values():
        city = outcome.city
        if outcome.has_spaces:
            progress(f"{city.name_en}: drawing the map")
            path = write_city_map(
                city, outcome.layers, out_dir, tile_url=tile_url, tile_attribution=tile_attribution
            )
            summaries.append(summarise(city, outcome.layers, map_file=path.name))
        elif has_context(outcome.layers):
            progress(f"{city.name_en}: drawing the map of what exists (no public spaces)")
            path = write_context_map(
                city, outcome.layers, out_dir, tile_url=tile_url, tile_attribution=tile_attribution
            )
            missing = outcome.report.missing or outcome.notes
            summaries.append(summarise(city, outcome.layers, map_file=path.name, missing=missing))
        else:
            missing = outcome.report.missing or outcome.notes
            summaries.append(summarise(city, outcome.layers, missing=missing))
    return write_index(summaries, out_dir)
