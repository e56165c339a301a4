"""Crash ratings of vehicle security barriers: parsed and validated from the strings people write.

A barrier's impact rating says which test vehicle, at which speed and angle, it stopped and
how far the vehicle got past it (domain brief §2.3). Four notations are in use:

* **ISO 22343-1 / IWA 14-1** ``V/7200[N2A]/48/90:0.0``: vehicle test / test mass (kg) and
  vehicle class / speed (km/h) / impact angle (°) : penetration (m). Both standards share
  the notation and the classes; which one applies is known only when the text names it
  (``IWA 14-1:2013 V/…``) or the caller passes ``standard=``.
* **PAS 68** ``V/7500[N3]/80/90:0.4/15.4`` (also with round brackets ``(N3)``): the same,
  plus the debris dispersion distance (m) after the penetration.
* **ASTM F2656** ``M50/P1`` (``M50-P1``, ``M50``): vehicle class (C, PU, M, H) and speed
  in mph, then the penetration class P1 ≤ 1 m, P2 ≤ 7 m, P3 ≤ 30 m, P4 > 30 m.
* **DoS SD-STD-02.01** (legacy) ``K12/L3``: a 15,000 lb truck at 30/40/50 mph (K4/K8/K12)
  and penetration L3 ≤ 3 ft, L2 ≤ 20 ft, L1 ≤ 50 ft.

Test masses, speeds and penetration limits come from ``crash_rating_classes.csv``; every
text that is not one of these forms, names an unknown class, or quotes a mass that is not
its class's published test mass is a :class:`~geo_protect.errors.ValidationError` naming
the field and quoting the text. Nothing is dropped silently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import pandas as pd

from geo_protect.errors import ValidationError
from geo_protect.reference import table

__all__ = [
    "STANDARDS",
    "CrashRating",
    "Standard",
    "covers",
    "crash_rating_classes",
    "parse_rating",
    "rating_energy_kj",
]

Standard = Literal[
    "ISO 22343-1 / IWA 14-1",
    "ISO 22343-1",
    "IWA 14-1",
    "PAS 68",
    "ASTM F2656",
    "DoS SD-STD-02.01",
]

#: Standards a caller may name (``standard=``); the first is the shared ISO/IWA notation.
STANDARDS: tuple[Standard, ...] = (
    "ISO 22343-1 / IWA 14-1",
    "ISO 22343-1",
    "IWA 14-1",
    "PAS 68",
    "ASTM F2656",
    "DoS SD-STD-02.01",
)

_ISO_IWA: Standard = "ISO 22343-1 / IWA 14-1"
#: Table family of each standard (ISO 22343-1 and IWA 14-1 share their class rows).
_FAMILY: dict[Standard, Standard] = {
    s: _ISO_IWA if "22343" in s or "IWA" in s else s for s in STANDARDS
}

#: Standard named by the start of a prefix (``DoS`` and ``SD-STD-02.01`` are the last).
_PREFIX_STANDARD: tuple[tuple[str, Standard], ...] = (
    ("ISO", "ISO 22343-1"),
    ("IWA", "IWA 14-1"),
    ("PAS", "PAS 68"),
    ("ASTM", "ASTM F2656"),
    ("", "DoS SD-STD-02.01"),
)
_NUM = r"-?\d+(?:\.\d+)?"
_PREFIX = re.compile(
    r"^(?P<std>ISO\s*22343-1|IWA\s*14-1|PAS\s*68|ASTM\s*F\s*2656(?:/F\s*2656M)?|"
    r"(?:DOS\s*)?SD-STD-02\.01|DOS)(?:\s*[-:]\s*\d{2,4}(?:\s*\([^)]*\))?)?\s*[,;:]?\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
_V_FORM = re.compile(
    rf"^V/(?P<mass>{_NUM})(?:\[(?P<c1>[A-Z0-9]+)\]|\((?P<c2>[A-Z0-9]+)\))/(?P<speed>{_NUM})"
    rf"/(?P<angle>{_NUM})(?::(?P<pen>{_NUM})(?:/(?P<debris>{_NUM}))?)?$"
)
_CODE_FORM = re.compile(r"^(?P<code>[A-Z]+\d+)(?:[-/]?(?P<pen>[A-Z]+\d+))?$")
_EXAMPLES = (
    "ISO 22343-1 / IWA 14-1 'V/7200[N2A]/48/90:0.0', PAS 68 'V/7500[N3]/48/90:0.0/0.0', "
    "ASTM F2656 'M50/P1', DoS 'K12/L3'"
)


@dataclass(frozen=True)
class CrashRating:
    """One barrier impact rating, in SI units.

    Attributes
    ----------
    standard : str
        One of :data:`STANDARDS`; ``"ISO 22343-1 / IWA 14-1"`` when the text does not say which.
    vehicle_class : str
        The test vehicle class (``N2A``, ``N3``, ``M``, ``truck`` for DoS K ratings).
    mass_kg : float
        Test vehicle mass.
    speed_kmh : float
        Impact speed.
    angle_deg : float
        Impact angle (90 = head-on), fixed at 90 for ASTM and DoS ratings.
    penetration_m : float or None
        Penetration past the barrier (ISO/IWA/PAS: measured; ASTM/DoS: the upper limit of
        the penetration class, ``inf`` for P4); ``None`` when the text gives none.
    debris_m : float or None
        PAS 68 debris dispersion distance, ``None`` when not given.
    penetration_class : str or None
        ASTM ``P1``-``P4`` or DoS ``L1``-``L3``.
    text : str
        The text as written.
    """

    standard: Standard
    vehicle_class: str
    mass_kg: float
    speed_kmh: float
    angle_deg: float
    penetration_m: float | None
    debris_m: float | None
    text: str
    penetration_class: str | None = None


def crash_rating_classes(data_dir: Path | None = None) -> pd.DataFrame:
    """The ``crash_rating_classes`` reference table (vehicle, designation and penetration rows).

    Parameters
    ----------
    data_dir : Path, optional
        Data folder holding ``reference/`` (the active one by default).

    Examples
    --------
    >>> t = crash_rating_classes()
    >>> t.query("code == 'N2A'")["mass_kg"].tolist()
    [7200.0]
    """
    return table("crash_rating_classes", data_dir)


def _fail(field: str, text: str, problem: str) -> ValidationError:
    return ValidationError(f"{field}: {text!r} {problem}")


def _opt(value: object) -> float | None:
    return None if value is None or pd.isna(cast(float, value)) else float(cast(float, value))


def _standard_of(text: str, prefix: str | None, hint: str | None, field: str) -> Standard | None:
    """The standard named by the ``standard=`` hint and/or a prefix of the text (or None)."""
    named: Standard | None = None
    if hint is not None:
        if hint not in STANDARDS:
            raise _fail(
                field, text, f"names an unknown standard {hint!r} (known: {', '.join(STANDARDS)})"
            )
        named = hint
    if prefix is None:
        return named
    key = re.sub(r"\s+", "", prefix).upper()
    found = next(s for start, s in _PREFIX_STANDARD if key.startswith(start))
    if named is not None and _FAMILY[named] != _FAMILY[found] and named != found:
        raise _fail(field, text, f"names {found} but the standard given is {named}")
    return named if named is not None and named != _ISO_IWA else found


def _number(value: str, what: str, field: str, text: str, *, positive: bool) -> float:
    number = float(value)
    if positive and not number > 0:
        raise _fail(field, text, f"has {what} {value}: it must be positive")
    if number < 0:
        raise _fail(field, text, f"has a negative {what} {value}: it must be >= 0")
    return number


def _v_standard(
    cls: str, debris: bool, named: Standard | None, classes: pd.DataFrame, field: str, text: str
) -> Standard:
    """Which European standard a ``V/…`` rating with class ``cls`` belongs to."""
    iso = set(classes.loc[classes["standard"] == _ISO_IWA, "code"])
    pas = set(classes.loc[classes["standard"] == "PAS 68", "code"])
    if named is not None:
        known = iso if _FAMILY[named] == _ISO_IWA else pas if named == "PAS 68" else set()
        if not known:
            raise _fail(field, text, f"is a 'V/…' rating, which is not the notation of {named}")
        if cls not in known:
            raise _fail(
                field,
                text,
                f"has an unknown vehicle class {cls!r} for {named} "
                f"(known: {', '.join(sorted(known))})",
            )
        return named
    if cls in iso and (cls not in pas or not debris):
        return _ISO_IWA
    if cls in pas:
        return "PAS 68"
    known_all = ", ".join(sorted(iso | pas))
    raise _fail(field, text, f"has an unknown vehicle class {cls!r} (known: {known_all})")


def _parse_v(
    match: re.Match[str], named: Standard | None, classes: pd.DataFrame, field: str, text: str
) -> CrashRating:
    cls = match["c1"] or match["c2"]
    standard = _v_standard(cls, match["debris"] is not None, named, classes, field, text)
    rows = classes[(classes["standard"] == _FAMILY[standard]) & (classes["code"] == cls)]
    masses = sorted(float(m) for m in rows["mass_kg"])
    mass = _number(match["mass"], "a mass", field, text, positive=True)
    if mass not in masses:
        published = " or ".join(f"{m:g}" for m in masses)
        problem = f"gives {mass:g} kg for class {cls}, but the test mass of {cls} in {standard}"
        raise _fail(field, text, f"{problem} is {published} kg")
    angle = _number(match["angle"], "an angle", field, text, positive=True)
    if angle > 90:
        raise _fail(field, text, f"has an angle {match['angle']}°: it must be in (0, 90]")
    pen, debris = match["pen"], match["debris"]
    return CrashRating(
        standard=standard,
        vehicle_class=cls,
        mass_kg=mass,
        speed_kmh=_number(match["speed"], "a speed", field, text, positive=True),
        angle_deg=angle,
        penetration_m=None
        if pen is None
        else _number(pen, "penetration", field, text, positive=False),
        debris_m=None
        if debris is None
        else _number(debris, "debris distance", field, text, positive=False),
        text=text,
    )


def _parse_code(
    match: re.Match[str], named: Standard | None, classes: pd.DataFrame, field: str, text: str
) -> CrashRating:
    """An ASTM F2656 (``M50/P1``) or DoS (``K12/L3``) designation."""
    us = classes[classes["standard"].isin(["ASTM F2656", "DoS SD-STD-02.01"])]
    if named is not None:
        us = classes[classes["standard"] == named]
    designations = us[us["kind"] == "designation"].set_index("code")
    code, pen = match["code"], match["pen"]
    if code not in designations.index:
        known = ", ".join(designations.index)
        where = f" for {named}" if named is not None else ""
        raise _fail(
            field,
            text,
            f"has an unknown rating designation {code!r}{where} (known: {known or 'none'})",
        )
    row = designations.loc[code]
    standard = cast(Standard, str(row["standard"]))
    own = classes[classes["standard"] == standard]
    vehicle = own[(own["kind"] == "vehicle") & (own["code"] == row["vehicle_class"])]
    penetration_m: float | None = None
    if pen is not None:
        limits = own[own["kind"] == "penetration"].set_index("code")["penetration_max_m"]
        if pen not in limits.index:
            known = ", ".join(limits.index)
            raise _fail(
                field, text, f"has an unknown {standard} penetration class {pen!r} (known: {known})"
            )
        penetration_m = float(limits[pen])
    return CrashRating(
        standard=standard,
        vehicle_class=str(row["vehicle_class"]),
        mass_kg=float(vehicle["mass_kg"].iloc[0]),
        speed_kmh=float(row["speed_kmh"]),
        angle_deg=float(row["angle_deg"]),
        penetration_m=penetration_m,
        debris_m=None,
        text=text,
        penetration_class=pen,
    )


def parse_rating(
    text: str, *, field: str = "rating", standard: str | None = None, data_dir: Path | None = None
) -> CrashRating:
    """Parse and validate one crash-rating string.

    Whitespace and case are free (``V/7200 [N2A] / 48/90 : 0.0``), the vehicle class may
    be in square or round brackets, and the text may start with the standard
    (``IWA 14-1:2013 V/…``, ``PAS 68:2013 V/…``, ``ASTM F2656-07 M50-P1``, ``DoS K12``).
    A ``V/…`` rating with a class only PAS 68 has (``N2``, ``N3``) or with a debris
    distance and a class both share is PAS 68; any other ``V/…`` rating is
    ``"ISO 22343-1 / IWA 14-1"`` unless the text or ``standard`` says which.

    Parameters
    ----------
    text : str
        The rating as written.
    field : str
        Name of the field the text came from, used in error messages.
    standard : str, optional
        One of :data:`STANDARDS`, when the caller knows which standard applies.
    data_dir : Path, optional
        Data folder holding ``reference/`` (the active one by default).

    Returns
    -------
    CrashRating

    Raises
    ------
    ValidationError
        If the text is empty or in no known form, names an unknown class, designation or
        penetration class, quotes a mass other than its class's test mass, a speed that
        is not positive, an angle outside (0, 90] or a negative penetration or debris
        distance, or names a standard other than ``standard``.

    Examples
    --------
    >>> r = parse_rating("V/7200[N3C]/80/90:0.8")
    >>> r.standard, r.vehicle_class, r.mass_kg, r.speed_kmh, r.penetration_m
    ('ISO 22343-1 / IWA 14-1', 'N3C', 7200.0, 80.0, 0.8)
    >>> parse_rating("V/7500(N3)/48/90:28.1/18.0").debris_m
    18.0
    >>> r = parse_rating("M50/P1")
    >>> round(r.mass_kg, 1), round(r.speed_kmh, 2), r.penetration_m
    (6803.9, 80.47, 1.0)
    >>> parse_rating("V/7200[N9Z]/48/90", field="barrier 3 rating")
    Traceback (most recent call last):
    ...
    geo_protect.errors.ValidationError: barrier 3 rating: 'V/7200[N9Z]/48/90' has an unknown
    vehicle class 'N9Z' (known: ...)
    """
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"{field}: empty crash rating {text!r}; expected e.g. {_EXAMPLES}")
    prefix_match = _PREFIX.match(text.strip())
    prefix = prefix_match["std"] if prefix_match else None
    rest = prefix_match["rest"] if prefix_match else text
    named = _standard_of(text, prefix, standard, field)
    compact = re.sub(r"\s+", "", rest).upper()
    classes = crash_rating_classes(data_dir)
    if match := _V_FORM.match(compact):
        return _parse_v(match, named, classes, field, text)
    if match := _CODE_FORM.match(compact):
        if named is not None and _FAMILY[named] in (_ISO_IWA, "PAS 68"):
            raise _fail(
                field,
                text,
                f"is not in the 'V/mass[class]/speed/angle:penetration' notation of {named}",
            )
        return _parse_code(match, named, classes, field, text)
    raise _fail(field, text, f"is not a crash rating in a known form; expected e.g. {_EXAMPLES}")


def rating_energy_kj(rating: CrashRating) -> float:
    """Kinetic energy ½mv² of the rating's test vehicle at its test speed, in kJ.

    Examples
    --------
    >>> round(rating_energy_kj(parse_rating("V/7200[N2A]/48/90:0.0")))
    640
    """
    speed_ms = rating.speed_kmh / 3.6
    return 0.5 * rating.mass_kg * speed_ms**2 / 1000.0


def covers(rating: CrashRating, *, mass_kg: float, speed_kmh: float) -> bool:
    """Whether a barrier with this rating covers a threat vehicle of a mass and speed.

    The rule is the conservative one of the brief's matching rule (§2.3): the rated mass
    must be at least the threat's mass **and** the rated speed at least the threat's
    speed. Kinetic energy alone is not used: a light vehicle tested fast and a heavy one
    tested slowly can carry the same energy but load a barrier differently (vehicle
    geometry, cab-over or bonneted, changes penetration: the same bollard stopped a PAS 68
    N3 in 0.4 m and an IWA N3C in 0.8 m), and the brief allows equivalence across
    standards only by explicit mapping tables, never by energy. Speed safety factors
    (the brief's ``SF``), angle and penetration-versus-buffer checks are the caller's.

    Parameters
    ----------
    rating : CrashRating
        The barrier's rating.
    mass_kg : float
        Threat vehicle mass (> 0).
    speed_kmh : float
        Threat impact speed (>= 0).

    Raises
    ------
    ValidationError
        If the mass is not positive or the speed is negative or not finite.

    Examples
    --------
    >>> r = parse_rating("V/7200[N2A]/48/90:0.0")
    >>> covers(r, mass_kg=3500, speed_kmh=40), covers(r, mass_kg=3500, speed_kmh=64)
    (True, False)
    """
    if not (math.isfinite(mass_kg) and mass_kg > 0):
        raise ValidationError(f"mass_kg: threat mass {mass_kg!r} must be a positive number")
    if not (math.isfinite(speed_kmh) and speed_kmh >= 0):
        raise ValidationError(f"speed_kmh: threat speed {speed_kmh!r} must be a number >= 0")
    return rating.mass_kg >= mass_kg and rating.speed_kmh >= speed_kmh
