"""A small Overpass-compatible HTTP server on 127.0.0.1, answering from a real OSM extract.

It implements the subset of Overpass QL that osmnx generates, honestly:

- settings ``[out:json][timeout:N]``;
- statements ``node|way|relation|nwr`` with tag filters ``["k"]``, ``["k"="v"]``,
  ``["k"!="v"]``, ``["k"~"re"]``, ``["k"!~"re"]`` (single or double quotes) and an area
  filter ``(poly:"lat lon lat lon ...")`` or a bbox ``(south,west,north,east)``:
  a node matches inside the polygon, a way when one of its segments meets it, a
  relation when one of its members does (as Overpass does);
- recursion ``>`` (``(._;>;)`` or ``>;``) after a statement: a way's nodes, a relation's
  members and their nodes;
- ``out;``: the union, nodes then ways then relations, by id, as Overpass JSON.

Anything else is answered ``400``. ``status`` makes every answer that HTTP error instead.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import osmium
import shapely

_STATEMENT = re.compile(
    r"\b(node|way|relation|nwr)((?:\[[^\]]*\])*)"
    r"\(\s*(?:poly:\s*(['\"])(?P<poly>[^'\"]*)\3|(?P<bbox>[-\d.\s]+,[-\d.\s]+,[-\d.\s]+,[-\d.\s]+))\s*\)"
)
_FILTER = re.compile(r"\[\s*(['\"])(.*?)\1\s*(?:(!=|=|!~|~)\s*(['\"])(.*?)\4)?\s*\]")


class Extract:
    """An OSM extract in memory (nodes, ways, relations with tags), read with pyosmium."""

    def __init__(self, path: Path) -> None:
        self.nodes: dict[int, dict[str, Any]] = {}
        self.ways: dict[int, dict[str, Any]] = {}
        self.relations: dict[int, dict[str, Any]] = {}
        for obj in osmium.FileProcessor(str(path)):
            tags = {t.k: t.v for t in obj.tags}
            if isinstance(obj, osmium.osm.Node):
                if obj.location.valid():
                    self.nodes[obj.id] = {
                        "lat": obj.location.lat,
                        "lon": obj.location.lon,
                        "tags": tags,
                    }
            elif isinstance(obj, osmium.osm.Way):
                self.ways[obj.id] = {"nodes": [n.ref for n in obj.nodes], "tags": tags}
            elif isinstance(obj, osmium.osm.Relation):
                members = [
                    {
                        "type": {"n": "node", "w": "way", "r": "relation"}[m.type],
                        "ref": m.ref,
                        "role": m.role,
                    }
                    for m in obj.members
                ]
                self.relations[obj.id] = {"members": members, "tags": tags}
        # a way cut by the extract's edge cannot be drawn: it is not part of this world
        # (so a multipolygon using it lacks a member, as osmnx then reports)
        self.incomplete_ways = {
            w for w, d in self.ways.items() if not all(n in self.nodes for n in d["nodes"])
        }
        for w in self.incomplete_ways:
            del self.ways[w]
        self.node_ids = np.fromiter(self.nodes, dtype=np.int64, count=len(self.nodes))
        self.node_xy = np.array([(n["lon"], n["lat"]) for n in self.nodes.values()]).reshape(-1, 2)
        drawable = list(self.ways)
        self.way_ids = np.array(drawable, dtype=np.int64)
        self.way_lines = np.array(
            [
                shapely.linestrings(
                    [(self.nodes[n]["lon"], self.nodes[n]["lat"]) for n in self.ways[w]["nodes"]]
                )
                if len(self.ways[w]["nodes"]) > 1
                else shapely.points(
                    self.nodes[self.ways[w]["nodes"][0]]["lon"],
                    self.nodes[self.ways[w]["nodes"][0]]["lat"],
                )
                for w in drawable
            ],
            dtype=object,
        )
        shapely.prepare(self.way_lines)

    # -- query evaluation -------------------------------------------------------------
    def in_area(self, area: shapely.Geometry) -> tuple[set[int], set[int], set[int]]:
        """Ids of nodes inside, ways meeting and relations with a member meeting ``area``."""
        shapely.prepare(area)
        inside = shapely.intersects_xy(area, self.node_xy[:, 0], self.node_xy[:, 1])
        nodes = set(self.node_ids[inside].tolist())
        ways = set(self.way_ids[shapely.intersects(area, self.way_lines)].tolist())
        relations = {
            r
            for r, d in self.relations.items()
            if any(
                (m["type"] == "node" and m["ref"] in nodes)
                or (m["type"] == "way" and m["ref"] in ways)
                for m in d["members"]
            )
        }
        return nodes, ways, relations

    def run(self, query: str) -> dict[str, list[int]]:
        """Evaluate an osmnx-style query; returns the ids to output per element type."""
        if "[out:json]" not in query.replace(" ", ""):
            raise ValueError("only [out:json] queries are supported")
        matches = list(_STATEMENT.finditer(query))
        if not matches:
            raise ValueError("no node/way/relation statement with a poly or bbox filter")
        result: dict[str, set[int]] = {"node": set(), "way": set(), "relation": set()}
        area_cache: dict[str, tuple[set[int], set[int], set[int]]] = {}
        for i, m in enumerate(matches):
            kind, filters = m.group(1), _parse_filters(m.group(2))
            where = m.group("poly") or m.group("bbox")
            if where not in area_cache:
                area_cache[where] = self.in_area(_area(m.group("poly"), m.group("bbox")))
            nodes, ways, relations = area_cache[where]
            found: dict[str, set[int]] = {"node": set(), "way": set(), "relation": set()}
            for k, ids, table in (
                ("node", nodes, self.nodes),
                ("way", ways, self.ways),
                ("relation", relations, self.relations),
            ):
                if kind in (k, "nwr"):
                    found[k] = {x for x in ids if _matches(table[x]["tags"], filters)}
            tail = query[m.end() : matches[i + 1].start() if i + 1 < len(matches) else len(query)]
            if ">" in tail:
                self._recurse(found)
            for k in result:
                result[k] |= found[k]
        return {k: sorted(v) for k, v in result.items()}

    def _recurse(self, found: dict[str, set[int]]) -> None:
        for r in list(found["relation"]):
            for m in self.relations[r]["members"]:
                table = {"node": self.nodes, "way": self.ways, "relation": self.relations}[
                    m["type"]
                ]
                if m["ref"] in table:  # members outside the extract are not output
                    found[m["type"]].add(m["ref"])
        for w in list(found["way"]):
            found["node"].update(n for n in self.ways[w]["nodes"] if n in self.nodes)

    def answer(self, ids: dict[str, list[int]]) -> dict[str, Any]:
        """Overpass JSON (``out;`` = body) for the given ids."""
        elements: list[dict[str, Any]] = []
        for n in ids["node"]:
            d = self.nodes[n]
            e: dict[str, Any] = {"type": "node", "id": n, "lat": d["lat"], "lon": d["lon"]}
            elements.append({**e, "tags": d["tags"]} if d["tags"] else e)
        for w in ids["way"]:
            d = self.ways[w]
            e = {"type": "way", "id": w, "nodes": d["nodes"]}
            elements.append({**e, "tags": d["tags"]} if d["tags"] else e)
        for r in ids["relation"]:
            d = self.relations[r]
            e = {"type": "relation", "id": r, "members": d["members"]}
            elements.append({**e, "tags": d["tags"]} if d["tags"] else e)
        return {
            "version": 0.6,
            "generator": "geo_protect tests/overpass_server.py",
            "osm3s": {
                "timestamp_osm_base": "2024-08-21T20:21:36Z",
                "copyright": "The data included in this document is from www.openstreetmap.org. "
                "The data is made available under ODbL.",
            },
            "elements": elements,
        }


def _parse_filters(text: str) -> list[tuple[str, str | None, str | None]]:
    filters = []
    pos = 0
    for m in _FILTER.finditer(text):
        if m.start() != pos:
            raise ValueError(f"unsupported filter near {text[pos : m.start() + 20]!r}")
        filters.append((m.group(2), m.group(3), m.group(5)))
        pos = m.end()
    if pos != len(text):
        raise ValueError(f"unsupported filter {text[pos:]!r}")
    return filters


def _matches(tags: dict[str, str], filters: list[tuple[str, str | None, str | None]]) -> bool:
    for key, op, value in filters:
        have = tags.get(key)
        if op is None:
            ok = have is not None
        elif op == "=":
            ok = have == value
        elif op == "!=":
            ok = have != value
        elif op == "~":
            ok = have is not None and re.search(value or "", have) is not None
        else:  # "!~": true when the key is absent or does not match
            ok = have is None or re.search(value or "", have) is None
        if not ok:
            return False
    return True


def _area(poly: str | None, bbox: str | None) -> shapely.Geometry:
    if poly is not None:
        values = [float(v) for v in poly.split()]
        return shapely.Polygon(list(zip(values[1::2], values[0::2], strict=True)))
    south, west, north, east = (float(v) for v in (bbox or "").split(","))
    return shapely.box(west, south, east, north)


class OverpassServer:
    """The HTTP server: ``start()`` on a random port of 127.0.0.1 in a thread."""

    def __init__(self, extract: Extract, *, status: int | None = None) -> None:
        self.extract = extract
        self.status = status
        self.queries: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # silence
                pass

            def do_GET(self) -> None:
                self._handle(parse_qs(urlparse(self.path).query))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                self._handle(parse_qs(self.rfile.read(length).decode()))

            def _handle(self, params: dict[str, list[str]]) -> None:
                if not urlparse(self.path).path.endswith("/interpreter"):
                    return self._send(404, {"remark": "only /interpreter is served"})
                query = params.get("data", [""])[0]
                server.queries.append(query)
                if server.status is not None:
                    return self._send(server.status, {"remark": f"forced HTTP {server.status}"})
                try:
                    body = server.extract.answer(server.extract.run(query))
                except ValueError as exc:
                    return self._send(400, {"remark": f"runtime error: {exc}"})
                return self._send(200, body)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The interpreter URL."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/api/interpreter"

    def start(self) -> OverpassServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@contextmanager
def serving(extract: Extract, *, status: int | None = None) -> Iterator[OverpassServer]:
    """Run a server for the duration of a ``with`` block."""
    server = OverpassServer(extract, status=status).start()
    try:
        yield server
    finally:
        server.stop()
