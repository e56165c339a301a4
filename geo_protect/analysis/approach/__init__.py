"""Hostile-vehicle approach analysis: the highest impact speed each vehicle class can reach.

A Vehicle Dynamics Assessment (domain brief §2.2) on the whole hostile-vehicle network,
for every vehicle-permeable entry point of every public space at once.

Model (flat ground: no elevation data is used, gradients are taken as zero)
--------------------------------------------------------------------------------
* Along an edge the vehicle accelerates flat out, ``a(v) = min(a0, P/(m·v))``: grip-
  or gear-limited from rest, power-limited at speed, capped by its top speed
  (:class:`~geo_protect.analysis.vehicles.SpeedCurve`). Every speed is handled as its
  *run-up from rest* ``q(v) = ∫₀^v u/a(u) du`` (metres), strictly increasing in ``v``.
* At a bend (an intermediate vertex of an edge, or the turn from one directed edge to
  the next at a junction) the lateral acceleration is capped by whichever comes first,
  skidding or tipping: ``v² ≤ min(μ, rollover threshold)·g·R``. Heavy vehicles roll
  over (0.35-0.5 g) before their tyres slide (μ 0.7-1.0). The radius ``R`` comes from
  the deflection ``Δ`` and the width the vehicle's centre has to cut the corner: the
  street width (``width_m``; the mean of both edges at a junction) less the vehicle's
  width, see :func:`turn_radius` and :func:`~.geometry.radius_for`. Edge geometry is
  first simplified to within ``w/2`` (Douglas-Peucker) so that a corner digitised as
  several close vertices counts as one corner.
* A street whose *mapped* width is narrower than the vehicle is closed to it (an
  unmapped width, a road-class default, is no evidence either way and stays open).
* A U-turn (back along the same edge) is allowed, on a circle of diameter ``w``.
* A bend or turn tighter than the class's turning radius cannot be driven in one sweep:
  the vehicle stops and manoeuvres, so it leaves the bend at rest.
* The vehicle may start anywhere at rest. On an edge of a through-road class it may
  start at the road's speed × ``road_speed_factor`` (brief §2.2 step 4) only where a
  vehicle can actually arrive at that speed: the connected through-road pieces the
  edge belongs to (barriers cut them) must be at least as long as the run-up
  ``q(v0)`` this class needs to reach ``v0`` from rest. A dead-end stub of a
  primary road off nothing gets no flying start; the same stub at the end of a long
  through route does. (The study-area boundary was not used: registers and clips
  have no meaningful one.) No new threshold: the length follows from ``v0`` and ``a``.
* The vehicle network is cut into *pieces* (:mod:`.pieces`) at every closing barrier
  of ``StreetNetwork.barriers`` (the two sides of a cut are separate dead ends: no
  walk drives through any barrier, wherever it stands on the edge) and at every point
  where an edge meets the outline of a target's space (straight on, no turn there).
  An entry on a closed edge is reached over the barrier-free part between it and the
  nearest barrier on the approach side.
* The speed at an entry is the speed crossing the outline: a bend exactly there does
  not slow it (the vehicle need not turn to hit a barrier on the line).

Why the search finds the maximum over all approach paths
--------------------------------------------------------
Work with the run-up ``q`` instead of the speed. The motion along a street is
autonomous (the pull depends on the speed only), so driving ``s`` metres from speed
``v`` ends at the speed reached ``q(v) + s`` metres from rest: in ``q`` units a segment
maps ``q ↦ min(T, q + s)`` whatever the acceleration curve (``T = q(top speed)``), and
a bend maps ``q ↦ min(C, q)`` with ``C = q(sqrt(lateral·R))`` (``q`` is increasing, so
a speed cap is a run-up cap). With a constant acceleration ``q = v²/(2a)`` and this is
the textbook ``v² = v0² + 2·a·s``. The graph is that of directed *pieces* (a cut at an
outline is a node with the single turn "straight on", no cap; a cut at a barrier is a
dead end). Every walk on the street network that does not pass a barrier is a walk on
this graph and conversely, with the same speeds. The maps above compose into the same
form, so a whole directed piece is ``q_out = min(K, q_in + L)`` (``L`` its length,
``K`` the tightest of its bends and of the top speed, each relaxed by the run-up left
after it), and a turn is ``min(C_turn, ·)``. All these maps are monotone
non-decreasing. The best entry run-up of directed piece ``d`` over *every* walk (of
any length, U-turns and loops included) is therefore the least solution of

    q_in(d) = max(q0(d), max over turns p→d of min(C_turn(p, d), q_out(p)))

above the start values ``q0`` (Kleene fixed point of a monotone operator). Value
iteration from ``q0`` (Bellman-Ford style, label-correcting, vectorised over all turns
out of the pieces that changed in the last round) converges to exactly that solution:
after round ``k`` every walk of ``k`` turns is accounted for, no label ever exceeds the
true maximum (each is the run-up of an actual walk) and labels are bounded by ``T``,
so the iteration stops after finitely many strict improvements. This differs from a
shortest-path search on purpose: a *longer* path with gentler turns can be faster, and
a label-setting (Dijkstra) order does not apply since speed grows along a path.
``tests/test_approach_bruteforce.py`` checks it against every walk of real clips.

Predecessor pointers give the worst-case walk. Because every map above is "min of caps
and ``q + distance``", the speed it reaches at the entry is also reached starting from
rest ``q`` metres before the entry along the same walk (or from road speed on a
through-road, later still): the path is traced back only that far, and its length is
the run-up ``run_up_m``.

Sensitivity (VDA step 6): the search is run again for each class under the low and the
high parameter sets (``vda_sensitivity.csv``: acceleration, power, rollover, friction,
road-start factor) for ``speed_low_kmh`` / ``speed_high_kmh``; the required rating
asks for the high end. The range is the envelope of the three runs: a faster set can
lose a flying start where its higher start speed needs a longer through-road than
there is.

One search per vehicle class serves every target. A target whose worst-case walk runs
through its own space (it would have entered the space by another entry first) is
redone with that space's pieces removed. Because pieces are cut at the outline, each
lies wholly inside or outside the space, and exactly the pieces inside (middle point
in the space) are removed: the restricted search is the same fixed point on the graph
of the walks that stay outside the space, hence the exact maximum over those walks.
It is warm-started from the global labels whose walks avoid the space (they are
already optimal: no restricted walk beats the unrestricted maximum), so only the labels
that depended on the space are recomputed.

The class-independent geometry (turn radii, edge simplification, bends and turns of the
directed-edge graph, drawing the traced paths) is in :mod:`geo_protect.analysis.approach.geometry`.
"""

