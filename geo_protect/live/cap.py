"""An alert as OASIS CAP 1.2 XML (Common Alerting Protocol, ITU-T X.1303; brief §5.3).

The message
    ``status`` is ``Actual``. ``msgType`` follows the alert's life in the store: an open
    alert is an ``Alert``; an acknowledged one, or one that changed since it opened
    (``change`` set by :func:`~geo_protect.live.alerts.evaluate_alerts`, a condition
    ``cleared``, or ``updated_at`` after ``opened_at``), an ``Update``; a resolved one a
    ``Cancel``. Updates and cancels reference the original ``Alert``
    (``sender,identifier,sent``). Identifiers are ``<city>.<alert id>.<msgtype>.<sent, UTC>``:
    one per message, without spaces, commas, ``<`` or ``&`` (CAP 1.2 §3.2.1).

Scope: ``Restricted``
    These alerts carry live crowd densities at spaces a hostile vehicle can reach fast:
    published openly they would point an attacker at the most crowded, least protected
    place of the moment. They are for the control room and the emergency services, so the
    scope is ``Restricted`` with a ``restriction`` saying so, never ``Public``.

The info block
    ``category``, ``event``, ``urgency``, ``certainty``, ``responseType`` and
    ``instruction`` come from the alert itself when it has them, else from its level in
    ``data/reference/alert_rules.csv``; a cleared or cancelled alert has urgency ``Past``
    and response ``AllClear``. The area is the space (``areaDesc``) and, when given, its
    outline as a CAP polygon: ``lat,lon`` pairs (WGS84), a closed ring of at least four
    pairs. Holes cannot be expressed in CAP and are left out.
"""

from __future__ import annotations

import math
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import shapely

from geo_protect.errors import ValidationError
from geo_protect.live.alerts import CAP_SEVERITIES, alert_rules
from geo_protect.reference import table

__all__ = ["CAP_NS", "cap_alert", "cap_polygon", "cap_time"]

#: The CAP 1.2 namespace.
CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
#: Characters XML 1.0 cannot carry at all (escaping does not help): dropped from text.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: Characters CAP 1.2 forbids in sender and identifier.
_RESTRICTED = re.compile(r"[\s,<&]")
#: CAP recommends headlines under 160 characters.
_HEADLINE_MAX = 160


def cap_time(moment: Any) -> str:
    """A time in CAP's format: ``YYYY-MM-DDThh:mm:ss±hh:mm``, offset kept, no fraction.

    Parameters
    ----------
    moment : datetime or Timestamp
        A time-zone-aware time.

    Returns
    -------
    str
        The time, e.g. ``2026-05-01T20:00:00+02:00``.

    Raises
    ------
    ValidationError
        For a naive time.

    Examples
    --------
    >>> cap_time(pd.Timestamp("2026-05-01 18:00:00.75", tz="UTC"))
    '2026-05-01T18:00:00+00:00'
    >>> cap_time(datetime.fromisoformat("2026-05-01T20:00:00+03:00"))
    '2026-05-01T20:00:00+03:00'
    """
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise ValidationError(f"CAP time: {moment} has no time zone")
    return str(stamp.floor("s").to_pydatetime().isoformat())


def cap_polygon(polygon: shapely.Polygon) -> str:
    """The outline of a WGS84 polygon as a CAP polygon: ``"lat,lon lat,lon ..."``, closed.

    Coordinates keep ``coordinate_decimals`` decimals (``risk_map.csv``).

    Parameters
    ----------
    polygon : shapely.Polygon
        In longitude / latitude (EPSG:4326); holes are not expressible in CAP.

    Returns
    -------
    str
        The exterior ring, first pair repeated last.

    Raises
    ------
    ValidationError
        For an empty or non-polygon geometry, or coordinates outside lon/lat ranges
        (a projected polygon passed by mistake).

    Examples
    --------
    >>> cap_polygon(shapely.Polygon([(25.588, 45.642), (25.59, 45.642), (25.59, 45.643)]))
    '45.642000,25.588000 45.642000,25.590000 45.643000,25.590000 45.642000,25.588000'
    """
    if not isinstance(polygon, shapely.Polygon) or polygon.is_empty:
        raise ValidationError(f"CAP polygon: need a non-empty Polygon, got {polygon.geom_type}")
    ring = [(float(c[0]), float(c[1])) for c in polygon.exterior.coords]
    if any(not (-180 <= lon <= 180 and -90 <= lat <= 90) for lon, lat in ring):
        raise ValidationError("CAP polygon: coordinates are not WGS84 longitude / latitude")
    if ring[0] != ring[-1]:
        ring.append(ring[0])
    if len(ring) < 4:
        raise ValidationError("CAP polygon: a ring needs at least three distinct points")
    digits = int(table("risk_map").set_index("name").loc["coordinate_decimals", "value"])
    return " ".join(f"{lat:.{digits}f},{lon:.{digits}f}" for lon, lat in ring)


