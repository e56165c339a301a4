"""Ranking columns: labels, occupancy by use, continuous risk index (issue 9, part 3).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

The column dicts below are a frozen copy of the layer specs as of this revision.
"""

from collections.abc import Sequence

from geo_protect.store.migrations import add_layer_columns, drop_layer_columns

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Columns added by this revision, per layer (frozen: never edit after release).
ADDED: dict[str, dict[str, str]] = {
    "space_metric": {
        "label": "string",
        "expected_peak_persons": "float64",
        "occupancy_rule": "string",
        "worst_energy_kj": "float64",
    },
    "assessment": {
        "risk_index": "float64",
        "label": "string",
    },
}


def upgrade() -> None:
    for layer, columns in ADDED.items():
        add_layer_columns(layer, columns)


def downgrade() -> None:
    for layer, columns in ADDED.items():
        drop_layer_columns(layer, list(columns))
