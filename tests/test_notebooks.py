"""The notebooks are executed documentation: outputs stripped in git, and they run.

The kernel is the venv's ``python3`` kernel spec (``.venv/share/jupyter/kernels/python3``,
installed by ipykernel); jupyter_client starts it with the running interpreter.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from geo_protect.assessment import write_assessment
from geo_protect.evidence import prefill
from geo_protect.settings import REPO_ROOT
from tests import assessment_cases as cases

NOTEBOOKS = REPO_ROOT / "notebooks"
COMPARISON = NOTEBOOKS / "cross_city_comparison.ipynb"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_outputs_are_stripped(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_cross_city_comparison_runs(tmp_path: Path) -> None:
    """Runs on hand-built assessments of two cities; the other three show as no data."""
    for city, dx in (("brasov", 0.0), ("vilnius", 5000.0)):
        assessment = prefill(
            cases.spaces(dx),
            city=city,
            crs=cases.CRS,
            space_metric=cases.space_metric(),
            pois=cases.pois(dx),
            reference_version="test",
        )
        write_assessment(assessment, tmp_path / "in" / f"{city}.yaml")
    nb = nbformat.read(COMPARISON, as_version=4)  # type: ignore[no-untyped-call]
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = (
        f"ASSESSMENT_DIR = {str(tmp_path / 'in')!r}\nOUT_DIR = {str(tmp_path / 'out')!r}"
    )
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = _text(nb)
    assert "no data: no assessment file eindhoven.yaml" in text
    assert "R_100 = 100 × (L·C − 1²)/(5² − 1²) = 100 × (4·5 − 1)/24 = 79.2" in text
    html = (tmp_path / "out" / "comparison.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 2 and "Vilnius" in html
