"""The Melbourne replay: the loader against hand counts, the mapping, Little's law, timing.

Hand counts read ``data/crowd/`` with the :mod:`csv` module, independently of pandas.
"""

from __future__ import annotations

import csv
import datetime as dt
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from pandas.testing import assert_frame_equal

from geo_protect.cities import get_city
from geo_protect.errors import DataSourceError, ValidationError
from geo_protect.live.readings import validate_batch
from geo_protect.live.replay import (
    COUNTS_FILE,
    LOCATIONS_FILE,
    melbourne_counts,
    present_from_flow,
    replay_plan,
    replay_readings,
)
from geo_protect.live.sensors import SENSOR_COLUMNS, read_sensor_file, sensor_infos
from geo_protect.reference import DEFAULT_DATA_DIR, parameter, table

CROWD = DEFAULT_DATA_DIR / "crowd"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with (CROWD / COUNTS_FILE).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    return melbourne_counts()


def valid(cells: list[str]) -> list[int]:
    return [int(c) for c in cells if c not in {"-1", "undefined"}]


def spaces_frame(values: dict[str, float], column: str = "expected_peak_persons") -> pd.DataFrame:
    return pd.DataFrame({column: list(values.values())}, index=list(values))


# -- the loader -----------------------------------------------------------------------------


def test_valid_cells_of_one_column_match_a_hand_count(
    rows: list[dict[str, str]], counts: pd.DataFrame
) -> None:
    # Birrarung Marr has 416 hours marked -1 out of 744
    cells = [r["Birrarung Marr"] for r in rows]
    assert len(cells) == 744 and cells.count("-1") == 416
    mine = counts[counts["sensor"] == "Birrarung Marr"]
    assert len(mine) == 744 - 416 == len(valid(cells))
    assert mine["count"].sum() == sum(valid(cells))
    # City Square is "undefined" in every hour: no rows
    assert {r["City Square"] for r in rows} == {"undefined"}
    assert not (counts["sensor"] == "City Square").any()
    assert (counts["count"] >= 0).all()


def test_a_specific_cell_and_its_time_in_utc(
    rows: list[dict[str, str]], counts: pd.DataFrame
) -> None:
    (row,) = [r for r in rows if r["Date"] == "15/01/2019" and r["Hour"] == "17"]
    expected = int(row["Bourke Street Mall (North)"])
    # 17:00 on 15 January in Melbourne is AEDT, UTC+11: 06:00 UTC
    at = pd.Timestamp("2019-01-15T06:00:00Z")
    hit = counts[(counts["sensor"] == "Bourke Street Mall (North)") & (counts["observed_at"] == at)]
    assert hit["count"].tolist() == [expected]
    assert counts["observed_at"].min() == pd.Timestamp("2018-12-31T13:00:00Z")  # 1 Jan 00:00
    assert counts["observed_at"].max() == pd.Timestamp("2019-01-31T12:00:00Z")  # 31 Jan 23:00


def test_total_rows_match_the_hand_count_less_the_duplicate_column(
    rows: list[dict[str, str]], counts: pd.DataFrame
) -> None:
    names = [c for c in rows[0] if c not in {"Date", "Hour"}]
    by_hand = {name: valid([r[name] for r in rows]) for name in names}
    # two sensors km apart cannot count the same people every hour: an export defect
    assert by_hand["Bourke St - Spencer St (North)"] == by_hand["Flinders St-Swanston St (West)"]
    assert counts.attrs["duplicates"] == [
        "'Bourke St - Spencer St (North)' repeats 'Flinders St-Swanston St (West)' in every hour"
    ]
    kept = {n: v for n, v in by_hand.items() if n != "Bourke St - Spencer St (North)"}
    assert len(counts) == sum(len(v) for v in kept.values())
    assert set(counts["sensor"]) == {n for n, v in kept.items() if v}
    assert counts.groupby("sensor")["count"].sum().to_dict() == {
        n: sum(v) for n, v in kept.items() if v
    }


def test_join_to_the_locations_file(counts: pd.DataFrame) -> None:
    with (CROWD / LOCATIONS_FILE).open(encoding="utf-8", newline="") as f:
        places = {r["sensor_description"]: r for r in csv.DictReader(f)}
    first = counts.drop_duplicates("sensor").set_index("sensor")
    town_hall = places["Town Hall (West)"]
    assert first.loc["Town Hall (West)", "melbourne_id"] == int(town_hall["sensor_id"])
    assert first.loc["Town Hall (West)", "latitude"] == float(town_hall["latitude"])
    # the older spellings of the counts file reach their sensors through the aliases
    assert "Collins St (North)" not in places
    assert first.loc["Collins St (North)", "melbourne_id"] == int(
        places["Collins Street (North)"]["sensor_id"]
    )
    assert first.loc["Lincoln-Swanston (W)", "longitude"] == float(
        places["Lincoln-Swanston (West)"]["longitude"]
    )
    assert counts.attrs["unmatched"] == []
    assert counts["melbourne_id"].notna().all()


