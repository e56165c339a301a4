"""The VBIED stand-off layer (issue 9, part 2).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

The column dicts below are a frozen copy of the layer specs as of this revision.
"""

from collections.abc import Sequence

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
