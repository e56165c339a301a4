"""The main job, step by step: ingest, analyse, assess, compare, draw.

Each step reads its inputs from a store and writes its results back in one
transaction, so the steps can run separately (``geo-protect analyse``) or together
(``geo-protect run``), and the service can re-run one step per edit. The functions here
only wire library calls together; the analysis lives in the modules they call.
"""

from __future__ import annotations

from geo_protect.pipeline.assessing import (
    AssessedCity,
    assess,
    assess_city,
    assessment_path,
    draft_assessment,
    explain,
    prefill_city,
    read_assessors_work,
    reassess,
    store_scores,
    write_assessment_files,
)
from geo_protect.pipeline.scenarios import ScenarioRun, run_scenario
from geo_protect.pipeline.steps import (
    analyse,
    compare_cities,
    draw_maps,
    evaluate,
    ingest,
    run_city,
)
from geo_protect.pipeline.store_io import CityOutcome, load_city_data, load_outcome

__all__ = [
    "AssessedCity",
    "CityOutcome",
    "ScenarioRun",
    "analyse",
    "assess",
    "assess_city",
    "assessment_path",
    "compare_cities",
    "draft_assessment",
    "draw_maps",
    "evaluate",
    "explain",
    "ingest",
    "load_city_data",
    "load_outcome",
    "prefill_city",
    "read_assessors_work",
    "reassess",
    "run_city",
    "run_scenario",
    "store_scores",
    "write_assessment_files",
]
