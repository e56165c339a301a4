"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

A new layer: call ``create_layer_table(name, geometry, {column: dtype, ...})`` with the
columns written out here (a frozen snapshot; never read ``geo_protect.schema.LAYERS``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from geo_protect.store.migrations import SCHEMA, create_layer_table, drop_layer_table
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
