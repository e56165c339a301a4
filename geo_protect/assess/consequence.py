"""Consequence from the people exposed, the assessors' peak answer and the risk index.

* :func:`crowd_consequence` pre-fills the consequence (1–5) from the people a space is
  expected to hold at its peak: ``expected_peak_persons`` of the ``space_metric`` layer
  (by use, :func:`geo_protect.analysis.crowd.expected_occupancy`), else its peak or safe
  capacity, banded by ``prefill_bands/capacity_persons`` (brief §1.5, §3.3).
* :func:`apply_peak_answers` lets the assessors' answer to the site question
  ``peak_occupancy`` ("Estimated peak number of people present") replace the computed
  number: the consequence evidence is recomputed from the answer and says so.
* :func:`scenario_risk_index` is the continuous index that orders the spaces of one
  band: the people exposed × the kinetic energy (MJ) of the most energetic hostile-vehicle
  approach, for the threats whose vulnerability comes from the approach speeds; for the
  VBIED stand-off evidence, the people within the mandatory evacuation distance × the
  share of that distance the vehicle can close (``1 − stand-off ratio``). Its unit is the
  threat's own, so it is compared within one threat type only (as ``R_100`` percentiles).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from geo_protect.assess.bands import band_lookup, rule_bands
from geo_protect.assess.model import CityAssessment, Evidence, Rating, Scenario
from geo_protect.errors import ValidationError

__all__ = [
    "PEAK_QUESTION",
    "apply_peak_answers",
    "crowd_consequence",
    "people_bands",
    "scenario_risk_index",
]

#: The site question whose answer replaces the computed occupancy.
PEAK_QUESTION = "peak_occupancy"

#: The ``prefill_bands`` rule that bands people into a consequence rating.
_RULE = "capacity_persons"

#: Evidence columns of the people exposed, most specific first.
_PEOPLE = ("expected_peak_persons", "capacity_peak", "capacity_persons")


def people_bands(bands: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ``capacity_persons`` bands of ``prefill_bands`` (people → consequence).

    Examples
    --------
    >>> [float(x) for x in people_bands()["lower"]][:3]
    [0.0, 200.0, 800.0]
    """
    return rule_bands(_RULE, bands)


