"""The analysis layers: entry points, approaches, space metrics (issue 3) and assessments (issue 4).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

The column dicts below are a frozen copy of the layer specs as of this revision.
"""

from collections.abc import Sequence

from geo_protect.store.migrations import create_layer_table, drop_layer_table

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LAYERS = {
    "entry_point": (
        "Point",
        {
            "space_uid": "string",
            "kind": "string",
            "networks": "string",
            "bearing_deg": "float64",
            "width_m": "float64",
            "width_source": "string",
            "entry_class": "string",
            "street_uid": "string",
            "edge": "Int64",
            "at_m": "float64",
            "towards": "string",
            "impact_angle_deg": "float64",
            "worst_speed_kmh": "float64",
            "worst_vehicle": "string",
            "required_rating": "string",
        },
    ),
    "approach": (
        "LineString",
        {
            "entry_uid": "string",
            "space_uid": "string",
            "vehicle": "string",
            "speed_kmh": "float64",
            "start_speed_kmh": "float64",
            "run_up_m": "float64",
            "impact_angle_deg": "float64",
            "energy_kj": "float64",
            "test_speed_kmh": "float64",
            "required_rating": "string",
            "method": "string",
        },
    ),
    "space_metric": (
        "Point",
        {
            "name": "string",
            "kind": "string",
            "area_m2": "float64",
            "usable_area_m2": "float64",
            "design_density": "float64",
            "capacity_density": "float64",
            "capacity_egress": "float64",
            "capacity_persons": "float64",
            "limited_by": "string",
            "los": "string",
            "capacity_ordinary": "float64",
            "capacity_peak": "float64",
            "capacity_event": "float64",
            "n_entries": "Int64",
            "n_pedestrian_only": "Int64",
            "n_vehicle_permeable": "Int64",
            "n_blocked": "Int64",
            "worst_speed_kmh": "float64",
            "worst_vehicle": "string",
            "worst_entry_uid": "string",
            "n_entries_over_30": "Int64",
            "n_entries_over_48": "Int64",
            "required_rating": "string",
            "reference_version": "string",
            "note": "string",
        },
    ),
    "assessment": (
        "Point",
        {
            "space_uid": "string",
            "name": "string",
            "threat": "string",
            "attractiveness": "Int64",
            "vulnerability": "Int64",
            "likelihood": "Int64",
            "consequence": "Int64",
            "risk_raw": "Int64",
            "risk_100": "float64",
            "band": "string",
            "why": "string",
            "status": "string",
            "assessors": "string",
            "assessed_on": "string",
            "evidence": "json",
            "overrides": "json",
            "n_overrides": "Int64",
            "questionnaire_version": "string",
            "reference_version": "string",
        },
    ),
}


def upgrade() -> None:
    for name, (geometry, columns) in LAYERS.items():
        create_layer_table(name, geometry, columns)


def downgrade() -> None:
    for name in reversed(list(LAYERS)):
        drop_layer_table(name)
