"""The ``Examples`` in every module's docstrings run, one test per module.

Modules are found with :func:`pkgutil.walk_packages`; Alembic's scripts (``env`` and the
migration versions, which only run inside Alembic) are left out. Examples run offline on the
bundled ``data/`` and write only under a temporary folder.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import geo_protect

#: Alembic's runtime scripts: importing them outside Alembic fails by design.
EXCLUDED = ("geo_protect.store.migrations.env", "geo_protect.store.migrations.versions")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules() -> list[str]:
    found = [geo_protect.__name__]
    for info in pkgutil.walk_packages(geo_protect.__path__, prefix=f"{geo_protect.__name__}."):
        if not info.name.startswith(EXCLUDED):
            found.append(info.name)
    return sorted(found)


MODULES = _modules()


def test_every_module_is_found() -> None:
    # the walk reaches subpackages and their modules, not only the top level
    assert {
        "geo_protect.cli",
        "geo_protect.osm.ingest",
        "geo_protect.analysis.approach.search",
        "geo_protect.store.migrations",
    } <= set(MODULES)
    assert not [m for m in MODULES if m.startswith(EXCLUDED)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything an example writes by relative path lands here
    module = importlib.import_module(name)
    # the finder keeps only objects defined in the module, so each docstring runs once
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    for test in sorted(tests, key=lambda t: t.name):
        runner.run(test, out=report.append)
    assert not runner.failures, (
        f"{runner.failures} of {runner.tries} example(s) failed in {name}:\n" + "".join(report)
    )
