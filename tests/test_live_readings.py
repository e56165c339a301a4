"""Readings at the service boundary: the model, batch validation and MQTT payload decoding.

Every rejection names the item index, the sensor, the field and the reason, in the message
and in the structured ``problems``; a batch with any bad item returns nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from geo_protect.errors import ItemProblem, ItemsValidationError, ValidationError
from geo_protect.live.readings import (
    MAX_COUNT,
    Reading,
    SensorInfo,
    decode_mqtt_payload,
    validate_batch,
)
from geo_protect.reference import parameter, table

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
INSTALLED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SENSORS = {
    "gate": SensorInfo("gate", "line_counter", INSTALLED),
    "square": SensorInfo("square", "area_counter", INSTALLED),
    "camera": SensorInfo("camera", "density", INSTALLED),
}
LINE = {
    "sensor_id": "gate",
    "observed_at": "2026-05-01T11:59:00Z",
    "count_in": 12,
    "count_out": 3,
    "interval_s": 60.0,
}
AREA = {"sensor_id": "square", "observed_at": "2026-05-01T14:58:00+03:00", "present": 40}
DENSITY = {"sensor_id": "camera", "observed_at": "2026-05-01T11:58:00+00:00", "density": 1.5}


def validate(items: Any, **kw: Any) -> list[Reading]:
    options: dict[str, Any] = {"now": NOW, "max_items": 100, "future_skew_s": 60.0, **kw}
    return validate_batch(items, SENSORS, **options)


def rejection(items: Any, **kw: Any) -> ItemsValidationError:
    with pytest.raises(ItemsValidationError) as info:
        validate(items, **kw)
    assert isinstance(info.value, ValidationError)  # the 422 class of errors.HTTP_STATUS
    assert "nothing stored" in str(info.value)
    return info.value


def only(exc: ItemsValidationError) -> ItemProblem:
    assert len(exc.problems) == 1, exc.problems
    return exc.problems[0]


def test_valid_readings_of_each_kind_are_accepted_and_stored_in_utc() -> None:
    out = validate([LINE, AREA, DENSITY])
    assert [r.sensor_id for r in out] == ["gate", "square", "camera"]
    assert (out[0].count_in, out[0].count_out, out[0].interval_s) == (12, 3, 60.0)
    # 14:58 at UTC+3 is 11:58 UTC
    assert out[1].observed_at == dt.datetime(2026, 5, 1, 11, 58, tzinfo=dt.UTC)
    assert out[1].observed_at.utcoffset() == dt.timedelta(0)
    assert out[2].density == 1.5
    # a density given as a JSON integer is a number too
    assert validate([{**DENSITY, "density": 2}])[0].density == 2.0


def test_a_batch_that_is_not_a_list_is_rejected() -> None:
    exc = rejection(LINE)
    assert "a batch is a JSON array of readings, got object" in str(exc)
    assert only(exc).index is None
    assert "got str" in str(rejection("readings"))


def test_an_oversized_batch_is_rejected_whole() -> None:
    exc = rejection([AREA] * 3, max_items=2)
    assert "batch of 3 readings" in str(exc)
    assert "3 items, more than the 2 a batch may hold" in only(exc).reason


def test_unknown_sensor_names_item_and_sensor() -> None:
    exc = rejection([LINE, {**AREA, "sensor_id": "nowhere"}])
    p = only(exc)
    assert (p.index, p.field, p.sensor_id) == (1, "sensor_id", "nowhere")
    assert "item 1 (sensor 'nowhere'), field 'sensor_id': unknown sensor 'nowhere'" in str(exc)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("count_in", "12", "Input should be a valid integer (got str '12')"),
        ("count_in", 12.0, "Input should be a valid integer (got float 12.0)"),
        ("count_in", True, "Input should be a valid integer (got bool True)"),
        ("interval_s", "60", "Input should be a valid number (got str '60')"),
        ("sensor_id", 7, "Input should be a valid string (got int 7)"),
        ("observed_at", 1777636740, "expected an ISO 8601 string with a time zone, got int"),
        ("observed_at", "yesterday", "not an ISO 8601 date and time: 'yesterday'"),
        ("observed_at", "2026-05-01T11:59:00", "Input should have timezone info"),
    ],
)
def test_wrong_types_name_the_field(field: str, value: object, reason: str) -> None:
    exc = rejection([{**LINE, field: value}])
    p = only(exc)
    assert (p.index, p.field) == (0, field)
    assert p.reason == reason
    assert "item 0" in str(exc) and f"field {field!r}: {reason}" in str(exc)


@pytest.mark.parametrize("field", ["count_in", "count_out"])
def test_negative_counts_are_rejected(field: str) -> None:
    p = only(rejection([{**LINE, field: -1}]))
    assert (p.index, p.field, p.sensor_id) == (0, field, "gate")
    assert p.reason == "Input should be greater than or equal to 0"


def test_negative_present_and_absurd_counts_are_rejected() -> None:
    assert only(rejection([{**AREA, "present": -5}])).field == "present"
    p = only(rejection([{**AREA, "present": MAX_COUNT + 1}]))
    assert p.field == "present" and "less than or equal to 2147483647" in p.reason


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinity_are_rejected(value: float) -> None:
    p = only(rejection([{**DENSITY, "density": value}]))
    assert (p.index, p.field) == (0, "density")
    assert p.reason == "Input should be a finite number"
    p = only(rejection([{**LINE, "interval_s": value}]))
    assert p.field == "interval_s" and p.reason == "Input should be a finite number"


def test_negative_density_and_zero_interval_are_rejected() -> None:
    assert only(rejection([{**DENSITY, "density": -0.1}])).field == "density"
    p = only(rejection([{**LINE, "interval_s": 0}]))
    assert p.field == "interval_s" and p.reason == "Input should be greater than 0"


@pytest.mark.parametrize(
    ("reading", "missing", "kind"),
    [
        (LINE, "count_in", "line_counter"),
        (LINE, "count_out", "line_counter"),
        (LINE, "interval_s", "line_counter"),
        (AREA, "present", "area_counter"),
        (DENSITY, "density", "density"),
    ],
)
def test_the_field_a_kind_needs_is_required(
    reading: dict[str, Any], missing: str, kind: str
) -> None:
    item = {k: v for k, v in reading.items() if k != missing}
    exc = rejection([AREA, item])
    p = only(exc)
    assert (p.index, p.field, p.sensor_id) == (1, missing, reading["sensor_id"])
    assert p.reason == f"missing: {kind} readings need {missing}"
    # null is the same as absent
    assert only(rejection([{**reading, missing: None}])).field == missing


def test_a_timestamp_in_the_future_beyond_the_skew_is_rejected() -> None:
    ahead = (NOW + dt.timedelta(seconds=61)).isoformat()
    p = only(rejection([{**AREA, "observed_at": ahead}]))
    assert (p.index, p.field, p.sensor_id) == (0, "observed_at", "square")
    assert "is in the future" in p.reason and "2026-05-01T12:01:00+00:00" in p.reason
    within = (NOW + dt.timedelta(seconds=59)).isoformat()
    assert validate([{**AREA, "observed_at": within}])[0].present == 40
    assert only(rejection([{**AREA, "observed_at": within}], future_skew_s=0)).field == (
        "observed_at"
    )


def test_a_timestamp_before_the_sensor_was_installed_is_rejected() -> None:
    p = only(rejection([{**AREA, "observed_at": "2025-12-31T23:59:59Z"}]))
    assert (p.index, p.field, p.sensor_id) == (0, "observed_at", "square")
    assert p.reason == (
        "2025-12-31T23:59:59+00:00 is before the sensor was installed (2026-01-01T00:00:00+00:00)"
    )
    assert validate([{**AREA, "observed_at": "2026-01-01T00:00:00Z"}])


def test_extra_fields_and_non_objects_are_rejected() -> None:
    p = only(rejection([{**AREA, "people": 3}]))
    assert (p.index, p.field) == (0, "people") and "Extra inputs are not permitted" in p.reason
    p = only(rejection([AREA, [1, 2]]))
    assert (p.index, p.field) == (1, "(item)") and "got list" in p.reason
    p = only(rejection([{"observed_at": AREA["observed_at"], "present": 1}]))
    assert (p.field, p.reason, p.sensor_id) == ("sensor_id", "Field required", None)
    assert only(rejection([{**AREA, "sensor_id": ""}])).field == "sensor_id"
    assert only(rejection([{**AREA, "sensor_id": "x" * 129}])).field == "sensor_id"


def test_every_problem_of_a_batch_is_listed_in_order_and_nothing_is_returned() -> None:
    items = [
        LINE,
        {**LINE, "count_in": -2},
        AREA,
        {**AREA, "sensor_id": "ghost"},
        {**DENSITY, "density": float("nan"), "observed_at": "2030-01-01T00:00:00Z"},
    ]
    exc = rejection(items)
    assert [(p.index, p.field) for p in exc.problems] == [
        (1, "count_in"),
        (3, "sensor_id"),
        (4, "density"),  # a type problem stops the item's other checks
    ]
    assert str(exc).startswith("batch of 5 readings rejected, nothing stored: 3 problems:")
    body = json.loads(json.dumps(exc.as_dicts()))  # a 422 body
    assert body[1] == {
        "index": 3,
        "field": "sensor_id",
        "reason": "unknown sensor 'ghost'",
        "sensor_id": "ghost",
    }
    # a well-typed reading with two problems of its own reports both
    late = {"square": SensorInfo("square", "area_counter", dt.datetime(2031, 1, 1, tzinfo=dt.UTC))}
    with pytest.raises(ItemsValidationError) as info:
        validate_batch(
            [{"sensor_id": "square", "observed_at": "2030-01-01T00:00:00Z"}],
            late,
            now=NOW,
            max_items=10,
            future_skew_s=60,
        )
    problems = info.value.problems
    assert [(p.index, p.field) for p in problems] == [
        (0, "present"),
        (0, "observed_at"),
        (0, "observed_at"),
    ]
    assert "in the future" in problems[1].reason
    assert "before the sensor was installed" in problems[2].reason


def test_an_empty_batch_is_valid_and_now_must_be_aware() -> None:
    assert validate([]) == []
    with pytest.raises(ValueError, match="time-zone aware"):
        validate([AREA], now=dt.datetime(2026, 5, 1, 12))


def test_reading_is_frozen_and_strict() -> None:
    r = Reading(sensor_id="a", observed_at=NOW, present=1)
    with pytest.raises(Exception, match="frozen"):
        r.present = 2  # type: ignore[misc]
    assert Reading.model_validate_json(json.dumps(AREA)).present == 40


def test_batch_limits_are_reference_parameters_with_provenance() -> None:
    rows = table("parameters").set_index("name")
    for name in ("readings_batch_max_items", "readings_future_skew_s"):
        assert rows.loc[name, "confidence"] == "I"
        assert len(str(rows.loc[name, "source"])) > 40
    assert parameter("readings_batch_max_items") == 5000
    assert parameter("readings_future_skew_s") == 60


# -- MQTT payloads --------------------------------------------------------------------------


TOPIC = "geo-protect/brasov/readings"


def test_mqtt_payload_single_object_or_list() -> None:
    assert decode_mqtt_payload(json.dumps(AREA).encode(), TOPIC) == [AREA]
    assert decode_mqtt_payload(json.dumps([AREA, LINE]).encode(), TOPIC) == [AREA, LINE]
    # decoded payloads go straight into the validator
    out = validate(decode_mqtt_payload(json.dumps([LINE, DENSITY]).encode("utf-8"), TOPIC))
    assert [r.sensor_id for r in out] == ["gate", "camera"]
    # UTF-8 names survive
    named = {**AREA, "sensor_id": "piața-sfatului"}
    assert decode_mqtt_payload(json.dumps(named, ensure_ascii=False).encode(), TOPIC) == [named]


def test_mqtt_non_utf8_payload_names_the_topic() -> None:
    with pytest.raises(ValidationError) as info:
        decode_mqtt_payload('{"sensor_id": "piață"}'.encode("latin-1", "replace") + b"\xff", TOPIC)
    assert f"MQTT topic {TOPIC!r}: payload is not UTF-8" in str(info.value)


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b'{"sensor_id": "a",', "payload is not valid JSON"),
        (b"", "payload is not valid JSON"),
        (b'{"density": NaN}', "NaN is not valid JSON"),
        (b'{"density": Infinity}', "Infinity is not valid JSON"),
        (b"42", "payload is a JSON int, not a reading object or an array of readings"),
        (b'"reading"', "payload is a JSON str"),
    ],
)
def test_mqtt_invalid_json_names_the_topic(payload: bytes, says: str) -> None:
    with pytest.raises(ValidationError) as info:
        decode_mqtt_payload(payload, TOPIC)
    assert str(info.value).startswith(f"MQTT topic {TOPIC!r}: ")
    assert says in str(info.value)
