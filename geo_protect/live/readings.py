"""Sensor readings at the service boundary: the model, batch validation and MQTT decoding.

A *reading* is one observation of one sensor: a line counter reports people crossing in
and out over an interval, an area counter the people present, a density sensor people per
m². Everything that arrives over HTTP or MQTT goes through :func:`validate_batch` before
anything is stored: either every item of a batch is valid and the whole batch comes back
as :class:`Reading` objects, or one
:class:`~geo_protect.errors.ItemsValidationError` lists every problem, each naming the
item's index, its sensor, the field and the reason (its ``problems`` make a 422 body).

The batch limits (``readings_batch_max_items``, ``readings_future_skew_s``) are reference
parameters (``data/reference/parameters.csv``); the service passes them in.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import pydantic
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from geo_protect.errors import ItemProblem, ItemsValidationError, ValidationError

__all__ = [
    "MAX_COUNT",
    "REQUIRED_FIELDS",
    "SENSOR_KINDS",
    "Reading",
    "SensorInfo",
    "SensorKind",
    "decode_mqtt_payload",
    "validate_batch",
]

SensorKind = Literal["line_counter", "area_counter", "density"]

#: The sensor kinds, in a stable order.
SENSOR_KINDS: tuple[str, ...] = get_args(SensorKind)

#: The fields a reading of each sensor kind must carry.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "line_counter": ("count_in", "count_out", "interval_s"),
    "area_counter": ("present",),
    "density": ("density",),
}

#: Largest count accepted: it fits a PostgreSQL ``integer`` column (no sensor counts 2^31).
MAX_COUNT = 2**31 - 1


def _count() -> Any:
    """The field of a count: a non-negative integer, or absent."""
    return Field(default=None, ge=0, le=MAX_COUNT)


class Reading(BaseModel):
    """One observation of one sensor, as validated at the boundary.

    Types are strict: a count is a JSON integer (``"12"``, ``12.0`` and ``true`` are
    errors), a density or interval a JSON number. ``observed_at`` is an ISO 8601 string
    (or a datetime) with a time zone, stored in UTC.

    Examples
    --------
    >>> r = Reading(sensor_id="gate-1", observed_at="2026-05-01T10:00:00+03:00", present=40)
    >>> r.observed_at.isoformat(), r.present
    ('2026-05-01T07:00:00+00:00', 40)
    >>> Reading(sensor_id="gate-1", observed_at="2026-05-01T10:00:00Z", present="40")
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Reading
    ...
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    sensor_id: str = Field(min_length=1, max_length=128)
    observed_at: AwareDatetime
    count_in: int | None = _count()
    count_out: int | None = _count()
    present: int | None = _count()
    density: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    interval_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @field_validator("observed_at", mode="before")
    @classmethod
    def _parse_time(cls, value: object) -> object:
        """An ISO 8601 string becomes a datetime (strict mode takes no strings)."""
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError as exc:
                raise ValueError(f"not an ISO 8601 date and time: {value!r}") from exc
        if not isinstance(value, dt.datetime):  # numbers (epoch seconds) are ambiguous
            raise ValueError(
                f"expected an ISO 8601 string with a time zone, got {type(value).__name__}"
            )
        return value

    @field_validator("observed_at")
    @classmethod
    def _to_utc(cls, value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC)


@dataclass(frozen=True)
class SensorInfo:
    """What the validator needs to know of a registered sensor.

    Attributes
    ----------
    sensor_id : str
        The sensor's id, as readings name it.
    kind : str
        ``line_counter``, ``area_counter`` or ``density`` (:data:`SENSOR_KINDS`).
    installed_at : datetime
        When it was installed (time-zone aware): earlier readings are rejected.
    """

    sensor_id: str
    kind: SensorKind
    installed_at: dt.datetime


