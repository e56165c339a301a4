"""The ``scenario`` command: a planner's barrier edits, applied and compared."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from geo_protect.cities import get_city
from geo_protect.cli._common import (
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
)
from geo_protect.scenario.engine import ScenarioResult

__all__ = ["scenario"]


@app.command()
def scenario(
    city: Annotated[str, typer.Argument(help="City slug.")],
    file: Annotated[
        Path, typer.Argument(help="The edits: GeoJSON, or a GeoPackage with plan_barrier_* layers.")
    ],
    name: Annotated[
        str | None, typer.Option(help="Scenario name (default: the file name).")
    ] = None,
    author: Annotated[str | None, typer.Option(help="Who drew it.")] = None,
    out: OutOpt = None,
    store: StoreOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Apply barrier edits to a city and show what changes (the stored baseline is kept)."""
    settings = settings_for(store, database_url)

    def step() -> None:
        from geo_protect import pipeline
        from geo_protect.store import open_store

        db = open_store(settings)
        c = get_city(city)
        require_city(db, c)
        with spinner() as say:
            run = pipeline.run_scenario(
                db,
                c,
                file,
                out or settings.maps_dir,
                name=name,
                author=author,
                actor=cli_actor(),
                progress=say,
            )
        _print(run.result)
        console.print(f"scenario GeoPackage: {run.geopackage}\nreport: {run.report}")

    run_step(step, settings)


def _print(result: ScenarioResult) -> None:
    entries = result.entries
    t = Table(title=f"Scenario {result.name}: entries that change")
    for col in ("entry", "space", "class before → after", "worst km/h before → after"):
        t.add_column(col)
    for uid, row in entries.iterrows():
        t.add_row(
            str(uid),
            str(row["space_uid"]),
            f"{row.get('entry_class_before')} → {row.get('entry_class_after')}",
            f"{_kmh(row.get('worst_speed_kmh_before'))} → {_kmh(row.get('worst_speed_kmh_after'))}",
        )
    console.print(t)
    scores = result.scores
    s = Table(title="Scores that change")
    for col in ("space / threat", "R_100 before → after", "band after"):
        s.add_column(col)
    for uid, row in scores.iterrows():
        s.add_row(
            str(uid),
            f"{_kmh(row.get('risk_100_before'))} → {_kmh(row.get('risk_100_after'))}",
            str(row.get("band_after")),
        )
    console.print(s)
    checks = result.checks
    c = Table(title="Planned barriers (speed reaching each one, high set)")
    for col in ("barrier", "street", "closes", "vehicle", "km/h", "rating covers"):
        c.add_column(col)
    for _, row in checks.iterrows():
        cov = row["covers"]
        c.add_row(
            str(row["barrier_uid"]),
            str(row["street_uid"]),
            "yes" if row["closes"] else "NO (gap or short)",
            str(row["vehicle"]),
            _kmh(row["speed_high_kmh"]),
            "no rating" if pd.isna(cov) else ("yes" if cov else "NO"),
        )
    console.print(c)


def _kmh(value: object) -> str:
    try:
        return f"{float(value):.1f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