from __future__ import annotations

from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.analysis.approach.geometry import (
    _EPS_M,
    _KMH,
    FloatArray,
    IntArray,
    _entry_points,
    _Graph,
    _outlines,
    _prepare,
    _space_edges,
    _SpaceEdges,
    _target_spaces,
    turn_radius,
)
from geo_protect.analysis.approach.pieces import WholeNetwork, _locate, through_lengths
from geo_protect.analysis.approach.search import _solve, _vehicle_on
from geo_protect.analysis.network import StreetNetwork
from geo_protect.analysis.vehicles import (
    VEHICLE_COLUMNS,
    kinetic_energy_kj,
    parameter_sets,
    required_rating,
    required_test_speed,
    vehicle_classes,
)
from geo_protect.errors import AnalysisError
from geo_protect.reference import parameter
from geo_protect.reference import version as reference_version
from geo_protect.schema import APPROACH, WGS84, conform, empty_layer

__all__ = [
    "APPROACH",
    "TARGET_COLUMNS",
    "WholeNetwork",
    "approach_speeds",
    "through_lengths",
    "turn_radius",
]


#: Columns of the ``targets`` frame of :func:`approach_speeds`.
TARGET_COLUMNS = ("space_uid", "edge", "at_m", "towards", "impact_angle_deg")


