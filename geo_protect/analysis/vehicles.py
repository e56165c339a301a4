"""Hostile-vehicle classes, impact energy and the barrier rating an approach calls for.

The classes (test mass, design acceleration, top speed, rating code) are the rows of
``data/reference/vehicle_classes.csv`` (domain brief §2.2-§2.3); the impact-test speed
ladder is ``data/reference/hvm_test_speeds.csv``. A required rating is written the way
ISO 22343-1 / IWA 14-1 ratings are, ``V/{mass}[{class}]/{speed}/{angle}`` (vehicle test,
test mass in kg, vehicle class, test speed in km/h, impact angle in degrees), without the
penetration part, which a product rating adds and a requirement does not fix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo_protect.errors import AnalysisError
from geo_protect.reference import parameter, table

__all__ = [
    "VEHICLE_COLUMNS",
    "attainable_speed",
    "kinetic_energy_kj",
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


def attainable_speed(
    run_up_m: npt.ArrayLike,
    *,
    acceleration: float,
    v0: npt.ArrayLike = 0.0,
    top_speed: float = np.inf,
) -> FloatArray:
    """Speed after a straight run-up at constant acceleration, ``sqrt(v0² + 2·a·s)``.

    Flat ground; the result is capped at ``top_speed``. SI units throughout.

    Parameters
    ----------
    run_up_m
        Run-up length(s) in metres.
    acceleration
        Design acceleration in m/s².
    v0
        Speed at the start of the run-up, m/s.
    top_speed
        Speed cap, m/s.

    Returns
    -------
    ndarray
        Speed(s) in m/s, same shape as the broadcast inputs.

    Examples
    --------
    >>> round(float(attainable_speed(50.0, acceleration=3.0)) * 3.6, 1)
    62.4
    """
    s = np.asarray(run_up_m, dtype=float)
    v = np.asarray(v0, dtype=float)
    if (s < 0).any() or (v < 0).any() or acceleration < 0:
        raise AnalysisError("attainable_speed: run-up, start speed and acceleration must be >= 0")
    return np.asarray(np.minimum(np.sqrt(v * v + 2.0 * acceleration * s), top_speed), dtype=float)


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
