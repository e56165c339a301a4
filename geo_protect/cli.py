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

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from geo_protect.cities import City, get_city, load_cities
from geo_protect.errors import GeoProtectError
from geo_protect.reference import set_data_dir
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


def _version(value: bool) -> None:
    if value:
        from geo_protect import __version__

        console.print(f"geo-protect {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """geo_protect: protect crowded public spaces, from OpenStreetMap to interactive risk maps."""


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


def _prefixed(say: Callable[[str], None], name: str) -> Callable[[str], None]:
    """A progress callback that prefixes each message with the city's name."""

    def tell(message: str) -> None:
        say(f"{name}: {message}")

    return tell


def _run(step: Callable[[], None], settings: Settings) -> None:
    """Run a command's step with the settings' data folder active; errors end it with exit 2."""
    previous = set_data_dir(settings.data_dir)
    try:
        step()
    except GeoProtectError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True, markup=True)
        raise typer.Exit(code=2) from exc
    finally:
        set_data_dir(previous)


@app.command()
def cities() -> None:
    """List the cities of the registry and the local data each one has."""
    settings = _settings()

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

    _run(step, settings)


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
        _ingest(
            targets, settings, source="overpass" if source == "overpass" else "local", spaces=spaces
        )

    _run(step, settings)


def _ingest(
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
        with _progress() as say:
            data = pipeline.ingest(
                db,
                c,
                source=source,
                spaces=spaces,
                overpass_url=settings.overpass_url,
                timeout=settings.http_timeout,
                progress=_prefixed(say, c.name_en),
            )
        reports[c.slug] = data.report
        err_console.print(
            f"[green]✓[/] {c.label}: {sum(data.report.counts.values()):,} features "
            f"in {time.perf_counter() - start:.1f} s"
        )
    _print_ingest_summary(targets, reports)
    return reports


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
            console.print(f"[yellow]•[/] {note}", soft_wrap=True)


OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Output folder (default: the maps folder).", show_default=False),
]


def _require(db: Any, c: City) -> None:
    from geo_protect.errors import MissingDataError

    if c.slug not in db.cities():
        raise MissingDataError(f"{c.name_en}: not ingested yet; run `geo-protect ingest {c.slug}`")


@app.command()
def analyse(
    city: CityArg = None, all_: AllOpt = False, store: StoreOpt = None, database_url: DbOpt = None
) -> None:
    """Entry points, crowd capacity and hostile-vehicle approach speeds per public space."""
    settings = _settings(store, database_url)

    def step() -> None:
        from geo_protect import pipeline
        from geo_protect.store import open_store

        db = open_store(settings)
        metrics = {}
        for c in _cities(city, all_, settings):
            _require(db, c)
            data = pipeline.load_city_data(db, c)
            if data["public_space"].empty:
                console.print(f"[yellow]•[/] {c.name_en}: no public spaces to analyse")
                continue
            with _progress() as say:
                results = pipeline.analyse(db, c, data=data, progress=say)
            metrics[c] = results
        _print_analysis_summary(metrics)

    _run(step, settings)


def _print_analysis_summary(metrics: dict[City, dict[str, Any]]) -> None:
    table = Table(title="Analysis per city")
    for col in (
        "city",
        "spaces",
        "entries",
        "vehicle-permeable",
        "blocked",
        ">30 km/h",
        ">48 km/h",
        "worst speed",
        "worst space",
    ):
        table.add_column(col, justify="left" if col in ("city", "worst space") else "right")
    for c, results in metrics.items():
        m = results["space_metric"]
        e = results["entry_point"]
        worst = m["worst_speed_kmh"].idxmax() if m["worst_speed_kmh"].notna().any() else None
        table.add_row(
            c.name_en,
            f"{len(m):,}",
            f"{len(e):,}",
            f"{int((e['entry_class'] == 'vehicle_permeable').sum()):,}",
            f"{int((e['entry_class'] == 'blocked').sum()):,}",
            f"{int(m['n_entries_over_30'].sum()):,}",
            f"{int(m['n_entries_over_48'].sum()):,}",
            "—" if worst is None else f"{m.at[worst, 'worst_speed_kmh']:.0f} km/h",
            "—" if worst is None else _label(m.at[worst, "name"], worst),
        )
    console.print(table)
    console.print("[dim]Speeds: flat-ground vehicle dynamics, indicative (see data/reference).[/]")


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
    settings = _settings(store, database_url)

    def step() -> None:
        from geo_protect import pipeline
        from geo_protect.store import open_store

        db = open_store(settings)
        targets = _cities(city, all_, settings)
        if from_file is not None and len(targets) != 1:
            raise typer.BadParameter("--from goes with one city")
        for c in targets:
            _require(db, c)
            with _progress() as say:
                assessment, scores = pipeline.assess(db, c, assessment_file=from_file, progress=say)
                say("writing the assessment file and site reports")
                draft, reports = pipeline.write_assessment_files(
                    c, assessment, scores, out or settings.maps_dir
                )
            _print_scores(c, scores)
            console.print(f"assessments for the field team: {draft}")
            console.print(
                f"{len(reports)} printable site reports in {reports[0].parent}" if reports else ""
            )

    _run(step, settings)


