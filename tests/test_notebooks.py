"""The notebooks are executed documentation: outputs stripped in git, and they run.

The kernel is the venv's ``python3`` kernel spec (``.venv/share/jupyter/kernels/python3``,
installed by ipykernel); jupyter_client starts it with the running interpreter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from geo_protect.analysis.city import analyse_city
from geo_protect.assess.evidence import prefill
from geo_protect.assess.files import write_assessment
from geo_protect.cities import City, get_city
from geo_protect.citydata import CityData
from geo_protect.osm.ingest import ingest_city
from geo_protect.settings import REPO_ROOT

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


def test_cross_city_comparison_runs(
    tmp_path: Path, centre_city: City, centre_data: CityData, centre_analysis: dict[str, Any]
) -> None:
    """Runs on assessments pre-filled from the bundled data (Brașov centre clip and Vilnius
    Old Town, as the main job writes them); the three other cities show as no data."""
    vilnius = get_city("vilnius")
    vilnius_data = ingest_city(vilnius)
    inputs = {
        "brasov": (centre_city, centre_data, centre_analysis["space_metric"]),
        "vilnius": (vilnius, vilnius_data, analyse_city(vilnius, vilnius_data)["space_metric"]),
    }
    for slug, (city, data, metric) in inputs.items():
        assessment = prefill(
            data["public_space"],
            city=slug,
            crs=city.crs,
            space_metric=metric,
            pois=data["poi"],
            barriers=data["barrier"],
            surveillance=data["surveillance"],
        )
        write_assessment(assessment, tmp_path / "in" / f"{slug}.yaml")
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
    assert "Piața Sfatului" in text  # among the top hotspots (vehicle ramming, R_100 = 100)
    assert "R_100 = 100 × (L·C − 1²)/(5² − 1²) = 100 × (5·5 − 1)/24 = 100.0" in text
    html = (tmp_path / "out" / "comparison.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 2 and "Vilnius" in html and "Brașov" in html
