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
    from geo_protect.assess.merge import MergeReport
    from geo_protect.assess.questionnaire import CityAssessment
    from geo_protect.assess.scores import Explanation

__all__ = [
    "CityOutcome",
    "analyse",
    "assess",
    "assessment_path",
    "compare_cities",
    "draw_maps",
    "evaluate",
    "explain",
    "ingest",
    "load_city_data",
    "load_outcome",
    "prefill_city",
    "read_assessors_work",
    "reassess",
    "run_city",
    "store_scores",
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
    kept: MergeReport | None = None
    kept_from: Path | None = None

    @property
    def has_spaces(self) -> bool:
        """True when the city has public spaces to analyse."""
        spaces = self.layers.get("public_space")
        return spaces is not None and not spaces.empty


def load_city_data(store: Store, city: City) -> CityData:
    """The source layers and ingest report of a city, read from a store.

    The layers come from one :meth:`~geo_protect.store.base.Store.read_layers` call: one
    version of the city, even while another process rewrites it.
    """
    layers = store.read_layers(city.slug, SOURCE_LAYERS)
    return CityData(city.slug, layers, store.report(city.slug))


def load_outcome(store: Store, city: City) -> CityOutcome:
    """What the store holds for a city (every stored layer and the ingest report)."""
    outcome = CityOutcome(city)
    if city.slug in store.cities():
        outcome.report = store.report(city.slug)
        outcome.layers = store.read_layers(city.slug)  # one consistent read of every layer
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
    from the evidence (approach speeds, crowd capacity, nearby POIs). Sites of the file
    that are no longer in the data are not scored (they stay in the file).

    Parameters
    ----------
    store : Store
        The store to read the city from and write the scores to.
    city : City
        The city.
    data : CityData, optional
        The city's source layers (read from the store by default).
    space_metric : GeoDataFrame, optional
        The ``space_metric`` layer (read from the store by default).
    assessment_file : Path, optional
        An assessors' file to score instead of the pre-fill.
    progress : callable, optional
        Called with a short message per step.

    Returns
    -------
    tuple
        The :class:`~geo_protect.assess.questionnaire.CityAssessment` and the scored layer.
    """
    from geo_protect.assess.files import read_assessment

    data = data or load_city_data(store, city)
    if assessment_file is not None:
        progress(f"reading assessments from {assessment_file.name}")
        assessment = read_assessment(assessment_file)
    else:
        assessment = prefill_city(
            store, city, data=data, space_metric=space_metric, progress=progress
        )
    scores = store_scores(store, city, assessment, data["public_space"], progress=progress)
    return assessment, scores


def prefill_city(
    store: Store,
    city: City,
    *,
    data: CityData,
    space_metric: gpd.GeoDataFrame | None = None,
    progress: Progress = _quiet,
) -> CityAssessment:
    """Draft assessments of a city pre-filled from its evidence (nothing written).

    ``space_metric`` is read from the store when not given.

    Raises
    ------
    MissingDataError
        When no analysis is stored for the city.
    """
    from geo_protect.assess.evidence import prefill

    if space_metric is None:
        if "space_metric" not in store.layers(city.slug):
            raise MissingDataError(
                f"{city.name_en}: no analysis stored; run `geo-protect analyse {city.slug}` first"
            )
        space_metric = store.read_layer(city.slug, "space_metric")
    progress("pre-filling assessments from the evidence")
    return prefill(
        data["public_space"],
        city=city.slug,
        crs=city.crs,
        space_metric=space_metric,
        pois=data["poi"],
        barriers=data["barrier"],
        surveillance=data["surveillance"],
    )


def store_scores(
    store: Store,
    city: City,
    assessment: CityAssessment,
    spaces: gpd.GeoDataFrame,
    *,
    progress: Progress = _quiet,
) -> gpd.GeoDataFrame:
    """Score the sites of ``assessment`` that are in ``spaces`` (the ``public_space``
    layer) and store them as the ``assessment`` layer; returns the layer."""
    from geo_protect.assess.scores import score

    present = set(spaces.index.astype(str))
    scored = assessment.model_copy(
        update={"sites": [s for s in assessment.sites if s.space_uid in present]}
    )
    if len(scored.sites) < len(assessment.sites):
        gone = [s.space_uid for s in assessment.sites if s.space_uid not in present]
        progress(f"not scored (no longer in the data): {', '.join(gone)}")
    scores = score(scored, spaces)
    progress("writing the scores")
    store.write_layers(city.slug, {"assessment": scores})
    return scores


def assessment_path(city: City, out_dir: Path) -> Path:
    """The assessors' file of a city: ``out_dir/assessments/<city>.yaml``."""
    return out_dir / "assessments" / f"{city.slug}.yaml"


def explain(store: Store, city: City, space: str, threat: str) -> Explanation:
    """Explain the *stored* score of one space and threat (reads only, writes nothing).

    The explanation is rebuilt from the stored ``assessment`` layer: the ratings that were
    scored, their evidence and every override (who, when, why, previous → new value).

    Parameters
    ----------
    store : Store
        The store holding the city's ``public_space`` and ``assessment`` layers.
    city : City
        The city.
    space : str
        A space uid or name (see :func:`geo_protect.citydata.find_space`).
    threat : str
        The threat type (e.g. ``VEHICLE_RAMMING``).

    Raises
    ------
    MissingDataError
        When the city has no stored assessment.
    ValidationError
        When the space or its scenario of ``threat`` is unknown.
    """
    from geo_protect.assess.scores import assessment_from_layer, why
    from geo_protect.citydata import find_space

    if "assessment" not in store.layers(city.slug):
        raise MissingDataError(
            f"{city.name_en}: no assessment stored; run `geo-protect assess {city.slug}` first"
        )
    uid = find_space(store.read_layer(city.slug, "public_space"), space, city=city)
    stored = assessment_from_layer(store.read_layer(city.slug, "assessment"), city=city.slug)
    return why(stored, uid, threat)


def read_assessors_work(city: City, out_dir: Path) -> CityAssessment | None:
    """The assessors' file ``out_dir/assessments/<city>.yaml``, read and validated (None if absent).

    Raises
    ------
    ValidationError
        When the file no longer validates, naming the file and the field (file untouched).
    """
    from geo_protect.assess.files import read_assessment

    path = assessment_path(city, out_dir)
    return read_assessment(path) if path.exists() else None


def reassess(
    store: Store,
    city: City,
    *,
    data: CityData,
    existing: CityAssessment | None,
    space_metric: gpd.GeoDataFrame | None = None,
    progress: Progress = _quiet,
) -> tuple[CityAssessment, gpd.GeoDataFrame, MergeReport | None]:
    """Pre-fill a city again, keeping the assessors' work, and store the merged scores.

    The fresh pre-fill is merged into ``existing``
    (:func:`~geo_protect.assess.merge.merge_prefill`: overrides and answers kept, fresh
    evidence elsewhere); the merged assessment is scored and stored.

    Returns
    -------
    tuple
        The merged assessment, the stored ``assessment`` layer and what was kept (None
        without ``existing``).
    """
    from geo_protect.assess.files import merge_prefill

    fresh = prefill_city(store, city, data=data, space_metric=space_metric, progress=progress)
    assessment, kept = (fresh, None) if existing is None else merge_prefill(existing, fresh)
    scores = store_scores(store, city, assessment, data["public_space"], progress=progress)
    return assessment, scores, kept


def run_city(
    store: Store, city: City, out_dir: Path, *, progress: Progress = _quiet
) -> CityOutcome:
    """The main job for one city: ingest, then (when it has public spaces) analyse,
    assess and write the assessors' files. Each step is stored as it completes.

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
    assessment, scores, outcome.kept = reassess(
        store,
        city,
        data=data,
        existing=existing,
        space_metric=results["space_metric"],
        progress=progress,
    )
    outcome.kept_from = assessment_path(city, out_dir) if existing is not None else None
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
    """The assessment for the field team and a printable report per scored site.

    Writes ``out_dir/assessments/<city>.yaml`` and ``out_dir/sites/<city>/*.html``;
    both hold vulnerability information and are meant for the assessors only. Every file
    is replaced atomically (written in the same folder, fsync-ed, moved with
    :func:`os.replace`): a crash mid-write leaves the previous files intact.

    Parameters
    ----------
    city : City
        The city.
    assessment : CityAssessment
        The whole assessment (sites no longer in the data included: they stay in the file).
    scores : GeoDataFrame
        The city's scored ``assessment`` layer; only its sites get a report.
    out_dir : Path
        The maps folder.

    Returns
    -------
    tuple
        The assessment file and the site reports.
    """
    import tempfile

    from geo_protect.assess.files import write_assessment
    from geo_protect.atomic import replace_files
    from geo_protect.outputs.site_reports import site_reports

    draft = write_assessment(assessment, assessment_path(city, out_dir))
    scored = set(scores["space_uid"].astype(str))
    reported = assessment.model_copy(
        update={"sites": [s for s in assessment.sites if s.space_uid in scored]}
    )
    folder = out_dir / "sites" / city.slug
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{city.slug}.", dir=folder.parent) as tmp:
        written = site_reports(reported, scores, Path(tmp), city_label=city.label)
        targets = {p: folder / p.name for p in written}
        replace_files(targets)
    return draft, list(targets.values())


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
