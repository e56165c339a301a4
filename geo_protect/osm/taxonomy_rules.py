"""The rules of the OSM taxonomy: the rows of ``osm_taxonomy.csv``, read and matched.

:mod:`geo_protect.osm.taxonomy` describes the table; here each row becomes a
:class:`Rule`, and :func:`match_rules` finds, per layer, the first rule each element meets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from geo_protect.errors import ConfigError
from geo_protect.reference import table
from geo_protect.schema import LAYERS, SOURCE_LAYERS

__all__ = ["Match", "Rule", "match_rules", "read_rules"]

#: Per layer: (mask, kind, "key=value", taken-as-area), one value per element.
Match = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Rule:
    """One row of ``osm_taxonomy.csv`` (see :mod:`geo_protect.osm.taxonomy`)."""

    layer: str
    kind: str
    key: str
    values: frozenset[str] | None  # None: any value but "no"
    geometry: str
    closed_way: str | None
    kind_key: str | None


def read_rules(rules: pd.DataFrame | None = None) -> list[Rule]:
    """The rules of the taxonomy, in table order (the first matching rule of a layer wins).

    Parameters
    ----------
    rules : DataFrame, optional
        The ``osm_taxonomy`` reference table (read by default).

    Returns
    -------
    list of Rule
        One per row.

    Raises
    ------
    ConfigError
        If a column is missing, or a row names an unknown layer, geometry or closed way.

    Examples
    --------
    >>> rule = read_rules()[0]
    >>> rule.layer in SOURCE_LAYERS
    True
    """
    frame = table("osm_taxonomy") if rules is None else rules
    needed = ("layer", "kind", "key", "values", "geometry")
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ConfigError(f"osm_taxonomy.csv: missing column(s) {', '.join(missing)}")
    out: list[Rule] = []
    for i, row in enumerate(frame.to_dict("records"), start=2):
        layer, geometry = str(row["layer"]), str(row["geometry"])
        if layer not in LAYERS or layer not in SOURCE_LAYERS:
            raise ConfigError(f"osm_taxonomy.csv, line {i}: unknown layer {layer!r}")
        if geometry not in ("node", "line", "area", "any"):
            raise ConfigError(f"osm_taxonomy.csv, line {i}: geometry must be node/line/area/any")
        closed = _text(row.get("closed_way"))
        if closed not in (None, "area", "area=yes"):
            raise ConfigError(f"osm_taxonomy.csv, line {i}: closed_way must be area or area=yes")
        values = str(row["values"])
        out.append(
            Rule(
                layer=layer,
                kind=str(row["kind"]),
                key=str(row["key"]),
                values=None if values == "*" else frozenset(values.split("|")),
                geometry=geometry,
                closed_way=closed,
                kind_key=_text(row.get("kind_key")),
            )
        )
    return out


def match_rules(
    rules: Sequence[Rule], cols: Mapping[str, np.ndarray], base: Mapping[str, np.ndarray]
) -> dict[str, Match]:
    """Per layer: (mask, kind, "key=value", taken-as-area) of the first matching rule.

    Parameters
    ----------
    rules : Sequence of Rule
        The rules (:func:`read_rules`), in priority order.
    cols : Mapping of str to ndarray
        Per tag key the rules (and ``area``) look at, each element's value (None if unset).
    base : Mapping of str to ndarray
        Boolean masks of the elements' shapes: ``point``, ``linear`` (lines),
        ``closed`` (closed ways) and ``poly`` (polygons).

    Returns
    -------
    dict of str to Match
        Per layer any rule names: which elements it takes, their class, the tag that
        matched and whether a closed way was taken as an area.
    """
    n = len(base["point"])
    area_tag = cols["area"]
    out: dict[str, Match] = {}
    for rule in rules:
        values = cols[rule.key]
        present = values != None  # noqa: E711 - elementwise on an object array
        if rule.values is None:
            hit = present & (values != "no")
        else:
            hit = np.isin(values, list(rule.values))
        if rule.closed_way == "area":
            closed_area = base["closed"] & (area_tag != "no")
        elif rule.closed_way == "area=yes":
            closed_area = base["closed"] & (area_tag == "yes")
        else:
            closed_area = np.zeros(n, dtype=bool)
        is_area = base["poly"] | closed_area
        is_line = base["linear"] & ~closed_area
        shape = {
            "node": base["point"],
            "line": is_line,
            "area": is_area,
            "any": base["point"] | is_line | is_area,
        }[rule.geometry]
        hit = hit & shape
        if rule.layer not in out:
            out[rule.layer] = (
                np.zeros(n, dtype=bool),
                np.full(n, None, dtype=object),
                np.full(n, None, dtype=object),
                np.zeros(n, dtype=bool),
            )
        mask, kind, tag, as_area = out[rule.layer]
        new = hit & ~mask
        if not new.any():
            continue
        if rule.kind != "*":
            kind[new] = rule.kind
        else:
            kind[new] = values[new]
            if rule.kind_key:
                own = cols[rule.kind_key][new]
                kind[new] = np.where(own != None, own, values[new])  # noqa: E711
        tag[new] = np.char.add(f"{rule.key}=", values[new].astype(str))
        as_area[new] = is_area[new] & ~base["poly"][new]
        mask |= new
    return out


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None
