"""The account commands: ``users add|list|disable|enable|grant|revoke|password|token``.

For the first admin, and for operations without the web. Passwords are read from the
terminal (asked twice) or, for scripts, from standard input with ``--password-stdin``;
never from the command line, where other users of the machine could read them. Every
change is audited with the OS user as the author (``via=cli``).
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from geo_protect.access import ROLES, Grant
from geo_protect.cli._common import DbOpt, app, console, err_console, run_step, settings_for
from geo_protect.errors import ValidationError

if TYPE_CHECKING:
    from geo_protect.store import PostGISStore
    from geo_protect.store.audit import Actor

__all__ = ["add", "disable", "enable", "grant", "list_users", "parse_grant", "revoke", "token"]

users_app = typer.Typer(
    help="User accounts, roles and city grants (PostGIS).", no_args_is_help=True
)
app.add_typer(users_app, name="users")

NameArg = Annotated[str, typer.Argument(help="User name (lower case).", show_default=False)]
GrantArg = Annotated[
    str, typer.Argument(help="ROLE@CITY (CITY '*' for every city).", show_default=False)
]
GrantOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--grant",
        "-g",
        help=f"ROLE@CITY (CITY '*' for every city); roles: {', '.join(ROLES)}. Repeatable.",
        show_default=False,
    ),
]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def _actor() -> Actor:
    from geo_protect.store.audit import Actor

    return Actor(getpass.getuser() or "cli", None, "cli")


def parse_grant(text: str) -> Grant:
    """``ROLE@CITY`` as a :class:`Grant`, or a :class:`ValidationError` naming the problem.

    Examples
    --------
    >>> parse_grant("operator@brasov")
    Grant(role='operator', city='brasov')
    """
    role, sep, city = text.partition("@")
    if not sep or not role or not city:
        raise ValidationError(f"grant {text!r}: write ROLE@CITY, e.g. operator@brasov")
    if role not in ROLES:
        raise ValidationError(f"grant {text!r}: {role!r} is not one of {', '.join(ROLES)}")
    return Grant(role, city)  # type: ignore[arg-type]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise ValidationError("password: the two entries differ")
    return first


def _run(database_url: str | None, work: Callable[[PostGISStore], None]) -> None:
    settings = settings_for("postgis", database_url)

    def step() -> None:
        from geo_protect.store import PostGISStore

        with PostGISStore(settings.database_url) as db:
            work(db)

    run_step(step, settings)


@users_app.command()
def add(
    name: NameArg,
    grant: GrantOpt = None,
    full_name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    password_stdin: StdinOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Create a user with a password (asked, at least 12 characters) and grants."""

    def work(db: PostGISStore) -> None:
        from geo_protect.store import users

        grants = [parse_grant(g) for g in grant or []]
        secret = _password(password_stdin)
        users.add_user(
            db.engine,
            name,
            secret,
            actor=_actor(),
            cities=db.cities(),
            full_name=full_name,
            grants=grants,
        )
        shown = ", ".join(f"{g.role}@{g.city}" for g in grants) or "no grants"
        console.print(f"user {name} added ({shown})")

    _run(database_url, work)


@users_app.command("list")
def list_users(database_url: DbOpt = None) -> None:
    """Every user, enabled or not, with their grants."""

    def work(db: PostGISStore) -> None:
        from geo_protect.store import users

        table = Table("user", "name", "state", "grants", "created")
        for u in users.list_users(db.engine):
            state = "disabled" if u["disabled"] else "enabled"
            created = f"{u['created_at']:%Y-%m-%d}"
            table.add_row(u["name"], u["full_name"] or "", state, " ".join(u["grants"]), created)
        console.print(table)

    _run(database_url, work)


def _set_disabled(name: str, disabled: bool, database_url: str | None) -> None:
    def work(db: PostGISStore) -> None:
        from geo_protect.store import users

        users.set_disabled(db.engine, name, disabled, actor=_actor())
        console.print(f"user {name} {'disabled' if disabled else 'enabled'}")

    _run(database_url, work)


@users_app.command()
def disable(name: NameArg, database_url: DbOpt = None) -> None:
    """Disable a user; their sessions and tokens stop working."""
    _set_disabled(name, True, database_url)


@users_app.command()
def enable(name: NameArg, database_url: DbOpt = None) -> None:
    """Enable a disabled user again."""
    _set_disabled(name, False, database_url)


@users_app.command()
def grant(name: NameArg, role_at_city: GrantArg, database_url: DbOpt = None) -> None:
    """Give a user a role in a city (ROLE@CITY)."""

    def work(db: PostGISStore) -> None:
        from geo_protect.store import users

        g = parse_grant(role_at_city)
        added = users.grant(db.engine, name, g, actor=_actor(), cities=db.cities())
        console.print(f"{name}: {role_at_city} {'granted' if added else 'was granted already'}")

    _run(database_url, work)


@users_app.command()
def revoke(name: NameArg, role_at_city: GrantArg, database_url: DbOpt = None) -> None:
    """Take a role in a city from a user (ROLE@CITY)."""

    def work(db: PostGISStore) -> None:
        from geo_protect.store import users

        gone = users.revoke(db.engine, name, parse_grant(role_at_city), actor=_actor())
        console.print(f"{name}: {role_at_city} {'revoked' if gone else 'was not granted'}")

    _run(database_url, work)


@users_app.command()
def password(name: NameArg, password_stdin: StdinOpt = False, database_url: DbOpt = None) -> None:
    """Set a user's password; their sessions and tokens are revoked."""

    def work(db: PostGISStore) -> None:
        from geo_protect.store import users

        secret = _password(password_stdin)
        users.change_password(db.engine, name, None, secret, actor=_actor(), keep=None)
        console.print(f"password of {name} changed")

    _run(database_url, work)


@users_app.command()
def token(
    name: NameArg,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    days: Annotated[int, typer.Option(min=1, max=366, help="Lifetime in days.")] = 90,
    database_url: DbOpt = None,
) -> None:
    """Issue a personal API token for a user (printed once, on standard output)."""
    settings = settings_for("postgis", database_url)

    def work(db: PostGISStore) -> None:
        from geo_protect.store import users

        secret, cred = users.issue_credential(
            db.engine,
            name,
            "token",
            key=settings.checked_secret(),
            lifetime_s=days * 86400.0,
            label=label,
            actor=_actor(),
        )
        sys.stdout.write(secret + "\n")  # alone on stdout, for scripts
        expires = f"{cred.expires_at:%Y-%m-%d}"
        err_console.print(f"token {cred.id} of {name} ({label}) expires {expires}")

    _run(database_url, work)
