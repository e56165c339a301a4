"""Accounts in the PostGIS store: users, grants, credentials and logins.

Passwords are kept as argon2 hashes (argon2-cffi). A credential — a browser session or
a personal API token — is a random secret handed to the user once; the store keeps only
its keyed digest (HMAC-SHA-256 with the service's secret), so a copy of the table opens
nothing. Every change (a user added, disabled, a grant, a password, a login that worked
or failed) writes its audit row in the same transaction (:func:`geo_protect.store.audit.record`).

Needs a server: ``tests/test_users.py`` runs these against PostGIS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection, Engine

from geo_protect.access import ALL_CITIES, Grant, Scope
from geo_protect.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ThrottledError,
    ValidationError,
)
from geo_protect.store.audit import Actor, record
from geo_protect.store.migrations import SCHEMA

__all__ = [
    "Credential",
    "LoginLimits",
    "Principal",
    "add_user",
    "authenticate",
    "change_password",
    "credential_digest",
    "grant",
    "issue_credential",
    "list_credentials",
    "list_users",
    "lookup_credential",
    "revoke",
    "revoke_credential",
    "set_disabled",
]

_HASHER = PasswordHasher()
#: Shortest password accepted [I] (NIST SP 800-63B §5.1.1.2 asks for at least 8).
MIN_PASSWORD = 12
CredentialKind = Literal["session", "token"]


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """How many failed logins per user and per address within ``window_s`` are let through."""

    per_user: int = 5
    per_address: int = 20
    window_s: int = 900


@dataclass(frozen=True, slots=True)
class Credential:
    """A session or token as listed (never its secret)."""

    id: int
    user: str
    kind: CredentialKind
    label: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    csrf: str | None = None  # a new session's CSRF token (None when listed)


@dataclass(frozen=True, slots=True)
class Principal:
    """The user behind a valid credential, with their scope."""

    user: str
    scope: Scope
    kind: CredentialKind
    credential_id: int
    csrf: str | None
    expires_at: dt.datetime | None


def _t(name: str) -> str:
    return f"{SCHEMA}.{name}"


def credential_digest(secret: str, key: str) -> str:
    """The keyed digest under which a credential's ``secret`` is stored.

    Parameters
    ----------
    secret : str
        The credential as the client sends it.
    key : str
        The service's secret.

    Returns
    -------
    str
        64 hex digits.

    Examples
    --------
    >>> a, b = credential_digest("abc", "k"), credential_digest("abc", "j")
    >>> len(a), a == b
    (64, False)
    """
    return hmac.new(key.encode(), secret.encode(), hashlib.sha256).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"password: at least {MIN_PASSWORD} characters are needed")


def _user_row(conn: Connection, name: str) -> Any:
    row = (
        conn.execute(
            sa.text(f"SELECT * FROM {_t('app_user')} WHERE name = :n FOR UPDATE"), {"n": name}
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(f"user {name!r} does not exist")
    return row


def user_grants(conn: Connection, name: str) -> list[Grant]:
    """The grants of user ``name``."""
    rows = conn.execute(
        sa.text(f"SELECT role, city FROM {_t('user_grant')} WHERE user_name = :n ORDER BY 1, 2"),
        {"n": name},
    ).all()
    return [Grant(r.role, r.city) for r in rows]


def _check_cities(grants: Sequence[Grant], cities: Sequence[str]) -> None:
    for g in grants:
        if g.city != ALL_CITIES and g.city not in cities:
            known = ", ".join(cities) or "none"
            raise ValidationError(
                f"grant {g.role}@{g.city}: {g.city!r} is not in the store ({known})"
            )


def add_user(
    engine: Engine,
    name: str,
    password: str,
    *,
    actor: Actor,
    cities: Sequence[str],
    full_name: str | None = None,
    grants: Sequence[Grant] = (),
) -> None:
    """Create user ``name`` with ``password`` (and ``grants``); audited.

    ``cities`` are the cities of the store: a grant for any other (but ``*``) is refused.
    Raises :class:`ConflictError` if the name is taken, :class:`ValidationError` for a
    short password, a malformed name or a city not in the store.
    """
    _check_password(password)
    _check_cities(grants, cities)
    with engine.begin() as conn:
        taken = conn.execute(
            sa.text(f"SELECT 1 FROM {_t('app_user')} WHERE name = :n"), {"n": name}
        ).first()
        if taken:
            raise ConflictError(f"user {name!r} exists already")
        try:
            conn.execute(
                sa.text(
                    f"INSERT INTO {_t('app_user')} (name, full_name, password_hash) "
                    "VALUES (:n, :f, :h)"
                ),
                {"n": name, "f": full_name, "h": _HASHER.hash(password)},
            )
        except sa.exc.IntegrityError as exc:
            raise ValidationError(
                f"user name {name!r}: 2-64 lower-case letters, digits or . _ @ -"
            ) from exc
        for g in grants:
            _insert_grant(conn, name, g)
        after = {"name": name, "full_name": full_name, "grants": [_g(g) for g in grants]}
        record(conn, actor, "user.add", f"user:{name}", None, after)


def _g(g: Grant) -> str:
    return f"{g.role}@{g.city}"


def _insert_grant(conn: Connection, name: str, g: Grant) -> bool:
    done = conn.execute(
        sa.text(
            f"INSERT INTO {_t('user_grant')} (user_name, role, city) VALUES (:n, :r, :c) "
            "ON CONFLICT DO NOTHING"
        ),
        {"n": name, "r": g.role, "c": g.city},
    )
    return done.rowcount == 1


def grant(engine: Engine, name: str, g: Grant, *, actor: Actor, cities: Sequence[str]) -> bool:
    """Give ``name`` the role ``g.role`` in ``g.city``; False if they had it. Audited.

    ``cities`` are the cities of the store: a grant for any other (but ``*``) is refused.
    """
    _check_cities([g], cities)
    with engine.begin() as conn:
        _user_row(conn, name)
        before = [_g(x) for x in user_grants(conn, name)]
        added = _insert_grant(conn, name, g)
        if added:
            record(conn, actor, "grant.add", f"user:{name}", before, [*before, _g(g)])
    return added


def revoke(engine: Engine, name: str, g: Grant, *, actor: Actor) -> bool:
    """Take the role ``g.role`` in ``g.city`` from ``name``; False if they lacked it. Audited."""
    with engine.begin() as conn:
        _user_row(conn, name)
        before = [_g(x) for x in user_grants(conn, name)]
        gone = conn.execute(
            sa.text(
                f"DELETE FROM {_t('user_grant')} WHERE user_name = :n AND role = :r AND city = :c"
            ),
            {"n": name, "r": g.role, "c": g.city},
        ).rowcount
        if gone:
            after = [x for x in before if x != _g(g)]
            record(conn, actor, "grant.revoke", f"user:{name}", before, after)
    return bool(gone)


def set_disabled(engine: Engine, name: str, disabled: bool, *, actor: Actor) -> None:
    """Disable (or re-enable) ``name``; disabling revokes their sessions and tokens. Audited."""
    with engine.begin() as conn:
        row = _user_row(conn, name)
        conn.execute(
            sa.text(f"UPDATE {_t('app_user')} SET disabled = :d WHERE name = :n"),
            {"d": disabled, "n": name},
        )
        if disabled:
            _revoke_all(conn, name)
        action = "user.disable" if disabled else "user.enable"
        record(
            conn,
            actor,
            action,
            f"user:{name}",
            {"disabled": row["disabled"]},
            {"disabled": disabled},
        )


def _revoke_all(conn: Connection, name: str, *, keep: int | None = None) -> None:
    conn.execute(
        sa.text(
            f"UPDATE {_t('credential')} SET revoked_at = now() WHERE user_name = :n "
            "AND revoked_at IS NULL AND id IS DISTINCT FROM :keep"
        ),
        {"n": name, "keep": keep},
    )


def list_users(engine: Engine) -> list[dict[str, Any]]:
    """Every user with their grants (no hashes)."""
    with engine.connect() as conn:
        users = (
            conn.execute(
                sa.text(
                    "SELECT name, full_name, disabled, created_at "
                    f"FROM {_t('app_user')} ORDER BY name"
                )
            )
            .mappings()
            .all()
        )
        grants = conn.execute(
            sa.text(f"SELECT user_name, role, city FROM {_t('user_grant')} ORDER BY 1, 2, 3")
        ).all()
    by_user: dict[str, list[str]] = {}
    for g in grants:
        by_user.setdefault(g.user_name, []).append(f"{g.role}@{g.city}")
    return [{**u, "grants": by_user.get(u["name"], [])} for u in users]


def _throttle(
    conn: Connection, name: str, address: str | None, limits: LoginLimits
) -> ThrottledError | None:
    since = f"clock_timestamp() - make_interval(secs => {int(limits.window_s)})"
    for column, value, limit in (
        ("user_name", name, limits.per_user),
        ("address", address, limits.per_address),
    ):
        if value is None:
            continue
        row = conn.execute(
            sa.text(
                f"SELECT count(*) AS n, min(at) AS first FROM {_t('login_attempt')} "
                f"WHERE {column} = :v AND NOT ok AND at > {since}"
            ),
            {"v": value},
        ).one()
        if row.n >= limit:
            wait = limits.window_s - (dt.datetime.now(dt.UTC) - row.first).total_seconds()
            what = "this user" if column == "user_name" else "this address"
            return ThrottledError(
                f"too many failed logins for {what}; try again later", max(1, int(wait) + 1)
            )
    return None


def authenticate(
    engine: Engine, name: str, password: str, *, address: str | None, limits: LoginLimits
) -> None:
    """Check ``name``'s ``password``; every attempt is recorded and audited.

    Raises :class:`ThrottledError` when too many attempts failed recently (checked
    first, so a guess is not even tried), :class:`AuthenticationError` otherwise on any
    failure (unknown user, disabled, wrong password: one message for all).
    """
    actor = Actor(name or "?", address, "service")
    with engine.begin() as conn:
        # one attempt per user at a time: parallel guesses cannot slip past the count
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": "login:" + name})
        throttled = _throttle(conn, name, address, limits)
        if throttled is not None:  # recorded, not tried
            record(conn, actor, "login.throttled", f"user:{name}", None, None)
            ok = False
        else:
            ok = _password_ok(conn, name, password)
            conn.execute(
                sa.text(
                    f"INSERT INTO {_t('login_attempt')} (user_name, address, ok) "
                    "VALUES (:n, :a, :o)"
                ),
                {"n": name, "a": address, "o": ok},
            )
            action = "login.success" if ok else "login.failure"
            record(conn, actor, action, f"user:{name}", None, None)
    if throttled is not None:
        raise throttled
    if not ok:
        raise AuthenticationError("wrong user name or password")


def _password_ok(conn: Connection, name: str, password: str) -> bool:
    row = conn.execute(
        sa.text(f"SELECT password_hash, disabled FROM {_t('app_user')} WHERE name = :n"),
        {"n": name},
    ).first()
    if row is None or row.disabled:
        _HASHER.hash(password)  # about as slow as a check: no timing hint that the name is free
        return False
    try:
        return bool(_HASHER.verify(row.password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def change_password(
    engine: Engine, name: str, current: str | None, new: str, *, actor: Actor, keep: int | None
) -> None:
    """Set ``name``'s password to ``new``; ``current`` must match unless None (an admin).

    Revokes the user's other sessions and tokens (all but credential ``keep``). Audited
    (without the passwords).
    """
    _check_password(new)
    with engine.begin() as conn:
        row = _user_row(conn, name)
        if current is not None:
            try:
                _HASHER.verify(row["password_hash"], current)
            except (VerificationError, InvalidHashError) as exc:
                raise AuthenticationError("the current password is wrong") from exc
        conn.execute(
            sa.text(
                f"UPDATE {_t('app_user')} SET password_hash = :h, password_changed_at = now() "
                "WHERE name = :n"
            ),
            {"h": _HASHER.hash(new), "n": name},
        )
        _revoke_all(conn, name, keep=keep)
        record(conn, actor, "user.password", f"user:{name}", None, None)


def issue_credential(
    engine: Engine,
    name: str,
    kind: CredentialKind,
    *,
    key: str,
    lifetime_s: float | None,
    label: str | None = None,
    actor: Actor,
) -> tuple[str, Credential]:
    """A new session or token for ``name``: its secret (shown once) and its record."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24) if kind == "session" else None
    with engine.begin() as conn:
        if _user_row(conn, name)["disabled"]:
            raise ValidationError(f"user {name!r} is disabled")
        row = conn.execute(
            sa.text(
                f"INSERT INTO {_t('credential')} "
                "(digest, user_name, kind, label, csrf, expires_at, address) VALUES "
                "(:d, :n, :k, :l, :c, CASE WHEN CAST(:s AS float8) IS NULL THEN NULL "
                "ELSE now() + make_interval(secs => CAST(:s AS float8)) END, :a) "
                "RETURNING id, created_at, expires_at"
            ),
            {
                "d": credential_digest(secret, key),
                "n": name,
                "k": kind,
                "l": label,
                "c": csrf,
                "s": lifetime_s,
                "a": actor.address,
            },
        ).one()
        if kind == "token":
            after = {"id": row.id, "label": label, "expires_at": row.expires_at}
            record(conn, actor, "token.issue", f"user:{name}", None, after)
    return secret, Credential(row.id, name, kind, label, row.created_at, row.expires_at, None, csrf)


