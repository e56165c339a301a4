"""Cross-city comparison of assessed risk: the ranking (:mod:`.ranking`) and its report.

See :mod:`geo_protect.outputs.comparison.ranking` for how scores are compared.
"""

from __future__ import annotations

from geo_protect.outputs.comparison.ranking import (
    ASSESSMENT_SUFFIXES,
    CityResults,
    Ranking,
    city_results,
    find_assessment_file,
    rank_hotspots,
    results_from_files,
    results_from_store,
)
from geo_protect.outputs.comparison.report import Comparison, compare, explain_hotspots

__all__ = [
    "ASSESSMENT_SUFFIXES",
    "CityResults",
    "Comparison",
    "Ranking",
    "city_results",
    "compare",
    "explain_hotspots",
    "find_assessment_file",
    "rank_hotspots",
    "results_from_files",
    "results_from_store",
]
