"""Risk-analysis benchmark: the Brașov municipality vs osmnx building its drive graph.

Run with ``.venv/bin/python benchmarks/bench_analysis.py``. In one run it

- ingests ``data/osm/brasov/brasov.osm.pbf`` (not timed here: see ``bench_ingest.py``) and
  converts it once, with pyosmium, to an OSM XML file holding the ways of osmnx's
  ``drive`` network filter and their nodes (osmnx reads XML only; not timed);
- times ``osmnx.graph_from_xml`` on that file (the reference: parse, build and simplify
  the drive graph);
- times ``geo_protect.analysis.city.analyse_city`` (street network + entry points + crowd
  capacity + hostile-vehicle approach speeds for every vehicle class + space metrics),
  and the approach search alone (all classes, with the own-space exclusion);

and prints each time with its ratio to osmnx, and the peak traced memory of each step.
Target: the full analysis (three parameter sets per vehicle class since issue 9) within
1× the osmnx graph build.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TypeVar

import osmium
import osmnx as ox
import pandas as pd
from _common import console, peak_mib, report, timed

from geo_protect.analysis.approach import approach_speeds
from geo_protect.analysis.city import _targets, analyse_city, network_and_entries
from geo_protect.cities import get_city
from geo_protect.osm.ingest import ingest_city

REPEAT = 3
T = TypeVar("T")

#: osmnx 2's ``drive`` network filter (``osmnx._overpass._get_network_filter("drive")``),
#: as (key, regex, must match) rules: Overpass ``[k!~"re"]`` passes a missing tag.
_DRIVE = [
    ("area", "yes", False),
    ("access", "private", False),
    (
        "highway",
        "abandoned|bridleway|bus_guideway|construction|corridor|cycleway|elevator|escalator|"
        "footway|no|path|pedestrian|planned|platform|proposed|raceway|razed|rest_area|"
        "service|services|steps|track",
        False,
    ),
    ("motor_vehicle", "no", False),
    ("motorcar", "no", False),
    ("service", "alley|driveway|emergency_access|parking|parking_aisle|private", False),
]
_RULES = [(key, re.compile(rx), must) for key, rx, must in _DRIVE]


def _is_drive(tags: osmium.osm.TagList) -> bool:
    if "highway" not in tags:
        return False
    for key, rx, _must in _RULES:
        value = tags.get(key)
        if value is not None and rx.search(value):
            return False
    return True


def drive_xml(pbf: Path, out: Path) -> int:
    """Write the drive-network ways of ``pbf`` and the nodes they use to OSM XML.

    Ways crossing the municipal boundary reference nodes the extract lacks; they are cut
    to the nodes it has (osmnx refuses edges with missing nodes).
    """
    present = {node.id for node in osmium.FileProcessor(str(pbf), osmium.osm.NODE)}
    n = 0
    with osmium.BackReferenceWriter(str(out), ref_src=str(pbf), overwrite=True) as writer:
        for way in osmium.FileProcessor(str(pbf), osmium.osm.WAY):
            if not isinstance(way, osmium.osm.Way) or not _is_drive(way.tags):
                continue
            refs = [r.ref for r in way.nodes if r.ref in present]
            if len(refs) < 2:
                continue
            writer.add(way if len(refs) == len(way.nodes) else way.replace(nodes=refs))
            n += 1
    return n


def main() -> None:
    city = get_city("brasov")
    pbf = city.path(city.sources[0])
    console.print(f"extract: {pbf} ({pbf.stat().st_size / 1e6:.1f} MB), {REPEAT} runs, median")
    t_ingest, data = timed(lambda: ingest_city(city))
    console.print(f"ingest (not compared): {t_ingest:.2f} s")

    with tempfile.TemporaryDirectory() as folder:
        xml = Path(folder) / "brasov_drive.osm"
        n_ways = drive_xml(pbf, xml)
        console.print(f"drive XML for osmnx: {n_ways:,} ways, {xml.stat().st_size / 1e6:.1f} MB")
        t_ox, graph = timed(lambda: ox.graph_from_xml(xml, retain_all=True), repeat=REPEAT)
        mem_ox, _ = peak_mib(lambda: ox.graph_from_xml(xml, retain_all=True))

    t_all, layers = timed(lambda: analyse_city(city, data), repeat=REPEAT)
    mem_all, _ = peak_mib(lambda: analyse_city(city, data))

    # the approach search alone, on the same inputs analyse_city builds
    net, spaces, entries = network_and_entries(city, data)
    assert net is not None
    targets = _targets(entries)
    t_app, approach = timed(lambda: approach_speeds(net, targets, spaces=spaces), repeat=REPEAT)
    mem_app, _ = peak_mib(lambda: approach_speeds(net, targets, spaces=spaces))

    speeds = approach.groupby("vehicle")["speed_kmh"].agg(["count", "median", "max"]).round(1)
    console.print(
        f"hostile-vehicle network: {len(net.vehicle_edges):,} of {len(net.edges):,} edges"
    )
    console.print(f"{len(targets):,} vehicle-permeable entries of {len(spaces):,} spaces")
    console.print(pd.DataFrame(speeds).to_string())
    report(
        "Risk analysis of the Brașov municipality (brasov.osm.pbf)",
        [
            (
                "osmnx.graph_from_xml (drive)",
                t_ox,
                f"{graph.number_of_nodes():,} nodes, {graph.number_of_edges():,} edges; "
                f"peak {mem_ox:.0f} MiB",
            ),
            (
                "geo_protect: analyse_city",
                t_all,
                f"{len(layers['approach']):,} approaches; peak {mem_all:.0f} MiB",
            ),
            (
                "  of which approach_speeds (all classes)",
                t_app,
                f"{len(approach):,} rows; peak {mem_app:.0f} MiB",
            ),
        ],
        reference=t_ox,
        target=1.0,
        name="analysis",
        keys=["osmnx", "analyse_city", "approach"],
    )


if __name__ == "__main__":
    main()
