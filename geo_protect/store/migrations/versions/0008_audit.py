"""The append-only, hash-chained audit trail of every change (issue 13).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-17

* ``audit``: one row per change — who (``actor``, ``address``, ``via``), when (``at``),
  what (``action`` such as ``alert.acknowledge``, ``target`` such as ``alert:42``, the
  ``city`` when there is one) and the state ``before`` and ``after`` (JSON). Rows are
  written by :func:`geo_protect.store.audit.record` inside the transaction of the change.
* ``id`` is the row's position in the chain, gapless from 1 (assigned under an advisory
  lock by the writer, not by a sequence, so a rolled-back change leaves no gap);
  ``prev_hash`` is the ``hash`` of row ``id - 1`` (64 zeros for row 1) and ``hash`` is
  the SHA-256 over ``prev_hash`` and a canonical JSON of the row.
* Append-only: a trigger refuses ``UPDATE`` and ``DELETE``. ``TRUNCATE`` (a table owner's
  statement that fires no row trigger) is left to privileges: the service's role should
  not own the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from geo_protect.store.migrations import SCHEMA

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
_HEX64 = "~ '^[0-9a-f]{64}$'"


def _table() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", TZ, nullable=False, server_default=sa.text("clock_timestamp()")),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("via", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("before", JSONB(), nullable=True),
        sa.Column("after", JSONB(), nullable=True),
        sa.Column("prev_hash", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="audit_pkey"),
        sa.CheckConstraint("id >= 1", name="audit_id_check"),
        sa.CheckConstraint("length(btrim(actor)) > 0", name="audit_actor_check"),
        sa.CheckConstraint("via ~ '^[a-z][a-z0-9_-]*$'", name="audit_via_check"),
        sa.CheckConstraint("action ~ '^[a-z][a-z_]*\\.[a-z][a-z_]*$'", name="audit_action_check"),
        sa.CheckConstraint("length(target) > 0", name="audit_target_check"),
        sa.CheckConstraint(f"prev_hash {_HEX64}", name="audit_prev_hash_check"),
        sa.CheckConstraint(f"hash {_HEX64}", name="audit_hash_check"),
        schema=SCHEMA,
    )
    op.create_index("audit_at_idx", "audit", ["at"], schema=SCHEMA)
    op.create_index("audit_actor_idx", "audit", ["actor", "at"], schema=SCHEMA)
    op.create_index("audit_action_idx", "audit", ["action", "at"], schema=SCHEMA)


def _append_only() -> None:
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.audit_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        f"CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE "
        f"ON {SCHEMA}.audit FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.audit_append_only()"
    )


def upgrade() -> None:
    _table()
    _append_only()


def downgrade() -> None:
    op.drop_table("audit", schema=SCHEMA)
    op.execute(f"DROP FUNCTION {SCHEMA}.audit_append_only()")
