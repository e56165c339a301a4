"""Replay of real pedestrian counts (City of Melbourne, January 2019) onto a city's spaces.

No open pedestrian counts exist for the project's cities (``data/crowd/PROVENANCE.md``),
so demos and tests replay the City of Melbourne Pedestrian Counting System's hourly counts
onto a city's public spaces. They are **Melbourne's counts, re-mapped**: every replayed
sensor says so in its ``name`` and ``source``; they are never the city's own.

* :func:`melbourne_counts` reads the counts in long form and joins them to the sensor
  locations.
* :func:`replay_plan` maps Melbourne sensors to the city's spaces, deterministically:
  sensors ranked by mean hourly count, spaces by their expected crowd, paired rank to rank.
* :func:`replay_readings` turns the counts into batches of readings, time-compressed.

A Melbourne counter counts people walking past (a flow, people per hour); a replayed
sensor is an *area counter* of people present, by Little's law
(:func:`present_from_flow`): present = flow × mean dwell time / 3600 s, the dwell time
being the ``replay_dwell_time_s`` reference parameter (a design choice, [I]).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_protect.errors import DataSourceError, ValidationError
from geo_protect.live.sensors import sensor_frame
from geo_protect.reference import data_dir as active_data_dir
from geo_protect.reference import parameter

__all__ = [
    "COUNTS_FILE",
    "LOCATIONS_FILE",
    "MELBOURNE_TZ",
    "MISSING_VALUES",
    "NAME_ALIASES",
    "melbourne_counts",
    "present_from_flow",
    "replay_plan",
    "replay_readings",
    "slug",
]

#: The files, in ``<data>/crowd/``.
COUNTS_FILE = "melbourne_pedestrian_counts_hourly_2019-01.csv"
LOCATIONS_FILE = "melbourne_pedestrian_sensor_locations.csv"
#: The counts' clock: local time in Melbourne (AEDT, UTC+11, all of January).
MELBOURNE_TZ = "Australia/Melbourne"
#: How the counts file marks an hour without a count.
MISSING_VALUES = frozenset({"-1", "undefined"})
#: Count-column names that are older spellings of a ``sensor_description`` in the
#: locations file (same sensor, same place; the locations file names them in full).
NAME_ALIASES: dict[str, str] = {
    "Collins St (North)": "Collins Street (North)",
    "Lincoln-Swanston (W)": "Lincoln-Swanston (West)",
}
#: The orderings of a city's spaces that :func:`replay_plan` knows, preferred first.
ORDERINGS = ("expected_peak_persons", "capacity_persons")

_SOURCE = (
    "City of Melbourne Pedestrian Counting System, hourly counts January 2019 "
    "(data/crowd/PROVENANCE.md): Melbourne sensor {id} '{name}', re-mapped onto {city} "
    "by rank; not {city}'s own counts"
)


def slug(text: str) -> str:
    """Lower-case ASCII words joined by ``-``, for ids.

    Examples
    --------
    >>> slug("Bourke Street Mall (North)")
    'bourke-street-mall-north'
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def present_from_flow(flow_per_h: float, dwell_s: float) -> float:
    """People present in a space from the flow through it, by Little's law.

    Parameters
    ----------
    flow_per_h : float
        People passing per hour.
    dwell_s : float
        Mean time each spends in the space, in seconds.

    Returns
    -------
    float
        Mean number present: ``flow_per_h × dwell_s / 3600``.

    Examples
    --------
    >>> present_from_flow(1200, 300)
    100.0
    """
    return float(flow_per_h) * float(dwell_s) / 3600.0


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataSourceError(f"{path}: not found (see data/crowd/PROVENANCE.md)") from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"{path}: cannot read: {exc}") from exc


