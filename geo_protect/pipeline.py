"""The main job, step by step: ingest, analyse, assess, compare, draw.

Each step reads its inputs from a store and writes its results back in one
transaction, so the steps can run separately (``geo-protect analyse``) or together
(``geo-protect run``), and the service can re-run one step per edit. The functions here
only wire library calls together; the analysis lives in the modules they call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import geopandas as gpd

from geo_protect.cities import City
from geo_protect.citydata import CityData, IngestReport
from geo_protect.errors import MissingDataError
from geo_protect.schema import SOURCE_LAYERS
from geo_protect.store.base import Store

if TYPE_CHECKING:
    from geo_protect.assess.questionnaire import CityAssessment

__all__ = [
    "CityOutcome",
    "analyse",
    "assess",
    "compare_cities",
    "draw_maps",
    "evaluate",
    "ingest",
    "load_city_data",
    "load_outcome",
    "write_assessment_files",
]

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class CityOutcome:
    """What the main job produced for one city (for the summary and the maps index)."""

    city: City
    report: IngestReport = field(default_factory=IngestReport)
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def has_spaces(self) -> bool:
        """True when the city has public spaces to analyse."""
        spaces = self.layers.get("public_space")
        return spaces is not None and not spaces.empty


def load_city_data(store: Store, city: City) -> CityData:
    """The source layers and ingest report of a city, read from a store."""
    layers = {name: store.read_layer(city.slug, name) for name in SOURCE_LAYERS}
    return CityData(city.slug, layers, store.report(city.slug))


def load_outcome(store: Store, city: City) -> CityOutcome:
    """What the store holds for a city (every stored layer and the ingest report)."""
    outcome = CityOutcome(city)
    if city.slug in store.cities():
        outcome.report = store.report(city.slug)
        outcome.layers = {
            name: store.read_layer(city.slug, name) for name in store.layers(city.slug)
        }
    else:
        outcome.notes.append(f"{city.name_en}: not ingested yet")
    return outcome


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


def assess(
    store: Store,
    city: City,
    *,
    data: CityData | None = None,
    space_metric: gpd.GeoDataFrame | None = None,
    assessment_file: Path | None = None,
    progress: Progress = _quiet,
) -> tuple[CityAssessment, gpd.GeoDataFrame]:
    """Score a city's spaces per threat and store the ``assessment`` layer.

    With ``assessment_file`` (YAML, JSON or CSV filled by assessors) the ratings come
    from that file, validated against the questionnaire; otherwise they are pre-filled
    from the evidence (approach speeds, crowd capacity, nearby POIs).

    Returns
    -------
    tuple
        The :class:`~geo_protect.assess.questionnaire.CityAssessment` and the scored layer.
    """
    from geo_protect.assess.evidence import prefill
    from geo_protect.assess.files import read_assessment
    from geo_protect.assess.scores import score

    data = data or load_city_data(store, city)
    if assessment_file is not None:
        progress(f"reading assessments from {assessment_file.name}")
        assessment = read_assessment(assessment_file)
    else:
        if space_metric is None:
            if "space_metric" not in store.layers(city.slug):
                raise MissingDataError(
                    f"{city.name_en}: no analysis stored; "
                    f"run `geo-protect analyse {city.slug}` first"
                )
            space_metric = store.read_layer(city.slug, "space_metric")
        progress("pre-filling assessments from the evidence")
        assessment = prefill(
            data["public_space"],
            city=city.slug,
            crs=city.crs,
            space_metric=space_metric,
            pois=data["poi"],
            barriers=data["barrier"],
            surveillance=data["surveillance"],
        )
    scores = score(assessment, data["public_space"])
    progress("writing the scores")
    store.write_layers(city.slug, {"assessment": scores})
    return assessment, scores


def run_city(
    store: Store, city: City, out_dir: Path, *, progress: Progress = _quiet
) -> CityOutcome:
    """The main job for one city: ingest, then (when it has public spaces) analyse,
    assess and write the assessors' files. Each step is stored as it completes."""
    outcome = CityOutcome(city)
    data = ingest(store, city, progress=progress)
    outcome.report = data.report
    outcome.layers = dict(data.layers)
    if data["public_space"].empty:
        outcome.notes.append(f"{city.name_en}: no public spaces in the offline data")
        return outcome
    results = analyse(store, city, data=data, progress=progress)
    outcome.layers.update(results)
    assessment, scores = assess(
        store, city, data=data, space_metric=results["space_metric"], progress=progress
    )
    outcome.layers["assessment"] = scores
    progress("writing the assessment file and site reports")
    write_assessment_files(city, assessment, scores, out_dir)
    return outcome


def evaluate(city: City, data: CityData | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Every layer of a city computed in memory, without a store.

    Ingests the city (unless ``data`` is given), analyses it and scores its spaces from
    the evidence: the source layers plus ``entry_point``, ``approach``, ``space_metric``
    and ``assessment``. For notebooks, benchmarks and what-if runs.

    Raises
    ------
    MissingDataError
        When the city has no public spaces.
    """
    from geo_protect.analysis.city import analyse_city
    from geo_protect.assess.evidence import prefill
    from geo_protect.assess.scores import score
    from geo_protect.osm.ingest import ingest_city

    data = data or ingest_city(city)
    layers = dict(data.layers)
    layers.update(analyse_city(city, data))
    assessment = prefill(
        data["public_space"],
        city=city.slug,
        crs=city.crs,
        space_metric=layers["space_metric"],
        pois=data["poi"],
        barriers=data["barrier"],
        surveillance=data["surveillance"],
    )
    layers["assessment"] = score(assessment, data["public_space"])
    return layers


def write_assessment_files(
    city: City, assessment: CityAssessment, scores: gpd.GeoDataFrame, out_dir: Path
) -> tuple[Path, list[Path]]:
    """The draft assessment for the field team and a printable report per site.

    Writes ``out_dir/assessments/<city>.yaml`` and ``out_dir/sites/<city>/*.html``;
    both hold vulnerability information and are meant for the assessors only.
    """
    from geo_protect.assess.files import write_assessment
    from geo_protect.outputs.site_reports import site_reports

    draft = write_assessment(assessment, out_dir / "assessments" / f"{city.slug}.yaml")
    reports = site_reports(assessment, scores, out_dir / "sites" / city.slug, city_label=city.label)
    return draft, reports


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
    """One interactive map per city with data, and an index page; returns the index."""
    from geo_protect.outputs.maps.city_map import write_city_map
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
        else:
            missing = outcome.report.missing or outcome.notes
            summaries.append(summarise(city, outcome.layers, missing=missing))
    return write_index(summaries, out_dir)
