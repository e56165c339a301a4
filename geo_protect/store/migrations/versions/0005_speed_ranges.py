"""Approach speed range under low / high parameter sets (issue 9, part 1).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

The column dicts below are a frozen copy of the layer specs as of this revision.
"""

from collections.abc import Sequence

from geo_protect.store.migrations import add_layer_columns, drop_layer_columns

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


COLUMNS = {
    "approach": {"speed_low_kmh": "float64", "speed_high_kmh": "float64"},
    "entry_point": {"worst_speed_low_kmh": "float64", "worst_speed_high_kmh": "float64"},
    "space_metric": {"worst_speed_low_kmh": "float64", "worst_speed_high_kmh": "float64"},
}


def upgrade() -> None:
    for name, columns in COLUMNS.items():
        add_layer_columns(name, columns)


def downgrade() -> None:
    for name, columns in COLUMNS.items():
        drop_layer_columns(name, columns)