def _print_scores(c: City, scores: Any) -> None:
    from geo_protect.assess.scores import site_summary

    summary = site_summary(scores)
    table = Table(title=f"{c.label}: highest-risk spaces (worst credible scenario)")
    for col in ("space", "worst threat", "R_100", "band", "mean R_100", "threats assessed"):
        table.add_column(col)
    for uid, row in summary.head(10).iterrows():
        table.add_row(
            _label(row.get("name"), uid),
            str(row.get("worst_threat", "")),
            _fmt(row.get("max_risk_100")),
            str(row.get("worst_band", "")),
            _fmt(row.get("mean_risk_100")),
            str(row.get("n_assessed", "")),
        )
    console.print(table)


def _label(name: Any, uid: Any) -> str:
    """A space's name, or its uid when it has none."""
    return str(uid) if name is None or name is pd.NA or name != name else str(name)


def _fmt(value: Any) -> str:
    try:
        return f"{float(value):.0f}"
    except (TypeError, ValueError):
        return "—"


@app.command()
def why(
    city: Annotated[str, typer.Argument(help="City slug.")],
    space: Annotated[str, typer.Argument(help="Space uid (e.g. relation/9620387) or name.")],
    threat: Annotated[str, typer.Option("--threat", help="Threat type.")] = "VEHICLE_RAMMING",
    store: StoreOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Explain a risk score: inputs, evidence, overrides and formula."""
    settings = _settings(store, database_url)

    def step() -> None:
        from geo_protect import pipeline
        from geo_protect.assess.scores import why as explain
        from geo_protect.citydata import find_space
        from geo_protect.store import open_store

        db = open_store(settings)
        c = get_city(city, settings.data_dir)
        _require(db, c)
        assessment, _ = pipeline.assess(db, c)
        uid = find_space(db.read_layer(c.slug, "public_space"), space, city=c)
        text = explain(assessment, uid, threat.upper()).text()
        console.print(text, markup=False, highlight=False)

    _run(step, settings)


@app.command()
def compare(out: OutOpt = None, store: StoreOpt = None, database_url: DbOpt = None) -> None:
    """Rank hotspots across every city (CSV, charts and a self-contained HTML report)."""
    settings = _settings(store, database_url)

    def step() -> None:
        from geo_protect import pipeline
        from geo_protect.store import open_store

        report = pipeline.compare_cities(
            open_store(settings),
            load_cities(settings.data_dir).values(),
            (out or settings.maps_dir) / "comparison",
        )
        console.print(f"comparison report: {report}")

    _run(step, settings)


@app.command()
def maps(
    city: CityArg = None,
    all_: AllOpt = False,
    out: OutOpt = None,
    store: StoreOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Write the interactive risk map of each city and an index page (offline HTML)."""
    settings = _settings(store, database_url)

    def step() -> None:
        from geo_protect import pipeline
        from geo_protect.store import open_store

        db = open_store(settings)
        outcomes = {c.slug: pipeline.load_outcome(db, c) for c in _cities(city, all_, settings)}
        with _progress() as say:
            index = pipeline.draw_maps(
                outcomes,
                out or settings.maps_dir,
                tile_url=settings.tile_url,
                tile_attribution=settings.tile_attribution,
                progress=say,
            )
        console.print(f"maps index: {index}")

    _run(step, settings)


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
    settings = _settings(store, database_url)

    def step() -> None:
        from geo_protect.outputs.exports import EXPORT_FORMATS, export_city, exportable_layers
        from geo_protect.store import open_store

        db = open_store(settings)
        for c in _cities(city, all_, settings):
            _require(db, c)
            layers = exportable_layers(db, c.slug)
            folder = (out or settings.maps_dir) / "exports" / c.slug
            files = export_city(c.slug, layers, folder, formats=fmt or EXPORT_FORMATS)
            console.print(f"{c.name_en}: {len(files)} files in {folder}")

    _run(step, settings)


@app.command()
def run(
    store: StoreOpt = None,
    database_url: DbOpt = None,
    out: OutOpt = None,
) -> None:
    """The main job: ingest, analyse, assess every city with data; compare; draw the maps."""
    settings = _settings(store, database_url)

    def step() -> None:
        from geo_protect import pipeline
        from geo_protect.store import open_store

        db = open_store(settings)
        out_dir = out or settings.maps_dir
        targets = list(load_cities(settings.data_dir).values())
        outcomes: dict[str, pipeline.CityOutcome] = {}
        for c in targets:
            start = time.perf_counter()
            with _progress() as say:
                outcomes[c.slug] = pipeline.run_city(
                    db, c, out_dir, progress=_prefixed(say, c.name_en)
                )
            err_console.print(f"[green]✓[/] {c.label} in {time.perf_counter() - start:.1f} s")
        reports = {slug: o.report for slug, o in outcomes.items()}
        analysed = {o.city: o.layers for o in outcomes.values() if "space_metric" in o.layers}
        _print_ingest_summary(targets, reports)
        if analysed:
            _print_analysis_summary(analysed)
        with _progress() as say:
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

    _run(step, settings)


@app.command()
def reference(
    name: Annotated[
        str | None, typer.Argument(help="A table (e.g. vehicle_classes); none lists them.")
    ] = None,
) -> None:
    """Show the reference tables: every threshold with its source and confidence (S/V/I)."""
    settings = _settings()

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

    _run(step, settings)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``geo-protect`` console script."""
    app(args=list(argv) if argv is not None else sys.argv[1:], prog_name="geo-protect")


if __name__ == "__main__":  # pragma: no cover
    main()
