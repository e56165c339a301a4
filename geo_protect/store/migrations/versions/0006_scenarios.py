"""Barrier scenarios of a city: name, author, time, number of edits and the edits (issue 10).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

One row per (city, scenario name); ``scenario`` is the whole scenario as JSON (the
``Scenario`` model's dump). Not a layer table: it has no geometry column, so writes of a
city's layers never touch it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from geo_protect.store.migrations import SCHEMA

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scenario",
        sa.Column("city", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_edits", sa.Integer(), nullable=False),
        sa.Column("scenario", JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("city", "name", name="scenario_pkey"),
        sa.ForeignKeyConstraint(
            ["city"], [f"{SCHEMA}.city.slug"], name="scenario_city_fkey", ondelete="CASCADE"
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("scenario", schema=SCHEMA)
