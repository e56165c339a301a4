"""Hostile-vehicle classes, how fast they get, impact energy and the rating an approach calls for.

The classes (test mass, width, acceleration from rest, power-to-mass ratio, rollover
threshold, top speed, rating code) are the rows of ``data/reference/vehicle_classes.csv``
(domain brief §2.2-§2.3); their low and high sensitivity sets are
``data/reference/vda_sensitivity.csv``; the impact-test speed ladder is
``data/reference/hvm_test_speeds.csv``.

Acceleration falls with speed: a vehicle pulls at most ``a0`` (grip, gearing) and at
most its power, ``a(v) = min(a0, P / (m·v))`` (:class:`SpeedCurve`). The curve is
written as *distance from rest* ``q(v) = ∫₀^v u / a(u) du``, in closed form::

    q(v) = v² / (2·a0)                          for v <= v1 = (P/m) / a0
    q(v) = v1² / (2·a0) + (v³ − v1³) / (3·P/m)  above

Because the motion is autonomous (the pull depends on speed only), driving ``s``
metres from speed ``v`` ends at the speed of ``q(v) + s`` metres from rest.

A required rating is written the way ISO 22343-1 / IWA 14-1 ratings are,
``V/{mass}[{class}]/{speed}/{angle}`` (vehicle test, test mass in kg, vehicle class,
test speed in km/h, impact angle in degrees), without the penetration part, which a
product rating adds and a requirement does not fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo_protect.errors import AnalysisError
from geo_protect.reference import parameter, table

__all__ = [
    "VEHICLE_COLUMNS",
    "SpeedCurve",
    "attainable_speed",
    "kinetic_energy_kj",
    "parameter_sets",
    "rating_speeds",
    "required_rating",
    "required_test_speed",
    "vehicle_classes",
]

#: Columns a vehicle-class table must carry (index: the vehicle code).
VEHICLE_COLUMNS = (
    "rating_class",
    "test_mass_kg",
    "acceleration_ms2",
    "top_speed_kmh",
    "turning_radius_m",
)

#: Optional columns of a vehicle-class table and the value that leaves them out of the
#: model (no power limit, no rollover before skidding, a point-sized vehicle, the
#: run's friction and road-start factor).
VEHICLE_OPTIONAL = {
    "power_to_mass_wkg": np.inf,
    "rollover_g": np.inf,
    "width_m": 0.0,
    "friction": np.nan,
    "road_speed_factor": np.nan,
}

#: The dynamics columns a sensitivity set overrides.
SENSITIVITY_COLUMNS = (
    "acceleration_ms2",
    "power_to_mass_wkg",
    "rollover_g",
    "friction",
    "road_speed_factor",
)

_KMH = 3.6  # m/s -> km/h (unit conversion, not a parameter)

FloatArray = npt.NDArray[np.float64]


def vehicle_classes(*, include_all: bool = False) -> pd.DataFrame:
    """The hostile-vehicle classes of the reference table.

    Parameters
    ----------
    include_all
        Also return the classes not analysed by default (the N1G pick-up).

    Returns
    -------
    DataFrame
        Indexed by vehicle code (``M1``, ``N1``, ``N2``, ``N3``), with ``description``,
        ``rating_class`` (the ISO 22343-1 / IWA 14-1 code, e.g. ``N3C``),
        ``test_mass_kg``, ``acceleration_ms2``, ``top_speed_kmh``, ``turning_radius_m``
        (tighter turns need a stop and a manoeuvre), ``confidence`` and ``source``.

    Examples
    --------
    >>> vehicle_classes().loc["N3", "rating_class"]
    'N3C'
    """
    frame = table("vehicle_classes").set_index("vehicle")
    if not include_all:
        frame = frame[frame["default"].fillna(False).to_numpy(dtype=bool)]
    return frame.drop(columns="default")


def rating_speeds(*, include_all: bool = False) -> FloatArray:
    """The impact-test speed ladder in km/h, ascending.

    Parameters
    ----------
    include_all
        Also return the intermediate speeds of the full ladder (40, 56, 96, 112 km/h)
        besides the standard 16/32/48/64/80 km/h.

    Examples
    --------
    >>> rating_speeds().tolist()
    [16.0, 32.0, 48.0, 64.0, 80.0]
    """
    frame = table("hvm_test_speeds")
    if not include_all:
        frame = frame[frame["standard"].fillna(False).to_numpy(dtype=bool)]
    return np.sort(frame["speed_kmh"].to_numpy(dtype=float))


@dataclass(frozen=True)
class SpeedCurve:
    """Speed against distance from rest of one vehicle class on flat ground.

    ``a(v) = min(a0, P/(m·v))`` up to ``top_speed``: grip- or gear-limited at low
    speed, power-limited above the knee ``v1 = (P/m)/a0``. With ``power_to_mass``
    infinite it is the constant-acceleration model ``v² = 2·a0·s``.

    Parameters
    ----------
    acceleration : float
        ``a0``, the pull from rest, m/s² (> 0).
    power_to_mass : float
        ``P/m``, effective traction power per kilogram, W/kg (> 0; ``inf``: no limit).
    top_speed : float
        Speed cap, m/s (``inf``: none).

    Examples
    --------
    >>> car = SpeedCurve(3.0, 55.0, 110 / 3.6)
    >>> round(car.knee * 3.6, 1)  # km/h where power takes over from grip
    66.0
    >>> round(float(car.speed(50.0)) * 3.6, 1), round(float(car.run_up(100 / 3.6)), 1)
    (62.4, 148.6)
    """

    acceleration: float
    power_to_mass: float = np.inf
    top_speed: float = np.inf

    def __post_init__(self) -> None:
        if not (self.acceleration > 0 and self.power_to_mass > 0 and self.top_speed > 0):
            raise AnalysisError(
                "SpeedCurve: acceleration, power_to_mass and top_speed must be > 0 "
                f"(got {self.acceleration}, {self.power_to_mass}, {self.top_speed})"
            )

    @property
    def knee(self) -> float:
        """Speed ``v1 = (P/m)/a0`` (m/s) above which power, not grip, limits the pull."""
        return float(self.power_to_mass / self.acceleration)

    def run_up(self, speed: npt.ArrayLike) -> FloatArray:
        """Distance from rest (m) to reach ``speed`` (m/s; capped at the top speed)."""
        v = np.minimum(np.asarray(speed, dtype=float), self.top_speed)
        v1, a0, p = self.knee, self.acceleration, self.power_to_mass
        low = v * v / (2 * a0)
        if not np.isfinite(v1):
            return np.asarray(low, dtype=float)
        high = v1 * v1 / (2 * a0) + (v**3 - v1**3) / (3 * p)
        return np.asarray(np.where(v <= v1, low, high), dtype=float)

    def speed(self, run_up: npt.ArrayLike) -> FloatArray:
        """Speed (m/s) after ``run_up`` metres from rest, capped at the top speed."""
        q = np.asarray(run_up, dtype=float)
        v1, a0, p = self.knee, self.acceleration, self.power_to_mass
        low = np.sqrt(2 * a0 * np.maximum(q, 0.0))
        if np.isfinite(v1):
            q1 = v1 * v1 / (2 * a0)
            high = np.cbrt(v1**3 + 3 * p * np.maximum(q - q1, 0.0))
            low = np.where(q <= q1, low, high)
        return np.asarray(np.minimum(low, self.top_speed), dtype=float)

    @classmethod
    def of(cls, row: pd.Series) -> SpeedCurve:
        """The curve of one row of a vehicle-class table (speeds in km/h there)."""
        p = row.get("power_to_mass_wkg", np.inf)
        return cls(
            float(row["acceleration_ms2"]),
            float(np.inf if pd.isna(p) else p),
            float(row["top_speed_kmh"]) / _KMH,
        )


def attainable_speed(
    run_up_m: npt.ArrayLike,
    *,
    acceleration: float,
    v0: npt.ArrayLike = 0.0,
    top_speed: float = np.inf,
    power_to_mass: float = np.inf,
) -> FloatArray:
    """Speed after a straight run-up on flat ground, starting at ``v0``.

    ``a(v) = min(a0, P/(m·v))`` (:class:`SpeedCurve`); with no power limit this is
    ``sqrt(v0² + 2·a·s)``. The result is capped at ``top_speed``. SI units throughout.

    Parameters
    ----------
    run_up_m : array_like
        Run-up length(s) in metres.
    acceleration : float
        Pull from rest ``a0`` in m/s².
    v0 : array_like
        Speed at the start of the run-up, m/s.
    top_speed : float
        Speed cap, m/s.
    power_to_mass : float
        Effective traction power per kg, W/kg (default: no power limit).

    Returns
    -------
    ndarray
        Speed(s) in m/s, same shape as the broadcast inputs.

    Examples
    --------
    >>> round(float(attainable_speed(50.0, acceleration=3.0)) * 3.6, 1)
    62.4
    >>> round(float(attainable_speed(100.0, acceleration=1.1, power_to_mass=11.0)) * 3.6, 1)
    50.7
    """
    s = np.asarray(run_up_m, dtype=float)
    v = np.asarray(v0, dtype=float)
    if (s < 0).any() or (v < 0).any() or not acceleration > 0 or not power_to_mass > 0:
        raise AnalysisError(
            "attainable_speed: run-up and start speed must be >= 0, acceleration and "
            "power_to_mass > 0"
        )
    curve = SpeedCurve(acceleration, power_to_mass, top_speed)
    return curve.speed(curve.run_up(v) + s)


def parameter_sets(
    vehicles: pd.DataFrame | None = None,
    *,
    sensitivity: pd.DataFrame | None = None,
    friction: float | None = None,
    road_speed_factor: float | None = None,
) -> dict[str, pd.DataFrame]:
    """The vehicle table under the nominal, low and high parameter sets (VDA step 6).

    The nominal set is ``vehicles`` itself, with ``friction`` and ``road_speed_factor``
    filled from the arguments (else ``hvm_friction`` and ``hvm_road_speed_factor``).
    The low and high sets replace the dynamics columns (:data:`SENSITIVITY_COLUMNS`) by
    the rows of ``vda_sensitivity.csv`` for each class; a class without a row there
    keeps its nominal values in that set.

    Parameters
    ----------
    vehicles : DataFrame, optional
        Vehicle-class table (default :func:`vehicle_classes`).
    sensitivity : DataFrame, optional
        Rows ``set`` (``low``/``high``), ``vehicle`` and any of the dynamics columns
        (default: the reference table).
    friction, road_speed_factor : float, optional
        Nominal friction μ and road-start factor.

    Returns
    -------
    dict
        ``{"nominal": ..., "low": ..., "high": ...}``, each indexed like ``vehicles``
        and carrying every column of :data:`VEHICLE_OPTIONAL`.

    Examples
    --------
    >>> sets = parameter_sets()
    >>> [float(sets[s].loc["N3", "rollover_g"]) for s in ("low", "nominal", "high")]
    [0.35, 0.4, 0.5]
    """
    fleet = (vehicle_classes() if vehicles is None else vehicles).copy()
    for col, default in VEHICLE_OPTIONAL.items():
        fleet[col] = fleet[col].astype(float) if col in fleet.columns else default
    mu = parameter("hvm_friction") if friction is None else friction
    road = parameter("hvm_road_speed_factor") if road_speed_factor is None else road_speed_factor
    fleet["friction"] = fleet["friction"].fillna(mu)
    fleet["road_speed_factor"] = fleet["road_speed_factor"].fillna(road)
    rows = table("vda_sensitivity") if sensitivity is None else sensitivity
    out = {"nominal": fleet}
    for name in ("low", "high"):
        mine = rows[rows["set"] == name].set_index("vehicle")
        varied = fleet.copy()
        for col in SENSITIVITY_COLUMNS:
            if col in mine.columns:
                value = mine[col].reindex(varied.index).astype(float)
                varied[col] = value.fillna(varied[col])
        out[name] = varied
    return out


def kinetic_energy_kj(mass_kg: npt.ArrayLike, speed_kmh: npt.ArrayLike) -> FloatArray:
    """Kinetic energy ``½·m·v²`` in kJ of a mass (kg) at a speed (km/h).

    Examples
    --------
    >>> round(float(kinetic_energy_kj(7200, 48)))
    640
    """
    v = np.asarray(speed_kmh, dtype=float) / _KMH
    return np.asarray(0.5 * np.asarray(mass_kg, dtype=float) * v * v / 1000.0, dtype=float)


def required_test_speed(
    speed_kmh: npt.ArrayLike,
    *,
    safety_factor: float | None = None,
    speeds: Sequence[float] | None = None,
) -> FloatArray:
    """The smallest impact-test speed at least ``speed × safety_factor``.

    Parameters
    ----------
    speed_kmh
        Attainable impact speed(s), km/h.
    safety_factor
        Margin on the assessed speed (brief §2.3 matching rule; default
        ``hvm_safety_factor``, 1.1).
    speeds
        The test-speed ladder, km/h (default: :func:`rating_speeds`).

    Returns
    -------
    ndarray
        Test speed in km/h; ``NaN`` where the speed is 0 (no approach) or where
        ``speed × safety_factor`` is beyond the highest rated speed.

    Examples
    --------
    >>> required_test_speed([30.0, 43.0, 45.0, 0.0, 75.0]).tolist()
    [48.0, 48.0, 64.0, nan, nan]
    """
    sf = parameter("hvm_safety_factor") if safety_factor is None else safety_factor
    ladder = np.sort(np.asarray(rating_speeds() if speeds is None else speeds, dtype=float))
    need = np.asarray(speed_kmh, dtype=float) * sf
    pos = np.searchsorted(ladder, need, side="left")
    padded = np.r_[ladder, np.nan]
    out = padded[np.minimum(pos, len(ladder))]
    return np.asarray(np.where(need > 0, out, np.nan), dtype=float)


def required_rating(
    speed_kmh: npt.ArrayLike,
    vehicle: str | Sequence[str],
    *,
    vehicles: pd.DataFrame | None = None,
    safety_factor: float | None = None,
    angle_deg: float | None = None,
    speeds: Sequence[float] | None = None,
) -> npt.NDArray[np.object_]:
    """The barrier rating an approach calls for, ISO 22343-1 / IWA 14-1 style.

    ``V/{test mass}[{rating class}]/{test speed}/{angle}``, e.g. ``V/7200[N3C]/48/90``.

    The angle is the rating's impact angle, 90° being head-on. The analysis asks for 90°
    whatever the angle between the street and the space boundary (``impact_angle_deg`` of
    the approach, kept for the planner): 90° is the most severe and the usual test
    angle, and a driver can still steer in the last metres before the line. Pass
    ``angle_deg`` to ask for another angle.

    Parameters
    ----------
    speed_kmh
        Attainable impact speed(s), km/h.
    vehicle
        Vehicle code(s) (index of ``vehicles``), one or one per speed.
    vehicles
        Vehicle-class table (default :func:`vehicle_classes` with all rows).
    safety_factor, speeds
        As in :func:`required_test_speed`.
    angle_deg
        Rating impact angle (default ``hvm_rating_angle_deg``, 90).

    Returns
    -------
    ndarray of object
        The rating string; ``None`` where the speed is 0 (no approach); ``"> V/…/80/90"``
        (the highest test on the ladder, prefixed by ``>``) where the speed with its
        safety factor is beyond the highest rated speed.

    Raises
    ------
    AnalysisError
        If a vehicle code is not in the table.

    Examples
    --------
    >>> required_rating([40.0, 80.0], ["N3", "M1"]).tolist()
    ['V/7200[N3C]/48/90', '> V/1500[M1]/80/90']
    """
    table_ = vehicle_classes(include_all=True) if vehicles is None else vehicles
    angle = parameter("hvm_rating_angle_deg") if angle_deg is None else angle_deg
    ladder = np.sort(np.asarray(rating_speeds() if speeds is None else speeds, dtype=float))
    v = np.atleast_1d(np.asarray(speed_kmh, dtype=float))
    codes = np.broadcast_to(np.asarray(vehicle, dtype=object), v.shape)
    unknown = sorted(set(codes.tolist()) - set(table_.index))
    if unknown:
        raise AnalysisError(f"required_rating: unknown vehicle class(es) {unknown}")
    rows = table_.loc[list(codes)]
    test = required_test_speed(v, safety_factor=safety_factor, speeds=ladder.tolist())
    beyond = np.isnan(test) & (v > 0)
    shown = np.where(beyond, ladder[-1], test)
    mass = rows["test_mass_kg"].to_numpy(dtype=float)
    klass = rows["rating_class"].to_numpy(dtype=object)
    text = pd.Series(
        [f"V/{m:.0f}[{c}]/{s:.0f}/{angle:.0f}" for m, c, s in zip(mass, klass, shown, strict=True)],
        dtype=object,
    ).to_numpy()
    text = np.where(beyond, "> " + text.astype(str), text).astype(object)
    text[~(v > 0)] = None
    return np.asarray(text, dtype=object)