def _pydantic_problems(
    index: int, sensor: str | None, exc: pydantic.ValidationError
) -> list[ItemProblem]:
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(item)"
        reason = str(err["msg"]).removeprefix("Value error, ")
        if str(err["type"]).endswith("_type") and "input" in err:
            reason += f" (got {type(err['input']).__name__} {err['input']!r})"[:200]
        out.append(ItemProblem(index, field, reason, sensor))
    return out


def _sensor_problems(
    index: int,
    reading: Reading,
    sensors: Mapping[str, SensorInfo],
    latest: dt.datetime,
) -> list[ItemProblem]:
    """The problems of a well-typed reading against its sensor and the clock."""
    sid = reading.sensor_id
    info = sensors.get(sid)
    if info is None:
        return [ItemProblem(index, "sensor_id", f"unknown sensor {sid!r}", sid)]
    out = [
        ItemProblem(index, name, f"missing: {info.kind} readings need {name}", sid)
        for name in REQUIRED_FIELDS[info.kind]
        if getattr(reading, name) is None
    ]
    at = reading.observed_at
    if at > latest:
        out.append(
            ItemProblem(
                index,
                "observed_at",
                f"{at.isoformat()} is in the future (later than {latest.isoformat()}, "
                "the clock plus the allowed skew)",
                sid,
            )
        )
    if at < info.installed_at:
        out.append(
            ItemProblem(
                index,
                "observed_at",
                f"{at.isoformat()} is before the sensor was installed "
                f"({info.installed_at.astimezone(dt.UTC).isoformat()})",
                sid,
            )
        )
    return out


def _check_item(
    index: int, item: object, sensors: Mapping[str, SensorInfo], latest: dt.datetime
) -> tuple[Reading | None, list[ItemProblem]]:
    """One item as a reading, with its problems (types first, then sensor and clock)."""
    if not isinstance(item, dict):
        reason = f"a reading is a JSON object, got {type(item).__name__}"
        return None, [ItemProblem(index, "(item)", reason)]
    raw_sid = item.get("sensor_id")
    sensor = raw_sid[:128] if isinstance(raw_sid, str) else None
    try:
        reading = Reading.model_validate(item)
    except pydantic.ValidationError as exc:
        return None, _pydantic_problems(index, sensor, exc)
    return reading, _sensor_problems(index, reading, sensors, latest)


def _describe(problem: ItemProblem) -> str:
    if problem.index is None:
        return f"{problem.field}: {problem.reason}" if problem.field else problem.reason
    sensor = "" if problem.sensor_id is None else f" (sensor {problem.sensor_id!r})"
    return f"item {problem.index}{sensor}, field {problem.field!r}: {problem.reason}"


def _fail(problems: list[ItemProblem], n: int | None) -> ItemsValidationError:
    what = "batch" if n is None else f"batch of {n} reading{'s' if n != 1 else ''}"
    texts = [_describe(p) for p in problems]
    listed = (
        texts[0]
        if len(texts) == 1
        else f"{len(texts)} problems:" + "".join(f"\n  - {t}" for t in texts)
    )
    return ItemsValidationError(f"{what} rejected, nothing stored: {listed}", problems)


