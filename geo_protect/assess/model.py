"""The assessment records: sites, their measures and one scenario per threat type.

An assessment records, per public space (a *site*): its description (answers to the
questionnaire's site questions), its existing security measures (pre-filled from OSM
barriers and surveillance, editable) and one *scenario* per VAT threat type with four
1–5 ratings (attractiveness, vulnerability, likelihood, consequence), a rationale, the
assessors and a date. Every pre-filled rating carries its :class:`Evidence`; an assessor's
change is an :class:`Override` kept with the rating.

The questionnaire these records are validated against, :func:`validate` and
:func:`override` are in :mod:`geo_protect.assess.questionnaire`, which re-exports this module.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from geo_protect.errors import ValidationError

__all__ = [
    "PREFILLED_ANSWERS",
    "RATINGS",
    "CityAssessment",
    "Evidence",
    "Measure",
    "Override",
    "Rating",
    "RatingName",
    "Scenario",
    "SiteAssessment",
]

#: The four ratings of a scenario, in questionnaire order.
RATINGS: tuple[str, ...] = ("attractiveness", "vulnerability", "likelihood", "consequence")

#: Site questions that :func:`geo_protect.assess.evidence.prefill` answers from the data.
PREFILLED_ANSWERS: tuple[str, ...] = ("type",)

RatingName = Literal["attractiveness", "vulnerability", "likelihood", "consequence"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Evidence(_Strict):
    """Why a rating was pre-filled: the rule that fired and its inputs."""

    value: int
    rule: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    table: str | None = None


class Override(_Strict):
    """An assessor's change of a rating, kept forever with the rating."""

    value: int
    previous: int | None
    by: str = Field(min_length=1)
    at: dt.date
    reason: str = Field(min_length=1)


class Rating(_Strict):
    """One rating of a scenario: its effective value, evidence and override history.

    ``value`` is the last override's value if any, else the evidence's value; a value
    without evidence was entered directly by the assessors.
    """

    value: int | None = None
    evidence: Evidence | None = None
    overrides: list[Override] = Field(default_factory=list)

    @model_validator(mode="after")
    def _value_is_explained(self) -> Rating:
        if self.overrides and self.value != self.overrides[-1].value:
            raise ValueError(
                f"value {self.value} differs from the last override ({self.overrides[-1].value})"
            )
        if not self.overrides and self.evidence is not None and self.value != self.evidence.value:
            raise ValueError(
                f"value {self.value} differs from the pre-filled value {self.evidence.value} "
                "without a recorded override"
            )
        return self


class Measure(_Strict):
    """An existing security measure (VAT step 2): natural or emplaced."""

    category: Literal["natural", "emplaced"]
    kind: str
    description: str = ""
    source: Literal["osm", "assessor"] = "assessor"
    layer: str | None = None
    uid: str | None = None
    active: bool = True


class Scenario(_Strict):
    """The scenario of one threat type at one site, with its ratings (VAT steps 3–4)."""

    threat: str
    narrative: str = ""
    attractiveness: Rating = Field(default_factory=Rating)
    vulnerability: Rating = Field(default_factory=Rating)
    likelihood: Rating = Field(default_factory=Rating)
    consequence: Rating = Field(default_factory=Rating)
    rationale: str = ""
    assessors: list[str] = Field(default_factory=list)
    date: dt.date | None = None

    def rating(self, name: str) -> Rating:
        """The rating called ``name`` (one of :data:`RATINGS`)."""
        if name not in RATINGS:
            raise ValidationError(f"threat {self.threat!r}: unknown rating {name!r}")
        value: Rating = getattr(self, name)
        return value

    def with_derived_likelihood(self) -> Scenario:
        """Recompute the derived likelihood after A or V changed (assessor values are kept)."""
        lik = self.likelihood
        if lik.evidence is None and lik.value is not None:
            return self  # entered directly by the assessors
        a, v = self.attractiveness.value, self.vulnerability.value
        if a is None or v is None:
            new = Rating(overrides=lik.overrides, value=lik.value if lik.overrides else None)
        else:
            value = math.floor((a + v) / 2 + 0.5)
            ev = Evidence(
                value=value,
                rule=f"L = round_half_up((A + V) / 2) = round_half_up(({a} + {v}) / 2) = {value}",
                inputs={"attractiveness": a, "vulnerability": v},
                table=None,
            )
            new = Rating(
                value=lik.overrides[-1].value if lik.overrides else value,
                evidence=ev,
                overrides=lik.overrides,
            )
        return self.model_copy(update={"likelihood": new})


class SiteAssessment(_Strict):
    """The assessment of one public space."""

    space_uid: str
    name: str = ""
    status: Literal["draft", "final"] = "draft"
    location: tuple[float, float] | None = None  # representative point, (lon, lat) WGS84
    site: dict[str, Any] = Field(default_factory=dict)
    measures: list[Measure] = Field(default_factory=list)
    scenarios: list[Scenario] = Field(default_factory=list)

    def scenario(self, threat: str) -> Scenario:
        """The scenario of ``threat``."""
        for s in self.scenarios:
            if s.threat == threat:
                return s
        known = ", ".join(s.threat for s in self.scenarios)
        raise ValidationError(f"site {self.space_uid}: no scenario for threat {threat!r} ({known})")


class CityAssessment(_Strict):
    """All site assessments of one city, against one questionnaire version."""

    city: str
    questionnaire_version: str
    reference_version: str | None = None
    sites: list[SiteAssessment] = Field(default_factory=list)

    def site(self, space_uid: str) -> SiteAssessment:
        """The assessment of one space."""
        for s in self.sites:
            if s.space_uid == space_uid:
                return s
        raise ValidationError(f"city {self.city}: no assessment of site {space_uid!r}")
