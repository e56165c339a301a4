"""The standard read APIs against their own OpenAPI document, by schemathesis: generated
requests to every ``/ogc`` and ``/tiles`` operation get no 5xx and no response that
breaks the document (status, content type, body schema)."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def api_server(
    pg_admin_url: URL, centre_data: CityData, centre_layers: dict[str, gpd.GeoDataFrame]
) -> Iterator[Server]:
    name = f"geo_protect_schema_{os.getpid()}"
    data, layers = centre_data, dict(centre_layers)
    with seeded_server(pg_admin_url, name, data, layers, workers=1, mqtt=False) as server:
        yield server


def test_read_apis_keep_to_their_schema(api_server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server.url}/openapi.json")
    operations = [r.ok() for r in schema.include(path_regex="^/(ogc|tiles)").get_all_operations()]
    assert len(operations) >= 8  # landing, conformance, collections, items, item, queryables, tiles
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate()

        check()
