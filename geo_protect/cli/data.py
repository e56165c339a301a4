"""Commands that load and analyse the data: ``cities``, ``ingest``, ``analyse``, ``reference``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import typer
from rich.table import Table

from geo_protect.cities import City, load_cities
from geo_protect.cli._common import (
    AllOpt,
    CityArg,
    DbOpt,
    StoreOpt,
    app,
    console,
    err_console,
    prefixed,
    require_city,
    run_step,
    settings_for,
    spinner,
    target_cities,
)
from geo_protect.cli.summaries import print_analysis_summary, print_ingest_summary
from geo_protect.settings import Settings

__all__ = ["analyse", "cities", "ingest", "ingest_cities", "reference"]


@app.command()
def cities() -> None:
    """List the cities of the registry and the local data each one has."""
    settings = settings_for()

    def step() -> None:
        table = Table(title="City registry (data/cities.toml)")
        for col in ("slug", "name", "country", "CRS", "local sources"):
            table.add_column(col)
        for city in load_cities(settings.data_dir).values():
            sources = (
                "\n".join(
                    f"{s.kind}: {s.path.name} ({s.data_date or 'date unknown'})"
                    for s in city.sources
                )
                or "[yellow]none: use --source overpass, or add an extract[/]"
            )
            table.add_row(city.slug, city.label, city.country, city.crs, sources)
        console.print(table)

    run_step(step, settings)


@app.command()
def ingest(
    city: CityArg = None,
    all_: AllOpt = False,
    source: Annotated[
        str, typer.Option("--source", help="local (files in data/) or overpass (needs network).")
    ] = "local",
    spaces: Annotated[
        Path | None,
        typer.Option(
            "--spaces", help="The city's own register of spaces (.geojson or .gpkg).", exists=False
        ),
    ] = None,
    store: StoreOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Load cities from OpenStreetMap into the store (replacing each city atomically)."""
    settings = settings_for(store, database_url)
    if source not in ("local", "overpass"):
        raise typer.BadParameter("--source must be local or overpass")

    def step() -> None:
        targets = target_cities(city, all_, settings)
        if spaces is not None and len(targets) != 1:
            raise typer.BadParameter("--spaces goes with one city")
        ingest_cities(
            targets, settings, source="overpass" if source == "overpass" else "local", spaces=spaces
        )

    run_step(step, settings)


def ingest_cities(
    targets: Sequence[City],
    settings: Settings,
    *,
    source: Literal["local", "overpass"] = "local",
    spaces: Path | None = None,
) -> dict[str, Any]:
    from geo_protect import pipeline
    from geo_protect.store import open_store

    db = open_store(settings)
    reports = {}
    for c in targets:
        start = time.perf_counter()
        with spinner() as say:
            data = pipeline.ingest(
                db,
                c,
                source=source,
                spaces=spaces,
                overpass_url=settings.overpass_url,
                timeout=settings.http_timeout,
                progress=prefixed(say, c.name_en),
            )
        reports[c.slug] = data.report
        err_console.print(
            f"[green]✓[/] {c.label}: {sum(data.report.counts.values()):,} features "
            f"in {time.perf_counter() - start:.1f} s"
        )
    print_ingest_summary(targets, reports)
    return reports


@app.command()
def analyse(
    city: CityArg = None, all_: AllOpt = False, store: StoreOpt = None, database_url: DbOpt = None
) -> None:
    """Entry points, crowd capacity and hostile-vehicle approach speeds per public space."""
    settings = settings_for(store, database_url)

    def step() -> None:
        from geo_protect import pipeline
        from geo_protect.store import open_store

        db = open_store(settings)
        metrics = {}
        for c in target_cities(city, all_, settings):
            require_city(db, c)
            data = pipeline.load_city_data(db, c)
            if data["public_space"].empty:
                console.print(f"[yellow]•[/] {c.name_en}: no public spaces to analyse")
                continue
            with spinner() as say:
                results = pipeline.analyse(db, c, data=data, progress=say)
            metrics[c] = results
        print_analysis_summary(metrics)

    run_step(step, settings)


@app.command()
def reference(
    name: Annotated[
        str | None, typer.Argument(help="A table (e.g. vehicle_classes); none lists them.")
    ] = None,
) -> None:
    """Show the reference tables: every threshold with its source and confidence (S/V/I)."""
    settings = settings_for()

    def step() -> None:
        from geo_protect.reference import CONFIDENCE, manifest, reference_dir, table, version

        folder = reference_dir(settings.data_dir)
        if name is None:
            tables = manifest(settings.data_dir).get("tables", {})
            t = Table(title=f"Reference tables, version {version(settings.data_dir)} ({folder})")
            t.add_column("table")
            t.add_column("what")
            for key, what in dict(tables).items() if isinstance(tables, dict) else []:
                t.add_row(key, str(what))
            console.print(t)
            console.print(", ".join(f"{k} = {v}" for k, v in CONFIDENCE.items()))
            return
        frame = table(name, settings.data_dir)
        t = Table(title=f"{name} (version {version(settings.data_dir)})", show_lines=False)
        for col in frame.columns:
            t.add_column(col, overflow="fold")
        for row in frame.itertuples(index=False):
            t.add_row(*("" if pd.isna(v) else str(v) for v in row))
        console.print(t)

    run_step(step, settings)
