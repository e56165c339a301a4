"""The planner workspace's routes: the page, previews and the scenario store (issue 14).

Wiring only: validation and the engine are in :mod:`geo_protect.service.planning`, what
the page draws in :mod:`geo_protect.service.planner_view`, the printable report in
:mod:`geo_protect.service.planner_report`. Every route declares its permission: ``read``
for the page and the reads, ``plan`` for previews, saves and deletes (a viewer's save is
refused with 403 by the dependency, before any work).

* ``GET /planner/{city}``: the page; ``GET /planner/{city}/baseline.json`` its layers.
* ``POST /cities/{city}/scenarios/preview``: edits → what they change (nothing stored).
* ``GET /cities/{city}/scenarios`` lists, ``POST`` creates (409 if the name is taken).
* ``GET|PUT|DELETE /cities/{city}/scenarios/{name}``: read, save over (explicitly), delete.
* ``GET /cities/{city}/scenarios/{name}.geojson``: the edits as GeoJSON;
  ``GET /cities/{city}/scenarios/{name}/report``: the printable report with site plans.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from geo_protect.cities import get_city
from geo_protect.errors import NotFoundError, ValidationError
from geo_protect.scenario.model import Scenario
from geo_protect.service import planner_report, planner_view, planning
from geo_protect.service.access import requires, unscoped
from geo_protect.service.runtime import Runtime
from geo_protect.store import scenario_plans as plans
from geo_protect.store import scenarios as stored
from geo_protect.store.audit import Actor
from geo_protect.store.users import Principal

__all__ = ["router"]

router = APIRouter()
_SETUP = threading.Lock()


class PreviewIn(BaseModel):
    """Edits to preview: the page's features (see :func:`planning.parse_edits`)."""

    model_config = ConfigDict(extra="forbid")

    edits: list[dict[str, Any]] = Field(max_length=planning.MAX_EDITS)
    scheme: str | None = None


