"""The live service as the tests meet it: a real PostGIS database and ``geo-protect serve``.

:func:`seeded_database` makes a scratch PostGIS database holding the Brașov centre clip,
analysed and scored (what the service reads: spaces, space metrics, assessments).
:class:`Server` runs ``geo-protect serve`` in a subprocess on a free port against it —
uvicorn, real workers, the real MQTT broker — and waits for ``/readyz``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import URL

from geo_protect.citydata import CityData
from tests.conftest import create_database, drop_database
from tests.needs import unavailable

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mqtt_answers(host: str = "127.0.0.1", port: int = 1883) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def seed(url: str, data: CityData, layers: dict[str, object]) -> None:
    """Write the city's source and analysis layers into the PostGIS store at ``url``."""
    from geo_protect.store.postgis import PostGISStore

    with PostGISStore(url, reference_version="test") as store:
        store.replace_city("brasov", {**data.layers, **layers}, data.report)  # type: ignore[dict-item]


@contextmanager
def seeded_database(
    admin: URL, name: str, data: CityData, layers: dict[str, object]
) -> Iterator[str]:
    """A scratch PostGIS database with the centre clip; dropped afterwards."""
    url = create_database(admin, name, postgis=True).render_as_string(hide_password=False)
    try:
        seed(url, data, layers)
        yield url
    finally:
        drop_database(admin, name)


#: The user the tests administer the service as.
ADMIN = "test-admin"
#: The password of every user the tests create.
PASSWORD = "correct horse battery staple"


def issue_token(database_url: str, name: str, grants: list[str]) -> str:
    """A fresh API token of user ``name`` in the store at ``database_url``.

    The user is created with ``grants`` (``ROLE@CITY``) and :data:`PASSWORD` if they do
    not exist. Signed with the development secret, which the test servers run with.
    """
    from geo_protect.cli.users import parse_grant
    from geo_protect.errors import ConflictError
    from geo_protect.settings import DEV_SECRET
    from geo_protect.store import PostGISStore, users
    from geo_protect.store.audit import Actor

    actor = Actor("tests", None, "cli")
    with PostGISStore(database_url, reference_version="test") as db:
        with suppress(ConflictError):
            users.add_user(
                db.engine,
                name,
                PASSWORD,
                actor=actor,
                cities=db.cities(),
                grants=[parse_grant(g) for g in grants],
            )
        secret, _ = users.issue_credential(
            db.engine, name, "token", key=DEV_SECRET, lifetime_s=86400.0, label="tests", actor=actor
        )
    return secret


class Server:
    """``geo-protect serve`` in a subprocess (with an admin's token once started)."""

    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 2,
        mqtt: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.workers = workers
        self.mqtt = mqtt
        self.env = dict(env or {})  # extra ``GEO_PROTECT_*`` settings of the service
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = REPO / ".pytest-live" / f"serve-{self.port}.log"
        self.token = ""  # an admin's API token, once started
        self.headers: dict[str, str] = {}  # its Authorization header

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client of the server, as the admin (or as the holder of ``token``)."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, **kwargs)

    def token_for(self, name: str, grants: list[str]) -> str:
        """An API token of user ``name`` (created with ``grants``, ROLE@CITY, if new)."""
        return issue_token(self.database_url, name, grants)

    def start(self, timeout: float = 60.0) -> Server:
        # a consumer group of its own: sessions of earlier servers get no share of its messages
        env = {
            **os.environ,
            "GEO_PROTECT_STORE": "postgis",
            "GEO_PROTECT_MQTT_GROUP": f"t{self.port}",
            **self.env,
        }
        host = env.get("GEO_PROTECT_MQTT_HOST", "127.0.0.1")
        port = int(env.get("GEO_PROTECT_MQTT_PORT", "1883"))
        if self.mqtt and not mqtt_answers(host, port):
            unavailable(f"the MQTT broker is not answering on {host}:{port} (mosquitto)")
        self.log.parent.mkdir(exist_ok=True)
        args = [sys.executable, "-m", "geo_protect.cli", "serve", "--port", str(self.port)]
        args += ["--workers", str(self.workers), "--database-url", self.database_url]
        args += [] if self.mqtt else ["--no-mqtt"]
        with self.log.open("wb") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"geo-protect serve exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    self.token = issue_token(self.database_url, ADMIN, ["admin@*"])
                    self.headers = {"Authorization": f"Bearer {self.token}"}
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"geo-protect serve did not get ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def seeded_server(
    admin: URL, name: str, data: CityData, layers: dict[str, object], **server: Any
) -> Iterator[Server]:
    """A :class:`Server` on a fresh seeded database (both gone afterwards)."""
    with seeded_database(admin, name, data, layers) as url, Server(url, **server) as running:
        yield running