def lookup_credential(engine: Engine, secret: str, *, key: str) -> Principal | None:
    """The user behind ``secret`` if it is a live credential of an enabled user, else None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                f"SELECT c.id, c.user_name, c.kind, c.csrf, c.expires_at "
                f"FROM {_t('credential')} c JOIN {_t('app_user')} u ON u.name = c.user_name "
                "WHERE c.digest = :d AND c.revoked_at IS NULL AND NOT u.disabled "
                "AND (c.expires_at IS NULL OR c.expires_at > now())"
            ),
            {"d": credential_digest(secret, key)},
        ).first()
        if row is None:
            return None
        scope = Scope.of(row.user_name, user_grants(conn, row.user_name))
    return Principal(row.user_name, scope, row.kind, row.id, row.csrf, row.expires_at)


def revoke_credential(engine: Engine, name: str, credential_id: int, *, actor: Actor) -> None:
    """Revoke ``name``'s credential ``credential_id`` (a logout, a token withdrawn)."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                f"UPDATE {_t('credential')} SET revoked_at = now() WHERE id = :i "
                "AND user_name = :n AND revoked_at IS NULL RETURNING kind"
            ),
            {"i": credential_id, "n": name},
        ).first()
        if row is None:
            raise NotFoundError(f"no live credential {credential_id} of {name!r}")
        if row.kind == "token":
            record(conn, actor, "token.revoke", f"user:{name}", {"id": credential_id}, None)


def list_credentials(engine: Engine, name: str) -> list[Credential]:
    """``name``'s personal tokens and sessions, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, user_name, kind, label, created_at, expires_at, revoked_at "
                f"FROM {_t('credential')} WHERE user_name = :n ORDER BY id DESC"
            ),
            {"n": name},
        ).all()
    return [Credential(*r) for r in rows]
