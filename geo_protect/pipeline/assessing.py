"""Assessment steps of the main job: pre-fill, keep the assessors' work, score, explain, write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd

from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.errors import MissingDataError
from geo_protect.pipeline.store_io import Progress, _quiet, load_city_data
from geo_protect.store.audit import Actor
from geo_protect.store.base import Store

if TYPE_CHECKING:
    from geo_protect.assess.merge import MergeReport
    from geo_protect.assess.questionnaire import CityAssessment
    from geo_protect.assess.scores import Explanation

__all__ = [
    "AssessedCity",
    "assess",
    "assess_city",
    "assessment_path",
    "draft_assessment",
    "explain",
    "prefill_city",
    "read_assessors_work",
    "reassess",
    "store_scores",
    "write_assessment_files",
]


def assess(
    store: Store,
    city: City,
    *,
    data: CityData | None = None,
    space_metric: gpd.GeoDataFrame | None = None,
    assessment_file: Path | None = None,
    actor: Actor | None = None,
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
    actor : Actor, optional
        Who writes the scores (the audit trail; required by the PostGIS store).
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
        from geo_protect.assess.consequence import apply_peak_answers

        assessment = apply_peak_answers(read_assessment(assessment_file))
    else:
        assessment = prefill_city(
            store, city, data=data, space_metric=space_metric, progress=progress
        )
    spaces = data["public_space"]
    scores = store_scores(store, city, assessment, spaces, actor=actor, progress=progress)
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
    if space_metric is None:
        if "space_metric" not in store.layers(city.slug):
            raise MissingDataError(
                f"{city.name_en}: no analysis stored; run `geo-protect analyse {city.slug}` first"
            )
        space_metric = store.read_layer(city.slug, "space_metric")
    stored = "standoff" in store.layers(city.slug)
    standoff = store.read_layer(city.slug, "standoff") if stored else None
    progress("pre-filling assessments from the evidence")
    return draft_assessment(city, data, space_metric, standoff=standoff)


def draft_assessment(
    city: City,
    data: CityData,
    space_metric: gpd.GeoDataFrame,
    *,
    standoff: gpd.GeoDataFrame | None = None,
) -> CityAssessment:
    """The evidence pre-fill of a city's spaces (pure: reads and writes nothing).

    Parameters
    ----------
    city : City
        The city (its slug and metric CRS).
    data : CityData
        Its source layers.
    space_metric : GeoDataFrame
        Its ``space_metric`` layer.
    standoff : GeoDataFrame, optional
        Its ``standoff`` layer (VBIED); computed from ``data`` when not given.

    Returns
    -------
    CityAssessment
        Draft assessments (:func:`geo_protect.assess.evidence.prefill`).
    """
    from geo_protect.analysis.standoff import city_standoff
    from geo_protect.assess.evidence import prefill_layers

    if standoff is None:
        standoff = city_standoff(data, space_metric, crs=city.crs)
    return prefill_layers(city, data, space_metric, standoff)


def store_scores(
    store: Store,
    city: City,
    assessment: CityAssessment,
    spaces: gpd.GeoDataFrame,
    *,
    actor: Actor | None = None,
    progress: Progress = _quiet,
) -> gpd.GeoDataFrame:
    """Score the sites of ``assessment`` that are in ``spaces`` (the ``public_space``
    layer) and store them as the ``assessment`` layer, written by ``actor`` (the audit
    trail; required by the PostGIS store); returns the layer."""
    from geo_protect.assess.scores import score

    present = set(spaces.index.astype(str))
    scored = _sites_in(assessment, present)
    if "space_metric" in store.layers(city.slug):  # labels of unnamed spaces
        labels = store.read_layer(city.slug, "space_metric").get("label")
        if labels is not None:
            spaces = spaces.assign(label=labels.reindex(spaces.index).to_numpy())
    if len(scored.sites) < len(assessment.sites):
        gone = [s.space_uid for s in assessment.sites if s.space_uid not in present]
        progress(f"not scored (no longer in the data): {', '.join(gone)}")
    scores = score(scored, spaces)
    progress("writing the scores")
    store.write_layers(city.slug, {"assessment": scores}, actor=actor)
    return scores


def _sites_in(assessment: CityAssessment, uids: set[str]) -> CityAssessment:
    """``assessment`` restricted to the sites whose space uid is in ``uids``."""
    return assessment.model_copy(
        update={"sites": [s for s in assessment.sites if s.space_uid in uids]}
    )


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
    layers = store.read_layers(city.slug, ["public_space", "assessment"])  # one snapshot
    uid = find_space(layers["public_space"], space, city=city)
    stored = layers["assessment"]
    label = stored.loc[stored["space_uid"] == uid].get("label", pd.Series(dtype="string"))
    text = "" if label.empty or pd.isna(label.iloc[0]) else str(label.iloc[0])
    return why(assessment_from_layer(stored, city=city.slug), uid, threat, label=text)


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
    actor: Actor | None = None,
    progress: Progress = _quiet,
) -> tuple[CityAssessment, gpd.GeoDataFrame, MergeReport | None]:
    """Pre-fill a city again, keeping the assessors' work, and store the merged scores
    (written by ``actor``, see :func:`store_scores`).

    The fresh pre-fill is merged into ``existing``
    (:func:`~geo_protect.assess.merge.merge_prefill`: overrides and answers kept, fresh
    evidence elsewhere); the merged assessment is scored and stored.

    Returns
    -------
    tuple
        The merged assessment, the stored ``assessment`` layer and what was kept (None
        without ``existing``).
    """
    from geo_protect.assess.consequence import apply_peak_answers
    from geo_protect.assess.merge import merge_prefill

    fresh = prefill_city(store, city, data=data, space_metric=space_metric, progress=progress)
    assessment, kept = (fresh, None) if existing is None else merge_prefill(existing, fresh)
    assessment = apply_peak_answers(assessment)  # the assessors' peak estimates
    spaces = data["public_space"]
    scores = store_scores(store, city, assessment, spaces, actor=actor, progress=progress)
    return assessment, scores, kept


@dataclass
class AssessedCity:
    """What :func:`assess_city` scored, kept and wrote."""

    assessment: CityAssessment
    scores: gpd.GeoDataFrame
    kept: MergeReport | None  # None: no assessors' file was merged
    draft: Path  # the assessors' file
    reports: list[Path]  # the printable site reports


def assess_city(
    store: Store,
    city: City,
    out_dir: Path,
    *,
    data: CityData | None = None,
    existing: CityAssessment | None = None,
    assessment_file: Path | None = None,
    space_metric: gpd.GeoDataFrame | None = None,
    analysis: Mapping[str, gpd.GeoDataFrame] | None = None,
    actor: Actor | None = None,
    progress: Progress = _quiet,
) -> AssessedCity:
    """Score a city, store the scores and write the assessors' file and site reports.

    With ``assessment_file`` the ratings come from it (:func:`assess`). Otherwise the
    city is pre-filled again and merged into the assessors' file of ``out_dir``
    (``existing``, read from :func:`assessment_path` when not given): their overrides and
    answers are kept (:func:`reassess`).

    Parameters
    ----------
    store : Store
        The store to read the city from and write the scores to.
    city : City
        The city.
    out_dir : Path
        The maps folder (``assessments/`` and ``sites/`` are written below it).
    data : CityData, optional
        The city's source layers (read from the store by default).
    existing : CityAssessment, optional
        The assessors' file, already read (read here by default).
    assessment_file : Path, optional
        An assessors' file to score instead of the pre-fill.
    space_metric : GeoDataFrame, optional
        The ``space_metric`` layer (read from the store by default).
    analysis : mapping of str to GeoDataFrame, optional
        The analysis layers drawn on the site plans (``entry_point``, ``approach``,
        ``standoff``); the stored ones by default.
    actor : Actor, optional
        Who writes the scores (the audit trail; required by the PostGIS store).
    progress : callable, optional
        Called with a short message per step.

    Raises
    ------
    ValidationError
        When an assessors' file does not validate (it is left untouched).
    MissingDataError
        When no analysis is stored for the city.
    """
    data = data or load_city_data(store, city)
    if analysis is None:
        stored = set(store.layers(city.slug))
        wanted = [n for n in ("entry_point", "approach", "standoff") if n in stored]
        analysis = store.read_layers(city.slug, wanted) if wanted else {}
    kept: MergeReport | None = None
    if assessment_file is not None:
        assessment, scores = assess(
            store, city, data=data, assessment_file=assessment_file, actor=actor, progress=progress
        )
    else:
        existing = existing or read_assessors_work(city, out_dir)
        assessment, scores, kept = reassess(
            store,
            city,
            data=data,
            existing=existing,
            space_metric=space_metric,
            actor=actor,
            progress=progress,
        )
    progress("writing the assessment file and site reports")
    draft, reports = write_assessment_files(
        city, assessment, scores, out_dir, layers={**data.layers, **analysis}
    )
    return AssessedCity(assessment, scores, kept, draft, reports)


def write_assessment_files(
    city: City,
    assessment: CityAssessment,
    scores: gpd.GeoDataFrame,
    out_dir: Path,
    *,
    layers: Mapping[str, gpd.GeoDataFrame] | None = None,
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
    layers : mapping of str to GeoDataFrame, optional
        The city's layers: each report then shows its site plan.

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
    reported = _sites_in(assessment, set(scores["space_uid"].astype(str)))
    folder = out_dir / "sites" / city.slug
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{city.slug}.", dir=folder.parent) as tmp:
        written = site_reports(
            reported, scores, Path(tmp), city_label=city.label, layers=layers, crs=city.crs
        )
        targets = {p: folder / p.name for p in written}
        replace_files(targets)
    return draft, list(targets.values())
