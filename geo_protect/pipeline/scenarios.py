"""Run a planner's barrier scenario on a stored city and write what it changes."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo_protect.atomic import write_atomic
from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.pipeline.store_io import Progress, _quiet
from geo_protect.scenario.engine import ScenarioResult
from geo_protect.scenario.model import Scenario
from geo_protect.schema import SOURCE_LAYERS, WGS84
from geo_protect.store.audit import Actor
from geo_protect.store.base import Store

__all__ = ["ScenarioRun", "run_scenario", "stored_scenario"]


@dataclass
class ScenarioRun:
    """A scenario applied to a stored city: the result and the files written."""

    result: ScenarioResult
    geopackage: Path
    report: Path


def run_scenario(
    store: Store,
    city: City,
    path: Path,
    out_dir: Path,
    *,
    name: str | None = None,
    author: str | None = None,
    actor: Actor,
    progress: Progress = _quiet,
) -> ScenarioRun:
    """Read a scenario file, apply it to the stored city, write its GeoPackage and report.

    The baseline layers in the store are read, never written; once applied, the scenario
    is saved in the store (``store.save_scenario``, replacing one of the same name). Files
    go to ``out_dir/scenarios/<city>_<name>.gpkg`` and ``.html`` (replaced atomically).
    ``actor`` is who saves it (PostGIS: a ``scenario.save`` audit row with the save).

    Raises
    ------
    ValidationError
        When the scenario file does not validate (nothing is written or stored).
    MissingDataError
        When the city has not been analysed yet.
    """
    from geo_protect.scenario.engine import apply_scenario
    from geo_protect.scenario.files import read_scenario

    # the source layers and the stored baseline from one state of the store
    stored = store.read_layers(city.slug, [*SOURCE_LAYERS, "entry_point", "assessment"])
    data = CityData(city.slug, {k: stored[k] for k in SOURCE_LAYERS}, store.report(city.slug))
    baseline = {k: stored[k] for k in ("entry_point", "assessment")}
    scenario = read_scenario(path, city=city, barriers=data["barrier"], name=name, author=author)
    progress(f"applying {len(scenario.edits)} edit(s) of {scenario.name!r}")
    result = apply_scenario(city, data, list(scenario.edits), name=scenario.name, baseline=baseline)
    progress(f"storing scenario {scenario.name!r}")
    store.save_scenario(city.slug, scenario, actor=actor)  # only one that read and applied
    stem = f"{city.slug}_{_safe(scenario.name)}"
    folder = out_dir / "scenarios"
    progress("writing the scenario GeoPackage and report")
    gpkg = _write_layers(result, baseline, folder / f"{stem}.gpkg")
    report = _write_report(city, scenario.name, result, folder / f"{stem}.html")
    return ScenarioRun(result=result, geopackage=gpkg, report=report)


def stored_scenario(store: Store, city: str, name: str) -> Scenario:
    """A scenario saved by :func:`run_scenario`, validated back into a :class:`Scenario`.

    Parameters
    ----------
    store : Store
        The store.
    city : str
        The city's slug.
    name : str
        The scenario's name.

    Returns
    -------
    Scenario
        The scenario as it was stored.

    Raises
    ------
    MissingDataError
        The city has no scenario of that name.

    Examples
    --------
    >>> import tempfile
    >>> from geo_protect.citydata import IngestReport
    >>> from geo_protect.store import GeoPackageStore
    >>> store = GeoPackageStore(Path(tempfile.mkdtemp()), reference_version="test")
    >>> store.replace_city("brasov", {}, IngestReport())
    >>> stored_scenario(store, "brasov", "rows")
    Traceback (most recent call last):
    ...
    geo_protect.errors.MissingDataError: city 'brasov' has no scenario 'rows' in ...
    """
    return Scenario.model_validate_json(store.read_scenario(city, name).document)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "scenario"


def _write_layers(
    result: ScenarioResult, baseline: dict[str, gpd.GeoDataFrame], path: Path
) -> Path:
    """The planned barriers and the changed entries and scores, for QGIS."""
    from geo_protect.outputs.exports import write_geopackage

    layers: dict[str, gpd.GeoDataFrame] = {}
    added = result.barriers
    for family, kinds in (("point", ("Point",)), ("line", ("LineString",))):
        part = added[added.geom_type.isin(kinds)] if len(added) else added
        if len(part):
            layers[f"plan_barrier_{family}"] = gpd.GeoDataFrame(part.astype({"tags": str}))
    for name, frame, base in (
        ("entry_change", result.entries, baseline["entry_point"]),
        ("score_change", result.scores, baseline["assessment"]),
    ):
        if len(frame):
            geom = base.geometry.reindex(frame.index)
            layers[name] = gpd.GeoDataFrame(frame.astype(str), geometry=geom.values, crs=WGS84)
    if not layers:
        layers["entry_change"] = gpd.GeoDataFrame({"note": []}, geometry=[], crs=WGS84)
    return write_geopackage(layers, path)


def _write_report(city: City, name: str, result: ScenarioResult, path: Path) -> Path:
    """A printable page: the changed entries and scores, before and after."""

    def table(frame: pd.DataFrame, title: str) -> str:
        if frame.empty:
            return f"<h2>{html.escape(title)}</h2><p>No change.</p>"
        return f"<h2>{html.escape(title)}</h2>" + str(frame.to_html(escape=True, na_rep="–"))

    body = (
        f"<h1>Scenario {html.escape(name)} – {html.escape(city.name)}</h1>"
        f"<p>Spaces affected: {len(result.affected_spaces)}</p>"
        + table(result.entries, "Entries that change")
        + table(result.scores, "Scores that change")
        + table(result.checks, "Planned barriers: do they close the street, does the rating cover")
        + "<p class='attribution'>Map data © OpenStreetMap contributors, ODbL.</p>"
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Scenario {html.escape(name)}</title>"
        "<style>body{font-family:sans-serif;margin:2rem}table{border-collapse:collapse;"
        "font-size:0.8rem}td,th{border:1px solid #ccc;padding:2px 6px}</style></head>"
        f"<body>{body}</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, page)
    return path
