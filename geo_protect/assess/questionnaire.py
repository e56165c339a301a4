"""Vulnerability assessments of public spaces, in the style of the EU VAT (domain brief §1.3).

The records themselves are in :mod:`geo_protect.assess.model` (re-exported here). An
assessment records, per public space (a *site*): its description (answers to the
questionnaire's site questions), its existing security measures (pre-filled from OSM
barriers and surveillance, editable) and one *scenario* per VAT threat type with four
1–5 ratings (attractiveness, vulnerability, likelihood, consequence), a rationale, the
assessors and a date.

The questionnaire is data (``data/assessment/questionnaire-v1.yaml``): threat types,
questions, scales and which answers are required. Assessments record the questionnaire
version they were filled against and are validated against it by :func:`validate`.

Ratings can be pre-filled from evidence by the vectorised rules of
:mod:`geo_protect.assess.evidence` (approach speed, crowd capacity, nearby POIs; likelihood
derived as ``round_half_up((A + V) / 2)``, brief §1.5).

Every pre-filled value carries its :class:`Evidence` (inputs and the rule that fired); an
assessor changes it only through :func:`override`, which records who, when and why.
Assessments round-trip through YAML, JSON and CSV (one row per site × threat) with
:func:`~geo_protect.assess.files.write_assessment` /
:func:`~geo_protect.assess.files.read_assessment`; reading validates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import Field, model_validator

from geo_protect.assess.model import (
    PREFILLED_ANSWERS,
    RATINGS,
    CityAssessment,
    Evidence,
    Measure,
    Override,
    Rating,
    RatingName,
    Scenario,
    SiteAssessment,
    _Strict,
)
from geo_protect.errors import ConfigError, ValidationError
from geo_protect.reference import data_dir as active_data_dir

__all__ = [
    "PREFILLED_ANSWERS",
    "QUESTIONNAIRE_FILE",
    "RATINGS",
    "CityAssessment",
    "Evidence",
    "Measure",
    "Override",
    "Questionnaire",
    "Rating",
    "Scenario",
    "SiteAssessment",
    "load_questionnaire",
    "override",
    "validate",
]

#: Questionnaire used when none is given (in ``<data_dir>/assessment/``).
QUESTIONNAIRE_FILE = "questionnaire-v1.yaml"


# --------------------------------------------------------------------------- questionnaire


class Scale(_Strict):
    """An integer rating scale with a label per value."""

    min: int
    max: int
    labels: dict[int, str] = Field(default_factory=dict)


class ThreatSpec(_Strict):
    """One threat type of the questionnaire."""

    code: str
    label: str
    description: str = ""


class SiteQuestion(_Strict):
    """A question of the site description (VAT step 1)."""

    id: str
    text: str
    kind: Literal["choice", "text", "integer"]
    required: bool = False
    choices: list[str] | None = None


class RatingQuestion(_Strict):
    """A rating asked for every scenario."""

    id: RatingName
    text: str
    scale: str
    required: bool = True


class FieldQuestion(_Strict):
    """A free field of every scenario (narrative, rationale, assessors, date)."""

    id: Literal["narrative", "rationale", "assessors", "date"]
    text: str
    required: bool = True


class ScenarioSpec(_Strict):
    """What a scenario asks: its ratings and its fields."""

    ratings: list[RatingQuestion]
    fields: list[FieldQuestion]


class Questionnaire(_Strict):
    """A versioned questionnaire (see ``data/assessment/questionnaire-v1.yaml``)."""

    version: str
    title: str = ""
    source: str = ""
    scales: dict[str, Scale]
    threats: list[ThreatSpec]
    site_questions: list[SiteQuestion]
    measures: dict[str, Any] = Field(default_factory=dict)
    scenario: ScenarioSpec

    @model_validator(mode="after")
    def _consistent(self) -> Questionnaire:
        ids = [r.id for r in self.scenario.ratings]
        if sorted(ids) != sorted(RATINGS):
            raise ValueError(f"scenario.ratings must be exactly {', '.join(RATINGS)}")
        for r in self.scenario.ratings:
            if r.scale not in self.scales:
                raise ValueError(f"rating {r.id!r} uses unknown scale {r.scale!r}")
        codes = [t.code for t in self.threats]
        if len(set(codes)) != len(codes):
            raise ValueError("threat codes must be unique")
        return self

    @property
    def threat_codes(self) -> list[str]:
        """Threat codes in questionnaire order."""
        return [t.code for t in self.threats]

    def scale_of(self, rating: str) -> Scale:
        """The scale of one rating."""
        spec = next(r for r in self.scenario.ratings if r.id == rating)
        return self.scales[spec.scale]


def load_questionnaire(path: Path | None = None, *, data_dir: Path | None = None) -> Questionnaire:
    """Read and check a questionnaire YAML file.

    Parameters
    ----------
    path
        The YAML file; ``<data_dir>/assessment/questionnaire-v1.yaml`` by default.
    data_dir
        Data folder for the default path (the active one by default).

    Raises
    ------
    ConfigError
        If the file is missing, not YAML or not a valid questionnaire (naming the field).
    """
    if path is None:
        path = active_data_dir(data_dir) / "assessment" / QUESTIONNAIRE_FILE
    return _load_questionnaire(Path(path).resolve())


@cache
def _load_questionnaire(path: Path) -> Questionnaire:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: questionnaire not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return Questionnaire.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise ConfigError(f"{path}: {_pydantic_problems(exc)}") from exc


# --------------------------------------------------------------------------- validation


def validate(assessment: CityAssessment, questionnaire: Questionnaire) -> None:
    """Check an assessment against its questionnaire.

    Always checked: the questionnaire version, unknown threat types and site questions,
    duplicate sites or scenarios, answer types and choices, every rating value (current,
    pre-filled and overridden) within its scale. For sites with ``status: final`` also:
    every required site answer, a scenario for every threat type, and every required
    rating and field of each scenario.

    Raises
    ------
    ValidationError
        Naming the site, threat and field at fault, e.g. ``site way/1, threat 'DRONEX':
        unknown threat type (known: FIREARMS, ...)``.
    """
    if assessment.questionnaire_version != questionnaire.version:
        raise ValidationError(
            f"city {assessment.city}: filled against questionnaire version "
            f"{assessment.questionnaire_version!r}, validating against {questionnaire.version!r}"
        )
    known = questionnaire.threat_codes
    questions = {q.id: q for q in questionnaire.site_questions}
    seen_sites: set[str] = set()
    for site in assessment.sites:
        where = f"site {site.space_uid}"
        if site.space_uid in seen_sites:
            raise ValidationError(f"{where}: assessed twice")
        seen_sites.add(site.space_uid)
        _validate_site_answers(site, questions, where)
        seen: set[str] = set()
        for sc in site.scenarios:
            if sc.threat not in known:
                raise ValidationError(
                    f"{where}, threat {sc.threat!r}: unknown threat type "
                    f"(known: {', '.join(known)})"
                )
            if sc.threat in seen:
                raise ValidationError(f"{where}, threat {sc.threat!r}: more than one scenario")
            seen.add(sc.threat)
            _validate_scenario(sc, questionnaire, f"{where}, threat {sc.threat!r}", site.status)
        if site.status == "final":
            missing = [t for t in known if t not in seen]
            if missing:
                raise ValidationError(
                    f"{where}: missing required scenario(s) for {', '.join(missing)}"
                )


def _validate_site_answers(
    site: SiteAssessment, questions: Mapping[str, SiteQuestion], where: str
) -> None:
    for qid, answer in site.site.items():
        q = questions.get(qid)
        if q is None:
            raise ValidationError(
                f"{where}, question {qid!r}: unknown question (known: {', '.join(questions)})"
            )
        if _blank(answer):
            continue
        if q.kind == "choice" and q.choices is not None and answer not in q.choices:
            raise ValidationError(
                f"{where}, question {qid!r}: {answer!r} is not one of {', '.join(q.choices)}"
            )
        if q.kind == "integer" and (isinstance(answer, bool) or not isinstance(answer, int)):
            raise ValidationError(f"{where}, question {qid!r}: {answer!r} is not a whole number")
    if site.status == "final":
        for q in questions.values():
            if q.required and _blank(site.site.get(q.id)):
                raise ValidationError(f"{where}, question {q.id!r}: missing required answer")


def _validate_scenario(sc: Scenario, questionnaire: Questionnaire, where: str, status: str) -> None:
    for spec in questionnaire.scenario.ratings:
        scale = questionnaire.scales[spec.scale]
        r = sc.rating(spec.id)
        values = [("value", r.value)]
        if r.evidence is not None:
            values.append(("pre-filled value", r.evidence.value))
        values += [(f"override {i + 1}", o.value) for i, o in enumerate(r.overrides)]
        for label, v in values:
            if v is not None and not scale.min <= v <= scale.max:
                raise ValidationError(
                    f"{where}, {spec.id}: {label} {v} out of range {scale.min}–{scale.max}"
                )
        if status == "final" and spec.required and r.value is None:
            raise ValidationError(f"{where}, {spec.id}: missing required answer")
    if status == "final":
        for f in questionnaire.scenario.fields:
            if f.required and _blank(getattr(sc, f.id)):
                raise ValidationError(f"{where}, {f.id}: missing required answer")


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


# --------------------------------------------------------------------------- overrides


def override(
    assessment: CityAssessment,
    space_uid: str,
    threat: str,
    rating: str,
    value: int,
    *,
    by: str,
    reason: str,
    at: dt.date,
    questionnaire: Questionnaire | None = None,
) -> CityAssessment:
    """Return a copy of ``assessment`` with one rating changed by an assessor.

    The change is appended to the rating's override history (value, previous value, who,
    when, why); the derived likelihood follows a changed attractiveness or vulnerability
    unless the likelihood itself was overridden.

    Raises
    ------
    ValidationError
        Unknown site, threat or rating; a value outside the scale; no ``by`` or ``reason``.
    """
    q = questionnaire or load_questionnaire()
    if rating not in RATINGS:
        raise ValidationError(
            f"site {space_uid}, threat {threat!r}: unknown rating {rating!r} "
            f"(known: {', '.join(RATINGS)})"
        )
    out = assessment.model_copy(deep=True)
    site = out.site(space_uid)
    sc = site.scenario(threat)
    old = sc.rating(rating)
    try:
        entry = Override(value=value, previous=old.value, by=by, at=at, reason=reason)
    except pydantic.ValidationError as exc:
        raise ValidationError(
            f"site {space_uid}, threat {threat!r}, {rating}: {_pydantic_problems(exc)}"
        ) from exc
    new = Rating(value=value, evidence=old.evidence, overrides=[*old.overrides, entry])
    sc = sc.model_copy(update={rating: new})
    if rating != "likelihood":
        sc = sc.with_derived_likelihood()
    site.scenarios = [sc if s.threat == threat else s for s in site.scenarios]
    validate(out, q)
    return out


# --------------------------------------------------------------------------- helpers


def _pydantic_problems(exc: pydantic.ValidationError, raw: Any = None) -> str:
    """pydantic's errors, with ``sites.0.scenarios.2`` shown as ``site way/1, threat 'IED'``."""
    return "; ".join(f"{_loc(err['loc'], raw)}: {err['msg']}" for err in exc.errors())


def _loc(loc: Sequence[int | str], raw: Any) -> str:
    parts: list[str] = []
    node = raw
    i = 0
    while i < len(loc):
        key = loc[i]
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        if key in {"sites", "scenarios"} and isinstance(nxt, int):
            try:
                item = node[key][nxt]
                label = item["space_uid"] if key == "sites" else item["threat"]
                parts.append(f"site {label}" if key == "sites" else f"threat {label!r}")
                node = item
            except (KeyError, IndexError, TypeError):
                parts.append(f"{key}[{nxt}]")
                node = None
            i += 2
            continue
        parts.append(str(key))
        node = node.get(key) if isinstance(node, dict) else None
        i += 1
    return ", ".join(parts) or "(root)"
