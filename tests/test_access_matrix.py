"""Every route × role × city against a real server: allowed, refused (403) or anonymous (401).

The matrix is generated from the app's route table, so a route added without a declared
permission fails :func:`test_every_route_declares_one_permission`, and a declared
permission that the route does not enforce fails the live matrix. What each role may do
is checked twice: against the policy table (:data:`ROLE_PERMISSIONS`), which the matrix
walks, and against a few facts of the issue written out by hand (a viewer may not
acknowledge; an analyst reads every city's scores but no sensor).
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator

import geopandas as gpd
import httpx
import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from sqlalchemy.engine import URL
from starlette.routing import BaseRoute

from geo_protect.access import Scope
from geo_protect.citydata import CityData
from geo_protect.service.access import Requirement, no_city, path_city
from geo_protect.settings import Settings
from tests.live_service import Server, seeded_database

pytestmark = pytest.mark.postgis

#: One user per role in Brașov (the analyst and the admin in every city), and one without.
USERS = {
    "viewer": ["viewer@brasov"],
    "operator": ["operator@brasov"],
    "planner": ["planner@brasov"],
    "assessor": ["assessor@brasov"],
    "analyst": ["analyst@*"],
    "admin": ["admin@*"],
    "nobody": [],
}
#: Both in the store; Brașov in every user's grants, Vilnius only in the "*" ones.
CITIES = ("brasov", "vilnius")


def _walk(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)  # an included router (FastAPI ≥ 0.16x)
        if inner is not None:
            yield from _walk(inner.routes)


def _app_routes() -> list[APIRoute]:
    """Every API route of the service app (no prefixes are used in its routers)."""
    from geo_protect.service.app import create_app

    app = create_app(Settings(store="postgis"), mqtt=False)
    return list(_walk(app.routes))


def _requirements(route: APIRoute) -> list[Requirement]:
    return [d.call for d in route.dependant.dependencies if isinstance(d.call, Requirement)]


def test_every_route_declares_one_permission() -> None:
    routes = _app_routes()
    assert len(routes) > 30
    missing = [f"{sorted(r.methods)} {r.path}" for r in routes if len(_requirements(r)) != 1]
    assert not missing, f"routes without exactly one requires(...): {missing}"


def test_the_declaration_check_can_fail() -> None:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/undeclared")
    def undeclared() -> None: ...

    route = next(r for r in _walk(app.routes) if r.path == "/undeclared")
    assert _requirements(route) == []


def test_the_roles_read_as_the_issue_says() -> None:
    """Hand-written from the issue, independent of the table's layout."""
    op = Scope.of("o", [*map(_g, USERS["operator"])])
    viewer = Scope.of("v", [*map(_g, USERS["viewer"])])
    analyst = Scope.of("a", [*map(_g, USERS["analyst"])])
    planner = Scope.of("p", [*map(_g, USERS["planner"])])
    assessor = Scope.of("s", [*map(_g, USERS["assessor"])])
    assert op.allows("acknowledge", "brasov") and op.allows("live", "brasov")
    assert not viewer.allows("acknowledge", "brasov") and not viewer.allows("live", "brasov")
    assert analyst.allows("read", "vilnius") and analyst.allows("compare", "brasov")
    assert not analyst.allows("live", "brasov") and not analyst.allows("plan", "vilnius")
    assert planner.allows("plan", "brasov") and not planner.allows("assess", "brasov")
    assert assessor.allows("assess", "brasov") and not assessor.allows("plan", "brasov")
    assert not op.allows("read", "vilnius") and not op.allows("admin")


def _g(text: str) -> object:
    from geo_protect.cli.users import parse_grant

    return parse_grant(text)


# -- the live matrix ------------------------------------------------------------------------

#: Routes that end the credential they are called with.
ENDS_CREDENTIAL = frozenset({"/auth/logout", "/auth/refresh"})
_SAMPLES = {
    "layer": "public_space",
    "featureId": "nope",
    "z": "14",
    "x": "9300",
    "y": "5800",
    "name": "no-such-scenario",
    "token_id": "999999",
    "role": "viewer",
    "user": "nobody",
}


def _fill(path: str, city: str, alert_id: int) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        if name == "city":
            return city
        if name == "collection":
            return f"{city}.public_space"
        if name == "alert_id":
            return str(alert_id)
        if name == "name" and path.startswith("/admin/users/"):
            return "nobody"
        return _SAMPLES.get(name, "x")

    return re.sub(r"\{([^}]+)\}", one, path)


def _expected_city(route: APIRoute, requirement: Requirement, city: str) -> str | None:
    if requirement.city is no_city:
        return None
    if requirement.city is path_city or "{collection}" in route.path:
        return city
    return "brasov" if "{alert_id}" in route.path else city  # the seeded alert's city


