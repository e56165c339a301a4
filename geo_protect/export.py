"""Exports for analysts and field teams: GeoJSON, GeoPackage, CSV and printable site reports.

* GeoJSON follows RFC 7946: WGS84 longitude/latitude, no ``crs`` member, the ``uid``
  as a property (written by GDAL with ``RFC7946=YES``).
* GeoPackage: one file per city, one table per layer.
* CSV: the attributes, the ``uid``, the geometry as WKT and ``lon``/``lat`` of a
  representative point (for spreadsheets).
* Site reports: one HTML page per assessed space (Jinja2, print CSS for A4). PDF is not
  produced: no well-kept pure-Python HTML→PDF library is installed; print the HTML to PDF
  from a browser.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect import reference
from geo_protect._errors import ValidationError
from geo_protect._templates import environment
from geo_protect.assessment import RATINGS, CityAssessment, Questionnaire, load_questionnaire
from geo_protect.risk import site_summary, why
from geo_protect.schema import WGS84

__all__ = [
    "EXPORT_FORMATS",
    "export_city",
    "site_report",
    "site_reports",
    "write_csv",
    "write_geojson",
    "write_geopackage",
]

#: Formats :func:`export_city` can write.
EXPORT_FORMATS = ("geojson", "gpkg", "csv")


def _check(layer: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    if layer.crs is None or not layer.crs.equals(WGS84):
        raise ValidationError(f"{what}: CRS must be {WGS84} for export, got {layer.crs}")
    out = layer.copy()
    out.index = out.index.astype(str).rename("uid")
    return out


def write_geojson(layer: gpd.GeoDataFrame, path: Path) -> Path:
    """Write a layer as RFC 7946 GeoJSON (WGS84 lon/lat, ``uid`` as a property).

    Raises
    ------
    ValidationError
        If the layer is not in WGS84.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _check(layer, str(path)).reset_index().to_file(
        path, driver="GeoJSON", engine="pyogrio", RFC7946="YES", WRITE_NAME="NO"
    )
    return path


def write_geopackage(layers: Mapping[str, gpd.GeoDataFrame], path: Path) -> Path:
    """Write layers as the tables of one GeoPackage (the file is replaced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    for name, layer in layers.items():
        _check(layer, f"{path}, layer {name!r}").reset_index().to_file(
            path, layer=name, driver="GPKG", engine="pyogrio"
        )
    return path


def write_csv(layer: gpd.GeoDataFrame, path: Path) -> Path:
    """Write a layer as CSV: ``uid``, its attributes, ``lon``, ``lat`` and ``wkt``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    layer = _check(layer, str(path))
    geoms = layer.geometry.to_numpy()
    points = shapely.point_on_surface(geoms)
    frame = pd.DataFrame(layer.drop(columns=layer.geometry.name))
    frame["lon"] = np.round(shapely.get_x(points), 7)
    frame["lat"] = np.round(shapely.get_y(points), 7)
    frame["wkt"] = shapely.to_wkt(geoms, rounding_precision=7)
    frame.to_csv(path, index=True, index_label="uid")
    return path


def export_city(
    city: str,
    layers: Mapping[str, gpd.GeoDataFrame],
    out_dir: Path,
    *,
    formats: Iterable[str] = EXPORT_FORMATS,
) -> list[Path]:
    """Export a city's layers (e.g. ``public_space``, ``entry_point``, ``assessment``).

    Writes ``<city>_<layer>.geojson`` and ``<city>_<layer>.csv`` per layer and one
    ``<city>.gpkg`` with every layer.

    Returns
    -------
    list of Path
        The files written.
    """
    fmts = list(formats)
    unknown = sorted(set(fmts) - set(EXPORT_FORMATS))
    if unknown:
        raise ValidationError(
            f"export formats: unknown {', '.join(unknown)} (known: {', '.join(EXPORT_FORMATS)})"
        )
    out_dir = Path(out_dir)
    written: list[Path] = []
    for name, layer in layers.items():
        if "geojson" in fmts:
            written.append(write_geojson(layer, out_dir / f"{city}_{name}.geojson"))
        if "csv" in fmts:
            written.append(write_csv(layer, out_dir / f"{city}_{name}.csv"))
    if "gpkg" in fmts:
        written.append(write_geopackage(layers, out_dir / f"{city}.gpkg"))
    return written


def site_report(
    assessment: CityAssessment,
    space_uid: str,
    scores: pd.DataFrame,
    path: Path,
    *,
    city_label: str = "",
    questionnaire: Questionnaire | None = None,
    generated: dt.date | None = None,
) -> Path:
    """Write the printable HTML assessment report of one space.

    Parameters
    ----------
    assessment
        The city's assessments.
    space_uid
        The space to report.
    scores
        The city's ``assessment`` layer (:func:`geo_protect.risk.score`).
    path
        The HTML file to write.
    city_label, questionnaire, generated
        Display name of the city, the questionnaire (for question texts) and the date
        printed (today by default).
    """
    q = questionnaire or load_questionnaire()
    site = assessment.site(space_uid)
    mine = scores[scores["space_uid"] == space_uid]
    summary = site_summary(mine).iloc[0].to_dict() if len(mine) else {}
    labels = {t.code: t.label for t in q.threats}
    scale = q.scale_of("likelihood")
    questions = [
        {"text": qq.text, "answer": site.site.get(qq.id), "required": qq.required}
        for qq in q.site_questions
    ]
    scenarios = []
    for sc in site.scenarios:
        ex = why(assessment, space_uid, sc.threat)
        scenarios.append(
            {
                "threat": sc.threat,
                "label": labels.get(sc.threat, sc.threat),
                "narrative": sc.narrative,
                "rationale": sc.rationale,
                "assessors": ", ".join(sc.assessors),
                "date": sc.date.isoformat() if sc.date else "",
                "ratings": [
                    {
                        "name": r,
                        "value": ex.ratings[r],
                        "label": _label(scale.labels, ex.ratings[r]),
                        "evidence": ex.evidence.get(r),
                        "overrides": ex.overrides.get(r, []),
                    }
                    for r in RATINGS
                ],
                "explanation": ex,
            }
        )
    bands = reference.table("risk_bands")
    html = (
        environment()
        .get_template("site_report.html.j2")
        .render(
            city=city_label or assessment.city,
            site=site,
            summary=summary,
            questions=questions,
            measures=[m.model_dump() for m in site.measures],
            scenarios=scenarios,
            colours=dict(zip(bands["band"], bands["colour"], strict=True)),
            questionnaire_version=assessment.questionnaire_version,
            reference_version=assessment.reference_version or "",
            generated=(generated or dt.date.today()).isoformat(),
        )
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def _label(labels: Mapping[int, str], value: int | None) -> str:
    return "" if value is None else labels.get(value, "")


def site_reports(
    assessment: CityAssessment,
    scores: pd.DataFrame,
    out_dir: Path,
    *,
    city_label: str = "",
    questionnaire: Questionnaire | None = None,
) -> list[Path]:
    """Write :func:`site_report` for every site, named ``<city>_<uid>.html`` (``/`` → ``-``)."""
    q = questionnaire or load_questionnaire()
    return [
        site_report(
            assessment,
            s.space_uid,
            scores,
            Path(out_dir)
            / f"{assessment.city}_{s.space_uid.replace('/', '-').replace('|', '-')}.html",
            city_label=city_label,
            questionnaire=q,
        )
        for s in assessment.sites
    ]
