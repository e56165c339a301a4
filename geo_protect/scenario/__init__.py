"""Barrier scenarios: planned edits on a city's baseline barriers, read from planners' files.

:mod:`geo_protect.scenario.model` holds the models (:class:`Scenario`, :class:`BarrierEdit`);
:mod:`geo_protect.scenario.files` the QGIS template and :func:`read_scenario`.
"""

from __future__ import annotations

from geo_protect.scenario.files import (
    PLAN_FIELDS,
    PLAN_LAYERS,
    plan_barrier_template,
    read_scenario,
)
from geo_protect.scenario.model import (
    ACTIONS,
    BarrierEdit,
    Scenario,
    city_problems,
    default_rating_parser,
    plan_barrier_types,
)

__all__ = [
    "ACTIONS",
    "PLAN_FIELDS",
    "PLAN_LAYERS",
    "BarrierEdit",
    "Scenario",
    "city_problems",
    "default_rating_parser",
    "plan_barrier_template",
    "plan_barrier_types",
    "read_scenario",
]