@pytest.fixture(scope="module")
def server(
    pg_admin_url: URL, centre_data: CityData, centre_layers: dict[str, gpd.GeoDataFrame]
) -> Iterator[Server]:
    """A server on the Brașov centre clip and the Vilnius old town (analysed here, ~5 s)."""
    from geo_protect.cities import get_city
    from geo_protect.osm.ingest import ingest_city
    from geo_protect.pipeline import evaluate
    from geo_protect.store.postgis import PostGISStore

    vilnius = get_city("vilnius")
    data = ingest_city(vilnius)
    layers = evaluate(vilnius, data)
    name = "geo_protect_test_matrix"
    with seeded_database(pg_admin_url, name, centre_data, dict(centre_layers)) as url:
        with PostGISStore(url, reference_version="test") as store:
            store.replace_city("vilnius", {**data.layers, **layers}, data.report)  # type: ignore[dict-item]
        with Server(url, workers=1, mqtt=False) as s:
            yield s


def _alert(server: Server) -> int:
    engine = sa.create_engine(server.database_url)
    with engine.begin() as conn:
        alert_id = conn.execute(
            sa.text(
                "INSERT INTO geo_protect.alert (city, alert_key, kind, severity) "
                "VALUES ('brasov', :key, 'density', 'Severe') RETURNING alert_id"
            ),
            {"key": f"matrix-{uuid.uuid4()}"},
        ).scalar_one()
    engine.dispose()
    return int(alert_id)


def _status(client: httpx.Client, method: str, url: str) -> int:
    body = None if method in ("GET", "DELETE") else b"{}"
    request = client.build_request(
        method, url, content=body, headers={"Content-Type": "application/json"}
    )
    response = client.send(request, stream=True)  # the event stream never ends by itself
    response.close()
    return response.status_code


def test_every_route_role_and_city(server: Server) -> None:
    alert_id = _alert(server)
    tokens = {role: server.token_for(f"m-{role}", grants) for role, grants in USERS.items()}
    scopes = {role: Scope.of(role, [*map(_g, g)]) for role, g in USERS.items()}  # type: ignore[arg-type]
    wrong: list[str] = []
    checked = 0
    clients = {role: server.client(tokens[role], timeout=120) for role in USERS}
    anonymous = httpx.Client(base_url=server.url, timeout=120)
    try:
        for route, city in itertools.product(_app_routes(), CITIES):
            (requirement,) = _requirements(route)
            for method in sorted(route.methods - {"HEAD"}):
                url = _fill(route.path, city, alert_id)
                status = _status(anonymous, method, url)
                public = requirement.permission == "public"
                if (status == 401) == public:
                    wrong.append(f"anonymous {method} {url}: {status}")
                if public:
                    continue
                where = _expected_city(route, requirement, city)
                for role in USERS:
                    allowed = scopes[role].allows(requirement.permission, where)
                    if route.path in ENDS_CREDENTIAL:  # a token of its own, not the shared one
                        with server.client(server.token_for(f"m-{role}", [])) as once:
                            status = _status(once, method, url)
                    else:
                        status = _status(clients[role], method, url)
                    checked += 1
                    if (allowed and status in (401, 403)) or (not allowed and status != 403):
                        wrong.append(f"{role} {method} {url}: {status}, allowed={allowed}")
    finally:
        anonymous.close()
        for client in clients.values():
            client.close()
    assert checked > 300
    assert not wrong, "\n".join(wrong)


def test_analyst_reads_scores_but_no_sensor_and_a_viewer_may_not_acknowledge(
    server: Server,
) -> None:
    alert_id = _alert(server)
    viewer = server.client(server.token_for("h-viewer", ["viewer@brasov"]))
    analyst = server.client(server.token_for("h-analyst", ["analyst@*"]))
    with viewer, analyst:
        ack = viewer.post(f"/alerts/{alert_id}/acknowledge", json={"note": "seen"})
        assert ack.status_code == 403
        assert analyst.get("/cities/brasov/spaces.geojson").status_code == 200
        scores = analyst.get("/cities/vilnius/spaces.geojson")
        assert scores.status_code == 200 and len(scores.json()["features"]) > 0
        assert analyst.get("/cities/brasov/sensors").status_code == 403
        assert analyst.get("/cities/vilnius/state").status_code == 403
        assert analyst.get(f"/alerts/{alert_id}").status_code == 403
        assert [c["slug"] for c in analyst.get("/cities").json()] == ["brasov", "vilnius"]
        assert [c["slug"] for c in viewer.get("/cities").json()] == ["brasov"]
        assert viewer.get("/cities/vilnius/spaces.geojson").status_code == 403
