"""A planner's scenario as files: the GeoJSON export and the printable report.

The report lists what the scenario changes (entries, scores, planned barriers and their
checks) and draws, for every affected space, its site plan before and after
(:func:`~geo_protect.outputs.site_plan.site_plan`, plain SVG: it prints and works
offline). The after plan is drawn from the edited barrier layer and the scenario's
re-analysed layers.
"""

from __future__ import annotations

import functools
import html
from pathlib import Path
from typing import Any

import jinja2
import shapely

from geo_protect.outputs.site_plan import plan_layers, site_plan
from geo_protect.reference import table
from geo_protect.scenario.engine import ScenarioResult, edited_data
from geo_protect.scenario.incremental import ScenarioContext
from geo_protect.scenario.model import Scenario
from geo_protect.service.planner_view import preview_payload
from geo_protect.store.scenario_plans import PlanRow

__all__ = ["pages", "report_html", "safe", "scenario_geojson"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Most spaces drawn before/after in one report (the rest are listed).
_MAX_PLANS = 12
_PLAN_LAYERS = ("public_space", "building", "street", "barrier", "surveillance")


@functools.cache
def pages() -> jinja2.Environment:
    """The Jinja environment of the service's page templates (autoescaped, strict)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def safe(name: str) -> str:
    """``name`` with anything but letters, digits, ``-`` and ``_`` replaced, for file names.

    Examples
    --------
    >>> safe("market day/2")
    'market_day_2'
    """
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "scenario"


def scenario_geojson(scenario: Scenario, row: PlanRow) -> dict[str, Any]:
    """The scenario as a GeoJSON FeatureCollection, one feature per edit (in order).

    Removals and openings have a null geometry and the barrier's ``osm_id``; the
    scenario's name, city, scheme option, author and times are foreign members.

    Parameters
    ----------
    scenario : Scenario
        The stored scenario.
    row : PlanRow
        Its listing row (scheme option, times).
    """
    features = []
    for i, edit in enumerate(scenario.edits):
        props = edit.model_dump(mode="json", exclude={"geometry"})
        geom = None if edit.geometry is None else shapely.geometry.mapping(edit.geometry)
        features.append({"type": "Feature", "id": i, "geometry": geom, "properties": props})
    return {
        "type": "FeatureCollection",
        "name": scenario.name,
        "city": scenario.city,
        "description": scenario.description,
        **{k: v for k, v in row.as_dict().items() if k != "name"},
        "features": features,
        "attribution": "Map data © OpenStreetMap contributors, ODbL",
    }


def _plans(
    ctx: ScenarioContext, result: ScenarioResult, scenario: Scenario
) -> list[dict[str, str]]:
    """Before/after site plans of the affected spaces (at most :data:`_MAX_PLANS`)."""
    spaces = result.affected_spaces[:_MAX_PLANS]
    if not spaces:
        return []
    after_data, _ = edited_data(ctx.city, ctx.data, list(scenario.edits))
    before = {**{k: ctx.data[k] for k in _PLAN_LAYERS}, **ctx.layers}
    after = {**{k: after_data[k] for k in _PLAN_LAYERS}, **ctx.layers, **result.layers}
    plan_b = plan_layers(before, crs=ctx.city.crs)
    plan_a = plan_layers(after, crs=ctx.city.crs)
    names = ctx.layers["space_metric"]["label"]
    out = []
    for uid in spaces:
        if uid not in ctx.data["public_space"].index:
            continue
        name = str(names.get(uid) or uid)
        out.append(
            {
                "uid": uid,
                "name": name,
                "before": site_plan(uid, plan_b, crs=ctx.city.crs, title=f"Before – {name}"),
                "after": site_plan(uid, plan_a, crs=ctx.city.crs, title=f"After – {name}"),
            }
        )
    return out


def report_html(
    ctx: ScenarioContext, result: ScenarioResult, scenario: Scenario, row: PlanRow
) -> str:
    """The printable report of a stored scenario (self-contained HTML).

    Parameters
    ----------
    ctx : ScenarioContext
        The city's context.
    result : ScenarioResult
        The scenario rescored on it.
    scenario : Scenario
        The stored scenario.
    row : PlanRow
        Its listing row.
    """
    edits = list(scenario.edits)
    body = preview_payload(ctx, result, edits, [None] * len(edits))
    schemes = table("hvm_scheme_options").set_index("option")["label"]
    scheme = str(schemes.get(row.scheme, row.scheme)) if row.scheme else "not recorded"
    return (
        pages()
        .get_template("planner_report.html")
        .render(
            city_name=ctx.city.name,
            scenario=scenario,
            row=row,
            scheme=scheme,
            preview=body,
            plans=_plans(ctx, result, scenario),
            more=max(0, len(result.affected_spaces) - _MAX_PLANS),
            escape=html.escape,
        )
    )