def test_loader_errors_name_file_line_and_column(tmp_path: Path) -> None:
    crowd = tmp_path / "crowd"
    crowd.mkdir()
    with pytest.raises(DataSourceError, match="not found"):
        melbourne_counts(tmp_path)
    (crowd / LOCATIONS_FILE).write_bytes((CROWD / LOCATIONS_FILE).read_bytes())
    (crowd / COUNTS_FILE).write_text("Date,Hour,Princes Bridge\n01/01/2019,0,12\n01/01/2019,1,x\n")
    with pytest.raises(DataSourceError, match=r"line 3, column 'Princes Bridge': 'x' is not a co"):
        melbourne_counts(tmp_path)
    (crowd / COUNTS_FILE).write_text("Date,Hour,Princes Bridge\n2019-01-01,0,12\n")
    with pytest.raises(DataSourceError, match=r"line 2: Date '2019-01-01' / Hour '0' is not"):
        melbourne_counts(tmp_path)
    (crowd / COUNTS_FILE).write_text("Date,Hour,Nowhere St\n01/01/2019,0,12\n01/01/2019,1,-1\n")
    small = melbourne_counts(tmp_path)
    assert small["count"].tolist() == [12] and small.attrs["unmatched"] == ["Nowhere St"]
    assert small["melbourne_id"].isna().all()


# -- Little's law ---------------------------------------------------------------------------


def test_littles_law_by_hand() -> None:
    # 1,200 people an hour, each staying 300 s: 1200 x 300 / 3600 = 100 present
    assert present_from_flow(1200, 300) == 100.0
    assert present_from_flow(3600, 1) == 1.0
    row = table("parameters").set_index("name").loc["replay_dwell_time_s"]
    assert row["confidence"] == "I" and "Little's law" in row["source"]
    assert parameter("replay_dwell_time_s") == 300


def test_replayed_present_is_littles_law_of_the_hour(counts: pd.DataFrame) -> None:
    mine = pd.DataFrame(
        {
            "sensor": ["A", "A", "B"],
            "melbourne_id": pd.array([1, 1, 2], dtype="Int64"),
            "observed_at": pd.to_datetime(
                ["2019-01-01T00:00Z", "2019-01-01T01:00Z", "2019-01-01T01:00Z"], utc=True
            ),
            "count": [1200, 2802, 6],
        }
    )
    _, mapping = replay_plan(mine, spaces_frame({"way/1": 9.0, "way/2": 1.0}), city="x")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    batches = list(replay_readings(mine, mapping, start=start, speed=3600))
    assert batches == [
        (0.0, [{"sensor_id": "replay-x-a", "observed_at": "2026-01-01T00:00:00+00:00",
                "present": 100}]),
        (1.0, [
            # 2802 x 300 / 3600 = 233.5, rounded half up; 6 x 300 / 3600 = 0.5 -> 1
            {"sensor_id": "replay-x-a", "observed_at": "2026-01-01T00:00:01+00:00",
             "present": 234},
            {"sensor_id": "replay-x-b", "observed_at": "2026-01-01T00:00:01+00:00",
             "present": 1},
        ]),
    ]  # fmt: skip


# -- the mapping ----------------------------------------------------------------------------


def test_mapping_pairs_rank_to_rank_one_sensor_per_space(counts: pd.DataFrame) -> None:
    values = {f"way/{i:02d}": float(100 * i) for i in range(60)}
    spaces = spaces_frame(values)
    sensors, mapping = replay_plan(counts, spaces, city="brasov")
    means = counts.groupby("sensor")["count"].mean().sort_values(ascending=False)
    assert len(mapping) == len(means) == 52  # sensors with any count; 8 spaces go without
    assert mapping["space_uid"].is_unique
    assert mapping["melbourne_sensor"].tolist() == means.index.tolist()
    # the busiest footpath on the space expected to hold the most people
    assert mapping["space_uid"].tolist() == [f"way/{i:02d}" for i in range(59, 7, -1)]
    assert mapping.iloc[0]["melbourne_sensor"] == "Southbank"
    assert mapping.iloc[0]["mean_count_per_h"] == pytest.approx(means["Southbank"])
    assert mapping["rank"].tolist() == list(range(1, 53))
    assert set(mapping["ranked_by"]) == {"expected_peak_persons"}
    assert list(sensors.index) == list(mapping.index)
    assert mapping.index[0] == "replay-brasov-southbank"
    assert "replay-brasov-flinders-street-station-underpass" in mapping.index


def test_mapping_is_deterministic_and_ties_break_by_id(counts: pd.DataFrame) -> None:
    # equal values, given in shuffled order, and an unknown value (ranked last)
    values = {"way/c": 5.0, "way/a": 5.0, "node/z": float("nan"), "way/b": 5.0, "way/d": 7.0}
    one = replay_plan(counts, spaces_frame(values), city="eindhoven")
    shuffled = spaces_frame(dict(reversed(list(values.items()))))
    two = replay_plan(counts, shuffled, city="eindhoven")
    assert_frame_equal(one[1], two[1])
    assert_frame_equal(pd.DataFrame(one[0]), pd.DataFrame(two[0]))
    assert one[1]["space_uid"].tolist() == ["way/d", "way/a", "way/b", "way/c", "node/z"]
    # capacity_persons is the fall-back ordering; an explicit column wins
    alt = replay_plan(counts, spaces_frame(values, "capacity_persons"), city="e")[1]
    assert set(alt["ranked_by"]) == {"capacity_persons"}
    with pytest.raises(ValidationError, match="one of expected_peak_persons, capacity_persons"):
        replay_plan(counts, pd.DataFrame({"area_m2": [1.0]}, index=["way/1"]), city="e")
    with pytest.raises(ValidationError, match="no 'crowd' column"):
        replay_plan(counts, spaces_frame(values), city="e", by="crowd")


