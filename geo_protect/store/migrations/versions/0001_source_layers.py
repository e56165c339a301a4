"""The city table and the eight source layers (ingest, issue 2).

Revision ID: 0001
Revises:
Create Date: 2026-11-26

The column dicts below are a frozen copy of ``geo_protect.schema`` as of this revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from geo_protect.store.migrations import SCHEMA, create_layer_table, drop_layer_table

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVENANCE = {
    "osm_type": "string",
    "osm_id": "Int64",
    "name": "string",
    "kind": "string",
    "tags": "json",
    "source": "string",
    "data_date": "string",
}

LAYERS = {
    "public_space": ("MultiPolygon", PROVENANCE),
    "street": (
        "LineString",
        {
            **PROVENANCE,
            "highway": "string",
            "walk": "boolean",
            "hostile_vehicle": "boolean",
            "width_m": "float64",
            "lanes": "float64",
            "maxspeed_kmh": "float64",
        },
    ),
    "entrance": ("Point", PROVENANCE),
    "barrier": ("Geometry", {**PROVENANCE, "maxwidth_m": "float64"}),
    "poi": ("Point", {**PROVENANCE, "tag": "string", "capacity": "float64"}),
    "building": ("MultiPolygon", {**PROVENANCE, "levels": "float64"}),
    "surveillance": ("Point", PROVENANCE),
    "landcover": ("MultiPolygon", PROVENANCE),
}


def upgrade() -> None:
    op.create_table(
        "city",
        sa.Column("slug", sa.Text(), primary_key=True),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reference_version", sa.Text(), nullable=False),
        sa.Column("report", JSONB(), nullable=False),
        sa.Column("layers", JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        schema=SCHEMA,
    )
    for name, (geometry, columns) in LAYERS.items():
        create_layer_table(name, geometry, columns)


def downgrade() -> None:
    for name in reversed(list(LAYERS)):
        drop_layer_table(name)
    op.drop_table("city", schema=SCHEMA)
