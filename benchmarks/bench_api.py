"""Standard read APIs benchmark: OGC API – Features items/s and vector tiles/s vs tipg.

Run with ``.venv/bin/python benchmarks/bench_api.py`` (tipg from the ``bench`` extra).
It seeds a throwaway PostGIS database with the Brașov municipality, starts
``geo-protect serve`` and, on the same database, **tipg** (the FastAPI implementation of
the same standards, one worker each), then in the same run:

Ours answers behind its authentication (the test server's admin token on every request,
so each request also pays the credential check and the city scope); tipg is open.

* **items**: the whole ``building`` layer (≈29,000 footprints) read in pages of 1,000, by
  our ``/ogc/collections/brasov.building/items`` and by tipg's
  ``/collections/geo_protect.building/items?city=brasov``;
* **tiles**: every WebMercatorQuad tile over the city's box at zooms 14-16 of the same
  layer, ours ``/tiles/brasov/building/{z}/{x}/{y}.mvt`` and tipg's
  ``/collections/geo_protect.building/tiles/WebMercatorQuad/{z}/{x}/{y}`` asked for the
  same properties (``uid``, ``kind``).

Target ratio (ours / tipg) ≥ 1.0 for both. Last line, for scripts:
``api items_ratio=… tiles_ratio=… items_per_s=… tiles_per_s=…``.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _common import console, scratch_database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.live_service import Server, free_port, seed

PAGE = 1000
ZOOMS = (14, 15, 16)


def _seed(dsn: str) -> tuple[float, float, float, float]:
    from geo_protect.cities import get_city
    from geo_protect.osm.ingest import ingest_city
    from geo_protect.pipeline import evaluate

    city = get_city("brasov")
    data = ingest_city(city)
    seed(dsn.replace("postgresql://", "postgresql+psycopg://"), data, dict(evaluate(city, data)))
    b = data["building"].total_bounds
    return float(b[0]), float(b[1]), float(b[2]), float(b[3])


def _tiles(box: tuple[float, float, float, float]) -> list[tuple[int, int, int]]:
    def tile(lon: float, lat: float, z: int) -> tuple[int, int]:
        n = 2**z
        y = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
        return int((lon + 180.0) / 360.0 * n), int(y)

    out = []
    for z in ZOOMS:
        x0, y0 = tile(box[0], box[3], z)
        x1, y1 = tile(box[2], box[1], z)
        out += [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    return out


class _Tipg:
    """tipg under uvicorn on a free port, serving the ``geo_protect`` schema."""

    def __init__(self, dsn: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DATABASE_URL": dsn, "TIPG_DB_SCHEMAS": '["geo_protect"]'}
        cmd = [sys.executable, "-m", "uvicorn", "tipg.main:app", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*cmd, "--log-level", "warning"], env=env, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/collections", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("tipg did not start")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=20)


def _items(
    url: str, params: dict[str, str], headers: dict[str, str] | None = None
) -> tuple[float, int]:
    """Items per second reading a collection page by page, and how many were read."""
    got, offset = 0, 0
    t = time.perf_counter()
    with httpx.Client(timeout=120, headers=headers) as c:
        while True:
            page = c.get(url, params={**params, "limit": PAGE, "offset": offset})
            page.raise_for_status()
            n = len(page.json()["features"])
            got += n
            offset += n
            if n < PAGE:
                break
    return got / (time.perf_counter() - t), got


def _tile_rate(
    template: str, tiles: list[tuple[int, int, int]], headers: dict[str, str] | None = None
) -> tuple[float, int]:
    size = 0
    t = time.perf_counter()
    with httpx.Client(timeout=120, headers=headers) as c:
        for z, x, y in tiles:
            r = c.get(template.format(z=z, x=x, y=y))
            if r.status_code not in (200, 204):
                raise RuntimeError(f"tile {z}/{x}/{y}: {r.status_code} {r.text[:200]}")
            size += len(r.content)
    return len(tiles) / (time.perf_counter() - t), size


def main() -> None:
    with scratch_database("geo_protect_bench_api") as dsn:
        console.print("seeding the Brașov municipality…")
        box = _seed(dsn)
        url = dsn.replace("postgresql://", "postgresql+psycopg://")
        tiles = _tiles(box)
        tipg = _Tipg(dsn)
        try:
            with Server(url, workers=1, mqtt=False) as ours:
                # ours behind its authentication (an admin's API token), tipg open
                ours_items = f"{ours.url}/ogc/collections/brasov.building/items"
                for _ in range(2):  # warm both (connection pools, catalogs)
                    _items(ours_items, {}, ours.headers)
                    _items(f"{tipg.url}/collections/geo_protect.building/items", {"city": "brasov"})
                our_items, n_ours = _items(ours_items, {}, ours.headers)
                tipg_items, n_tipg = _items(
                    f"{tipg.url}/collections/geo_protect.building/items", {"city": "brasov"}
                )
                our_tiles, our_bytes = _tile_rate(
                    ours.url + "/tiles/brasov/building/{z}/{x}/{y}.mvt", tiles, ours.headers
                )
                tipg_tiles, tipg_bytes = _tile_rate(
                    tipg.url
                    + "/collections/geo_protect.building/tiles/WebMercatorQuad/{z}/{x}/{y}",
                    tiles,
                )
        finally:
            tipg.stop()
    console.print(
        f"items: ours {our_items:,.0f}/s ({n_ours:,}), tipg {tipg_items:,.0f}/s ({n_tipg:,}); "
        f"tiles ({len(tiles)} at z {ZOOMS[0]}-{ZOOMS[-1]}): ours {our_tiles:,.1f}/s "
        f"({our_bytes / 1e6:.1f} MB), tipg {tipg_tiles:,.1f}/s ({tipg_bytes / 1e6:.1f} MB)"
    )
    print(
        f"api items_ratio={our_items / tipg_items:.2f} tiles_ratio={our_tiles / tipg_tiles:.2f} "
        f"items_per_s={our_items:.0f} tiles_per_s={our_tiles:.1f} n_tiles={len(tiles)}"
    )


if __name__ == "__main__":
    main()
