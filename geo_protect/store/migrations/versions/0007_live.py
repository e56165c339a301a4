"""The live control room: sensors, readings, alerts and their history, the event log (issue 11).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10

* ``sensor``: one row per sensor (ids are unique across cities), its city, space or drawn
  ``zone`` (a polygon in EPSG:4326; the column is not called ``geom``, so the layer writes
  of :mod:`geo_protect.store.postgis`, which find layer tables by their ``geom`` column,
  never touch it) and where the registration came from.
* ``reading``: keyed by ``(sensor_id, observed_at)``, so a redelivered reading is a
  duplicate, not a second row; a BRIN index on ``observed_at`` (readings arrive in time
  order, so the block ranges stay tight) serves time windows over all sensors, the key
  serves one sensor's window. Counts, densities and intervals are checked by the database.
* ``alert``: an alert of the control room; a partial unique index keeps one unresolved
  alert per ``(city, alert_key)``, so de-duplication holds across workers.
  ``alert_pending``: alerts being timed (their hold) that no operator sees yet.
* ``alert_history``: every transition of an alert, append-only (a trigger refuses
  ``UPDATE`` and ``DELETE``), so an operator's acknowledgement is never lost.
* ``live_event``: the ordered event log that Server-Sent Events resume from.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

from geo_protect.store.migrations import SCHEMA, SRID

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
NOW = sa.text("now()")
#: Who made a decision on an alert, when, and why (acknowledged_*, resolved_*).
_WHO = (("by", sa.Text()), ("at", TZ), ("note", sa.Text()))


def _sensor() -> None:
    op.create_table(
        "sensor",
        sa.Column("sensor_id", sa.Text(), nullable=False),
        sa.Column("city", sa.Text(), nullable=False),
        sa.Column("space_uid", sa.Text(), nullable=True),
        sa.Column(
            "zone",
            Geometry(geometry_type="POLYGON", srid=SRID, spatial_index=False),
            nullable=True,
        ),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("area_m2", sa.Double(), nullable=True),
        sa.Column("exit_width_m", sa.Double(), nullable=True),
        sa.Column("installed_at", TZ, nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("sensor_id", name="sensor_pkey"),
        sa.CheckConstraint(
            "kind IN ('line_counter', 'area_counter', 'density')", name="sensor_kind_check"
        ),
        sa.CheckConstraint("area_m2 > 0", name="sensor_area_m2_check"),
        sa.CheckConstraint("exit_width_m > 0", name="sensor_exit_width_m_check"),
        schema=SCHEMA,
    )
    op.create_index("sensor_city_idx", "sensor", ["city"], schema=SCHEMA)


def _reading() -> None:
    op.create_table(
        "reading",
        sa.Column("sensor_id", sa.Text(), nullable=False),
        sa.Column("observed_at", TZ, nullable=False),
        sa.Column("count_in", sa.Integer(), nullable=True),
        sa.Column("count_out", sa.Integer(), nullable=True),
        sa.Column("present", sa.Integer(), nullable=True),
        sa.Column("density", sa.Double(), nullable=True),
        sa.Column("interval_s", sa.Double(), nullable=True),
        sa.Column("received_at", TZ, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("sensor_id", "observed_at", name="reading_pkey"),
        sa.ForeignKeyConstraint(
            ["sensor_id"],
            [f"{SCHEMA}.sensor.sensor_id"],
            name="reading_sensor_fkey",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("count_in >= 0", name="reading_count_in_check"),
        sa.CheckConstraint("count_out >= 0", name="reading_count_out_check"),
        sa.CheckConstraint("present >= 0", name="reading_present_check"),
        sa.CheckConstraint("density >= 0", name="reading_density_check"),
        sa.CheckConstraint("interval_s > 0", name="reading_interval_s_check"),
        schema=SCHEMA,
    )
    op.create_index(
        "reading_observed_at_brin",
        "reading",
        ["observed_at"],
        schema=SCHEMA,
        postgresql_using="brin",
    )


def _alert() -> None:
    op.create_table(
        "alert",
        sa.Column("alert_id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("city", sa.Text(), nullable=False),
        sa.Column("alert_key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("space_uid", sa.Text(), nullable=True),
        sa.Column("sensor_id", sa.Text(), nullable=True),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("condition", sa.Text(), nullable=False, server_default="active"),
        sa.Column("state", sa.Text(), nullable=False, server_default="open"),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("threshold", sa.Double(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("change", sa.Text(), nullable=True),
        sa.Column("pending_since", TZ, nullable=True),
        sa.Column("opened_at", TZ, nullable=False, server_default=NOW),
        sa.Column("updated_at", TZ, nullable=False, server_default=NOW),
        *(sa.Column(f"acknowledged_{c}", t, nullable=True) for c, t in _WHO),
        *(sa.Column(f"resolved_{c}", t, nullable=True) for c, t in _WHO),
        sa.PrimaryKeyConstraint("alert_id", name="alert_pkey"),
        sa.CheckConstraint("condition IN ('active', 'cleared')", name="alert_condition_check"),
        sa.CheckConstraint(
            "state IN ('open', 'acknowledged', 'resolved')", name="alert_state_check"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "alert_unresolved_key",
        "alert",
        ["city", "alert_key"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("state <> 'resolved'"),
    )
    op.create_index("alert_city_state_idx", "alert", ["city", "state"], schema=SCHEMA)
    op.create_table(
        "alert_pending",
        sa.Column("city", sa.Text(), nullable=False),
        sa.Column("alert_key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("space_uid", sa.Text(), nullable=True),
        sa.Column("sensor_id", sa.Text(), nullable=True),
        sa.Column("severity", sa.Text(), nullable=True),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("pending_since", TZ, nullable=True),
        sa.Column("updated_at", TZ, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("city", "alert_key", name="alert_pending_pkey"),
        schema=SCHEMA,
    )


def _history() -> None:
    op.create_table(
        "alert_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("at", TZ, nullable=False, server_default=sa.text("clock_timestamp()")),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("change", sa.Text(), nullable=False),
        sa.Column("detail", JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="alert_history_pkey"),
        sa.ForeignKeyConstraint(
            ["alert_id"], [f"{SCHEMA}.alert.alert_id"], name="alert_history_alert_fkey"
        ),
        schema=SCHEMA,
    )
    op.create_index("alert_history_alert_idx", "alert_history", ["alert_id"], schema=SCHEMA)
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.alert_history_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'alert_history is append-only: % refused', TG_OP;
        END $$
        """
    )
    op.execute(
        f"CREATE TRIGGER alert_history_append_only BEFORE UPDATE OR DELETE "
        f"ON {SCHEMA}.alert_history FOR EACH ROW "
        f"EXECUTE FUNCTION {SCHEMA}.alert_history_append_only()"
    )


def _events() -> None:
    op.create_table(
        "live_event",
        sa.Column("event_id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("city", sa.Text(), nullable=False),
        sa.Column("at", TZ, nullable=False, server_default=NOW),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("payload", JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="live_event_pkey"),
        schema=SCHEMA,
    )
    op.create_index("live_event_city_idx", "live_event", ["city", "event_id"], schema=SCHEMA)


def upgrade() -> None:
    _sensor()
    _reading()
    _alert()
    _history()
    _events()


def downgrade() -> None:
    op.drop_table("live_event", schema=SCHEMA)
    op.drop_table("alert_history", schema=SCHEMA)
    op.execute(f"DROP FUNCTION {SCHEMA}.alert_history_append_only()")
    op.drop_table("alert_pending", schema=SCHEMA)
    op.drop_table("alert", schema=SCHEMA)
    op.drop_table("reading", schema=SCHEMA)
    op.drop_table("sensor", schema=SCHEMA)