def _text(value: Any) -> str:
    return _NOT_XML.sub("", str(value))


def _stamp(moment: Any) -> str:
    """A compact UTC time for identifiers, e.g. ``20260501T180000Z``."""
    cap_time(moment)  # the same checks
    return str(pd.Timestamp(moment).tz_convert("UTC").strftime("%Y%m%dT%H%M%SZ"))


def _token(value: Any) -> str:
    """ASCII, without the characters CAP forbids in identifiers."""
    ascii_ = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    return _RESTRICTED.sub("_", ascii_) or "_"


def _given(alert: Mapping[str, Any], key: str) -> Any:
    """``alert[key]`` unless missing, None, NaN or NaT (then None)."""
    value = alert.get(key)
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return None
    return value


def _msg_type(alert: Mapping[str, Any]) -> str:
    state = str(_given(alert, "state") or "open")
    if state == "resolved":
        return "Cancel"
    opened, updated = _given(alert, "opened_at"), _given(alert, "updated_at")
    change = str(_given(alert, "change") or "")
    if (
        state == "acknowledged"
        or _given(alert, "condition") == "cleared"
        or change not in ("", "opened")
        or (opened is not None and updated is not None and pd.Timestamp(updated) > opened)
    ):
        return "Update"
    return "Alert"


def _level(alert: Mapping[str, Any]) -> dict[str, str]:
    """The CAP fields of the alert's level: its own values, else the rule's."""
    rules = alert_rules()
    hit = rules[(rules["kind"] == alert.get("kind")) & (rules["severity"] == alert["severity"])]
    rule = hit.iloc[0].to_dict() if len(hit) else {}
    fields = ("category", "event", "urgency", "certainty", "response_type", "instruction")
    defaults = {"category": "Safety", "urgency": "Unknown", "certainty": "Unknown"}
    defaults["event"] = f"{alert['kind']} alert"
    return {f: str(_given(alert, f) or _given(rule, f) or defaults.get(f, "")) for f in fields}


def _sub(parent: ET.Element, tag: str, text: Any = None) -> ET.Element:
    node = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        node.text = _text(text)
    return node


def _info(
    root: ET.Element,
    alert: Mapping[str, Any],
    msg_type: str,
    city_name: str,
    area_polygon: shapely.Polygon | None,
) -> None:
    level = _level(alert)
    over = msg_type == "Cancel" or _given(alert, "condition") == "cleared"
    label = str(_given(alert, "space_name") or _given(alert, "space_uid") or city_name)
    info = _sub(root, "info")
    _sub(info, "language", "en")
    _sub(info, "category", level["category"])
    _sub(info, "event", level["event"])
    _sub(info, "responseType", "AllClear" if over else level["response_type"] or "Monitor")
    _sub(info, "urgency", "Past" if over else level["urgency"])
    _sub(info, "severity", alert["severity"])
    _sub(info, "certainty", level["certainty"])
    _sub(info, "senderName", f"geo_protect control room, {city_name}")
    prefix = {"Cancel": "Resolved: "}.get(msg_type, "Cleared: " if over else "")
    _sub(info, "headline", f"{prefix}{level['event']}: {label}"[:_HEADLINE_MAX])
    _sub(info, "description", _given(alert, "message") or level["event"])
    if msg_type == "Cancel":
        _sub(info, "instruction", "No further action: the control room resolved the alert.")
    elif level["instruction"]:
        _sub(info, "instruction", level["instruction"])
    for name in ("alert_key", "kind", "condition", "value", "threshold", "unit", "state"):
        value = _given(alert, name)
        if value is not None and not (isinstance(value, float) and math.isinf(value)):
            param = _sub(info, "parameter")
            _sub(param, "valueName", name)
            _sub(param, "value", f"{value:g}" if isinstance(value, float) else value)
    area = _sub(info, "area")
    _sub(area, "areaDesc", f"{label}, {city_name}")
    if area_polygon is not None:
        _sub(area, "polygon", cap_polygon(area_polygon))


