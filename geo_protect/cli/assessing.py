"""Commands on the assessments: ``assess`` and ``why``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo_protect.cities import get_city
from geo_protect.cli._common import (
    AllOpt,
    CityArg,
    DbOpt,
    OutOpt,
    StoreOpt,
    app,
    cli_actor,
    console,
    require_city,
    run_step,
    settings_for,
    spinner,
    target_cities,
)
from geo_protect.cli.summaries import print_scores

__all__ = ["assess", "why"]


@app.command()
def assess(
    city: CityArg = None,
    all_: AllOpt = False,
    from_file: Annotated[
        Path | None,
        typer.Option("--from", help="Assessments filled by assessors (.yaml, .json or .csv)."),
    ] = None,
    out: OutOpt = None,
    store: StoreOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Score every space per threat type (pre-filled from evidence, or from an assessors' file)."""
    settings = settings_for(store, database_url)

    def step() -> None:
        from geo_protect import pipeline
        from geo_protect.store import open_store

        db = open_store(settings)
        targets = target_cities(city, all_, settings)
        if from_file is not None and len(targets) != 1:
            raise typer.BadParameter("--from goes with one city")
        out_dir = out or settings.maps_dir
        for c in targets:
            require_city(db, c)
            with spinner() as say:
                done = pipeline.assess_city(
                    db, c, out_dir, assessment_file=from_file, actor=cli_actor(), progress=say
                )
            print_scores(c, done.scores)
            if done.kept is not None:
                console.print(f"{c.name_en}: {done.kept.summary(str(done.draft))}", soft_wrap=True)
            console.print(f"assessments for the field team: {done.draft}")
            if done.reports:
                console.print(
                    f"{len(done.reports)} printable site reports in {done.reports[0].parent}"
                )

    run_step(step, settings)


@app.command()
def why(
    city: Annotated[str, typer.Argument(help="City slug.")],
    space: Annotated[str, typer.Argument(help="Space uid (e.g. relation/9620387) or name.")],
    threat: Annotated[str, typer.Option("--threat", help="Threat type.")] = "VEHICLE_RAMMING",
    store: StoreOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Explain a stored risk score: inputs, evidence, overrides and formula (read-only)."""
    settings = settings_for(store, database_url)

    def step() -> None:
        from geo_protect import pipeline
        from geo_protect.store import open_store

        db = open_store(settings)
        c = get_city(city, settings.data_dir)
        require_city(db, c)
        text = pipeline.explain(db, c, space, threat.upper()).text()
        console.print(text, markup=False, highlight=False)

    run_step(step, settings)
