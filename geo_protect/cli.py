"""The ``geo-protect`` command line: thin wiring over the library.

Every command resolves settings, calls library functions and prints a summary. No
geometry or scoring logic lives here. Errors of the :class:`GeoProtectError` family
end the command with their message and exit code 2; nothing is half-written because
every store write is one transaction.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from geo_protect._errors import GeoProtectError
from geo_protect.cities import City, get_city, load_cities
from geo_protect.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    help="geo_protect: protect crowded public spaces, from OpenStreetMap to interactive risk maps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

CityArg = Annotated[
    str | None, typer.Argument(help="City slug or name (see `geo-protect cities`).")
]
AllOpt = Annotated[bool, typer.Option("--all", help="Every city of the registry.")]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="gpkg (embedded, default) or postgis.", show_default=False),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="SQLAlchemy URL of the PostGIS database.", show_default=False
    ),
]


def _settings(store: str | None = None, database_url: str | None = None) -> Settings:
    overrides: dict[str, Any] = {}
    if store is not None:
        if store not in ("gpkg", "postgis"):
            raise typer.BadParameter(f"--store must be gpkg or postgis, not {store!r}")
        overrides["store"] = store
    if database_url is not None:
        overrides["database_url"] = database_url
    return Settings(**overrides)


def _cities(city: str | None, all_: bool, settings: Settings) -> list[City]:
    if all_ and city:
        raise typer.BadParameter("give a city or --all, not both")
    if all_:
        return list(load_cities(settings.data_dir).values())
    if not city:
        raise typer.BadParameter("give a city (e.g. brasov) or --all")
    return [get_city(city, settings.data_dir)]


@contextmanager
def _progress() -> Iterator[Callable[[str], None]]:
    """A spinner with elapsed time; yields a callback that updates its message."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=None),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=None)
        yield lambda message: progress.update(task, description=message)


def _run(step: Callable[[], None]) -> None:
    try:
        step()
    except GeoProtectError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=2) from exc


@app.command()
def cities() -> None:
    """List the cities of the registry and the local data each one has."""
    settings = Settings()

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

    _run(step)


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
    settings = _settings(store, database_url)
    if source not in ("local", "overpass"):
        raise typer.BadParameter("--source must be local or overpass")

    def step() -> None:
        targets = _cities(city, all_, settings)
        if spaces is not None and len(targets) != 1:
            raise typer.BadParameter("--spaces goes with one city")
        _ingest(targets, settings, source=source, spaces=spaces)  # type: ignore[arg-type]

    _run(step)


def _ingest(
    targets: Sequence[City],
    settings: Settings,
    *,
    source: Literal["local", "overpass"] = "local",
    spaces: Path | None = None,
) -> None:
    from geo_protect.ingest import ingest_city
    from geo_protect.store import open_store

    db = open_store(settings)
    reports = {}
    for c in targets:
        start = time.perf_counter()
        with _progress() as report_progress:
            report_progress(f"{c.name_en}: reading")
            data = ingest_city(
                c,
                source=source,
                spaces=spaces,
                progress=lambda m, name=c.name_en: report_progress(f"{name}: {m}"),  # type: ignore[misc]
            )
            report_progress(f"{c.name_en}: writing to the {settings.store} store")
            db.replace_city(c.slug, data.layers, data.report)
        reports[c.slug] = data.report
        err_console.print(
            f"[green]✓[/] {c.label}: {sum(data.report.counts.values()):,} features "
            f"in {time.perf_counter() - start:.1f} s"
        )
    _print_ingest_summary(targets, reports)


def _print_ingest_summary(targets: Sequence[City], reports: dict[str, Any]) -> None:
    from geo_protect.schema import SOURCE_LAYERS

    table = Table(title="Features per layer")
    table.add_column("city")
    for layer in SOURCE_LAYERS:
        table.add_column(layer, justify="right")
    for c in targets:
        counts = reports[c.slug].counts
        table.add_row(c.name_en, *(f"{counts.get(layer, 0):,}" for layer in SOURCE_LAYERS))
    console.print(table)
    dropped = [
        (c.name_en, layer, reason, n)
        for c in targets
        for (layer, reason), n in reports[c.slug].dropped.items()
    ]
    if dropped:
        t = Table(title="Dropped (and why)")
        for col in ("city", "layer", "reason", "n"):
            t.add_column(col, justify="right" if col == "n" else "left")
        for row in dropped:
            t.add_row(row[0], row[1], row[2], f"{row[3]:,}")
        console.print(t)
    for c in targets:
        for note in reports[c.slug].missing:
            console.print(f"[yellow]•[/] {note}")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``geo-protect`` console script."""
    app(args=list(argv) if argv is not None else sys.argv[1:], prog_name="geo-protect")


if __name__ == "__main__":  # pragma: no cover
    main()
