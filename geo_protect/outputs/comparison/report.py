"""Charts and the self-contained HTML report of the cross-city comparison."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

from geo_protect import reference
from geo_protect.assess.files import read_assessment
from geo_protect.assess.questionnaire import CityAssessment, Questionnaire, load_questionnaire
from geo_protect.assess.scores import Explanation, why
from geo_protect.errors import MissingDataError
from geo_protect.outputs.comparison.ranking import (
    CityResults,
    Ranking,
    find_assessment_file,
    rank_hotspots,
)
from geo_protect.outputs.templates import environment

__all__ = ["Comparison", "compare", "explain_hotspots"]

_SVG_RC: Any = {"svg.fonttype": "none", "svg.hashsalt": "geo_protect", "font.size": 9}


@dataclass
class Comparison:
    """What :func:`compare` produced.

    Attributes
    ----------
    hotspots
        Per-threat and overall rankings (the CSV), plus one ``no data`` row per city
        without data.
    overall
        One row per space of the cities with data, ranked by worst threat.
    coverage
        One row per city: status (``data`` or ``no data: reason``) and counts.
    matrix
        City × threat maximum ``R_100`` (NaN where not assessed or no data).
    files
        Written files by role (``csv``, ``coverage_csv``, ``heatmap_png``, ``heatmap_svg``,
        ``hotspots_png``, ``hotspots_svg``, ``html``).
    """

    hotspots: pd.DataFrame
    overall: pd.DataFrame
    coverage: pd.DataFrame
    matrix: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)


def compare(
    results: Mapping[str, CityResults | None],
    out_dir: Path,
    *,
    top_n: int = 15,
    threats: list[str] | None = None,
    bands: pd.DataFrame | None = None,
    title: str = "Cross-city comparison of public-space risk",
    generated: dt.date | None = None,
) -> Comparison:
    """Rank hotspots across cities and write a CSV, charts and a self-contained HTML report.

    Parameters
    ----------
    results : Mapping of str to CityResults
        City slug → :class:`CityResults` (``None`` = no results for that city).
    out_dir : Path
        Output folder (created): ``hotspots.csv``, ``coverage.csv``,
        ``risk_by_threat.{png,svg}``, ``top_hotspots.{png,svg}``, ``comparison.html``.
    top_n : int
        Hotspots shown in the chart and per threat in the report.
    threats : list of str, optional
        Threat order (the questionnaire's by default).
    bands : DataFrame, optional
        The ``risk_bands`` table (colours, legend); the reference one by default.
    title : str
        Title of the report.
    generated : datetime.date, optional
        Date printed in the report (today by default).

    Returns
    -------
    Comparison
        The tables and the paths written. See the module docstring for the method.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threat_order = threats or load_questionnaire().threat_codes
    b = (reference.table("risk_bands") if bands is None else bands).sort_values("lower_lc")
    ranking = rank_hotspots(results, threat_order)
    hotspots, overall, per_threat = ranking.hotspots, ranking.overall, ranking.per_threat
    coverage, matrix = ranking.coverage, ranking.matrix

    files = {"csv": out_dir / "hotspots.csv", "coverage_csv": out_dir / "coverage.csv"}
    hotspots.to_csv(files["csv"], index=False)
    coverage.to_csv(files["coverage_csv"], index=False)
    svgs: dict[str, str] = {}
    for name, fig in (
        ("heatmap", _heatmap(matrix, coverage)),
        ("hotspots", _bars(overall[overall["rank"].notna()].head(top_n), b)),
    ):
        stem = "risk_by_threat" if name == "heatmap" else "top_hotspots"
        files[f"{name}_png"], files[f"{name}_svg"] = _save(fig, out_dir / stem)
        svgs[name] = _inline_svg(files[f"{name}_svg"].read_text(encoding="utf-8"))

    html = (
        environment()
        .get_template("comparison.html.j2")
        .render(
            title=title,
            generated=(generated or dt.date.today()).isoformat(),
            reference_version=reference.version(),
            coverage=coverage.to_dict("records"),
            overall=_records(overall.head(top_n)),
            per_threat={
                t: _records(g.head(top_n))
                for t, g in per_threat.groupby("threat", sort=False)
                if t in threat_order
            },
            threat_order=[t for t in threat_order if t in set(per_threat["threat"])],
            bands=b.to_dict("records"),
            colours=dict(zip(b["band"], b["colour"], strict=True)),
            svgs=svgs,
        )
    )
    files["html"] = out_dir / "comparison.html"
    files["html"].write_text(html, encoding="utf-8")
    return Comparison(hotspots, overall, coverage, matrix, files)


def _save(fig: Figure, stem: Path) -> tuple[Path, Path]:
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    with rc_context(_SVG_RC):
        fig.savefig(png, dpi=150, bbox_inches="tight", metadata={"Software": None})
        fig.savefig(svg, bbox_inches="tight", metadata={"Date": None, "Creator": None})
    return png, svg


def _heatmap(matrix: pd.DataFrame, coverage: pd.DataFrame) -> Figure:
    with rc_context(_SVG_RC):
        n_rows, n_cols = max(len(matrix), 1), max(len(matrix.columns), 1)
        fig = Figure(figsize=(1.0 + 0.75 * n_cols, 1.2 + 0.45 * n_rows))
        ax = fig.add_subplot()
        values = matrix.to_numpy(dtype=float) if matrix.size else np.full((n_rows, n_cols), np.nan)
        no_data = dict(zip(coverage["label"], ~coverage["has_data"].astype(bool), strict=True))
        image = ax.imshow(
            np.ma.masked_invalid(values), cmap="YlOrRd", vmin=0, vmax=100, aspect="auto"
        )
        ax.set_facecolor("#eeeeee")
        for i, city in enumerate(matrix.index):
            if no_data.get(city, False):
                ax.axhspan(i - 0.5, i + 0.5, facecolor="#dddddd", hatch="//", edgecolor="#bbbbbb")
        for i, city in enumerate(matrix.index):
            for j in range(len(matrix.columns)):
                v = values[i, j]
                text = (
                    "no data"
                    if no_data.get(city, False)
                    else ("n/a" if np.isnan(v) else f"{v:.0f}")
                )
                if no_data.get(city, False) and j != len(matrix.columns) // 2:
                    text = ""
                colour = "#ffffff" if not np.isnan(v) and v >= 60 else "#222222"
                ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=7)
        ax.set_xticks(range(len(matrix.columns)), list(matrix.columns), rotation=45, ha="right")
        ax.set_yticks(range(len(matrix.index)), list(matrix.index))
        ax.set_title("Worst R_100 per city and threat type (n/a = not assessed)")
        fig.colorbar(image, ax=ax, label="R_100 (0–100)")
    return fig


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as dicts for the template, with None for every missing value (NA, NaN)."""
    obj = frame.astype(object)
    return list(obj.where(obj.notna(), None).to_dict("records"))


def _bars(top: pd.DataFrame, bands: pd.DataFrame) -> Figure:
    colours = dict(zip(bands["band"], bands["colour"], strict=True))
    with rc_context(_SVG_RC):
        fig = Figure(figsize=(7.5, 1.0 + 0.32 * max(len(top), 1)))
        ax = fig.add_subplot()
        if top.empty:
            ax.text(
                0.5, 0.5, "no assessed spaces", ha="center", va="center", transform=ax.transAxes
            )
            ax.set_axis_off()
            return fig
        labels = [
            f"{c} – {n} [{u}] ({t})"
            for c, n, u, t in zip(
                top["city_label"], top["label"], top["space_uid"], top["worst_threat"], strict=True
            )
        ]
        y = np.arange(len(top))[::-1]
        ax.barh(
            y,
            top["max_risk_100"].to_numpy(dtype=float),
            color=[colours.get(str(b), "#999999") for b in top["worst_band"]],
        )
        ax.set_yticks(y, labels)
        ax.set_xlim(0, 100)
        ax.set_xlabel("worst-threat R_100")
        ax.set_title("Top hotspots across cities (bar colour = risk band)")
    return fig


def _inline_svg(text: str) -> str:
    """An SVG file's ``<svg>`` element, for embedding in HTML."""
    start = text.find("<svg")
    svg = text[start:] if start >= 0 else text
    return re.sub(r"<!--.*?-->", "", svg, flags=re.S)