def validate_batch(
    items: Any,
    sensors: Mapping[str, SensorInfo],
    *,
    now: dt.datetime,
    max_items: int,
    future_skew_s: float,
) -> list[Reading]:
    """Validate a batch of readings as a whole: every item valid, or one error listing all.

    Parameters
    ----------
    items : Any
        The decoded JSON body: it must be a list of objects in the :class:`Reading` shape.
    sensors : Mapping of str to SensorInfo
        The registered sensors of the city, by id.
    now : datetime
        The service's clock (time-zone aware).
    max_items : int
        Largest batch accepted (the ``readings_batch_max_items`` parameter).
    future_skew_s : float
        How far ahead of ``now`` a timestamp may be, for sensor clocks that run a little
        fast (the ``readings_future_skew_s`` parameter).

    Returns
    -------
    list of Reading
        The readings, in batch order.

    Raises
    ------
    ItemsValidationError
        A :class:`~geo_protect.errors.ValidationError` naming, for every problem, the item
        index, the sensor, the field and the reason: not a list, too many items, an item
        that is not an object, wrong types, negative counts, NaN or infinity, an unknown
        sensor, a field the sensor's kind needs missing, a timestamp in the future (beyond
        the skew) or before the sensor was installed. Its ``problems`` hold the same list.
    ValueError
        If ``now`` has no time zone (a programming error, not the sender's).

    Examples
    --------
    >>> import datetime as dt
    >>> now = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    >>> sensors = {"gate-1": SensorInfo("gate-1", "line_counter", dt.datetime(2026, 1, 1,
    ...                                                                     tzinfo=dt.UTC))}
    >>> ok = {"sensor_id": "gate-1", "observed_at": "2026-05-01T11:59:00Z",
    ...       "count_in": 12, "count_out": 3, "interval_s": 60.0}
    >>> [r.count_in for r in validate_batch([ok], sensors, now=now, max_items=10,
    ...                                     future_skew_s=60)]
    [12]
    >>> validate_batch([ok, {**ok, "count_out": -1}], sensors, now=now, max_items=10,
    ...                future_skew_s=60)
    Traceback (most recent call last):
    geo_protect.errors.ItemsValidationError: batch of 2 readings rejected, nothing stored: \
item 1 (sensor 'gate-1'), field 'count_out': Input should be greater than or equal to 0
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("validate_batch: `now` must be time-zone aware")
    if not isinstance(items, list):
        kind = "object" if isinstance(items, dict) else type(items).__name__
        reason = f"a batch is a JSON array of readings, got {kind}"
        raise _fail([ItemProblem(None, "", reason)], None)
    if len(items) > max_items:
        reason = f"{len(items)} items, more than the {max_items} a batch may hold"
        raise _fail([ItemProblem(None, "", reason)], len(items))
    latest = now.astimezone(dt.UTC) + dt.timedelta(seconds=future_skew_s)
    readings: list[Reading] = []
    problems: list[ItemProblem] = []
    for index, item in enumerate(items):
        reading, found = _check_item(index, item, sensors, latest)
        problems += found
        if reading is not None:
            readings.append(reading)
    if problems:
        raise _fail(problems, len(items))
    return readings


def decode_mqtt_payload(payload: bytes, topic: str) -> list[Any]:
    """Decode an MQTT message body (UTF-8 JSON) into a batch for :func:`validate_batch`.

    Parameters
    ----------
    payload : bytes
        The message body: one JSON object (a single reading) or an array of them.
    topic : str
        The topic it came on (named in errors).

    Returns
    -------
    list
        The decoded batch; a single object is wrapped in a list. Its items are not
        checked here.

    Raises
    ------
    ValidationError
        Naming the topic, if the payload is not UTF-8, not JSON, or neither an object
        nor an array.

    Examples
    --------
    >>> decode_mqtt_payload(b'{"sensor_id": "a", "present": 3}', "city/brasov/readings")
    [{'sensor_id': 'a', 'present': 3}]
    >>> decode_mqtt_payload(b"\\xff\\xfe", "city/brasov/readings")
    Traceback (most recent call last):
    geo_protect.errors.ValidationError: MQTT topic 'city/brasov/readings': payload is not \
UTF-8 (invalid byte at position 0)
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"MQTT topic {topic!r}: payload is not UTF-8 (invalid byte at position {exc.start})"
        ) from exc
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise ValidationError(f"MQTT topic {topic!r}: payload is not valid JSON: {exc}") from exc
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return data
    raise ValidationError(
        f"MQTT topic {topic!r}: payload is a JSON {type(data).__name__}, "
        "not a reading object or an array of readings"
    )


def _no_constant(name: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (RFC 8259): reject them."""
    raise ValueError(f"{name} is not valid JSON (RFC 8259 has no NaN or infinity)")
