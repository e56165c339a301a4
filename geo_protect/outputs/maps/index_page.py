"""The maps index page: one card per city, with what each has and lacks."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd

from geo_protect.cities import City
from geo_protect.outputs.maps import style
from geo_protect.outputs.maps.city_map import space_risk
from geo_protect.outputs.maps.display import optional_layer

__all__ = ["CitySummary", "summarise", "write_index"]


@dataclass(frozen=True)
class CitySummary:
    """One row of the maps index.

    Attributes
    ----------
    city
        The city.
    map_file
        Path of its map relative to the index, or None when it has no data offline (a
        city without public spaces may still have a map of what exists).
    n_spaces
        Public spaces on the map.
    bands
        Spaces per band (risk or vehicle exposure), worst first; ``not assessed`` counted apart.
    basis
        What the bands rest on (``assessment``, ``vehicle exposure`` or ``none``).
    reason
        Why there is no map (from the ingest report), shown instead of any figure.
    """

    city: City
    map_file: str | None = None
    n_spaces: int = 0
    bands: Mapping[str, int] = field(default_factory=dict)
    basis: str = "none"
    reason: str = ""


def summarise(
    city: City,
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    map_file: str | None = None,
    missing: Sequence[str] = (),
) -> CitySummary:
    """The index row of a city from its layers (``missing``: the ingest report's notes).

    Parameters
    ----------
    city : City
        The city.
    layers : Mapping of str to GeoDataFrame
        Its WGS84 layers (as for :func:`~.city_map.risk_map`).
    map_file : str, optional
        File name of its map; None when it has none.
    missing : Sequence of str
        The ingest report's notes of missing data.

    Returns
    -------
    CitySummary
        The city's card.
    """
    spaces = optional_layer(layers, "public_space")
    if spaces is None or map_file is None:
        reason = "; ".join(missing) or "no public spaces in the offline data"
        return CitySummary(city, map_file, 0, {}, "none", reason)
    risk = space_risk(
        spaces,
        space_metric=optional_layer(layers, "space_metric"),
        assessment=optional_layer(layers, "assessment"),
        entry_point=optional_layer(layers, "entry_point"),
    )
    counts = risk["band"].fillna("not assessed").value_counts()
    order = [*reversed(style.BAND_ORDER), "not assessed"]
    bands = {b: int(counts[b]) for b in order if b in counts.index}
    basis = (
        "assessment"
        if "assessment" in set(risk["basis"])
        else ("vehicle exposure" if "vehicle exposure" in set(risk["basis"]) else "none")
    )
    return CitySummary(city, map_file, len(spaces), bands, basis)


def write_index(cities_summary: Sequence[CitySummary], out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` linking every city's map.

    Cities without data are listed as "no data offline" with the reason, never as zero risk;
    a city with a map of what exists but no public spaces says that no risk is computed.

    Parameters
    ----------
    cities_summary : Sequence of CitySummary
        One :class:`CitySummary` per city (see :func:`summarise`).
    out_dir : Path
        Folder of the maps.

    Returns
    -------
    Path
        The index file.
    """
    rows = []
    for s in cities_summary:
        label = html.escape(s.city.label)
        if s.map_file is None:
            rows.append(
                f'<tr class="nodata"><td>{label}</td><td colspan="3"><b>no data offline</b>'
                f" — {html.escape(s.reason)}</td></tr>"
            )
            continue
        if s.reason:  # a map of what exists, without public spaces: no risk
            rows.append(
                f'<tr class="nodata"><td><a href="{html.escape(s.map_file)}">{label}</a></td>'
                f'<td colspan="3"><b>no public spaces offline: no risk computed</b> (map of '
                f"what exists) — {html.escape(s.reason)}</td></tr>"
            )
            continue
        chips = "".join(
            f'<span class="chip" style="background:{style.BAND_COLOURS.get(b, style.NEUTRAL)}">'
            f"{html.escape(b)} {n}</span>"
            for b, n in s.bands.items()
        )
        rows.append(
            f'<tr><td><a href="{html.escape(s.map_file)}">{label}</a></td>'
            f"<td>{s.n_spaces}</td><td>{html.escape(s.basis)}</td><td>{chips}</td></tr>"
        )
    page = _INDEX.replace("{rows}", "\n".join(rows)).replace("{attribution}", style.ATTRIBUTION)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


_INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>geo_protect · risk maps</title>
<style>
body { background: #10161d; color: #dde3ea; margin: 2rem;
  font: 14px/1.5 "Inter", "Segoe UI", Roboto, Arial, sans-serif; }
h1 { font-size: 20px; font-weight: 600; }
table { border-collapse: collapse; min-width: 640px; }
th, td { text-align: left; padding: 6px 14px 6px 0; border-bottom: 1px solid #25313e; }
th { color: #8fa1b5; font-weight: 500; }
a { color: #7fc4ff; }
tr.nodata td { color: #8fa1b5; }
.chip { display: inline-block; color: #10161d; border-radius: 3px; padding: 0 6px;
  margin-right: 4px; font-size: 12px; }
footer { margin-top: 2rem; color: #8fa1b5; font-size: 12px; }
</style></head><body>
<h1>geo_protect · public-space risk maps</h1>
<table><thead><tr><th>City</th><th>Spaces</th><th>Colour basis</th><th>Spaces per band</th>
</tr></thead><tbody>
{rows}
</tbody></table>
<footer>Map data {attribution}. Bands are indicative.</footer>
</body></html>
"""
