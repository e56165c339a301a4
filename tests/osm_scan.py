"""An independent reading of OSM XML for tests: ElementTree + bz2, no pyosmium, no geo_protect.

Selects objects by the keys of ``osm_taxonomy.csv`` read with :mod:`csv`, so the counts the
reader tests expect are derived by a second implementation, never copied from its output.
"""

from __future__ import annotations

import bz2
import csv
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The keys the taxonomy table names (read here with csv, not through geo_protect).
with (ROOT / "data" / "reference" / "osm_taxonomy.csv").open(encoding="utf-8") as _f:
    TAXONOMY_KEYS = frozenset(row["key"] for row in csv.DictReader(_f))
AREA_RELATIONS = ("multipolygon", "boundary")


@dataclass
class OsmXml:
    """Every object of an OSM XML file, as parsed by ElementTree."""

    nodes: dict[int, tuple[dict[str, str], float, float, str]] = field(default_factory=dict)
    ways: dict[int, tuple[dict[str, str], list[int], str]] = field(default_factory=dict)
    relations: dict[int, tuple[dict[str, str], list[tuple[str, int, str]], str]] = field(
        default_factory=dict
    )

    def way_complete(self, way_id: int) -> bool:
        """The way is in the file, all its nodes are, and it has 2 distinct nodes."""
        if way_id not in self.ways:
            return False
        refs = self.ways[way_id][1]
        return all(n in self.nodes for n in refs) and len(set(refs)) >= 2

    def relation_complete(self, rel_id: int) -> bool:
        """An area relation whose member ways are all complete and whose rings close.

        Rings close when every end node of an open member way is shared by an even number
        of way ends (each ring joins its pieces end to end).
        """
        tags, members, _ = self.relations[rel_id]
        refs = [r for kind, r, _ in members if kind == "way"]
        if tags.get("type") not in AREA_RELATIONS or not refs:
            return False
        if not all(self.way_complete(r) for r in refs):
            return False
        ends: Counter[int] = Counter()
        for r in refs:
            nd = self.ways[r][1]
            if nd[0] != nd[-1]:
                ends.update((nd[0], nd[-1]))
        return all(k % 2 == 0 for k in ends.values())

    def drawn(self, keys: frozenset[str] = TAXONOMY_KEYS) -> dict[str, dict[str, str]]:
        """uid -> tags of what a key-filtered reader can draw (no location is missing)."""
        out = {f"node/{i}": t for i, (t, *_) in self.nodes.items() if not keys.isdisjoint(t)}
        out |= {
            f"way/{i}": t
            for i, (t, *_) in self.ways.items()
            if not keys.isdisjoint(t) and self.way_complete(i)
        }
        out |= {
            f"relation/{i}": t
            for i, (t, *_) in self.relations.items()
            if not keys.isdisjoint(t) and self.relation_complete(i)
        }
        return out

    def newest_date(self, keys: frozenset[str] = TAXONOMY_KEYS) -> str:
        """The newest timestamp (day) of the objects carrying one of ``keys``."""
        stamps = [
            obj[-1]
            for table in (self.nodes, self.ways, self.relations)
            for obj in table.values()
            if obj[-1] and not keys.isdisjoint(obj[0])
        ]
        return max(stamps)[:10]


def scan_osm_xml(path: Path) -> OsmXml:
    """Parse a bzip2 OSM XML file with ElementTree."""
    out = OsmXml()
    with bz2.open(path) as f:
        for _, el in ET.iterparse(f):
            if el.tag not in ("node", "way", "relation"):
                continue
            tags = {t.get("k", ""): t.get("v", "") for t in el.iter("tag")}
            i, stamp = int(el.get("id", "0")), el.get("timestamp", "")
            if el.tag == "node":
                out.nodes[i] = (
                    tags,
                    float(el.get("lon", "nan")),
                    float(el.get("lat", "nan")),
                    stamp,
                )
            elif el.tag == "way":
                out.ways[i] = (tags, [int(n.get("ref", "0")) for n in el.iter("nd")], stamp)
            else:
                members = [
                    (m.get("type", ""), int(m.get("ref", "0")), m.get("role", ""))
                    for m in el.iter("member")
                ]
                out.relations[i] = (tags, members, stamp)
            el.clear()
    return out
