"""The audit trail: who changed what, when, from where — append-only and hash-chained (issue 13).

Every change path of the PostGIS store (alert decisions, sensors, scenarios, assessments;
users, grants and logins) calls :func:`record` with the :class:`Actor` behind it, in the
transaction of the change: a refused audit row (a value the table's checks refuse, a
missing privilege) rolls the change back.

The table ``audit`` (migration ``0008``) refuses ``UPDATE`` and ``DELETE`` by trigger. Rows
form one chain: row ``id`` (gapless from 1) carries the ``hash`` of row ``id - 1`` as
``prev_hash`` (:data:`GENESIS` for row 1) and its own ``hash``, the SHA-256 over
``prev_hash`` and :func:`canonical_row`. Writers take a transaction-level advisory lock
before they read the head, so concurrent writers queue (until their transactions end) and
still form one chain; the primary key on ``id`` turns any writer that read a stale head
into an error, never a fork. :func:`verify_chain` walks the chain and names the first row
that was altered, or that follows a removed one. Removing the *newest* rows cannot be seen
from the chain alone: compare the head it reports with one kept elsewhere.

``before`` and ``after`` (JSON) are normalised by the database (``jsonb``) before they are
hashed. Admins read with :func:`read_audit` and export with :func:`export_rows` (CSV/JSON).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from geo_protect.errors import StoreError, ValidationError
from geo_protect.store.live_events import Bind, begin, first_line, jsonable
from geo_protect.store.migrations import SCHEMA

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_FORMATS",
    "GENESIS",
    "Actor",
    "AuditRow",
    "ChainCheck",
    "canonical_row",
    "diff_records",
    "export_rows",
    "read_audit",
    "record",
    "record_assessment",
    "row_hash",
    "verify_chain",
]

#: ``prev_hash`` of the first row of the chain.
GENESIS = "0" * 64
#: Columns of the audit table, in export order.
AUDIT_COLUMNS = (
    *("id", "at", "actor", "address", "via", "action", "target", "city"),
    *("before", "after", "prev_hash", "hash"),
)
#: Export formats and their media types.
AUDIT_FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
#: Columns of the ``assessment`` layer the audit trail keeps per (space, threat): the
#: ratings, score, band, who assessed and every override (evidence and texts are derived).
ASSESSMENT_AUDITED = (
    *("attractiveness", "vulnerability", "likelihood", "consequence", "risk_100", "band"),
    *("status", "assessors", "assessed_on", "overrides", "questionnaire_version"),
)
#: Key of the advisory lock that serialises audit writers ("audit" in ASCII).
_LOCK_KEY = 0x6175646974

_AUDIT = sa.Table(
    "audit",
    sa.MetaData(schema=SCHEMA),
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True)),
    *(sa.Column(c, sa.Text) for c in ("actor", "address", "via", "action", "target", "city")),
    sa.Column("before", JSONB),
    sa.Column("after", JSONB),
    sa.Column("prev_hash", sa.Text),
    sa.Column("hash", sa.Text),
)
#: Take the audit lock, and let the database normalise the JSON (what is hashed is stored).
_LOCK = sa.text("""
    SELECT pg_advisory_xact_lock(:key),
        CAST(:before AS jsonb) AS before, CAST(:after AS jsonb) AS after""")
#: The head of the chain and the time, read under the lock (a statement of its own, so its
#: snapshot is taken after the lock was granted and sees the last committed row).
_HEAD = sa.text(f"""
    SELECT clock_timestamp() AS now, h.id, h.hash
    FROM (SELECT 1) AS one LEFT JOIN LATERAL (
        SELECT id, hash FROM {SCHEMA}.audit ORDER BY id DESC LIMIT 1) AS h ON true""")


@dataclass(frozen=True)
class Actor:
    """Who makes a change, and from where.

    Parameters
    ----------
    name : str
        The user (the logged-in user's name, an operator's name, the OS user of a command).
    address : str or None
        Where the request came from (the client's address), None for a local command.
    via : str
        The surface: ``service``, ``cli``, ``mqtt``... (lower case letters, digits, ``_``,
        ``-``: the table refuses anything else).

    Examples
    --------
    >>> Actor("ana", "10.0.0.7", "service")
    Actor(name='ana', address='10.0.0.7', via='service')
    """

    name: str
    address: str | None
    via: str


@dataclass(frozen=True)
class AuditRow:
    """One row of the audit trail (``at`` in UTC)."""

    id: int
    at: datetime
    actor: str
    address: str | None
    via: str
    action: str
    target: str
    city: str | None
    before: Any
    after: Any
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (``at`` as UTC ISO 8601 text)."""
        return {**asdict(self), "at": _iso(self.at)}


@dataclass(frozen=True)
class ChainCheck:
    """What :func:`verify_chain` found: ``first_bad``, the first row that does not hold
    (altered, or following removed rows) and why; the last row that held (``head_*``)."""

    ok: bool
    rows: int
    head_id: int
    head_hash: str
    first_bad: int | None = None
    reason: str | None = None


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_row(row: Mapping[str, Any]) -> str:
    """The canonical JSON of an audit row that its hash covers (every column but ``hash``).

    Keys sorted, no spaces, UTF-8 text, ``at`` as UTC ISO 8601 with microseconds.

    Examples
    --------
    >>> at = datetime(2026, 5, 1, 18, tzinfo=UTC)
    >>> canonical_row({"id": 1, "at": at, "actor": "ana", "after": {"b": 1, "a": None}})
    '{"actor":"ana","after":{"a":null,"b":1},"at":"2026-05-01T18:00:00.000000+00:00","id":1}'
    """
    body = {k: v for k, v in row.items() if k != "hash"}
    if isinstance(body.get("at"), datetime):
        body["at"] = _iso(body["at"])
    return _dumps(body)


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over ``prev_hash`` followed by :func:`canonical_row` of ``row``.

    Examples
    --------
    >>> h = row_hash(GENESIS, {"id": 1, "action": "alert.acknowledge"})
    >>> len(h), h == row_hash(GENESIS, {"action": "alert.acknowledge", "id": 1})
    (64, True)
    """
    return hashlib.sha256((prev_hash + canonical_row(row)).encode("utf-8")).hexdigest()


def _json_param(value: Any) -> str | None:
    return None if value is None else json.dumps(jsonable(value), allow_nan=False)


def record(
    conn: Connection,
    actor: Actor,
    action: str,
    target: str,
    before: Any,
    after: Any,
    *,
    city: str | None = None,
) -> AuditRow:
    """Append a row to the audit trail, in the caller's transaction.

    Takes the audit lock (held until the caller's transaction ends), reads the head of
    the chain, and inserts the next row. Call it after the change's own statements, just
    before the transaction commits, so the lock is held briefly.

    Parameters
    ----------
    conn : Connection
        The transaction of the change (a connection, not an engine: the row must commit
        or roll back with the change).
    actor : Actor
        Who makes the change, and from where.
    action : str
        ``<noun>.<verb>`` in lower case: ``alert.acknowledge``, ``sensor.register``,
        ``scenario.save``, ``assessment.write``, ``user.add``, ``login.failure``...
    target : str
        What was changed, ``<kind>:<id>``: ``alert:42``, ``scenario:brasov/rows``.
    before, after : JSON-ready value or None
        The state before and after (None: did not exist / no longer exists). Times become
        UTC ISO text, NaN and infinities ``null``.
    city : str, optional
        The city the change belongs to.

    Returns
    -------
    AuditRow
        The row written (needs a server: ``tests/test_audit.py`` runs it).

    Raises
    ------
    StoreError
        The database refused the row (a blank actor, a malformed action or ``via``...);
        the caller's transaction is then aborted and rolls back with the change.
    """
    if not isinstance(conn, Connection):
        raise TypeError("audit.record needs the change's Connection (its transaction)")
    params = {"key": _LOCK_KEY, "before": _json_param(before), "after": _json_param(after)}
    try:
        json_values = conn.execute(_LOCK, params).mappings().one()
        head = conn.execute(_HEAD).mappings().one()
        prev_id, prev_hash = (0, GENESIS) if head["id"] is None else (head["id"], head["hash"])
        values = {
            "id": prev_id + 1,
            "at": head["now"].astimezone(UTC),
            "actor": actor.name,
            "address": actor.address,
            "via": actor.via,
            "action": action,
            "target": target,
            "city": city,
            "before": json_values["before"],
            "after": json_values["after"],
            "prev_hash": prev_hash,
        }
        digest = row_hash(prev_hash, values)
        conn.execute(sa.insert(_AUDIT).values(**values, hash=digest))
    except (sa.exc.IntegrityError, sa.exc.DataError, sa.exc.ProgrammingError) as exc:
        raise StoreError(f"audit row for {action} {target} refused: {first_line(exc)}") from exc
    return AuditRow(**values, hash=digest)


def _row(found: Any) -> AuditRow:
    values = {c: found[c] for c in AUDIT_COLUMNS}
    values["at"] = values["at"].astimezone(UTC)
    return AuditRow(**values)


def read_audit(
    bind: Bind,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    city: str | None = None,
    after_id: int = 0,
    limit: int | None = None,
) -> list[AuditRow]:
    """Rows of the audit trail, oldest first, filtered.

    Parameters
    ----------
    bind : Engine or Connection
        The PostGIS store.
    since, until : datetime, optional
        Rows at or after ``since`` and before ``until`` (time-zone aware).
    actor : str, optional
        Rows of this user only.
    action : str, optional
        An action (``alert.acknowledge``), or a family without a dot (``alert``: every
        ``alert.*``).
    city : str, optional
        Rows of this city only.
    after_id : int
        Rows with an id above this one (paging).
    limit : int, optional
        At most this many rows.

    Returns
    -------
    list of AuditRow
        Needs a server: ``tests/test_audit.py`` runs it.

    Raises
    ------
    ValidationError
        A naive time, ``until`` before ``since``, or a limit below 1.
    """
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.utcoffset() is None:
            raise ValidationError(f"audit {name}: give a time-zone aware time, got {value}")
    if since is not None and until is not None and until < since:
        raise ValidationError(f"audit: until ({until}) is before since ({since})")
    if limit is not None and limit < 1:
        raise ValidationError(f"audit limit: {limit} is below 1")
    query = sa.select(_AUDIT).where(_AUDIT.c.id > after_id).order_by(_AUDIT.c.id)
    if since is not None:
        query = query.where(_AUDIT.c.at >= since)
    if until is not None:
        query = query.where(_AUDIT.c.at < until)
    if actor is not None:
        query = query.where(_AUDIT.c.actor == actor)
    if action is not None:
        family = "." not in action
        query = query.where(
            _AUDIT.c.action.startswith(f"{action}.", autoescape=True)
            if family
            else _AUDIT.c.action == action
        )
    if city is not None:
        query = query.where(_AUDIT.c.city == city)
    if limit is not None:
        query = query.limit(limit)
    with begin(bind) as conn:
        return [_row(r) for r in conn.execute(query).mappings()]


def verify_chain(bind: Bind, *, batch: int = 5000) -> ChainCheck:
    """Walk the whole chain and say whether it holds, or where it first breaks.

    A row breaks the chain when its id is not the previous id + 1 (rows removed before
    it), its ``prev_hash`` is not the previous row's ``hash``, or its ``hash`` is not that
    of its own content (the row was altered).

    Parameters
    ----------
    bind : Engine or Connection
        The PostGIS store.
    batch : int
        Rows read per round trip (memory stays at one batch).

    Returns
    -------
    ChainCheck
        Needs a server: ``tests/test_audit.py`` runs it.
    """
    prev_id, prev_hash, rows = 0, GENESIS, 0
    query = sa.select(_AUDIT).order_by(_AUDIT.c.id)
    with begin(bind) as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
        for found in result.mappings():
            row = _row(found)
            problem = _problem(row, prev_id, prev_hash)
            if problem is not None:
                result.close()
                return ChainCheck(False, rows, prev_id, prev_hash, row.id, problem)
            prev_id, prev_hash, rows = row.id, row.hash, rows + 1
    return ChainCheck(True, rows, prev_id, prev_hash)


def _problem(row: AuditRow, prev_id: int, prev_hash: str) -> str | None:
    if row.id != prev_id + 1:
        gone = f"row {prev_id + 1}" if row.id == prev_id + 2 else f"rows {prev_id + 1}-{row.id - 1}"
        return f"{gone} removed (row {row.id} follows row {prev_id})"
    if row.prev_hash != prev_hash:
        return f"prev_hash does not match the hash of row {prev_id} (a row was replaced)"
    values = {k: v for k, v in asdict(row).items() if k != "hash"}
    if row_hash(row.prev_hash, values) != row.hash:
        return "its content does not match its hash (the row was altered)"
    return None


def export_rows(rows: Iterable[AuditRow], fmt: Literal["csv", "json"] | str) -> str:
    """The rows as CSV (``before``/``after`` as JSON text) or a JSON array.

    Parameters
    ----------
    rows : iterable of AuditRow
        What :func:`read_audit` returned.
    fmt : str
        ``csv`` or ``json`` (media types in :data:`AUDIT_FORMATS`).

    Raises
    ------
    ValidationError
        An unknown format.

    Examples
    --------
    >>> at = datetime(2026, 5, 1, 18, tzinfo=UTC)
    >>> row = AuditRow(1, at, "ana", None, "cli", "sensor.register", "sensors:brasov",
    ...                "brasov", None, {"n": 3}, GENESIS, "ab" * 32)
    >>> print(export_rows([row], "csv").splitlines()[1][:60])
    1,2026-05-01T18:00:00.000000+00:00,ana,,cli,sensor.register,
    >>> json.loads(export_rows([row], "json"))[0]["after"]
    {'n': 3}
    """
    if fmt not in AUDIT_FORMATS:
        raise ValidationError(f"audit export format {fmt!r}: use {' or '.join(AUDIT_FORMATS)}")
    dicts = [r.as_dict() for r in rows]
    if fmt == "json":
        return json.dumps(dicts, ensure_ascii=False, indent=1) + "\n"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(AUDIT_COLUMNS)
    for d in dicts:
        for key in ("before", "after"):
            d[key] = "" if d[key] is None else _dumps(d[key])
        writer.writerow(["" if d[c] is None else d[c] for c in AUDIT_COLUMNS])
    return out.getvalue()


def diff_records(
    before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What changed between two sets of records keyed by id: the ``before`` and ``after``.

    Records equal in both are left out; one only in ``before`` was removed (absent from
    the second dict), one only in ``after`` added.

    Examples
    --------
    >>> diff_records({"a": {"v": 1}, "b": {"v": 2}}, {"a": {"v": 1}, "b": {"v": 3}, "c": {}})
    ({'b': {'v': 2}}, {'b': {'v': 3}, 'c': {}})
    """
    old = {k: jsonable(dict(v)) for k, v in before.items()}
    new = {k: jsonable(dict(v)) for k, v in after.items()}
    keys: Sequence[str] = sorted(set(old) | set(new))
    changed = [k for k in keys if old.get(k) != new.get(k)]
    return {k: old[k] for k in changed if k in old}, {k: new[k] for k in changed if k in new}


def _layer_records(layer: pd.DataFrame, columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{uid: {column: value}}`` of a layer, the JSON text of ``overrides`` parsed."""
    kept = [c for c in columns if c in layer.columns]
    out: dict[str, dict[str, Any]] = {}
    for uid, values in zip(
        layer.index.astype(str), layer[kept].itertuples(index=False), strict=True
    ):
        rec = dict(zip(kept, values, strict=True))
        for key, value in rec.items():
            if key == "overrides" and isinstance(value, str):
                rec[key] = json.loads(value)
        out[uid] = rec
    return out


def record_assessment(
    conn: Connection, actor: Actor | None, city: str, old: pd.DataFrame, new: pd.DataFrame
) -> AuditRow:
    """The audit row of a write of a city's ``assessment`` layer: the scores that changed.

    Parameters
    ----------
    conn : Connection
        The transaction of the write.
    actor : Actor or None
        Who writes it (None: a :class:`StoreError`, and the write rolls back).
    city : str
        The city's slug.
    old, new : DataFrame
        The stored layer before the write and the layer written (``uid`` index).

    Returns
    -------
    AuditRow
        ``assessment.write`` on ``assessment:<city>``; ``before`` and ``after`` hold the
        :data:`ASSESSMENT_AUDITED` values of the (space, threat) rows that changed.
    """
    if actor is None:
        raise StoreError(f"writing the assessment of {city!r} needs an actor (the audit trail)")
    before, after = diff_records(
        _layer_records(old, ASSESSMENT_AUDITED), _layer_records(new, ASSESSMENT_AUDITED)
    )
    return record(conn, actor, "assessment.write", f"assessment:{city}", before, after, city=city)