def _hours(raw: pd.DataFrame, path: Path) -> pd.Series:
    """The UTC start of each row's hour (``Date`` dd/mm/yyyy, ``Hour`` 0-23, local time)."""
    for column in ("Date", "Hour"):
        if column not in raw.columns:
            raise DataSourceError(f"{path}: no {column!r} column")
    day = pd.to_datetime(raw["Date"], format="%d/%m/%Y", errors="coerce")
    hour = pd.to_numeric(raw["Hour"], errors="coerce")
    bad = day.isna() | hour.isna() | ~hour.between(0, 23) | (hour % 1 != 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataSourceError(
            f"{path}, line {i + 2}: Date {raw['Date'].iloc[i]!r} / Hour {raw['Hour'].iloc[i]!r} "
            "is not dd/mm/yyyy and 0-23"
        )
    local = day + pd.to_timedelta(hour, unit="h")
    try:
        return local.dt.tz_localize(
            MELBOURNE_TZ, ambiguous="raise", nonexistent="raise"
        ).dt.tz_convert("UTC")
    except (ValueError, TypeError) as exc:  # pytz/zoneinfo ambiguous or missing hour
        raise DataSourceError(f"{path}: a local hour is ambiguous or missing: {exc}") from exc


def _long(raw: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The count cells as (sensor, row, count), missing values dropped; duplicate columns."""
    columns = [c for c in raw.columns if c not in {"Date", "Hour"}]
    duplicates: list[str] = []
    kept: list[str] = []
    seen: dict[tuple[str, ...], str] = {}
    for column in columns:
        key = tuple(raw[column].str.strip())
        if key in seen and not set(key) <= MISSING_VALUES:  # (empty columns are no defect)
            duplicates.append(f"{column!r} repeats {seen[key]!r} in every hour")
            continue
        seen.setdefault(key, column)
        kept.append(column)
    cells = raw[kept].melt(var_name="sensor", value_name="text", ignore_index=False)
    cells = cells[~cells["text"].str.strip().isin(MISSING_VALUES)]
    numbers = pd.to_numeric(cells["text"], errors="coerce")
    bad = numbers.isna() | (numbers < 0) | (numbers % 1 != 0)
    if bad.any():
        row, sensor = cells.index[bad.to_numpy()][0], cells["sensor"][bad].iloc[0]
        raise DataSourceError(
            f"{path}, line {row + 2}, column {sensor!r}: {cells['text'][bad].iloc[0]!r} is not "
            "a count (a non-negative integer, or -1 / undefined for none)"
        )
    cells = cells.assign(count=numbers.astype("int64")).drop(columns="text")
    return cells, duplicates


def melbourne_counts(data_dir: Path | None = None) -> pd.DataFrame:
    """The City of Melbourne hourly pedestrian counts of January 2019, in long form.

    Each count column of ``crowd/melbourne_pedestrian_counts_hourly_2019-01.csv`` is a
    sensor named by its description; ``Date`` and ``Hour`` are Melbourne local time and
    ``Hour`` h is the count of [h:00, h+1:00). Cells ``-1`` and ``undefined`` (no count)
    are dropped. Names are joined to ``sensor_description`` of the locations file, through
    :data:`NAME_ALIASES` for the two older spellings (``Collins St (North)``,
    ``Lincoln-Swanston (W)``); with them every column of this file matches, and any that
    does not keeps NA location and id and is listed in ``attrs["unmatched"]``. A column
    identical to an earlier one in every hour is an export defect and is dropped, listed in
    ``attrs["duplicates"]`` (here ``Bourke St - Spencer St (North)`` repeats
    ``Flinders St-Swanston St (West)``). Four columns have no count at all and so no rows
    (``Flagstaff Station``, ``Flinders St-Elizabeth St (East)``, ``City Square``,
    ``Elizabeth St-La Trobe St (East)``).

    Parameters
    ----------
    data_dir : Path or None
        The data folder holding ``crowd/``; the active one by default.

    Returns
    -------
    DataFrame
        ``sensor`` (the column name), ``melbourne_id`` (Int64), ``latitude``,
        ``longitude``, ``installed`` (the sensor's installation date, string),
        ``observed_at`` (start of the hour, UTC) and ``count`` (int64), sorted by time
        then sensor.

    Raises
    ------
    DataSourceError
        If a file is missing or a cell is neither a count nor a missing-value marker.

    Examples
    --------
    >>> counts = melbourne_counts()
    >>> row = counts[counts["sensor"] == "Town Hall (West)"].iloc[0]
    >>> str(row["observed_at"]), int(row["count"]), int(row["melbourne_id"])
    ('2018-12-31 13:00:00+00:00', 3025, 4)
    >>> counts.attrs["unmatched"]
    []
    """
    folder = active_data_dir(data_dir) / "crowd"
    path = folder / COUNTS_FILE
    raw = _read(path)
    when = _hours(raw, path)
    cells, duplicates = _long(raw, path)
    cells["observed_at"] = when.loc[cells.index].to_numpy()
    places = _read(folder / LOCATIONS_FILE).set_index("sensor_description")
    description = cells["sensor"].map(lambda name: NAME_ALIASES.get(name, name))
    joined = places.reindex(description.to_numpy())
    out = pd.DataFrame(
        {
            "sensor": cells["sensor"].astype("string").to_numpy(),
            "melbourne_id": pd.to_numeric(joined["sensor_id"], errors="coerce").astype("Int64"),
            "latitude": pd.to_numeric(joined["latitude"], errors="coerce").to_numpy(),
            "longitude": pd.to_numeric(joined["longitude"], errors="coerce").to_numpy(),
            "installed": joined["installation_date"].astype("string").to_numpy(),
            "observed_at": cells["observed_at"].to_numpy(),
            "count": cells["count"].to_numpy(),
        }
    )
    out["observed_at"] = pd.to_datetime(out["observed_at"], utc=True)
    out = out.sort_values(["observed_at", "sensor"], kind="stable").reset_index(drop=True)
    names = [c for c in raw.columns if c not in {"Date", "Hour"}]
    out.attrs["unmatched"] = sorted(n for n in names if NAME_ALIASES.get(n, n) not in places.index)
    out.attrs["duplicates"] = duplicates
    return out


def _ordering(spaces: pd.DataFrame, by: str | None) -> str:
    if by is not None:
        if by not in spaces.columns:
            raise ValidationError(f"replay plan: spaces have no {by!r} column to rank them by")
        return by
    for column in ORDERINGS:
        if column in spaces.columns:
            return column
    raise ValidationError(
        f"replay plan: spaces need one of {', '.join(ORDERINGS)} to rank them by their crowd "
        "(the space_metric layer of an analysed city has both)"
    )


def _ranked_sensors(counts: pd.DataFrame) -> pd.DataFrame:
    """Melbourne sensors by mean hourly count, highest first, ties by slug."""
    stats = counts.groupby("sensor", sort=True).agg(
        mean_count_per_h=("count", "mean"), melbourne_id=("melbourne_id", "first")
    )
    stats["slug"] = [slug(str(name)) for name in stats.index]
    if stats["slug"].duplicated().any():
        clash = stats.index[stats["slug"].duplicated(keep=False)].tolist()
        raise ValidationError(f"replay plan: sensor names {clash} give the same id")
    return stats.sort_values(["mean_count_per_h", "slug"], ascending=[False, True])


def _ranked_spaces(spaces: pd.DataFrame, column: str) -> pd.DataFrame:
    """Spaces by ``column``, highest first, unknown values last, ties by uid."""
    value = pd.to_numeric(spaces[column], errors="coerce").astype(float)
    order = pd.DataFrame({"value": value.to_numpy(), "uid": spaces.index.astype(str)})
    return order.assign(unknown=order["value"].isna()).sort_values(
        ["unknown", "value", "uid"], ascending=[True, False, True], kind="stable"
    )


def replay_plan(
    counts: pd.DataFrame,
    spaces: pd.DataFrame,
    *,
    city: str,
    by: str | None = None,
    dwell_s: float | None = None,
    data_dir: Path | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Which Melbourne sensor is replayed on which of a city's spaces: a fixed rule.

    Melbourne sensors are ranked by their mean hourly count (highest first, ties by name
    slug), the city's spaces by their expected crowd (highest first; unknown last; ties
    by uid), and paired rank to rank: the busiest footpath goes to the space expected to
    hold the most people. Each space gets at most one sensor; the spare sensors or spaces
    of the longer list are left out. The same inputs always give the same plan.

    Parameters
    ----------
    counts : DataFrame
        :func:`melbourne_counts`.
    spaces : DataFrame
        The city's spaces indexed by uid, e.g. its ``space_metric`` layer.
    city : str
        The city's slug (in the sensor ids and sources).
    by : str or None
        The column to rank spaces by; ``expected_peak_persons``, else ``capacity_persons``.
    dwell_s : float or None
        Mean dwell time (s) for Little's law; ``replay_dwell_time_s`` by default.
    data_dir : Path or None
        The data folder of the reference tables (the active one by default).

    Returns
    -------
    sensors : GeoDataFrame
        The replayed sensors, shaped like :func:`~geo_protect.live.sensors.read_sensor_file`:
        ids ``replay-{city}-{melbourne slug}``, kind ``area_counter``, installed at the
        first hour of the counts, no zone.
    mapping : DataFrame
        Indexed by sensor id: ``melbourne_sensor``, ``melbourne_id``,
        ``mean_count_per_h``, ``rank``, ``space_uid``, ``space_value`` (the ranking
        value), ``ranked_by`` and ``dwell_s``.

    Examples
    --------
    >>> spaces = pd.DataFrame({"expected_peak_persons": [50.0, 900.0]},
    ...                       index=["way/1", "way/2"])
    >>> sensors, mapping = replay_plan(melbourne_counts(), spaces, city="brasov")
    >>> mapping[["melbourne_sensor", "space_uid"]].to_dict("list")
    {'melbourne_sensor': ['Southbank', 'Town Hall (West)'], 'space_uid': ['way/2', 'way/1']}
    >>> sensors.index[0], sensors["kind"].iloc[0]
    ('replay-brasov-southbank', 'area_counter')
    """
    column = _ordering(spaces, by)
    dwell = parameter("replay_dwell_time_s", data_dir) if dwell_s is None else float(dwell_s)
    if not (math.isfinite(dwell) and dwell > 0):
        raise ValidationError(f"replay plan: dwell time must be positive seconds, got {dwell}")
    stats, order = _ranked_sensors(counts), _ranked_spaces(spaces, column)
    n = min(len(stats), len(order))
    ids = [f"replay-{city}-{s}" for s in stats["slug"].iloc[:n]]
    mapping = pd.DataFrame(
        {
            "melbourne_sensor": stats.index[:n].astype(str),
            "melbourne_id": stats["melbourne_id"].iloc[:n].astype("Int64").to_numpy(),
            "mean_count_per_h": stats["mean_count_per_h"].iloc[:n].to_numpy(dtype=float),
            "rank": np.arange(1, n + 1),
            "space_uid": order["uid"].iloc[:n].to_numpy(),
            "space_value": order["value"].iloc[:n].to_numpy(),
            "ranked_by": column,
            "dwell_s": dwell,
        },
        index=pd.Index(ids, dtype="string", name="sensor_id"),
    )
    return _replay_sensors(mapping, counts, city), mapping


def _replay_sensors(mapping: pd.DataFrame, counts: pd.DataFrame, city: str) -> gpd.GeoDataFrame:
    first = counts["observed_at"].min() if len(counts) else pd.Timestamp(0, tz="UTC")
    records = [
        {
            "sensor_id": sid,
            "space_uid": row.space_uid,
            "kind": "area_counter",
            "name": f"{row.melbourne_sensor} (Melbourne counts, replayed)",
            "area_m2": math.nan,
            "exit_width_m": math.nan,
            "installed_at": first,
            "source": _SOURCE.format(
                id="NA" if pd.isna(row.melbourne_id) else row.melbourne_id,
                name=row.melbourne_sensor,
                city=city,
            ),
        }
        for sid, row in zip(mapping.index, mapping.itertuples(index=False), strict=True)
    ]
    return sensor_frame(records)


def replay_readings(
    counts: pd.DataFrame, mapping: pd.DataFrame, *, start: dt.datetime, speed: float
) -> Iterator[tuple[float, list[dict[str, Any]]]]:
    """The replay: one batch of readings per source hour, time-compressed.

    Source hour k (``elapsed`` seconds after the first hour of the counts) is due
    ``elapsed / speed`` seconds after the replay starts, and its readings are stamped
    ``start + elapsed / speed``: the moment it is due. A sender that starts at ``start``
    and sends each batch no earlier than it is due never sends a reading from its future,
    so :func:`~geo_protect.live.readings.validate_batch` accepts it; the first hour is
    stamped ``start``. ``speed=600`` plays one source hour every 6 s (a month in 74 min).

    Parameters
    ----------
    counts : DataFrame
        :func:`melbourne_counts`.
    mapping : DataFrame
        The mapping of :func:`replay_plan`.
    start : datetime
        When the replay starts (time-zone aware), after the sensors' ``installed_at``.
    speed : float
        Time compression: source seconds per replay second (> 0).

    Yields
    ------
    tuple of (float, list of dict)
        Seconds after the start at which the batch is due, and the batch: per mapped
        sensor with a count that hour, in sensor-id order, ``{"sensor_id",
        "observed_at" (ISO 8601, UTC), "present"}``, ``present`` being
        :func:`present_from_flow` of the hour's count, rounded half up to a whole person.
        Hours without a count of any mapped sensor yield no batch.

    Examples
    --------
    >>> import datetime as dt
    >>> counts = melbourne_counts()
    >>> spaces = pd.DataFrame({"capacity_persons": [500.0]}, index=["way/1"])
    >>> _, mapping = replay_plan(counts, spaces, city="brasov", dwell_s=300)
    >>> start = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
    >>> replay = replay_readings(counts, mapping, start=start, speed=600)
    >>> next(replay)
    (0.0, [{'sensor_id': 'replay-brasov-southbank', 'observed_at': '2026-05-01T08:00:00+00:00', \
'present': 234}])
    >>> wait, batch = next(replay)
    >>> wait, batch[0]["observed_at"]
    (6.0, '2026-05-01T08:00:06+00:00')
    """
    if not (math.isfinite(speed) and speed > 0):
        raise ValidationError(f"replay: speed must be a positive number, got {speed}")
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValidationError("replay: start must be time-zone aware")
    start_utc = start.astimezone(dt.UTC)
    sensor_of = dict(zip(mapping["melbourne_sensor"], mapping.index, strict=True))
    dwell_of = dict(zip(mapping.index, mapping["dwell_s"].astype(float), strict=True))
    rows = counts[counts["sensor"].isin(list(sensor_of))]
    if rows.empty:
        return
    t0 = rows["observed_at"].min()
    for hour, group in rows.groupby("observed_at", sort=True):
        delay = (pd.Timestamp(hour) - t0).total_seconds() / speed
        stamp = (start_utc + dt.timedelta(seconds=delay)).isoformat()
        batch = [
            {
                "sensor_id": sid,
                "observed_at": stamp,
                "present": math.floor(present_from_flow(count, dwell_of[sid]) + 0.5),
            }
            for sid, count in sorted(
                (str(sensor_of[name]), int(c))
                for name, c in zip(group["sensor"], group["count"], strict=True)
            )
        ]
        yield delay, batch
