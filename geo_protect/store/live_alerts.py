"""The alerts of the live control room in the PostGIS store (migration ``0007``, issue 11).

One unresolved alert per ``(city, alert_key)``: a partial unique index on ``alert``
(``WHERE state <> 'resolved'``) enforces it across workers. The operator state machine is
``open → acknowledged → resolved``, ``open → resolved`` too; nothing leaves ``resolved``
(:class:`~geo_protect.errors.AlertStateError`). Every transition, by the system or an
operator, adds a row to ``alert_history``, which the database keeps append-only. Alerts
still being timed (condition ``pending``: a hold under way, seen by no operator) live in
``alert_pending`` until they open (:func:`tracked_alerts`, :func:`save_tracked`).

The alert rows are those of :func:`geo_protect.live.alerts.evaluate_alerts`; the store
does not import it (it sits on the foundation only), it takes their columns by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Connection

from geo_protect.errors import AlertStateError, NotFoundError, ValidationError
from geo_protect.store._common import check_slug
from geo_protect.store.audit import Actor, record
from geo_protect.store.live_events import Bind, append_event, begin, jsonable, plain, utc_frame
from geo_protect.store.migrations import SCHEMA

__all__ = [
    "ALERT_STATES",
    "acknowledge_alert",
    "apply_alert_changes",
    "city_alerts",
    "get_alert",
    "resolve_alert",
    "save_tracked",
    "tracked_alerts",
    "unresolved_alerts",
]

#: Operator states of an alert.
ALERT_STATES = ("open", "acknowledged", "resolved")
#: What an evaluated alert row sets (``alert_key``, the times and the target aside).
_CHANGE_FIELDS = ("severity", "condition", "value", "threshold", "unit", "message", "change")
#: The predicate of the partial unique index ``alert_unresolved_key``.
_UNRESOLVED = sa.text("state <> 'resolved'")

_MD = sa.MetaData(schema=SCHEMA)
_TZ = sa.DateTime(timezone=True)
_TARGET = ("city", "alert_key", "kind", "space_uid", "sensor_id")
_ALERT = sa.Table(
    "alert",
    _MD,
    sa.Column("alert_id", sa.BigInteger, primary_key=True),
    *(sa.Column(c, sa.Text) for c in (*_TARGET, "severity", "condition", "state")),
    sa.Column("value", sa.Double),
    sa.Column("threshold", sa.Double),
    *(sa.Column(c, sa.Text) for c in ("unit", "message", "change")),
    *(sa.Column(c, _TZ) for c in ("pending_since", "opened_at", "updated_at")),
    *(
        sa.Column(f"{d}_{c}", _TZ if c == "at" else sa.Text)
        for d in ("acknowledged", "resolved")
        for c in ("by", "at", "note")
    ),
)
_PENDING = sa.Table(
    "alert_pending",
    _MD,
    *(sa.Column(c, sa.Text) for c in (*_TARGET, "severity")),
    sa.Column("value", sa.Double),
    sa.Column("pending_since", _TZ),
)
_HISTORY = sa.Table(
    "alert_history",
    _MD,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("alert_id", sa.BigInteger),
    sa.Column("at", _TZ),
    sa.Column("actor", sa.Text),
    sa.Column("change", sa.Text),
    sa.Column("detail", JSONB),
)


def _alert_dict(row: Any) -> dict[str, Any]:
    out = {c.name: row[c.name] for c in _ALERT.c}
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = value.astimezone(UTC)
    return out


def _alerts_frame(rows: Sequence[Any]) -> pd.DataFrame:
    columns = [c.name for c in _ALERT.c]
    times = [c.name for c in _ALERT.c if isinstance(c.type, sa.DateTime)]
    frame = utc_frame([[r[c] for c in columns] for r in rows], columns, times)
    for col in ("value", "threshold"):
        frame[col] = pd.to_numeric(frame[col]).astype(float)
    frame["alert_id"] = frame["alert_id"].astype("Int64")
    return frame


def unresolved_alerts(conn: Bind, city: str) -> pd.DataFrame:
    """The city's alerts not yet resolved (open or acknowledged), by ``alert_key``.

    Returns
    -------
    DataFrame
        One row per alert, the columns of the ``alert`` table (times UTC).
    """
    query = (
        sa.select(_ALERT)
        .where(_ALERT.c.city == city, _ALERT.c.state != "resolved")
        .order_by(_ALERT.c.alert_key.collate("C"))
    )
    with begin(conn) as c:
        return _alerts_frame(c.execute(query).mappings().all())


def tracked_alerts(conn: Bind, city: str) -> pd.DataFrame:
    """What ``evaluate_alerts`` takes as ``active``: the unresolved alerts and the pending ones.

    Returns
    -------
    DataFrame
        :func:`unresolved_alerts` and the rows of ``alert_pending`` (condition
        ``pending``, no ``alert_id``) whose key has no unresolved alert, by ``alert_key``.
    """
    with begin(conn) as c:
        stored = unresolved_alerts(c, city)
        query = sa.select(_PENDING).where(_PENDING.c.city == city)
        pending = c.execute(query).mappings().all()
    keys = set(stored["alert_key"])
    rows = [{**r, "condition": "pending"} for r in pending if r["alert_key"] not in keys]
    if not rows:
        return stored
    extra = utc_frame(
        [[r.get(k) for k in stored.columns] for r in rows], stored.columns, ["pending_since"]
    )
    extra["value"] = pd.to_numeric(extra["value"]).astype(float)
    both = pd.concat([stored.astype(object), extra.astype(object)], ignore_index=True)
    both = both.astype(stored.dtypes.to_dict())
    return both.sort_values("alert_key", key=lambda s: s.astype(str)).reset_index(drop=True)


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The rows of a change frame as dicts of plain values (``None`` for missing)."""
    if frame is None or frame.empty:
        return []
    return [
        dict(zip(frame.columns, v, strict=True))
        for v in zip(*(plain(frame[c]) for c in frame.columns), strict=True)
    ]


