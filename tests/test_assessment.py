"""Assessment model, questionnaire validation, evidence pre-fill, overrides and import/export."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import yaml

from geo_protect import ValidationError
from geo_protect.assess.evidence import (
    crowd_consequence,
    derive_likelihood,
    existing_measures,
    poi_attractiveness,
    prefill,
    ramming_vulnerability,
)
from geo_protect.assess.files import ratings_frame, read_assessment, write_assessment
from geo_protect.assess.questionnaire import (
    CityAssessment,
    Questionnaire,
    load_questionnaire,
    override,
    validate,
)
from geo_protect.reference import table
from tests import assessment_cases as cases

DAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def questionnaire() -> Questionnaire:
    return load_questionnaire()


@pytest.fixture(scope="module")
def draft() -> CityAssessment:
    return cases.draft()


def test_questionnaire_lists_the_ten_vat_threats(questionnaire: Questionnaire) -> None:
    assert questionnaire.version == "1.0"
    assert questionnaire.threat_codes == [
        "FIREARMS", "SHARP_OBJECT", "VEHICLE_RAMMING", "IED", "PBIED",
        "VBIED", "UAV", "CHEMICAL", "BIOLOGICAL", "RADIOLOGICAL",
    ]  # fmt: skip
    assert sorted(table("threat_types")["threat"]) == sorted(questionnaire.threat_codes)
    assert questionnaire.scale_of("likelihood").max == 5


def test_ramming_vulnerability_bands() -> None:
    speeds = [0.0, 10.0, 16.0, 31.9, 32.0, 47.9, 48.0, 120.0, None, None]
    perm = [1, 1, 1, 1, 1, 1, 1, 1, 0, 2]
    metric = pd.DataFrame(
        {"worst_speed_kmh": pd.array(speeds, dtype="Float64"), "n_vehicle_permeable": perm}
    )
    out = ramming_vulnerability(metric)
    assert out["vulnerability"].tolist() == [1, 2, 3, 3, 4, 4, 5, 5, 1, pd.NA]
    rule = "prefill_bands/ramming_speed_kmh: 48 ≤ worst_speed_kmh < ∞"
    assert out["rule"].iloc[6].startswith(rule)
    assert out["worst_speed_kmh"].iloc[8] == 0.0  # no permeable entry counts as 0 km/h


def test_crowd_consequence_bands_and_custom_table() -> None:
    cap = [0, 199, 200, 799, 800, 1999, 2000, 4999, 5000, None]
    metric = pd.DataFrame({"capacity_persons": pd.array(cap, dtype="Float64")})
    assert crowd_consequence(metric)["consequence"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, pd.NA]
    bands = table("prefill_bands")
    bands.loc[bands["rule"] == "capacity_persons", "lower"] = [0, 100, 150, 180, 190]
    bands.loc[bands["rule"] == "capacity_persons", "upper"] = [100, 150, 180, 190, float("inf")]
    assert crowd_consequence(metric, bands=bands)["consequence"].tolist()[:3] == [1, 5, 5]


def test_poi_attractiveness_within_radius() -> None:
    out = poi_attractiveness(cases.spaces(), cases.pois(), crs=cases.CRS)
    assert out["poi_score"].tolist() == [6.0, 0.0, 0.0]
    assert out["attractiveness"].tolist() == [3, 1, 1]
    assert sorted(out.loc["way/1", "pois"]) == ["node/1 (worship, 3)", "node/2 (civic, 3)"]
    near = poi_attractiveness(cases.spaces(), cases.pois(), crs=cases.CRS, radius_m=5)
    assert near["poi_score"].tolist() == [3.0, 0.0, 0.0]  # only the town hall inside
    assert near["attractiveness"].tolist() == [2, 1, 1]


def test_derive_likelihood_rounds_half_up() -> None:
    a = pd.Series([4, 1, 3, None], dtype="Int64")
    v = pd.Series([5, 2, 3, 4], dtype="Int64")
    assert derive_likelihood(a, v).tolist() == [5, 2, 3, pd.NA]


def test_existing_measures_categories() -> None:
    m = existing_measures(cases.spaces(), cases.barriers(), cases.surveillance(), crs=cases.CRS)
    got = sorted(zip(m["space_uid"], m["uid"], m["category"], strict=True))
    assert got == [
        ("way/1", "node/9", "emplaced"),
        ("way/2", "node/20", "emplaced"),
        ("way/2", "way/9", "natural"),
    ]


def test_prefill_evidence(draft: CityAssessment) -> None:
    assert [s.space_uid for s in draft.sites] == ["way/1", "way/2", "way/3"]
    a = draft.site("way/1")
    assert len(a.scenarios) == 10 and a.site == {"type": "square"}
    ram = a.scenario("VEHICLE_RAMMING")
    assert (ram.attractiveness.value, ram.vulnerability.value) == (3, 5)
    assert (ram.likelihood.value, ram.consequence.value) == (4, 5)
    v_ev, l_ev = ram.vulnerability.evidence, ram.likelihood.evidence
    assert v_ev is not None and v_ev.inputs == {"worst_speed_kmh": 52.0, "n_vehicle_permeable": 2}
    assert l_ev is not None and l_ev.rule.endswith("round_half_up((3 + 5) / 2) = 4")
    fire = a.scenario("FIREARMS")  # no vulnerability rule for firearms: left to the assessors
    assert fire.vulnerability.value is None and fire.likelihood.value is None
    assert fire.consequence.value == 5
    c = draft.site("way/3").scenario("VEHICLE_RAMMING")
    assert c.vulnerability.value is None and c.consequence.value is None
    # VBIED has its own stand-off rules (tests/test_standoff.py): no standoff layer, no V / C
    vbied = draft.site("way/2").scenario("VBIED")
    assert vbied.vulnerability.value is None and vbied.consequence.value is None
    assert draft.questionnaire_version == "1.0" and draft.reference_version == "test"


def test_prefill_without_analysis_layers_leaves_ratings_empty() -> None:
    bare = prefill(cases.spaces(), city="brasov", crs=cases.CRS, reference_version="x")
    frame = ratings_frame(bare)
    assert frame[["vulnerability", "likelihood", "consequence"]].isna().all().all()


def _with(draft: CityAssessment, where: tuple[str, str], **changes: object) -> CityAssessment:
    out = draft.model_copy(deep=True)
    site = out.site(where[0])
    site.scenarios = [
        s.model_copy(update=changes) if s.threat == where[1] else s for s in site.scenarios
    ]
    return out


def test_validation_messages_name_the_field(
    draft: CityAssessment, questionnaire: Questionnaire
) -> None:
    bad = _with(draft, ("way/1", "UAV"), threat="DRONEX")
    msg = r"site way/1, threat 'DRONEX': unknown threat type \(known: FIREARMS, SHARP_OBJECT"
    with pytest.raises(ValidationError, match=msg):
        validate(bad, questionnaire)
    lik = draft.site("way/1").scenario("UAV").likelihood.model_copy(update={"value": 7})
    msg = "site way/1, threat 'UAV', likelihood: value 7 out of range 1–5"
    with pytest.raises(ValidationError, match=msg):
        validate(_with(draft, ("way/1", "UAV"), likelihood=lik), questionnaire)
    final = draft.model_copy(deep=True)
    final.sites[1].status = "final"
    with pytest.raises(ValidationError, match="site way/2, question 'use': missing required"):
        validate(final, questionnaire)
    odd = draft.model_copy(deep=True)
    odd.sites[0].site["colour"] = "red"
    with pytest.raises(ValidationError, match="site way/1, question 'colour': unknown question"):
        validate(odd, questionnaire)
    old = draft.model_copy(update={"questionnaire_version": "0.9"})
    with pytest.raises(ValidationError, match=r"questionnaire version '0\.9'"):
        validate(old, questionnaire)


def test_final_site_needs_every_scenario_field(
    draft: CityAssessment, questionnaire: Questionnaire
) -> None:
    final = draft.model_copy(deep=True)
    site = final.sites[1]
    site.status = "final"
    site.site.update(use="market", users="tourists", peak_times="Sat 10-14")
    with pytest.raises(ValidationError, match="'FIREARMS', vulnerability: missing required"):
        validate(final, questionnaire)


def test_override_is_recorded_and_likelihood_follows(draft: CityAssessment) -> None:
    out = override(
        draft, "way/1", "FIREARMS", "vulnerability", 2, by="A. Pop", reason="armed patrols", at=DAY
    )
    fire = out.site("way/1").scenario("FIREARMS")
    assert fire.vulnerability.value == 2
    assert fire.vulnerability.overrides[0].model_dump() == {
        "value": 2, "previous": None, "by": "A. Pop", "at": DAY, "reason": "armed patrols"
    }  # fmt: skip
    assert fire.likelihood.value == 3  # round_half_up((3 + 2) / 2)
    assert draft.site("way/1").scenario("FIREARMS").vulnerability.value is None  # input untouched
    out = override(out, "way/1", "FIREARMS", "likelihood", 2, by="B", reason="intel", at=DAY)
    out = override(out, "way/1", "FIREARMS", "attractiveness", 2, by="B", reason="quiet", at=DAY)
    fire = out.site("way/1").scenario("FIREARMS")
    assert fire.likelihood.value == 2  # an overridden likelihood is kept
    assert (
        fire.likelihood.evidence is not None and fire.likelihood.evidence.value == 2
    )  # evidence re-derived: (2 + 2) / 2
    with pytest.raises(ValidationError, match="likelihood: value 9 out of range 1–5"):
        override(out, "way/1", "FIREARMS", "likelihood", 9, by="B", reason="x", at=DAY)
    with pytest.raises(ValidationError, match="by"):
        override(out, "way/1", "FIREARMS", "likelihood", 3, by="", reason="x", at=DAY)


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".csv"])
def test_round_trip(draft: CityAssessment, tmp_path: Path, suffix: str) -> None:
    edited = override(draft, "way/1", "UAV", "vulnerability", 3, by="C", reason="open sky", at=DAY)
    edited.sites[0].site.update(use="markets, concerts", peak_times="Sat")
    edited.sites[0].scenarios[0].narrative = "Gunman, crowded Saturday market"
    edited.sites[0].scenarios[0].assessors = ["A. Pop", "I. Ionescu"]
    edited.sites[0].scenarios[0].date = DAY
    path = write_assessment(edited, tmp_path / f"brasov{suffix}")
    assert read_assessment(path) == edited


def test_csv_offline_edit_needs_an_override_reason(draft: CityAssessment, tmp_path: Path) -> None:
    path = write_assessment(draft, tmp_path / "brasov.csv")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    row = (frame["space_uid"] == "way/1") & (frame["threat"] == "VEHICLE_RAMMING")
    frame.loc[row, "vulnerability"] = "3"
    frame.to_csv(path, index=False)
    msg = r"line 4, threat 'VEHICLE_RAMMING', vulnerability: changed from 5 to 3"
    with pytest.raises(ValidationError, match=msg):
        read_assessment(path)
    frame.loc[row, ["override_by", "override_reason", "date"]] = [
        "M. Field", "rising bollards", "2026-11-21"
    ]  # fmt: skip
    frame.loc[(frame["space_uid"] == "way/2") & (frame["threat"] == "UAV"), "vulnerability"] = "4"
    frame.loc[frame["space_uid"] == "way/3", "consequence"] = ""  # blank keeps (nothing here)
    frame.to_csv(path, index=False)
    back = read_assessment(path)
    ram = back.site("way/1").scenario("VEHICLE_RAMMING")
    assert ram.vulnerability.value == 3 and ram.vulnerability.evidence is not None
    assert ram.vulnerability.evidence.value == 5
    assert ram.vulnerability.overrides[0].by == "M. Field"
    assert ram.vulnerability.overrides[0].at == dt.date(2026, 11, 21)
    assert ram.likelihood.value == 3  # round_half_up((3 + 3) / 2), re-derived
    uav = back.site("way/2").scenario("UAV")  # no evidence: a plain assessor answer
    assert uav.vulnerability.value == 4 and uav.vulnerability.overrides == []
    assert uav.likelihood.value == 3  # round_half_up((1 + 4) / 2)


def test_reading_an_invalid_file_names_file_and_field(
    draft: CityAssessment, tmp_path: Path
) -> None:
    data = draft.model_dump(mode="json")
    data["sites"][0]["scenarios"][0]["threat"] = "DRONEX"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    msg = r"bad\.yaml: site way/1, threat 'DRONEX': unknown threat type"
    with pytest.raises(ValidationError, match=msg):
        read_assessment(path)
    data["sites"][0]["scenarios"][0]["threat"] = "FIREARMS"
    data["sites"][0]["scenarios"][0]["consequence"]["value"] = 4  # evidence says 5, no override
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    msg = "site way/1, threat 'FIREARMS', consequence: Value error, value 4 differs from the pre"
    with pytest.raises(ValidationError, match=msg):
        read_assessment(path)
