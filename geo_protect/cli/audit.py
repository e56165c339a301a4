"""The audit commands: ``audit verify`` the hash chain, ``audit export`` its rows (PostGIS).

Exit codes: 0 the chain holds (or the export was written), 1 the chain is broken (the
first bad row is named), 2 bad input (an unknown format, a bad time, no database).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from geo_protect.cli._common import DbOpt, app, console, err_console, run_step, settings_for

__all__ = ["export", "verify"]

audit_app = typer.Typer(
    help="The append-only audit trail of every change (PostGIS).", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")

TimeOpt = Annotated[
    str | None,
    typer.Option(
        help="ISO 8601 time or date (without a zone: UTC).", show_default=False, metavar="TIME"
    ),
]


def _time(value: str | None, option: str) -> dt.datetime | None:
    """An ISO 8601 time (a naive one read as UTC), or a usage error naming the option."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=option) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


@audit_app.command()
def verify(database_url: DbOpt = None) -> None:
    """Walk the hash chain: exit 0 if every row holds, 1 naming the first row that does not."""
    settings = settings_for("postgis", database_url)
    broken: list[str] = []

    def step() -> None:
        from geo_protect.store import PostGISStore
        from geo_protect.store.audit import verify_chain

        with PostGISStore(settings.database_url) as db:
            check = verify_chain(db.engine)
        if check.ok:
            console.print(
                f"audit chain holds: {check.rows} row(s), head {check.head_id} {check.head_hash}"
            )
            return
        broken.append(f"audit chain broken at row {check.first_bad}: {check.reason}")
        broken.append(f"{check.rows} row(s) before it hold (last good row {check.head_id})")

    run_step(step, settings)
    if broken:
        err_console.print(f"[bold red]error:[/] {broken[0]}", soft_wrap=True)
        err_console.print(broken[1], soft_wrap=True)
        raise typer.Exit(code=1)


@audit_app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    since: TimeOpt = None,
    until: TimeOpt = None,
    actor: Annotated[str | None, typer.Option(help="Rows of this user only.")] = None,
    action: Annotated[
        str | None,
        typer.Option(help="An action (alert.acknowledge) or a family (alert)."),
    ] = None,
    city: Annotated[str | None, typer.Option(help="Rows of this city only.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file (default: standard output).")
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Export the audit trail (oldest first) as CSV or JSON, filtered."""
    from geo_protect.store.audit import AUDIT_FORMATS

    if fmt not in AUDIT_FORMATS:
        raise typer.BadParameter(f"use {' or '.join(AUDIT_FORMATS)}", param_hint="--format")
    start, end = _time(since, "--since"), _time(until, "--until")
    settings = settings_for("postgis", database_url)

    def step() -> None:
        from geo_protect.atomic import write_atomic
        from geo_protect.store import PostGISStore
        from geo_protect.store.audit import export_rows, read_audit

        with PostGISStore(settings.database_url) as db:
            rows = read_audit(
                db.engine, since=start, until=end, actor=actor, action=action, city=city
            )
        text = export_rows(rows, fmt)
        if out is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            write_atomic(out, text)
            err_console.print(f"{len(rows)} audit row(s) written to {out}")

    run_step(step, settings)