def _header(
    alert: Mapping[str, Any], msg_type: str, when: Any, sender: str, city_name: str
) -> ET.Element:
    """The ``alert`` element up to its ``info``: identification, scope and references."""
    base = f"{_token(city_name)}.{_token(_given(alert, 'alert_id') or alert['alert_key'])}"
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", f"{base}.{msg_type.lower()}.{_stamp(when)}")
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(when))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", msg_type)
    _sub(root, "source", "geo_protect live sensor feeds")
    _sub(root, "scope", "Restricted")
    _sub(root, "restriction", f"{city_name} control room and emergency services only")
    if _given(alert, "note"):
        _sub(root, "note", alert["note"])
    if msg_type != "Alert":
        opened = _given(alert, "opened_at")
        if opened is None:
            raise ValidationError(f"CAP {msg_type}: the alert has no opened_at to reference")
        original = f"{base}.alert.{_stamp(opened)}"
        _sub(root, "references", f"{sender},{original},{cap_time(opened)}")
    return root


def cap_alert(
    alert: Mapping[str, Any],
    *,
    sender: str,
    city_name: str,
    area_polygon: shapely.Polygon | None,
    sent: datetime | None = None,
) -> str:
    """The CAP 1.2 XML message of an alert (valid against the OASIS CAP 1.2 schema).

    Parameters
    ----------
    alert : Mapping
        An alert row (:data:`~geo_protect.live.alerts.ALERT_COLUMNS`) with the store's
        fields: ``alert_key, kind, severity`` (required), ``message, condition, value,
        threshold, unit, change``; ``id`` (the store's alert id; ``alert_key`` if
        missing), ``state`` (``open``, ``acknowledged``, ``resolved``), ``opened_at``
        (needed by updates and cancels), ``updated_at``, ``resolved_at``, ``space_uid``,
        ``space_name`` and ``note``; optionally its own CAP ``category, event, urgency,
        certainty, response_type, instruction``.
    sender : str
        The CAP sender, e.g. ``control-room@brasov.example`` (no spaces, commas, ``<``,
        ``&``).
    city_name : str
        For the area description and the sender name.
    area_polygon : shapely.Polygon or None
        The space's outline in WGS84 lon/lat, or None for a description only.
    sent : datetime, optional
        Time of the message (time-zone aware); by default the alert's own time of the
        change it reports: ``resolved_at`` (Cancel), ``updated_at`` (Update) or
        ``opened_at``, then ``evaluated_at``, else now.

    Returns
    -------
    str
        The XML document (UTF-8 declaration, text escaped).

    Raises
    ------
    ValidationError
        For a bad sender, a severity CAP does not know, a naive time, an update or
        cancel without ``opened_at``, or a bad polygon.

    Examples
    --------
    >>> xml = cap_alert(
    ...     {"alert_key": "los|way/1", "kind": "los", "severity": "Severe",
    ...      "message": "Piața Sfatului: 3.80 p/m² & rising", "space_name": "Piața Sfatului",
    ...      "opened_at": pd.Timestamp("2026-05-01 18:00", tz="UTC")},
    ...     sender="control-room@brasov.example", city_name="Brașov", area_polygon=None)
    >>> "<msgType>Alert</msgType>" in xml, "3.80 p/m² &amp; rising" in xml
    (True, True)
    """
    if not sender or _RESTRICTED.search(sender):
        raise ValidationError(f"CAP sender: {sender!r} is empty or has spaces, commas, < or &")
    if alert.get("severity") not in (*CAP_SEVERITIES, "Unknown"):
        raise ValidationError(f"CAP alert: severity {alert.get('severity')!r} is not CAP's")
    msg_type = _msg_type(alert)
    time_keys = {"Cancel": "resolved_at", "Update": "updated_at"}
    when = (
        sent
        or _given(alert, time_keys.get(msg_type, "opened_at"))
        or _given(alert, "opened_at")
        or _given(alert, "evaluated_at")
        or datetime.now(UTC)
    )
    root = _header(alert, msg_type, when, sender, city_name)
    _info(root, alert, msg_type, city_name, area_polygon)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode", default_namespace=CAP_NS)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