def test_replayed_sensors_say_they_are_melbournes_and_fit_read_sensor_file(
    counts: pd.DataFrame, tmp_path: Path
) -> None:
    values = {"way/1": 900.0, "way/2": 50.0}
    sensors, _ = replay_plan(counts, spaces_frame(values), city="brasov")
    assert list(sensors.columns) == [*SENSOR_COLUMNS, "geometry"]
    assert {c: str(sensors[c].dtype) for c in SENSOR_COLUMNS} == SENSOR_COLUMNS
    assert sensors.index.name == "sensor_id" and sensors.crs == "EPSG:4326"
    assert set(sensors["kind"]) == {"area_counter"}
    top = sensors.loc["replay-brasov-southbank"]
    assert top["name"] == "Southbank (Melbourne counts, replayed)"
    assert "City of Melbourne Pedestrian Counting System" in top["source"]
    assert "re-mapped onto brasov" in top["source"] and "not brasov's own counts" in top["source"]
    assert top["installed_at"] == counts["observed_at"].min()
    # written as a sensor file and read back, the same table (the source aside)
    path = tmp_path / "replay.csv"
    pd.DataFrame(
        {
            "sensor_id": sensors.index,
            "kind": sensors["kind"],
            "space_uid": sensors["space_uid"],
            "name": sensors["name"],
            "installed_at": [t.isoformat() for t in sensors["installed_at"]],
        }
    ).to_csv(path, index=False)
    polygons = gpd.GeoDataFrame(
        geometry=[
            shapely.box(25.58, 45.64, 25.59, 45.645),
            shapely.box(25.6, 45.64, 25.61, 45.645),
        ],
        index=pd.Index(list(values), name="uid"),
        crs="EPSG:4326",
    )
    back = read_sensor_file(path, city=get_city("brasov"), spaces=polygons)
    assert_frame_equal(
        pd.DataFrame(back.drop(columns="source")), pd.DataFrame(sensors.drop(columns="source"))
    )


# -- the replay's timing --------------------------------------------------------------------


def test_replay_is_rebased_and_compressed(counts: pd.DataFrame) -> None:
    spaces = spaces_frame({"way/1": 900.0, "way/2": 50.0, "way/3": 10.0})
    _, mapping = replay_plan(counts, spaces, city="brasov")
    start = dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    batches = list(replay_readings(counts, mapping, start=start, speed=600))
    hours = sorted(
        set(counts.loc[counts["sensor"].isin(mapping["melbourne_sensor"]), "observed_at"])
    )
    assert len(batches) == len(hours) == 744
    assert [wait for wait, _ in batches[:3]] == [0.0, 6.0, 12.0]  # one source hour per 6 s
    assert batches[-1][0] == 743 * 6.0
    assert {r["observed_at"] for r in batches[0][1]} == {"2026-05-01T07:00:00+00:00"}
    assert {r["observed_at"] for r in batches[1][1]} == {"2026-05-01T07:00:06+00:00"}
    # every batch is valid the moment it is due, with no clock skew allowed
    infos = sensor_infos(replay_plan(counts, spaces, city="brasov")[0])
    for wait, batch in batches:
        now = start + dt.timedelta(seconds=wait)
        assert len(validate_batch(batch, infos, now=now, max_items=100, future_skew_s=0)) == len(
            batch
        )
    with pytest.raises(ValidationError, match="speed must be a positive number"):
        next(replay_readings(counts, mapping, start=start, speed=0))
    with pytest.raises(ValidationError, match="time-zone aware"):
        next(replay_readings(counts, mapping, start=dt.datetime(2026, 5, 1), speed=600))


def test_a_real_time_replay_never_sends_from_the_future(counts: pd.DataFrame) -> None:
    _, mapping = replay_plan(counts, spaces_frame({"way/1": 1.0}), city="brasov")
    sensors = replay_plan(counts, spaces_frame({"way/1": 1.0}), city="brasov")[0]
    infos = sensor_infos(sensors)
    speed = 3600 * 50  # one source hour every 20 ms
    start = dt.datetime.now(dt.UTC)
    sent = 0
    for wait, batch in replay_readings(counts, mapping, start=start, speed=speed):
        delay = start.timestamp() + wait - time.time()
        if delay > 0:
            time.sleep(delay)
        now = dt.datetime.now(dt.UTC)
        validate_batch(batch, infos, now=now, max_items=10, future_skew_s=0)
        sent += 1
        if sent == 5:
            break
    assert sent == 5