def _when(record: dict[str, Any], key: str) -> datetime | None:
    value = record.get(key)
    return pd.Timestamp(value).to_pydatetime() if value is not None else None


def _values(record: dict[str, Any]) -> dict[str, Any]:
    """The columns an evaluated alert row sets."""
    out = {k: record.get(k) for k in _CHANGE_FIELDS}
    out["pending_since"] = _when(record, "pending_since")
    out["updated_at"] = _when(record, "evaluated_at") or sa.func.now()
    return out


def _detail(alert: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What a history row records of an alert's new state."""
    keep = ("severity", "condition", "state", "value", "threshold", "message")
    detail: dict[str, Any] = jsonable({**{k: alert.get(k) for k in keep}, **extra})
    return detail


def _open(conn: Connection, city: str, rec: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Insert an opened alert (or update the unresolved one of its key): row and change."""
    values = {**_values(rec), **{c: rec.get(c) for c in ("kind", "space_uid", "sensor_id")}}
    stmt = (
        insert(_ALERT)
        .values(city=city, alert_key=rec["alert_key"], state="open", **values)
        .values(opened_at=values["updated_at"])
        .on_conflict_do_update(
            index_elements=["city", "alert_key"], index_where=_UNRESOLVED, set_=values
        )
        .returning(*_ALERT.c, sa.literal_column("(xmax = 0)").label("inserted"))
    )
    row = conn.execute(stmt).mappings().one()
    return _alert_dict(row), "opened" if row["inserted"] else rec.get("change") or "updated"


def _change(conn: Connection, city: str, rec: dict[str, Any]) -> dict[str, Any] | None:
    """Update the unresolved alert of the row's key (None: there is none)."""
    stmt = (
        sa.update(_ALERT)
        .where(_ALERT.c.city == city, _ALERT.c.alert_key == rec["alert_key"])
        .where(_ALERT.c.state != "resolved")
        .values(**_values(rec))
        .returning(*_ALERT.c)
    )
    found = conn.execute(stmt).mappings().first()
    return None if found is None else _alert_dict(found)


def apply_alert_changes(
    conn: Connection,
    city: str,
    opened: pd.DataFrame,
    changed: pd.DataFrame,
    *,
    actor: str = "system",
) -> list[dict[str, Any]]:
    """Write what ``evaluate_alerts`` decided, with a history row per alert touched.

    Parameters
    ----------
    conn : Connection
        The caller's transaction.
    city : str
        The city's slug.
    opened : DataFrame
        Alerts to open (``AlertChanges.opened``), by ``alert_key``; one whose key has an
        unresolved alert already updates that one (so the unique index holds). Their
        ``alert_pending`` rows go.
    changed : DataFrame
        Unresolved alerts that changed (``AlertChanges.changed``), matched by ``alert_key``;
        a key whose alert was resolved meanwhile is skipped.
    actor : str
        Who makes the change, for the history.

    Returns
    -------
    list of dict
        The stored alert rows written, opened ones first (times UTC).
    """
    check_slug(city)
    written = [_open(conn, city, rec) for rec in _records(opened)]
    for rec in _records(changed):
        found = _change(conn, city, rec)
        if found is not None:
            written.append((found, rec.get("change") or "changed"))
    keys = [str(k) for k in opened["alert_key"]] if len(opened) else []
    if keys:
        where = (_PENDING.c.city == city, _PENDING.c.alert_key.in_(keys))
        conn.execute(sa.delete(_PENDING).where(*where))
    if written:
        history = [
            {"alert_id": a["alert_id"], "actor": actor, "change": c, "detail": _detail(a)}
            for a, c in written
        ]
        conn.execute(sa.insert(_HISTORY), history)
    return [a for a, _ in written]


def save_tracked(conn: Connection, city: str, tracked: pd.DataFrame) -> None:
    """Keep what the next evaluation needs: the pending alerts and every hold timer.

    Parameters
    ----------
    conn : Connection
        The caller's transaction (after :func:`apply_alert_changes`).
    city : str
        The city's slug.
    tracked : DataFrame
        ``AlertChanges.tracked``: rows of condition ``pending`` replace the city's
        ``alert_pending``; the others set ``pending_since`` of their unresolved alert.
    """
    records = _records(tracked)
    conn.execute(sa.delete(_PENDING).where(_PENDING.c.city == city))
    pending = [
        {
            **{c.name: r.get(c.name) for c in _PENDING.c},
            "city": city,
            "pending_since": _when(r, "pending_since"),
        }
        for r in records
        if r.get("condition") == "pending"
    ]
    if pending:
        conn.execute(sa.insert(_PENDING), pending)
    timers = [r for r in records if r.get("condition") != "pending"]
    if timers:
        conn.execute(
            sa.text(f"""UPDATE {SCHEMA}.alert a SET pending_since = t.since
                FROM unnest(CAST(:keys AS text[]), CAST(:since AS timestamptz[])) AS t(k, since)
                WHERE a.city = :city AND a.alert_key = t.k AND a.state <> 'resolved'
                AND a.pending_since IS DISTINCT FROM t.since"""),
            {
                "city": city,
                "keys": [str(r["alert_key"]) for r in timers],
                "since": [_when(r, "pending_since") for r in timers],
            },
        )


#: The operator state of an alert that the audit trail keeps before and after a decision.
_DECISION_FIELDS = (
    "state",
    *(f"{d}_{c}" for d in ("acknowledged", "resolved") for c in ("by", "at", "note")),
)


def _decide(bind: Bind, alert_id: int, to: str, actor: Actor, note: str | None) -> dict[str, Any]:
    """Move an alert to ``acknowledged`` or ``resolved``: history, audit row and event."""
    user = actor.name
    if not isinstance(user, str) or not user.strip():
        raise ValidationError(f"alert {alert_id}: say who {to} it (user)")
    allowed = ("open",) if to == "acknowledged" else ("open", "acknowledged")
    with begin(bind) as conn:
        query = sa.select(_ALERT).where(_ALERT.c.alert_id == alert_id).with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFoundError(f"alert {alert_id} does not exist")
        if row["state"] not in allowed:
            by = row[f"{row['state']}_by"] if row["state"] != "open" else None
            raise AlertStateError(
                f"alert {alert_id} ({row['alert_key']}, {row['city']}) is {row['state']}"
                f"{f' (by {by})' if by else ''}: it cannot be {to}"
            )
        values = {f"{to}_by": user, f"{to}_at": sa.func.now(), f"{to}_note": note}
        stmt = (
            sa.update(_ALERT)
            .where(_ALERT.c.alert_id == alert_id)
            .values(state=to, updated_at=sa.func.now(), **values)
            .returning(*_ALERT.c)
        )
        alert = _alert_dict(conn.execute(stmt).mappings().one())
        detail = _detail(alert, previous=row["state"], note=note)
        conn.execute(
            sa.insert(_HISTORY).values(alert_id=alert_id, actor=user, change=to, detail=detail)
        )
        append_event(conn, alert["city"], "alert", alert)
        action = "alert.acknowledge" if to == "acknowledged" else "alert.resolve"
        before = {k: row[k] for k in _DECISION_FIELDS}
        after = {k: alert[k] for k in _DECISION_FIELDS}
        record(conn, actor, action, f"alert:{alert_id}", before, after, city=alert["city"])
    return alert


def acknowledge_alert(
    engine: Bind, alert_id: int, *, actor: Actor, note: str | None
) -> dict[str, Any]:
    """An operator acknowledges an open alert (history, audit row and ``alert`` event included).

    ``actor.name`` is recorded as ``acknowledged_by``; the audit row
    (``alert.acknowledge``) is written in the same transaction, so a refused audit row
    leaves the alert as it was.

    Returns
    -------
    dict
        The alert as stored now.

    Raises
    ------
    NotFoundError
        No alert has this id.
    AlertStateError
        The alert is acknowledged or resolved already (the message says by whom).
    ValidationError
        ``actor.name`` is blank.
    StoreError
        The audit row was refused (nothing changed).
    """
    return _decide(engine, alert_id, "acknowledged", actor, note)


def resolve_alert(engine: Bind, alert_id: int, *, actor: Actor, note: str | None) -> dict[str, Any]:
    """An operator resolves an open or acknowledged alert; its key may then open again.

    ``actor.name`` is recorded as ``resolved_by``, with an ``alert.resolve`` audit row in
    the same transaction.

    Returns
    -------
    dict
        The alert as stored now.

    Raises
    ------
    NotFoundError
        No alert has this id.
    AlertStateError
        The alert is resolved already.
    ValidationError
        ``actor.name`` is blank.
    StoreError
        The audit row was refused (nothing changed).
    """
    return _decide(engine, alert_id, "resolved", actor, note)


def alert_city(engine: Bind, alert_id: int) -> str | None:
    """The city of alert ``alert_id``, or None if there is no such alert."""
    with begin(engine) as conn:
        query = sa.select(_ALERT.c.city).where(_ALERT.c.alert_id == alert_id)
        found = conn.execute(query).scalar_one_or_none()
    return None if found is None else str(found)


def get_alert(engine: Bind, alert_id: int) -> dict[str, Any] | None:
    """One alert with its ``history`` (list of dicts, oldest first), or None."""
    with begin(engine) as conn:
        row = conn.execute(sa.select(_ALERT).where(_ALERT.c.alert_id == alert_id)).mappings()
        found = row.first()
        if found is None:
            return None
        query = sa.select(_HISTORY).where(_HISTORY.c.alert_id == alert_id).order_by(_HISTORY.c.id)
        history = [dict(h) for h in conn.execute(query).mappings()]
    for h in history:
        h["at"] = h["at"].astimezone(UTC)
    return {**_alert_dict(found), "history": history}


def city_alerts(
    engine: Bind, city: str, *, states: tuple[str, ...] = ("open", "acknowledged")
) -> list[dict[str, Any]]:
    """The city's alerts in ``states``, newest first (without their history)."""
    bad = sorted(set(states) - set(ALERT_STATES))
    if bad:
        raise ValidationError(f"alert state {bad[0]!r} is not one of {', '.join(ALERT_STATES)}")
    query = (
        sa.select(_ALERT)
        .where(_ALERT.c.city == city, _ALERT.c.state.in_(list(states)))
        .order_by(_ALERT.c.opened_at.desc(), _ALERT.c.alert_id.desc())
    )
    with begin(engine) as conn:
        return [_alert_dict(r) for r in conn.execute(query).mappings()]
