"""Shared pieces of the commands: the app, consoles, options and small helpers."""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from geo_protect.cities import City, get_city, load_cities
from geo_protect.errors import GeoProtectError
from geo_protect.reference import set_data_dir
from geo_protect.settings import Settings
from geo_protect.store.audit import Actor

__all__ = [
    "AllOpt",
    "CityArg",
    "DbOpt",
    "OutOpt",
    "StoreOpt",
    "app",
    "cli_actor",
    "console",
    "err_console",
    "fmt",
    "label",
    "prefixed",
    "require_city",
    "run_step",
    "settings_for",
    "spinner",
    "target_cities",
]

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


def settings_for(store: str | None = None, database_url: str | None = None) -> Settings:
    overrides: dict[str, Any] = {}
    if store is not None:
        if store not in ("gpkg", "postgis"):
            raise typer.BadParameter(f"--store must be gpkg or postgis, not {store!r}")
        overrides["store"] = store
    if database_url is not None:
        overrides["database_url"] = database_url
    return Settings(**overrides)


def target_cities(city: str | None, all_: bool, settings: Settings) -> list[City]:
    if all_ and city:
        raise typer.BadParameter("give a city or --all, not both")
    if all_:
        return list(load_cities(settings.data_dir).values())
    if not city:
        raise typer.BadParameter("give a city (e.g. brasov) or --all")
    return [get_city(city, settings.data_dir)]


@contextmanager
def spinner() -> Iterator[Callable[[str], None]]:
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


def prefixed(say: Callable[[str], None], name: str) -> Callable[[str], None]:
    """A progress callback that prefixes each message with the city's name."""

    def tell(message: str) -> None:
        say(f"{name}: {message}")

    return tell


def run_step(step: Callable[[], None], settings: Settings) -> None:
    """Run a command's step with the settings' data folder active; errors end it with exit 2."""
    previous = set_data_dir(settings.data_dir)
    try:
        step()
    except GeoProtectError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True, markup=True)
        raise typer.Exit(code=2) from exc
    finally:
        set_data_dir(previous)


OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Output folder (default: the maps folder).", show_default=False),
]


def cli_actor() -> Actor:
    """Who runs the command, for the audit trail: the operating-system user, ``via`` cli."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment nor the password database
        name = "unknown"
    return Actor(name=name, address=None, via="cli")


def require_city(db: Any, c: City) -> None:
    from geo_protect.errors import MissingDataError

    if c.slug not in db.cities():
        raise MissingDataError(f"{c.name_en}: not ingested yet; run `geo-protect ingest {c.slug}`")


def label(name: Any, uid: Any) -> str:
    """A space's name, or its uid when it has none."""
    return str(uid) if name is None or name is pd.NA or name != name else str(name)


def fmt(value: Any) -> str:
    try:
        return f"{float(value):.0f}"
    except (TypeError, ValueError):
        return "—"
