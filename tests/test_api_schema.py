"""The standard read APIs against their own OpenAPI document, by schemathesis: generated
requests to every ``/ogc`` and ``/tiles`` operation — the stored layers', and the live
tables' and scenarios' (``/ogc/collections/{city}.readings`` …) — get no 5xx and no
response that breaks the document (status, content type, body schema).

The requests carry the test server's admin token (one header, ``api_server.headers``); the
live tables hold a sensor and readings, so their pages are not all empty.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import geopandas as gpd
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy.engine import URL

from geo_protect.citydata import CityData
from tests.live_service import Server, seeded_server

pytestmark = [pytest.mark.postgis]

#: Collections of each city besides its stored layers, each with four operations.
LIVE = ("readings", "alerts", "sensors", "live_state", "scenarios", "scenario_barriers")


@pytest.fixture(scope="module")
def api_server(
    pg_admin_url: URL, centre_data: CityData, centre_layers: dict[str, gpd.GeoDataFrame]
) -> Iterator[Server]:
    name = f"geo_protect_schema_{os.getpid()}"
    data, layers = centre_data, dict(centre_layers)
    with seeded_server(pg_admin_url, name, data, layers, workers=1, mqtt=False) as server:
        yield server


@pytest.fixture(scope="module")
def live_rows(api_server: Server, centre_layers: dict[str, gpd.GeoDataFrame]) -> None:
    """A sensor and five readings, stored through the API."""
    space = str(centre_layers["space_metric"].index[0])
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    with api_server.client(timeout=60) as client:
        sensor = {"sensor_id": "schema-1", "kind": "area_counter", "space_uid": space}
        r = client.post(
            "/cities/brasov/sensors", json=[{**sensor, "installed_at": "2025-01-01T00:00:00Z"}]
        )
        assert r.status_code == 201, r.text
        readings = [
            {"sensor_id": "schema-1", "observed_at": (now - dt.timedelta(minutes=k)).isoformat(),
             "present": 3 * k}
            for k in range(5)
        ]  # fmt: skip
        assert client.post("/cities/brasov/readings", json=readings).status_code == 200


@pytest.mark.usefixtures("live_rows")
def test_read_apis_keep_to_their_schema(api_server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server.url}/openapi.json")
    operations = [r.ok() for r in schema.include(path_regex="^/(ogc|tiles)").get_all_operations()]
    paths = {op.path for op in operations}
    for name in LIVE:
        assert f"/ogc/collections/{{city}}.{name}/items" in paths, name
    # landing, conformance, collections, the stored layers' four, the live ones' 6 × 4, tiles
    assert len(operations) >= 7 + 4 * len(LIVE) + 2
    headers = api_server.headers
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers)

        check()


#: Operations left out of the whole-API runs: they end the admin's own credential, or
#: never end (the event stream).
_NOT_GENERATED = "^/(auth/(logout|refresh|password)|cities/[^/]+/events)$"


#: Routes that answer without a login.
_PUBLIC = {"/healthz", "/readyz", "/login", "/auth/login", "/ogc", "/ogc/conformance"}


def _no_server_error(
    operation: schemathesis.APIOperation, headers: dict[str, str], seen: list[str]
) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=headers, timeout=120)
        what = f"{case.method} {case.formatted_path}: {response.status_code}"
        assert response.status_code < 500, what
        if not headers and operation.path not in _PUBLIC:
            assert response.status_code == 401, what
        seen.append(what)

    check()


@pytest.mark.usefixtures("live_rows")
@pytest.mark.parametrize("credentials", [True, False], ids=["admin", "anonymous"])
def test_every_operation_answers_without_a_server_error(
    api_server: Server, credentials: bool
) -> None:
    """Generated requests to every operation of the app, with the admin's token and with
    none: no 5xx, and without credentials nothing but 401 (but for the public routes)."""
    schema = schemathesis.openapi.from_url(f"{api_server.url}/openapi.json")
    chosen = schema.exclude(path_regex=_NOT_GENERATED).get_all_operations()
    operations = [r.ok() for r in chosen]
    assert len(operations) > 50
    seen: list[str] = []
    for operation in operations:
        _no_server_error(operation, api_server.headers if credentials else {}, seen)
    assert len(seen) >= len(operations)