def approach_speeds(
    network: StreetNetwork,
    targets: pd.DataFrame,
    *,
    spaces: gpd.GeoDataFrame | None = None,
    vehicles: pd.DataFrame | None = None,
    friction: float | None = None,
    gravity: float | None = None,
    road_speed_factor: float | None = None,
    safety_factor: float | None = None,
    default_width_m: float | None = None,
    sensitivity: pd.DataFrame | None = None,
    whole: WholeNetwork | None = None,
) -> gpd.GeoDataFrame:
    """Worst-case hostile-vehicle approach of every target, per vehicle class.

    See the module docstring for the model and why the search is exact over all
    approach paths. Flat ground (no elevation data): ``method`` says so on every row.

    Parameters
    ----------
    network : StreetNetwork
        The street network. Vehicles drive :attr:`StreetNetwork.vehicle_edges`, never
        through a closing barrier; a target on a closed edge is reached along it from
        its outer end (the entry-point contract puts the barrier beyond the entry).
    targets : DataFrame
        One row per vehicle-permeable entry point, index = entry uid, columns
        ``space_uid``, ``edge`` (id in ``network.edges``), ``at_m`` (distance along that
        edge from its ``u`` end where the space boundary is crossed), ``towards``
        (``"u"`` or ``"v"``, the end the vehicle drives towards when entering) and
        ``impact_angle_deg`` (copied through).
    spaces : GeoDataFrame, optional
        Public spaces (index = space uid, any CRS); when given, an approach to an entry
        never runs through that entry's own space.
    vehicles : DataFrame, optional
        Vehicle-class table indexed by code with :data:`VEHICLE_COLUMNS` and optionally
        those of :data:`~geo_protect.analysis.vehicles.VEHICLE_OPTIONAL` (default:
        :func:`~geo_protect.analysis.vehicles.vehicle_classes`).
    friction, road_speed_factor : float, optional
        Nominal μ and road-start factor where the table gives none (default
        ``hvm_friction``, ``hvm_road_speed_factor``).
    gravity, safety_factor, default_width_m : float, optional
        Override ``gravity_ms2``, ``hvm_safety_factor`` and ``lane_width_m`` (the width
        of edges without one).
    sensitivity : DataFrame, optional
        The low and high parameter sets (default ``vda_sensitivity.csv``; see
        :func:`~geo_protect.analysis.vehicles.parameter_sets`).
    whole : WholeNetwork, optional
        When ``network`` is a part of a larger network: what the search needs of it.

    Returns
    -------
    GeoDataFrame
        The ``approach`` layer (WGS84), uid ``"{entry_uid}|{vehicle}"``, one row per
        target and vehicle class. A target on an edge of a class no vehicle drives
        (steps...) gets speed 0, no rating and a zero-length line at the entry.

    Raises
    ------
    AnalysisError
        If ``targets`` lacks a column or has a bad edge, ``at_m`` or ``towards``, or if
        the vehicle table is incomplete.
    """
    model = _Model.resolve(gravity, safety_factor, default_width_m)
    fleet = vehicle_classes() if vehicles is None else vehicles
    _check_vehicles(fleet)
    sets = parameter_sets(
        fleet, sensitivity=sensitivity, friction=friction, road_speed_factor=road_speed_factor
    )
    edge_of, pos_of = _check_targets(network, targets)
    if targets.empty:
        return empty_layer("approach")
    graph, tgt_dedge, tgt_x, space_edges = _search_setup(
        network, targets, spaces, whole, model, edge_of, pos_of
    )
    frames = _class_frames(graph, targets, sets, model, tgt_dedge, tgt_x, space_edges)
    return _layer(network, frames, edge_of, pos_of, len(fleet))


def _search_setup(
    network: StreetNetwork,
    targets: pd.DataFrame,
    spaces: gpd.GeoDataFrame | None,
    whole: WholeNetwork | None,
    model: _Model,
    edge_of: IntArray,
    pos_of: FloatArray,
) -> tuple[_Graph, IntArray, FloatArray, _SpaceEdges | None]:
    """The directed-edge graph, each target's piece and position, and the own-space pieces."""
    found = _target_spaces(spaces, targets, network.crs)
    cuts = _outlines(found, _cut_spaces(spaces, whole))
    through = None if whole is None else whole.through_m
    graph = _prepare(network, default_width_m=model.default_width, outlines=cuts, through_m=through)
    tgt_dedge, tgt_x = _target_pieces(graph, targets, edge_of, pos_of)
    return graph, tgt_dedge, tgt_x, _space_edges(graph, found)