def crowd_consequence(
    space_metric: pd.DataFrame, *, bands: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Consequence from the number of people exposed in the space (1–5).

    The people exposed are ``expected_peak_persons`` (occupancy by use) when the metric
    has it, else ``capacity_peak``, else ``capacity_persons``.

    Parameters
    ----------
    space_metric : DataFrame
        Frame indexed by space uid with one of those columns (and optionally
        ``occupancy_rule``, ``capacity_persons``, ``design_density``, ``area_m2``,
        reported as inputs).
    bands : DataFrame, optional
        The ``prefill_bands`` table (rule ``capacity_persons``); the reference one by default.

    Returns
    -------
    DataFrame
        Index-aligned: ``consequence`` (Int64, NA where the number is unknown), ``rule``,
        ``people_exposed`` and the inputs.

    Examples
    --------
    >>> m = pd.DataFrame({"expected_peak_persons": [150.0, 6000.0], "capacity_persons": 9e3})
    >>> crowd_consequence(m)["consequence"].tolist()
    [1, 5]
    """
    column = next((c for c in _PEOPLE if c in space_metric.columns), None)
    if column is None:
        raise ValidationError(f"layer 'space_metric': missing column(s) {', '.join(_PEOPLE)}")
    people = space_metric[column].astype("Float64")
    rating, rule = band_lookup(people, _RULE, bands, column)
    out = pd.DataFrame(
        {"consequence": rating, "rule": rule, "people_exposed": people},
        index=space_metric.index,
    )
    for col in (*_PEOPLE, "occupancy_rule", "design_density", "area_m2"):
        if col in space_metric.columns and col not in out.columns:
            out[col] = space_metric[col]
    return out


def apply_peak_answers(
    assessment: CityAssessment, *, bands: pd.DataFrame | None = None
) -> CityAssessment:
    """The assessment with each site's ``peak_occupancy`` answer driving its consequence.

    For every site that answers ``peak_occupancy`` with a number, every pre-filled
    consequence (one with evidence) of the space's own crowd is banded again from that
    number (a VBIED's, people within the hazard distance of many spaces, is not); its evidence says
    that the assessors' estimate replaced the computed occupancy and keeps the computed
    one as an input. An assessor's override of the consequence still stands (the new
    evidence is recorded under it). Sites without an answer are unchanged.

    Parameters
    ----------
    assessment : CityAssessment
        Merged or read assessments.
    bands : DataFrame, optional
        The ``prefill_bands`` table; the reference one by default.

    Returns
    -------
    CityAssessment
        A copy (the input is not changed).
    """
    sel = people_bands(bands)
    out = assessment.model_copy(deep=True)
    for site in out.sites:
        answer = site.site.get(PEAK_QUESTION)
        if isinstance(answer, bool) or not isinstance(answer, int) or answer < 0:
            continue
        site.scenarios = [_with_answer(sc, answer, sel) for sc in site.scenarios]
    return out


def _with_answer(sc: Scenario, answer: int, sel: pd.DataFrame) -> Scenario:
    old = sc.consequence
    if old.evidence is None or "persons_mandatory" in old.evidence.inputs:
        # a VBIED's consequence counts the people of every space within the hazard
        # distance, not this space's own peak: the answer does not replace it
        return sc
    rating, rule = band_lookup(pd.Series([float(answer)]), _RULE, sel, PEAK_QUESTION)
    inputs: dict[str, Any] = dict(old.evidence.inputs)
    computed = inputs.get("computed_people_exposed", inputs.get("people_exposed"))
    inputs.update(
        {"people_exposed": answer, "peak_occupancy": answer, "computed_people_exposed": computed}
    )
    shown = f"{computed:,.0f}" if isinstance(computed, int | float) else "unknown"
    ev = Evidence(
        value=int(rating.iloc[0]),
        rule=(
            f"assessors' estimated peak number of people (site answer {PEAK_QUESTION}) "
            f"{answer:,} replaces the computed {shown}; {rule.iloc[0]}"
        ),
        inputs=inputs,
        table="prefill_bands",
    )
    value = old.overrides[-1].value if old.overrides else ev.value
    return sc.model_copy(
        update={"consequence": Rating(value=value, evidence=ev, overrides=old.overrides)}
    )


def scenario_risk_index(sc: Scenario) -> tuple[float | None, str]:
    """The risk index of one scenario and how it was computed.

    ``people exposed × E / 1 MJ``, where the people come from the consequence evidence
    (``people_exposed``: the assessors' peak answer or the computed occupancy) and ``E``
    is the vulnerability evidence's ``worst_energy_kj`` (the most energetic approach; 0
    when no vehicle can approach). None, with the reason, when either is missing (threats
    whose vulnerability is not from the approach speeds, or not pre-filled).

    Examples
    --------
    >>> c = Rating(value=5, evidence=Evidence(value=5, rule="r", inputs={"people_exposed": 6000}))
    >>> inputs = {"worst_speed_kmh": 50.0, "worst_energy_kj": 1500.0}
    >>> v = Rating(value=5, evidence=Evidence(value=5, rule="r", inputs=inputs))
    >>> scenario_risk_index(Scenario(threat="VEHICLE_RAMMING", consequence=c, vulnerability=v))[0]
    9000.0
    """
    ratio = _input(sc.vulnerability, "standoff_ratio")
    blast = _input(sc.consequence, "persons_mandatory")
    if ratio is not None and blast is not None:  # VBIED stand-off evidence
        share = 1.0 - min(max(ratio, 0.0), 1.0)
        index = blast * share
        return index, (
            f"risk index = people within the mandatory evacuation distance {blast:,.0f} × "
            f"(1 − stand-off ratio {ratio:.2f}) = {index:,.0f} (orders spaces within a band)"
        )
    people = _input(sc.consequence, "people_exposed")
    if people is None:
        return None, "risk index: no people-exposed evidence"
    ev = sc.vulnerability.evidence
    if ev is None or "worst_speed_kmh" not in ev.inputs:
        return None, "risk index: no vehicle-approach evidence for this threat"
    energy = _input(sc.vulnerability, "worst_energy_kj")
    speed = ev.inputs.get("worst_speed_kmh")
    if energy is None:
        if speed not in (0, 0.0):
            return None, "risk index: no approach energy recorded"
        energy = 0.0
    index = people * energy / 1000.0
    text = (
        f"risk index = people exposed {people:,.0f} × most energetic approach "
        f"{energy / 1000.0:.3g} MJ = {index:,.0f} (orders spaces within a band)"
    )
    return index, text


def _input(rating: Rating, name: str) -> float | None:
    if rating.evidence is None:
        return None
    value = rating.evidence.inputs.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)
