"""The planner workspace: each scenario's HVM scheme option and when it was last saved (issue 14).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

* ``scheme``: the NPSA/NaCTSO scheme option the planner chose for the scenario (a code of
  ``data/reference/hvm_scheme_options.csv``; the vocabulary lives in that versioned table,
  so no check constraint here). ``NULL`` for scenarios saved by the CLI.
* ``updated``: when the scenario was last saved (``created`` stays the first save).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from geo_protect.store.migrations import SCHEMA

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("scenario", sa.Column("scheme", sa.Text(), nullable=True), schema=SCHEMA)
    op.add_column(
        "scenario", sa.Column("updated", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_column("scenario", "updated", schema=SCHEMA)
    op.drop_column("scenario", "scheme", schema=SCHEMA)