def _cut_spaces(spaces: gpd.GeoDataFrame | None, whole: WholeNetwork | None) -> IntArray | None:
    """Positions in ``spaces`` of the whole network's cut spaces."""
    if whole is None or spaces is None:
        return None
    return np.asarray(pd.Index(spaces.index).get_indexer(list(whole.cut_spaces)), dtype=np.int64)


class _Model(NamedTuple):
    """The model constants of one run: reference values unless overridden."""

    gravity: float
    safety_factor: float
    default_width: float

    @classmethod
    def resolve(
        cls, gravity: float | None, safety_factor: float | None, default_width_m: float | None
    ) -> _Model:
        """The given values, else ``gravity_ms2``, ``hvm_safety_factor`` and ``lane_width_m``."""
        return cls(
            parameter("gravity_ms2") if gravity is None else gravity,
            parameter("hvm_safety_factor") if safety_factor is None else safety_factor,
            parameter("lane_width_m") if default_width_m is None else default_width_m,
        )

    def method(self, fleet: pd.DataFrame) -> str:
        """The ``method`` column: the model, its constants and the reference version."""
        mu = "/".join(f"{v:g}" for v in sorted(set(fleet["friction"].tolist())))
        road = "/".join(f"{v:g}" for v in sorted(set(fleet["road_speed_factor"].tolist())))
        return (
            "VDA flat ground (no gradients), a(v) = min(a0, P/(m v)), corner cap "
            f"min(mu, rollover) g R on the width left by the vehicle; mu={mu}, "
            f"g={self.gravity:g}, road start x{road}, SF={self.safety_factor:g} on the high "
            f"set; reference {reference_version()}"
        )


def _class_frames(
    graph: _Graph,
    targets: pd.DataFrame,
    sets: dict[str, pd.DataFrame],
    model: _Model,
    tgt_dedge: IntArray,
    tgt_x: FloatArray,
    space_edges: _SpaceEdges | None,
) -> list[pd.DataFrame]:
    """The worst-case approach of every target by each vehicle class, under the nominal
    set (speed, path) and the low and high sets (speeds only)."""
    fleet = sets["nominal"]
    method = model.method(fleet)
    frames = []
    for code, row in fleet.iterrows():
        klass = _vehicle_on(graph, row, gravity=model.gravity)
        speed_q, start_q, run_up, lines, _ = _solve(graph, klass, tgt_dedge, tgt_x, space_edges)
        speed = klass.curve.speed(speed_q) * _KMH
        varied = {}
        for name in ("low", "high"):
            other = _vehicle_on(graph, sets[name].loc[code], gravity=model.gravity)
            q, *_ = _solve(graph, other, tgt_dedge, tgt_x, space_edges, draw=False)
            varied[name] = other.curve.speed(q) * _KMH
        frame = _rows(targets, str(code), row, speed, fleet, safety_factor=model.safety_factor)
        frame["speed_low_kmh"] = np.minimum(varied["low"], speed)
        frame["speed_high_kmh"] = high = np.maximum(varied["high"], speed)
        frame["start_speed_kmh"] = klass.curve.speed(start_q) * _KMH
        frame["run_up_m"] = run_up
        frame["test_speed_kmh"] = required_test_speed(high, safety_factor=model.safety_factor)
        frame["required_rating"] = required_rating(
            high, str(code), vehicles=fleet, safety_factor=model.safety_factor
        )
        frame["method"] = method
        frame["_line"] = lines
        frames.append(frame)
    return frames


def _target_pieces(
    graph: _Graph, targets: pd.DataFrame, edge_of: IntArray, pos_of: FloatArray
) -> tuple[IntArray, FloatArray]:
    """Each target's directed piece (the one it is driven along, -1 off the vehicle
    network) and its distance from that piece's tail."""
    loc = graph.edge_index.get_indexer(edge_of)
    drivable = loc >= 0
    towards_v = targets["towards"].to_numpy(dtype=object) == "v"
    tgt_dedge = np.full(len(loc), -1, dtype=np.int64)
    tgt_x = np.zeros(len(loc))
    d, x = _locate(graph.pieces, loc[drivable], towards_v[drivable], pos_of[drivable])
    tgt_dedge[drivable], tgt_x[drivable] = d, x
    return tgt_dedge, tgt_x


