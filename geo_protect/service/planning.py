"""The planner workspace's state in one service process, and its checks of a planner's input.

* :class:`Contexts` keeps one :class:`~geo_protect.scenario.incremental.ScenarioContext`
  per city (about 120 MiB for the Brașov municipality), built on first use under a lock
  from the store's source layers, and built again only when the city is re-ingested
  (then frozen out of the garbage collector's full passes: a preview is not held up by a
  walk over the context's objects).
  Previews of one city run one at a time on its context (a few hundred milliseconds
  each); recent previews are kept by their edits, so undo and redo answer at once.
* :func:`parse_edits` turns the JSON edits of the page into
  :class:`~geo_protect.scenario.model.BarrierEdit` s, or raises one
  :class:`~geo_protect.errors.ItemsValidationError` naming every bad feature and field.
* :func:`save_scenario` stores a scenario with its scheme option in one transaction:
  created only if absent (``POST``), or replaced (``PUT``), never half.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pydantic

from geo_protect.cities import get_city
from geo_protect.citydata import CityData
from geo_protect.errors import ConflictError, ItemProblem, ItemsValidationError, ValidationError
from geo_protect.reference import table
from geo_protect.scenario.incremental import ScenarioContext, rescore, scenario_context
from geo_protect.scenario.model import BarrierEdit, Scenario, city_problems
from geo_protect.schema import SOURCE_LAYERS
from geo_protect.store import PostGISStore
from geo_protect.store import scenario_plans as plans
from geo_protect.store import scenarios as stored
from geo_protect.store.audit import Actor

__all__ = [
    "MAX_EDITS",
    "Contexts",
    "Held",
    "parse_edits",
    "save_scenario",
    "scheme_options",
    "valid_name",
]

#: Most edits one preview or scenario may hold (more: 422): bounds a request's work.
MAX_EDITS = 500
#: Seconds between two checks that a city's context is still of its latest ingest.
_CHECK_S = 10.0
#: Previews kept per city, by their edits.
_KEPT_PREVIEWS = 32
#: Longest scenario name.
_NAME_MAX = 120


@dataclass
class Held:
    """A city's context, the ingest it was built from, and its preview lock and memo."""

    ctx: ScenarioContext
    ingested_at: dt.datetime
    checked: float
    build_s: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    memo: OrderedDict[bytes, Any] = field(default_factory=OrderedDict)

    def preview(self, key: bytes, compute: Callable[[ScenarioContext], Any]) -> tuple[Any, bool]:
        """``compute(ctx)`` for edits ``key`` (kept), or the kept result; and whether kept."""
        with self.lock:
            if key in self.memo:
                self.memo.move_to_end(key)
                return self.memo[key], True
            value = compute(self.ctx)
            self.memo[key] = value
            while len(self.memo) > _KEPT_PREVIEWS:
                self.memo.popitem(last=False)
            return value, False


