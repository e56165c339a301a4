"""The VBIED stand-off layer (issue 9, part 2).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

The column dicts below are a frozen copy of the layer specs as of this revision.
"""

from collections.abc import Sequence

from geo_protect.store.migrations import create_layer_table, drop_layer_table

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LAYERS = {
    "standoff": (
        "Point",
        {
            "space_uid": "string",
            "vehicle": "string",
            "explosive_kg": "float64",
            "reach": "string",
            "closest_m": "float64",
            "mandatory_m": "float64",
            "preferred_m": "float64",
            "persons_mandatory": "float64",
            "persons_preferred": "float64",
            "method": "string",
        },
    ),
}


def upgrade() -> None:
    for name, (geometry, columns) in LAYERS.items():
        create_layer_table(name, geometry, columns)


def downgrade() -> None:
    for name in reversed(list(LAYERS)):
        drop_layer_table(name)