def explain_hotspots(
    comparison: Ranking | Comparison,
    directory: Path,
    *,
    n: int = 3,
    questionnaire: Questionnaire | None = None,
) -> list[Explanation]:
    """Explanations (:func:`geo_protect.assess.scores.why`) of the ``n`` worst overall hotspots.

    The assessments are read back from the files in ``directory`` that
    :func:`results_from_files` used; an empty list when no city has data.

    Parameters
    ----------
    comparison : Ranking or Comparison
        The ranking of :func:`compare` (or :func:`rank_hotspots`).
    directory : Path
        Folder of the assessment files.
    n : int
        How many hotspots to explain.
    questionnaire : Questionnaire, optional
        The questionnaire the files answer; the default one when not given.

    Returns
    -------
    list of Explanation
        Worst first.
    """
    q = questionnaire or load_questionnaire()
    top = comparison.overall[comparison.overall["rank"].notna()].head(n)
    cache: dict[str, CityAssessment] = {}
    out = []
    rows = zip(top["city"], top["space_uid"], top["worst_threat"], top["label"], strict=True)
    for city, uid, threat, label in rows:
        if city not in cache:
            path = find_assessment_file(directory, city)
            if path is None:
                raise MissingDataError(f"{directory}: no assessment file for city {city!r}")
            cache[city] = read_assessment(path, questionnaire=q)
        out.append(why(cache[city], str(uid), str(threat), label=str(label)))
    return out