class Contexts:
    """Per city, the scenario context of this process (see the module docstring)."""

    def __init__(self, store: PostGISStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self._held: dict[str, Held] = {}

    def get(self, city: str) -> Held:
        """The city's context, built now if this process has none or the city changed.

        Parameters
        ----------
        city : str
            A city in the store.
        """
        held = self._held.get(city)
        if held is not None and time.monotonic() - held.checked < _CHECK_S:
            return held
        with self._lock:
            building = self._building.setdefault(city, threading.Lock())
        with building:  # one build per city at a time; the others wait for it
            held = self._held.get(city)
            ingested = self._store.info(city).ingested_at
            if held is not None and held.ingested_at == ingested:
                held.checked = time.monotonic()
                return held
            held = self._build(city, ingested)
            self._held[city] = held
            return held

    def _build(self, city: str, ingested: dt.datetime) -> Held:
        started = time.monotonic()
        layers = self._store.read_layers(city, list(SOURCE_LAYERS))
        data = CityData(city, dict(layers), self._store.report(city))
        ctx = scenario_context(get_city(city), data)
        # the context lives as long as the process: out of the collector's full passes,
        # which would otherwise walk its few hundred thousand objects during previews
        gc.collect()
        gc.freeze()
        now = time.monotonic()
        return Held(ctx=ctx, ingested_at=ingested, checked=now, build_s=now - started)


def scheme_options() -> list[dict[str, str]]:
    """The HVM scheme options (``hvm_scheme_options.csv``) as JSON-ready rows.

    Examples
    --------
    >>> [o["option"] for o in scheme_options()][:2]
    ['total_exclusion', 'exclusion_with_screening']
    """
    frame = table("hvm_scheme_options")
    return [{k: str(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def valid_name(name: str) -> str:
    """``name`` stripped, if it can name a scenario (and a URL path segment).

    Parameters
    ----------
    name : str
        The name sent.

    Raises
    ------
    ValidationError
        Empty, too long, with a ``/`` or a control character, or ending in ``.geojson``.

    Examples
    --------
    >>> valid_name("  market day ")
    'market day'
    """
    clean = name.strip()
    bad = (
        "is empty"
        if not clean
        else f"is longer than {_NAME_MAX} characters"
        if len(clean) > _NAME_MAX
        else "holds a '/' or a control character"
        if "/" in clean or any(ord(c) < 32 for c in clean)
        else "ends in '.geojson' (the export's address)"
        if clean.endswith(".geojson")
        else None
    )
    if bad:
        raise ValidationError(f"scenario: field 'name': {name!r} {bad}")
    return clean


def _problem(i: int, feature: object, err: Mapping[str, Any]) -> ItemProblem:
    loc = [str(p) for p in err.get("loc", ())]
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    name = loc[0] if loc else ""
    head, sep, rest = msg.partition(": ")
    if not name and sep and head.isidentifier():
        name, msg = head, rest
    return ItemProblem(i, name or "edit", msg, sensor_id=None if feature is None else str(feature))


def parse_edits(
    items: Sequence[object], *, ctx: ScenarioContext, parser: Callable[[str], object] | None = None
) -> tuple[list[BarrierEdit], list[str | None]]:
    """The page's edits as barrier edits, checked against the city; and their feature ids.

    Each item is a :class:`BarrierEdit` as JSON (``action``, ``kind``, GeoJSON ``geometry``,
    ``rating``, ``spacing_m``, ``osm_id``, ``note``) with an optional ``id``: the page's
    feature id, named in messages (as ``sensor_id`` of each problem) and echoed in previews.

    Parameters
    ----------
    items : sequence of object
        The edits as decoded JSON.
    ctx : ScenarioContext
        The city's context (its bounding box and barriers are checked against).
    parser : callable, optional
        The crash-rating parser (:func:`~geo_protect.scenario.model.default_rating_parser`).

    Returns
    -------
    tuple of (list of BarrierEdit, list of str or None)
        The edits, and the feature id of each.

    Raises
    ------
    ItemsValidationError
        With one problem per bad field of every bad item (position, field, reason).
    """
    if len(items) > MAX_EDITS:
        raise ValidationError(
            f"scenario: field 'edits': {len(items)} edits, the limit is {MAX_EDITS}"
        )
    problems: list[ItemProblem] = []
    edits: list[BarrierEdit] = []
    ids: list[str | None] = []
    context = {"rating_parser": parser} if parser is not None else None
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(ItemProblem(i, "edit", "not a JSON object"))
            continue
        feature = item.get("id")
        body = {k: v for k, v in item.items() if k != "id"}
        try:
            edits.append(BarrierEdit.model_validate(body, context=context))
            ids.append(None if feature is None else str(feature))
        except pydantic.ValidationError as exc:
            problems += [_problem(i, feature, e) for e in exc.errors(include_url=False)]
    if not problems:
        for i, name, reason in city_problems(edits, city=ctx.city, barriers=ctx.data["barrier"]):
            problems.append(ItemProblem(i, name, reason, sensor_id=ids[i]))
    if problems:
        lines = [
            f"edits[{p.index}]"
            + (f" (feature {p.sensor_id})" if p.sensor_id else "")
            + f", field '{p.field}': {p.reason}"
            for p in problems
        ]
        raise ItemsValidationError("scenario: " + "; ".join(lines), problems)
    return edits, ids


def edits_key(edits: Sequence[BarrierEdit]) -> bytes:
    """A canonical key of ``edits`` (their JSON dumps), for the preview memo.

    Parameters
    ----------
    edits : sequence of BarrierEdit
        The validated edits.
    """
    return orjson.dumps([e.model_dump(mode="json") for e in edits], option=orjson.OPT_SORT_KEYS)


def check_scheme(scheme: str | None) -> str | None:
    """``scheme`` if it is an option of ``hvm_scheme_options.csv`` (or None).

    Parameters
    ----------
    scheme : str or None
        The option code sent.

    Raises
    ------
    ValidationError
        An unknown option, naming the known ones.
    """
    known = [o["option"] for o in scheme_options()]
    if scheme is not None and scheme not in known:
        raise ValidationError(
            f"scenario: field 'scheme': unknown option {scheme!r} (known: {', '.join(known)})"
        )
    return scheme


def save_scenario(
    store: PostGISStore,
    scenario: Scenario,
    *,
    scheme: str | None,
    replace: bool,
    actor: Actor,
) -> tuple[plans.PlanRow, bool]:
    """Store ``scenario`` with its scheme option, in one transaction; and whether it is new.

    ``replace=False`` creates only: a scenario of that name in the city is a
    :class:`ConflictError` and nothing is written. ``replace=True`` replaces it (its first
    save time is kept) or creates it. Writers of one name are serialised; the save and
    its audit row (``actor``) commit together.

    Parameters
    ----------
    store : PostGISStore
        The service's store.
    scenario : Scenario
        The validated scenario (its ``city`` and ``name`` are the key).
    scheme : str or None
        Its HVM scheme option (checked by :func:`check_scheme`).
    replace : bool
        Save over an existing scenario of the name (``PUT``) or refuse to (``POST``).
    actor : Actor
        Who saves it, for the audit trail.

    Returns
    -------
    tuple of (PlanRow, bool)
        The stored row, and whether the scenario is new.

    Raises
    ------
    ConflictError
        ``replace=False`` and the name is taken.
    """
    city, name = scenario.city, scenario.name
    now = dt.datetime.now(dt.UTC)
    with store.engine.begin() as conn:
        plans.lock_scenario(conn, city, name)
        old = plans.plan_row(conn, city, name)
        if old is not None and not replace:
            raise ConflictError(
                f"scenario {name!r} of {city!r} exists already: save over it with PUT "
                f"/cities/{city}/scenarios/{{name}}, or choose another name"
            )
        if old is not None:
            scenario = scenario.model_copy(update={"created": old.created})
        stored.pg_save_scenario(conn, stored.StoredScenario.of(city, scenario), actor=actor)
        plans.set_plan_fields(conn, city, name, scheme=scheme, updated=now)
        row = plans.plan_row(conn, city, name)
    assert row is not None
    return row, old is None


def preview_result(held: Held, edits: list[BarrierEdit], name: str) -> Any:
    """:func:`~geo_protect.scenario.incremental.rescore` of ``edits`` on the held context.

    Parameters
    ----------
    held : Held
        The city's context (the caller holds its lock).
    edits : list of BarrierEdit
        The edits.
    name : str
        The scenario's name.
    """
    return rescore(held.ctx, list(edits), name=name)
