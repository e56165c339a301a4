"""Ingest benchmark: the Brașov municipal extract into each store vs osm2pgsql.

Run with ``.venv/bin/python benchmarks/bench_ingest.py`` (needs PostgreSQL with PostGIS on
127.0.0.1:5432 and Debian's ``osm2pgsql``). In one run it times:

- ``osm2pgsql`` loading ``data/osm/brasov/brasov.osm.pbf`` into a scratch PostGIS
  database (the reference, C++);
- ``geo_protect`` reading, classifying and clipping the same file (``ingest_city``), then
  writing it to the GeoPackage store and to the PostGIS store.

and prints each time with its ratio to osm2pgsql. Target: ingest within 2× osm2pgsql.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from _common import console, peak_mib, report, scratch_database, timed

from geo_protect.cities import get_city
from geo_protect.osm.ingest import ingest_city
from geo_protect.store.geopackage import GeoPackageStore
from geo_protect.store.postgis import PostGISStore

REPEAT = 3


def main() -> None:
    osm2pgsql = shutil.which("osm2pgsql")
    if osm2pgsql is None:
        raise SystemExit("osm2pgsql not found: apt-get install osm2pgsql")
    city = get_city("brasov")
    pbf = city.path(city.sources[0])
    console.print(f"extract: {pbf} ({pbf.stat().st_size / 1e6:.1f} MB), {REPEAT} runs each, median")

    with scratch_database("geo_protect_bench") as dsn:
        host_db = dsn.split("@", 1)[1]
        host, dbname = host_db.split("/", 1)
        cmd = [
            osm2pgsql,
            "--create",
            "-d",
            dbname,
            "-U",
            "postgres",
            "-H",
            host.split(":")[0],
            "-P",
            host.split(":")[1],
            "--cache",
            "200",
            "--number-processes",
            "2",
            str(pbf),
        ]

        def run_osm2pgsql() -> None:
            subprocess.run(cmd, check=True, capture_output=True)

        t_ref, _ = timed(run_osm2pgsql, repeat=REPEAT)

        t_read, data = timed(lambda: ingest_city(city), repeat=REPEAT)
        peak, _ = peak_mib(lambda: ingest_city(city))

        with tempfile.TemporaryDirectory() as folder:
            gpkg = GeoPackageStore(Path(folder))
            t_gpkg, _ = timed(
                lambda: gpkg.replace_city(city.slug, data.layers, data.report), repeat=REPEAT
            )

        pg = PostGISStore(f"postgresql+psycopg://{dsn.split('://', 1)[1]}")
        t_pg, _ = timed(lambda: pg.replace_city(city.slug, data.layers, data.report), repeat=REPEAT)

    n = sum(data.report.counts.values())
    report(
        "Ingest of the Brașov municipality (brasov.osm.pbf)",
        [
            ("osm2pgsql --create (default style)", t_ref, "C++ reference"),
            ("geo_protect: read + classify + clip", t_read, f"{n:,} features, peak {peak:.0f} MiB"),
            ("geo_protect: ingest → GeoPackage store", t_read + t_gpkg, f"write {t_gpkg:.2f} s"),
            ("geo_protect: ingest → PostGIS store", t_read + t_pg, f"write {t_pg:.2f} s (COPY)"),
        ],
        reference=t_ref,
        target=2.0,
        name="ingest",
        keys=["osm2pgsql", "read", "read_gpkg", "read_postgis"],
    )


if __name__ == "__main__":
    main()
