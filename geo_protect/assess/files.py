"""Assessment files: YAML, JSON and CSV import/export, and the flat ratings view.

:func:`write_assessment` writes a :class:`~geo_protect.assess.questionnaire.CityAssessment` as
YAML, JSON or CSV (one row per site × threat, site-level answers and measures repeated
as JSON); :func:`read_assessment` reads any of them back and validates the result
against its questionnaire; :func:`merge_prefill` (from :mod:`geo_protect.assess.merge`)
merges a fresh pre-fill into a file assessors worked on. Writes are atomic. In a CSV
filled offline, a changed pre-filled rating becomes a recorded override (``override_by``,
``override_reason``). :func:`ratings_frame` is the one-row-per-scenario table the risk
scoring works on.

The models are in :mod:`geo_protect.assess.model`; validation and
:func:`~geo_protect.assess.questionnaire.override` in :mod:`geo_protect.assess.questionnaire`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pydantic
import yaml

from geo_protect.assess.merge import MergeReport, merge_prefill
from geo_protect.assess.questionnaire import (
    RATINGS,
    CityAssessment,
    Override,
    Questionnaire,
    Rating,
    Scenario,
    SiteAssessment,
    _pydantic_problems,
    load_questionnaire,
    validate,
)
from geo_protect.atomic import replacing, write_atomic
from geo_protect.errors import ValidationError
from geo_protect.schema import canonical_json

__all__ = ["MergeReport", "merge_prefill", "ratings_frame", "read_assessment", "write_assessment"]

#: The safe YAML loader and dumper, libyaml's C ones where PyYAML was built with it: a
#: city's assessors' file holds thousands of ratings, read and written on every run.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


# --------------------------------------------------------------------------- flat views


def ratings_frame(assessment: CityAssessment) -> pd.DataFrame:
    """One row per site × threat with the effective ratings, evidence and overrides.

    Columns: ``space_uid, name, status, threat, attractiveness, vulnerability, likelihood,
    consequence`` (Int64, NA = not assessed), ``narrative, rationale, assessors, date``,
    ``evidence`` and ``overrides`` (JSON objects keyed by rating), ``n_overrides``.
    """
    rows = []
    for site in assessment.sites:
        for sc in site.scenarios:
            ratings = {r: sc.rating(r) for r in RATINGS}
            rows.append(
                {
                    "space_uid": site.space_uid,
                    "name": site.name,
                    "status": site.status,
                    "threat": sc.threat,
                    **{r: ratings[r].value for r in RATINGS},
                    "narrative": sc.narrative,
                    "rationale": sc.rationale,
                    "assessors": "; ".join(sc.assessors),
                    "date": sc.date.isoformat() if sc.date else "",
                    "evidence": _evidence_json(ratings),
                    "overrides": _overrides_json(ratings),
                    "n_overrides": sum(len(x.overrides) for x in ratings.values()),
                }
            )
    columns = [
        "space_uid", "name", "status", "threat", *RATINGS, "narrative", "rationale",
        "assessors", "date", "evidence", "overrides", "n_overrides",
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    for r in RATINGS:
        frame[r] = frame[r].astype("Int64")
    for c in ("space_uid", "name", "status", "threat", "narrative", "rationale", "assessors"):
        frame[c] = frame[c].astype("string")
    frame["n_overrides"] = frame["n_overrides"].astype("Int64")
    return frame


# --------------------------------------------------------------------------- import / export

_CSV_COLUMNS = [
    "city", "questionnaire_version", "reference_version", "space_uid", "space_name", "status",
    "lon", "lat", "site", "measures", "threat", "narrative", *RATINGS, "rationale", "assessors",
    "date", "evidence", "overrides", "override_by", "override_reason",
]  # fmt: skip


def write_assessment(assessment: CityAssessment, path: Path) -> Path:
    """Write an assessment as YAML (``.yaml``/``.yml``), JSON (``.json``) or CSV (``.csv``).

    The CSV has one row per site × threat; site-level answers and measures are repeated
    as JSON on each row of the site; ``override_by`` and ``override_reason`` are left
    empty for a field team to fill when they change a pre-filled rating.

    The write is atomic (temporary file in the same folder, fsync, :func:`os.replace`): a
    crash mid-write leaves the previous file intact.

    Parameters
    ----------
    assessment : CityAssessment
        The city's assessments.
    path : Path
        The file to write; its suffix picks the format.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    data = assessment.model_dump(mode="json")
    if suffix in {".yaml", ".yml"}:
        write_atomic(path, yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True))
    elif suffix == ".json":
        write_atomic(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    elif suffix == ".csv":
        with replacing(path) as tmp:
            _to_csv_frame(assessment).to_csv(tmp, index=False)
    else:
        raise ValidationError(f"{path}: unknown assessment format (use .yaml, .json or .csv)")
    return path


def read_assessment(
    path: Path, *, questionnaire: Questionnaire | None = None, today: dt.date | None = None
) -> CityAssessment:
    """Read an assessment file written by :func:`write_assessment` (or filled offline).

    In a CSV, a rating that differs from its pre-filled (or last overridden) value is
    recorded as a new override by ``override_by`` with ``override_reason`` (both required),
    dated with the row's ``date`` or ``today``; an empty rating cell keeps the value.

    Raises
    ------
    ValidationError
        If the file cannot be parsed or does not validate, naming the file and field.
    """
    path = Path(path)
    q = questionnaire or load_questionnaire()
    suffix = path.suffix.lower()
    raw: Any = None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ValidationError(f"{path}: assessment file not found") from exc
    try:
        if suffix in {".yaml", ".yml", ".json"}:
            raw = yaml.load(text, Loader=_LOADER) if suffix != ".json" else json.loads(text)
            out = CityAssessment.model_validate(raw)
        elif suffix == ".csv":
            out = _from_csv(path, today or dt.date.today())
        else:
            raise ValidationError("unknown assessment format (use .yaml, .json or .csv)")
    except pydantic.ValidationError as exc:
        raw_data = raw if suffix in {".yaml", ".yml", ".json"} else None
        raise ValidationError(f"{path}: {_pydantic_problems(exc, raw_data)}") from exc
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ValidationError(f"{path}: cannot parse: {exc}") from exc
    except ValidationError as exc:
        raise ValidationError(f"{path}: {exc}") from exc
    try:
        validate(out, q)
    except ValidationError as exc:
        raise ValidationError(f"{path}: {exc}") from exc
    return out


def _to_csv_frame(assessment: CityAssessment) -> pd.DataFrame:
    rows = []
    for site in assessment.sites:
        site_json = _dump_json(site.site)
        measures_json = _dump_json([m.model_dump(mode="json") for m in site.measures])
        lon, lat = site.location if site.location else ("", "")
        for sc in site.scenarios:
            ratings = {r: sc.rating(r) for r in RATINGS}
            rows.append(
                {
                    "city": assessment.city,
                    "questionnaire_version": assessment.questionnaire_version,
                    "reference_version": assessment.reference_version or "",
                    "space_uid": site.space_uid,
                    "space_name": site.name,
                    "status": site.status,
                    "lon": lon,
                    "lat": lat,
                    "site": site_json,
                    "measures": measures_json,
                    "threat": sc.threat,
                    "narrative": sc.narrative,
                    **{r: "" if x.value is None else x.value for r, x in ratings.items()},
                    "rationale": sc.rationale,
                    "assessors": "; ".join(sc.assessors),
                    "date": sc.date.isoformat() if sc.date else "",
                    "evidence": _evidence_json(ratings),
                    "overrides": _overrides_json(ratings),
                    "override_by": "",
                    "override_reason": "",
                }
            )
    return pd.DataFrame(rows, columns=_CSV_COLUMNS)


def _from_csv(path: Path, today: dt.date) -> CityAssessment:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot parse CSV: {exc}") from exc
    required = [c for c in _CSV_COLUMNS if c not in {"override_by", "override_reason"}]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValidationError(f"missing column(s) {', '.join(missing)}")
    for col in ("city", "questionnaire_version", "reference_version"):
        values = frame[col].unique()
        if len(values) > 1:
            raise ValidationError(f"column {col!r}: more than one value ({', '.join(values)})")
    if frame.empty:
        raise ValidationError("no rows")
    sites = []
    for uid, rows in frame.groupby("space_uid", sort=False):
        first = rows.iloc[0]
        where = f"site {uid}"
        for col in ("space_name", "status", "lon", "lat", "site", "measures"):
            if rows[col].nunique() > 1:
                raise ValidationError(f"{where}: column {col!r} differs between its rows")
        scenarios = [
            _scenario_from_row(row, f"{where}, line {n + 2}", today)
            for n, (_, row) in zip(rows.index, rows.iterrows(), strict=True)
        ]
        location = (
            (float(first["lon"]), float(first["lat"])) if first["lon"] and first["lat"] else None
        )
        sites.append(
            SiteAssessment(
                space_uid=str(uid),
                name=first["space_name"],
                status=first["status"] or "draft",
                location=location,
                site=_load_json(first["site"], f"{where}, site", {}),
                measures=_load_json(first["measures"], f"{where}, measures", []),
                scenarios=scenarios,
            )
        )
    if frame.empty:
        raise ValidationError("no rows")
    head = frame.iloc[0]
    return CityAssessment(
        city=head["city"],
        questionnaire_version=head["questionnaire_version"],
        reference_version=head["reference_version"] or None,
        sites=sites,
    )


def _scenario_from_row(row: pd.Series, where: str, today: dt.date) -> Scenario:
    where = f"{where}, threat {row['threat']!r}"
    evidence = _load_json(row["evidence"], f"{where}, evidence", {})
    overrides = _load_json(row["overrides"], f"{where}, overrides", {})
    date = _parse_date(row["date"], f"{where}, date")
    by = row.get("override_by", "").strip()
    reason = row.get("override_reason", "").strip()
    ratings: dict[str, Rating] = {}
    for r in RATINGS:
        try:
            ratings[r] = Rating.model_validate(
                {
                    "evidence": evidence.get(r),
                    "overrides": overrides.get(r, []),
                    "value": _expected(evidence.get(r), overrides.get(r, [])),
                }
            )
        except pydantic.ValidationError as exc:
            raise ValidationError(f"{where}, {r}: {_pydantic_problems(exc)}") from exc
    sc = Scenario(
        threat=row["threat"],
        narrative=row["narrative"],
        rationale=row["rationale"],
        assessors=[a.strip() for a in row["assessors"].split(";") if a.strip()],
        date=date,
        **ratings,
    )
    old_likelihood = sc.likelihood.value
    for r in (*(x for x in RATINGS if x != "likelihood"), "likelihood"):
        if r == "likelihood":
            sc = sc.with_derived_likelihood()
        cell = row[r].strip()
        if not cell:
            continue
        value = _parse_int(cell, f"{where}, {r}")
        current = sc.rating(r)
        if value == current.value or (r == "likelihood" and value == old_likelihood):
            continue
        if current.evidence is None and not current.overrides:
            new = Rating(value=value)
        else:
            if not by or not reason:
                raise ValidationError(
                    f"{where}, {r}: changed from {current.value} to {value}; "
                    "fill override_by and override_reason"
                )
            entry = Override(
                value=value, previous=current.value, by=by, at=date or today, reason=reason
            )
            new = Rating(
                value=value, evidence=current.evidence, overrides=[*current.overrides, entry]
            )
        sc = sc.model_copy(update={r: new})
    return sc


def _expected(evidence: Mapping[str, Any] | None, overrides: Sequence[Mapping[str, Any]]) -> Any:
    if overrides:
        return overrides[-1].get("value")
    return evidence.get("value") if evidence else None


# --------------------------------------------------------------------------- helpers


def _evidence_json(ratings: Mapping[str, Rating]) -> str:
    """The evidence behind each pre-filled rating, as canonical JSON."""
    return _dump_json(
        {r: x.evidence.model_dump(mode="json") for r, x in ratings.items() if x.evidence}
    )


def _overrides_json(ratings: Mapping[str, Rating]) -> str:
    """Every recorded override per rating, as canonical JSON."""
    return _dump_json(
        {
            r: [o.model_dump(mode="json") for o in x.overrides]
            for r, x in ratings.items()
            if x.overrides
        }
    )


def _dump_json(value: object) -> str:
    return canonical_json(value)


def _load_json(text: str, where: str, default: Any) -> Any:
    if not text.strip():
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{where}: not valid JSON ({exc.msg})") from exc


def _parse_int(text: str, where: str) -> int:
    try:
        number = float(text)
    except ValueError as exc:
        raise ValidationError(f"{where}: {text!r} is not a rating") from exc
    if not number.is_integer():
        raise ValidationError(f"{where}: {text!r} is not a whole number")
    return int(number)


def _parse_date(text: str, where: str) -> dt.date | None:
    if not text.strip():
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValidationError(f"{where}: {text!r} is not an ISO date (YYYY-MM-DD)") from exc
