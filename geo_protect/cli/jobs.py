"""Commands that produce the outputs: ``compare``, ``maps``, ``export`` and the main job ``run``."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from geo_protect.cities import load_cities
from geo_protect.cli._common import (
    AllOpt,
    CityArg,
    DbOpt,
    OutOpt,
    StoreOpt,
    app,
    cli_actor,
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
from geo_protect.errors import GeoProtectError

__all__ = ["compare", "export", "maps", "run"]


@app.command()
def compare(out: OutOpt = None, store: StoreOpt = None, database_url: DbOpt = None) -> None:
    """Rank hotspots across every city (CSV, charts and a self-contained HTML report)."""
    settings = settings_for(store, database_url)

    def step() -> None:
        from geo_protect import pipeline
        from geo_protect.store import open_store

        report = pipeline.compare_cities(
            open_store(settings),
            load_cities(settings.data_dir).values(),
            (out or settings.maps_dir) / "comparison",
        )
        console.print(f"comparison report: {report}")

    run_step(step, settings)


@app.command()
def maps(
    city: CityArg = None,
    all_: AllOpt = False,
    out: OutOpt = None,
    store: StoreOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Write the interactive risk map of each city and an index page (offline HTML)."""
    settings = settings_for(store, database_url)

    def step() -> None:
        from geo_protect import pipeline
        from geo_protect.store import open_store

        db = open_store(settings)
        outcomes = {
            c.slug: pipeline.load_outcome(db, c) for c in target_cities(city, all_, settings)
        }
        with spinner() as say:
            index = pipeline.draw_maps(
                outcomes,
                out or settings.maps_dir,
                tile_url=settings.tile_url,
                tile_attribution=settings.tile_attribution,
                progress=say,
            )
        console.print(f"maps index: {index}")

    run_step(step, settings)


@app.command()
def export(
    city: CityArg = None,
    all_: AllOpt = False,
    out: OutOpt = None,
    fmt: Annotated[
        list[str] | None, typer.Option("--format", help="geojson, gpkg and/or csv (default: all).")
    ] = None,
    store: StoreOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Export spaces, entries, approaches and scores (GeoJSON, GeoPackage, CSV)."""
    settings = settings_for(store, database_url)

    def step() -> None:
        from geo_protect.outputs.exports import EXPORT_FORMATS, export_city, exportable_layers
        from geo_protect.store import open_store

        db = open_store(settings)
        for c in target_cities(city, all_, settings):
            require_city(db, c)
            layers = exportable_layers(db, c.slug)
            folder = (out or settings.maps_dir) / "exports" / c.slug
            files = export_city(c.slug, layers, folder, formats=fmt or EXPORT_FORMATS)
            console.print(f"{c.name_en}: {len(files)} files in {folder}")

    run_step(step, settings)


@app.command()
def run(
    store: StoreOpt = None,
    database_url: DbOpt = None,
    out: OutOpt = None,
) -> None:
    """The main job: ingest, analyse, assess every city with data; compare; draw the maps."""
    settings = settings_for(store, database_url)

    def step() -> None:
        from geo_protect import pipeline
        from geo_protect.store import open_store

        db = open_store(settings)
        out_dir = out or settings.maps_dir
        targets = list(load_cities(settings.data_dir).values())
        outcomes: dict[str, pipeline.CityOutcome] = {}
        failed: list[str] = []
        for c in targets:
            start = time.perf_counter()
            try:
                with spinner() as say:
                    outcome = pipeline.run_city(
                        db, c, out_dir, actor=cli_actor(), progress=prefixed(say, c.name_en)
                    )
            except GeoProtectError as exc:  # this city stops; the others run
                err_console.print(f"[bold red]error:[/] {c.label}: {exc}", soft_wrap=True)
                failed.append(c.name_en)
                outcomes[c.slug] = pipeline.load_outcome(db, c)
                continue
            outcomes[c.slug] = outcome
            err_console.print(f"[green]✓[/] {c.label} in {time.perf_counter() - start:.1f} s")
            if outcome.kept is not None:
                console.print(
                    f"{c.name_en}: {outcome.kept.summary(str(outcome.kept_from))}", soft_wrap=True
                )
        reports = {slug: o.report for slug, o in outcomes.items()}
        analysed = {o.city: o.layers for o in outcomes.values() if "space_metric" in o.layers}
        print_ingest_summary(targets, reports)
        if analysed:
            print_analysis_summary(analysed)
        with spinner() as say:
            say("cross-city comparison")
            report = pipeline.compare_cities(db, targets, out_dir / "comparison")
            index = pipeline.draw_maps(
                outcomes,
                out_dir,
                tile_url=settings.tile_url,
                tile_attribution=settings.tile_attribution,
                progress=say,
            )
        console.print(f"[bold]maps:[/] {index}")
        console.print(f"[bold]comparison:[/] {report}")
        if failed:
            raise GeoProtectError(f"the run stopped for {', '.join(failed)} (see above)")

    run_step(step, settings)