def _layer(
    network: StreetNetwork,
    frames: list[pd.DataFrame],
    edge_of: IntArray,
    pos_of: FloatArray,
    n_classes: int,
) -> gpd.GeoDataFrame:
    """The ``approach`` layer from the per-class frames (lines drawn, WGS84)."""
    out = pd.concat(frames)
    lines = out.pop("_line").to_numpy(copy=True)
    missing = pd.isna(lines)
    if missing.any():  # entries off the vehicle network: a zero-length line at the entry
        pts = np.tile(_entry_points(network, edge_of, pos_of), n_classes)[missing]
        xy = np.repeat(shapely.get_coordinates(pts), 2, axis=0)
        lines[missing] = shapely.linestrings(xy, indices=np.repeat(np.arange(len(pts)), 2))
    geometry = gpd.GeoSeries(lines, index=out.index, crs=network.crs)
    layer = gpd.GeoDataFrame(out, geometry=geometry.to_crs(WGS84))
    layer.index.name = "uid"
    return conform("approach", layer)


def _check_vehicles(fleet: pd.DataFrame) -> None:
    missing = [c for c in VEHICLE_COLUMNS if c not in fleet.columns]
    if missing:
        raise AnalysisError(f"approach_speeds: vehicle table lacks column(s) {', '.join(missing)}")
    if fleet.empty:
        raise AnalysisError("approach_speeds: the vehicle table is empty")
    bad = fleet.index[~(fleet["acceleration_ms2"].to_numpy(dtype=float) > 0)]
    if len(bad):
        raise AnalysisError(
            f"approach_speeds: vehicle class(es) {list(bad)} need an acceleration > 0"
        )


def _check_targets(network: StreetNetwork, targets: pd.DataFrame) -> tuple[IntArray, FloatArray]:
    missing = [c for c in TARGET_COLUMNS if c not in targets.columns]
    if missing:
        raise AnalysisError(f"approach_speeds: targets lack column(s) {', '.join(missing)}")
    if targets.index.has_duplicates:
        raise AnalysisError(
            f"approach_speeds: target uid {targets.index[targets.index.duplicated()][0]!r} repeats"
        )
    edge = targets["edge"]
    unknown = ~edge.isin(network.edges.index) | edge.isna()
    if unknown.any():
        raise AnalysisError(
            f"approach_speeds: target {targets.index[unknown.to_numpy()][0]!r} names edge "
            f"{edge[unknown].iloc[0]}, which is not in the network"
        )
    towards = targets["towards"].astype("string")
    bad = ~towards.isin(["u", "v"]).fillna(False).to_numpy(dtype=bool)
    if bad.any():
        raise AnalysisError(
            f"approach_speeds: target {targets.index[bad][0]!r} has "
            f"towards={towards[bad].iloc[0]!r} (u or v)"
        )
    edge_of = edge.to_numpy(dtype=np.int64)
    at = targets["at_m"].to_numpy(dtype=float, na_value=np.nan)
    length = network.edges.loc[edge_of, "length_m"].to_numpy(dtype=float)
    outside = ~((at >= -_EPS_M) & (at <= length + _EPS_M))
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise AnalysisError(
            f"approach_speeds: target {targets.index[i]!r} has at_m={at[i]} outside its edge "
            f"(0 to {length[i]:.2f} m)"
        )
    return edge_of, np.clip(at, 0.0, length)


def _rows(
    targets: pd.DataFrame,
    code: str,
    row: pd.Series,
    speed_kmh: FloatArray,
    fleet: pd.DataFrame,
    *,
    safety_factor: float,
) -> pd.DataFrame:
    entry = targets.index.astype(str).to_numpy()
    return pd.DataFrame(
        {
            "entry_uid": entry,
            "space_uid": targets["space_uid"].to_numpy(dtype=object),
            "vehicle": code,
            "speed_kmh": speed_kmh,
            "impact_angle_deg": targets["impact_angle_deg"].to_numpy(dtype=float, na_value=np.nan),
            "energy_kj": kinetic_energy_kj(float(row["test_mass_kg"]), speed_kmh),
        },
        index=pd.Index([f"{e}|{code}" for e in entry], name="uid"),
    )
