"""Helpers shared by the benchmarks: timing, peak memory, throwaway PostGIS databases."""

from __future__ import annotations

import os
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

T = TypeVar("T")

ADMIN_DSN = os.environ.get("GEO_PROTECT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
console = Console()


def timed(fn: Callable[[], T], *, repeat: int = 1) -> tuple[float, T]:
    """Median wall time of ``repeat`` calls of ``fn`` and the last result."""
    times: list[float] = []
    result: T
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A fresh database with PostGIS; yields its libpq DSN and drops it afterwards."""
    ident = sql.Identifier(name)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    try:
        yield dsn
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def peak_mib(fn: Callable[[], T]) -> tuple[float, T]:
    """Peak Python heap (tracemalloc) during one call of ``fn``, in MiB, and its result.

    Measured apart from the timings: tracemalloc slows the code it traces several times.
    """
    tracemalloc.start()
    try:
        result = fn()
        return tracemalloc.get_traced_memory()[1] / 2**20, result
    finally:
        tracemalloc.stop()


def report(
    title: str,
    rows: list[tuple[str, float, str]],
    reference: float,
    target: float,
    *,
    name: str,
    keys: list[str],
) -> None:
    """Print times with their ratio to the reference and whether each meets the target.

    The last line is for scripts: ``name key_s=… key_ratio=… …``, one pair per row
    (``keys``, in row order).
    """
    table = Table(title=title)
    for col in ("what", "seconds", "ratio to reference", f"target ≤ {target:g}×", "note"):
        table.add_column(col)
    for what, seconds, note in rows:
        ratio = seconds / reference
        ok = "reference" if seconds == reference else ("yes" if ratio <= target else "NO")
        table.add_row(what, f"{seconds:.2f}", f"{ratio:.2f}", ok, note)
    console.print(table)
    figures = " ".join(
        f"{key}_s={seconds:.3f} {key}_ratio={seconds / reference:.3f}"
        for key, (_, seconds, _) in zip(keys, rows, strict=True)
    )
    print(f"{name} {figures}")
