"""The summary tables the commands print."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from geo_protect.cities import City
from geo_protect.cli._common import console, fmt, label

__all__ = ["print_analysis_summary", "print_ingest_summary", "print_scores"]


def print_ingest_summary(targets: Sequence[City], reports: dict[str, Any]) -> None:
    from geo_protect.schema import SOURCE_LAYERS

    table = Table(title="Features per layer")
    table.add_column("city")
    for layer in SOURCE_LAYERS:
        table.add_column(layer, justify="right")
    for c in targets:
        counts = reports[c.slug].counts
        table.add_row(c.name_en, *(f"{counts.get(layer, 0):,}" for layer in SOURCE_LAYERS))
    console.print(table)
    dropped = [
        (c.name_en, layer, reason, n)
        for c in targets
        for (layer, reason), n in reports[c.slug].dropped.items()
    ]
    if dropped:
        t = Table(title="Dropped (and why)")
        for col in ("city", "layer", "reason", "n"):
            t.add_column(col, justify="right" if col == "n" else "left")
        for row in dropped:
            t.add_row(row[0], row[1], row[2], f"{row[3]:,}")
        console.print(t)
    for c in targets:
        for note in reports[c.slug].missing:
            console.print(f"[yellow]•[/] {note}", soft_wrap=True)


def print_analysis_summary(metrics: dict[City, dict[str, Any]]) -> None:
    table = Table(title="Analysis per city")
    for col in (
        "city",
        "spaces",
        "entries",
        "vehicle-permeable",
        "blocked",
        ">30 km/h",
        ">48 km/h",
        "worst speed",
        "worst space",
    ):
        table.add_column(col, justify="left" if col in ("city", "worst space") else "right")
    for c, results in metrics.items():
        m = results["space_metric"]
        e = results["entry_point"]
        worst = m["worst_speed_kmh"].idxmax() if m["worst_speed_kmh"].notna().any() else None
        table.add_row(
            c.name_en,
            f"{len(m):,}",
            f"{len(e):,}",
            f"{int((e['entry_class'] == 'vehicle_permeable').sum()):,}",
            f"{int((e['entry_class'] == 'blocked').sum()):,}",
            f"{int(m['n_entries_over_30'].sum()):,}",
            f"{int(m['n_entries_over_48'].sum()):,}",
            "—" if worst is None else f"{m.at[worst, 'worst_speed_kmh']:.0f} km/h",
            "—" if worst is None else label(m.at[worst, "name"], worst),
        )
    console.print(table)
    console.print("[dim]Speeds: flat-ground vehicle dynamics, indicative (see data/reference).[/]")


def print_scores(c: City, scores: Any) -> None:
    from geo_protect.assess.scores import site_summary

    summary = site_summary(scores)
    table = Table(title=f"{c.label}: highest-risk spaces (worst credible scenario)")
    for col in ("space", "worst threat", "R_100", "band", "mean R_100", "threats assessed"):
        table.add_column(col)
    for uid, row in summary.head(10).iterrows():
        table.add_row(
            label(row.get("name"), uid),
            str(row.get("worst_threat", "")),
            fmt(row.get("max_risk_100")),
            str(row.get("worst_band", "")),
            fmt(row.get("mean_risk_100")),
            str(row.get("n_assessed", "")),
        )
    console.print(table)
