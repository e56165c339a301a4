"""The live commands: ``serve`` the control room, ``replay`` real counts, import ``sensors``."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from geo_protect.cities import get_city
from geo_protect.cli._common import (
    DbOpt,
    app,
    cli_actor,
    console,
    require_city,
    run_step,
    settings_for,
)
from geo_protect.errors import ConfigError, DataSourceError

__all__ = ["replay", "sensors_import", "serve"]

sensors_app = typer.Typer(help="The sensor register of the live service.", no_args_is_help=True)
app.add_typer(sensors_app, name="sensors")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    mqtt: Annotated[bool, typer.Option(help="Subscribe to the MQTT broker.")] = True,
    database_url: DbOpt = None,
) -> None:
    """Run the live control-room service (FastAPI under uvicorn) on PostGIS."""
    settings = settings_for("postgis" if database_url else None, database_url)

    def step() -> None:
        import uvicorn

        from geo_protect.service.logs import log_config
        from geo_protect.service.runtime import require_postgis
        from geo_protect.store import PostGISStore

        require_postgis(settings)
        settings.checked_secret()  # production refuses the default secret, before anything
        PostGISStore(settings.database_url).close()  # migrate once, before any worker
        os.environ["GEO_PROTECT_STORE"] = "postgis"
        os.environ["GEO_PROTECT_DATABASE_URL"] = settings.database_url
        os.environ["GEO_PROTECT_SERVICE_MQTT"] = "1" if mqtt else "0"
        console.print(f"control room on http://{host}:{port}/control/<city> ({workers} worker(s))")
        uvicorn.run(
            "geo_protect.service.asgi:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=log_config(),
            timeout_graceful_shutdown=5,
        )

    run_step(step, settings)


@app.command()
def replay(
    city: Annotated[str, typer.Argument(help="City slug.")],
    via: Annotated[str, typer.Option(help="mqtt or http.")] = "http",
    speed: Annotated[
        float, typer.Option(min=1.0, help="Time compression (600: 1 h in 6 s).")
    ] = 600.0,
    url: Annotated[
        str, typer.Option(help="The service (for --via http).")
    ] = "http://127.0.0.1:8000",
    hours: Annotated[int | None, typer.Option(min=1, help="Stop after this many hours.")] = None,
    database_url: DbOpt = None,
) -> None:
    """Stream the real Melbourne pedestrian counts onto a city's spaces, time-compressed.

    Over HTTP the readings are posted with the API token in ``GEO_PROTECT_API_TOKEN``
    (an operator's, from ``geo-protect users token``).

    The sensors are registered first (one per space, ranked by expected crowd); each
    reading is stamped with the moment it is sent.
    """
    if via not in ("mqtt", "http"):
        raise typer.BadParameter("--via must be mqtt or http")
    settings = settings_for("postgis", database_url)

    def step() -> None:
        from geo_protect.live.replay import melbourne_counts, replay_plan, replay_readings
        from geo_protect.store import PostGISStore
        from geo_protect.store import live as live_store

        c = get_city(city)
        db = PostGISStore(settings.database_url)
        require_city(db, c)
        counts = melbourne_counts(settings.data_dir)
        metric = db.read_layer(c.slug, "space_metric")
        sensors, mapping = replay_plan(counts, metric, city=c.slug)
        live_store.register_sensors(
            db.engine, c.slug, sensors, source="replay:melbourne", actor=cli_actor()
        )
        console.print(
            f"{len(sensors)} Melbourne sensors (City of Melbourne, Jan 2019) re-mapped onto "
            f"{c.name}'s busiest spaces; these are not {c.name}'s own counts"
        )
        token = settings.api_token.get_secret_value() if settings.api_token else None
        send = _sender(via, c.slug, url, settings.mqtt_host, settings.mqtt_port, token)
        start = dt.datetime.now(dt.UTC)
        sent = 0
        for k, (due, batch) in enumerate(
            replay_readings(counts, mapping, start=start, speed=speed)
        ):
            if hours is not None and k >= hours:
                break
            wait = due - (dt.datetime.now(dt.UTC) - start).total_seconds()
            if wait > 0:
                time.sleep(wait)
            send(batch)
            sent += len(batch)
            console.print(
                f"hour {k + 1}: {len(batch)} readings sent ({sent} in all)", highlight=False
            )

    run_step(step, settings)


def _sender(
    via: str, city: str, url: str, host: str, port: int, token: str | None
) -> Callable[[list[Any]], None]:
    """A function sending one batch of readings to the service (HTTP) or the broker."""
    import orjson

    if via == "http":
        import httpx

        if not token:
            raise ConfigError(
                "GEO_PROTECT_API_TOKEN: --via http needs an API token of an operator of "
                f"{city} (geo-protect users token NAME)"
            )
        auth = {"Authorization": f"Bearer {token}"}
        web = httpx.Client(base_url=url, timeout=30, headers=auth)

        def post(batch: list[Any]) -> None:
            r = web.post(f"/cities/{city}/readings", content=orjson.dumps(batch, default=str))
            if r.status_code != 200:
                raise DataSourceError(f"the service refused a batch: {r.status_code} {r.text}")

        return post
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    broker = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        broker.connect(host, port)
    except OSError as exc:
        raise DataSourceError(f"no MQTT broker at {host}:{port} ({exc})") from exc
    broker.loop_start()

    def publish(batch: list[Any]) -> None:
        payload = orjson.dumps(batch, default=str)
        info = broker.publish(f"geo_protect/{city}/readings", payload, qos=1)
        info.wait_for_publish(timeout=30)
        if not info.is_published():
            raise DataSourceError(f"the MQTT broker at {host}:{port} did not take a batch")

    return publish


@sensors_app.command("import")
def sensors_import(
    city: Annotated[str, typer.Argument(help="City slug.")],
    file: Annotated[Path, typer.Argument(help="Sensors: CSV or GeoJSON.")],
    database_url: DbOpt = None,
) -> None:
    """Register (or update) a city's sensors from a file, in one transaction."""
    settings = settings_for("postgis", database_url)

    def step() -> None:
        from geo_protect.live.sensors import read_sensor_file
        from geo_protect.store import PostGISStore
        from geo_protect.store import live as live_store

        c = get_city(city)
        db = PostGISStore(settings.database_url)
        require_city(db, c)
        spaces = db.read_layer(c.slug, "public_space")
        frame = read_sensor_file(file, city=c, spaces=spaces)
        n = live_store.register_sensors(
            db.engine, c.slug, frame, source=file.name, actor=cli_actor()
        )
        console.print(f"{n} sensor(s) of {c.name} registered from {file.name}")

    run_step(step, settings)