class ScenarioIn(BaseModel):
    """A scenario to save: its name, scheme option, description and edits."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scheme: str | None = None
    description: str = Field(default="", max_length=5000)
    edits: list[dict[str, Any]] = Field(min_length=1, max_length=planning.MAX_EDITS)


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _contexts(request: Request) -> planning.Contexts:
    found: planning.Contexts | None = getattr(request.app.state, "planner", None)
    if found is None:
        with _SETUP:
            found = getattr(request.app.state, "planner", None)
            if found is None:
                found = planning.Contexts(_rt(request).store)
                request.app.state.planner = found
    return found


def _held(request: Request, city: str) -> planning.Held:
    _rt(request).known_city(city)
    with unscoped():  # shared by every user of this worker: built as the service
        return _contexts(request).get(city)


def _principal(request: Request) -> Principal | None:
    found: Principal | None = request.scope.get("principal")
    return found


def _actor(request: Request) -> Actor:
    who = _principal(request)
    host = request.client.host if request.client else None
    return Actor(name=who.user if who else "anonymous", address=host, via="service")


def _json(value: Any, status: int = 200) -> Response:
    body = orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json")


def _preview(held: planning.Held, items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """Validate and rescore ``items`` (a kept result when the same edits came before)."""
    started = time.perf_counter()
    edits, ids = planning.parse_edits(items, ctx=held.ctx)
    if not edits:
        return {"empty": True, "elapsed_ms": 0.0, "engine_ms": 0.0, "kept": False}

    def compute(ctx: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        result = planning.preview_result(held, edits, name)
        engine_ms = (time.perf_counter() - t0) * 1000
        return {**planner_view.preview_payload(ctx, result, edits, ids), "engine_ms": engine_ms}

    body, kept = held.preview(planning.edits_key(edits) + repr(ids).encode(), compute)
    return {**body, "kept": kept, "elapsed_ms": (time.perf_counter() - started) * 1000}


@router.get("/planner/{city}", response_class=HTMLResponse, dependencies=[requires("read")])
def planner_page(request: Request, city: str) -> HTMLResponse:
    """The planner workspace of a city."""
    c = get_city(_rt(request).known_city(city))
    who = _principal(request)
    page = (
        planner_report.pages()
        .get_template("planner.html")
        .render(
            city=c.slug,
            city_name=c.name,
            csrf_token=(who.csrf if who and who.csrf else ""),
            can_plan=who is None or who.scope.allows("plan", c.slug),
            user=who.user if who else "",
        )
    )
    return HTMLResponse(page)


@router.get("/planner/{city}/baseline.json", dependencies=[requires("read")])
def baseline(request: Request, city: str) -> Response:
    """The layers the page draws (the scenario context's baseline) and the vocabularies."""
    held = _held(request, city)
    body = planner_view.baseline_payload(held.ctx)
    body["schemes"] = planning.scheme_options()
    body["context_build_s"] = round(held.build_s, 2)
    return _json(body)


@router.post("/cities/{city}/scenarios/preview", dependencies=[requires("plan")])
def preview(request: Request, city: str, body: PreviewIn) -> Response:
    """What the edits change: entries, residual speeds, barrier checks, scores."""
    planning.check_scheme(body.scheme)
    held = _held(request, city)
    return _json(_preview(held, body.edits, "preview"))


@router.get("/cities/{city}/scenarios", dependencies=[requires("read")])
def list_scenarios(request: Request, city: str) -> Response:
    """The city's scenarios: name, author, times, number of edits, scheme option."""
    rt = _rt(request)
    rt.known_city(city)
    with rt.engine.begin() as conn:
        rows = plans.plan_rows(conn, city)
    return _json([r.as_dict() for r in rows])


def _save(request: Request, city: str, body: ScenarioIn, *, replace: bool) -> Response:
    rt = _rt(request)
    if "\\u0000" in body.model_dump_json():  # PostgreSQL text and JSONB refuse NUL
        raise ValidationError("scenario: a text field holds a NUL character")
    name = planning.valid_name(body.name)
    scheme = planning.check_scheme(body.scheme)
    held = _held(request, city)
    result = _preview(held, body.edits, name)  # the engine validates it before it is stored
    edits, _ = planning.parse_edits(body.edits, ctx=held.ctx)
    who = _principal(request)
    scenario = Scenario(
        name=name,
        city=city,
        author=who.user if who else None,
        created=dt.datetime.now(dt.UTC),
        description=body.description,
        edits=edits,
    )
    row, created = planning.save_scenario(
        rt.store, scenario, scheme=scheme, replace=replace, actor=_actor(request)
    )
    return _json({"scenario": row.as_dict(), "preview": result}, 201 if created else 200)


@router.post("/cities/{city}/scenarios", status_code=201, dependencies=[requires("plan")])
def create_scenario(request: Request, city: str, body: ScenarioIn) -> Response:
    """Save a new scenario; 409 when the city has one of that name (save over it with PUT)."""
    return _save(request, city, body, replace=False)


def _scenario(rt: Runtime, city: str, name: str) -> tuple[Scenario, plans.PlanRow]:
    rt.known_city(city)
    with rt.engine.begin() as conn:
        row = plans.plan_row(conn, city, name)
        if row is None:
            raise NotFoundError(f"city {city!r} has no scenario {name!r}")
        record = stored.pg_read_scenario(conn, city, name, "the PostGIS store")
    return Scenario.model_validate_json(record.document), row


def _document(scenario: Scenario, row: plans.PlanRow) -> dict[str, Any]:
    doc = scenario.model_dump(mode="json")
    return {**doc, **row.as_dict(), "edits": doc["edits"]}


@router.get("/cities/{city}/scenarios/{name}.geojson", dependencies=[requires("read")])
def export_scenario(request: Request, city: str, name: str) -> Response:
    """The scenario's edits as a GeoJSON FeatureCollection (removals and openings with no
    geometry), its name, scheme option and author as foreign members."""
    scenario, row = _scenario(_rt(request), city, name)
    body = planner_report.scenario_geojson(scenario, row)
    disposition = f'attachment; filename="{city}_{planner_report.safe(name)}.geojson"'
    return Response(
        orjson.dumps(body),
        media_type="application/geo+json",
        headers={"Content-Disposition": disposition},
    )


@router.get("/cities/{city}/scenarios/{name}/report", dependencies=[requires("read")])
def report(request: Request, city: str, name: str) -> HTMLResponse:
    """The printable report: changes, checks and a before/after site plan per space."""
    scenario, row = _scenario(_rt(request), city, name)
    held = _held(request, city)
    with held.lock:
        result = planning.preview_result(held, list(scenario.edits), name)
        page = planner_report.report_html(held.ctx, result, scenario, row)
    return HTMLResponse(page)


@router.get("/cities/{city}/scenarios/{name}", dependencies=[requires("read")])
def read_scenario(request: Request, city: str, name: str) -> Response:
    """A stored scenario: its edits, scheme option, author and times."""
    scenario, row = _scenario(_rt(request), city, name)
    return _json(_document(scenario, row))


@router.put("/cities/{city}/scenarios/{name}", dependencies=[requires("plan")])
def replace_scenario(
    request: Request, city: str, name: str, body: Annotated[ScenarioIn, Body()]
) -> Response:
    """Save over the scenario ``name`` (or create it): 200 replaced, 201 created."""
    if planning.valid_name(body.name) != planning.valid_name(name):
        raise ValidationError(
            f"scenario: field 'name': {body.name!r} differs from the address's {name!r}"
        )
    return _save(request, city, body, replace=True)


@router.delete("/cities/{city}/scenarios/{name}", status_code=204, dependencies=[requires("plan")])
def delete_scenario(request: Request, city: str, name: str) -> Response:
    """Delete a scenario (404 if the city has none of that name)."""
    rt = _rt(request)
    rt.known_city(city)
    with rt.engine.begin() as conn:
        plans.lock_scenario(conn, city, name)
        if not plans.delete_scenario(conn, city, name, actor=_actor(request)):
            raise NotFoundError(f"city {city!r} has no scenario {name!r}")
    return Response(status_code=204)
