"""Crowd capacity (brief §3.3 worked example), level of service and live density alerts."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_protect.analysis.crowd import capacity, level_of_service, usable_area
from geo_protect.errors import ConfigError, ValidationError
from geo_protect.live.density import alert_band, exit_flow_alert, live_density, rate_alert
from geo_protect.schema import WGS84, conform

#: UTM 35N, near its central meridian: metres on the ground.
CRS = "EPSG:32635"
X0, Y0 = 500_000.0, 5_050_000.0


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A rectangle in metres from the test origin."""
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def layer(
    name: str, uid: str, kind: str, geom: shapely.Polygon, **extra: object
) -> gpd.GeoDataFrame:
    """A one-row conformed WGS84 layer from a metric geometry."""
    index = pd.Index([uid], name="uid")
    frame = gpd.GeoDataFrame(
        {
            "osm_type": pd.array(["way"], dtype="string"),
            "osm_id": pd.array([1], dtype="Int64"),
            "name": [uid],
            "kind": [kind],
            "tags": ["{}"],
            "source": ["test"],
            "data_date": [None],
            **{k: [v] for k, v in extra.items()},
        },
        geometry=gpd.GeoSeries([geom], crs=CRS, index=index),
        index=index,
    )
    return conform(name, frame.to_crs(WGS84))


# 40 m × 100 m = 4,000 m² with an 800 m² building inside → 3,200 m² usable
SQUARE = layer("public_space", "sq", "square", box(0, 0, 40, 100))
BUILDING = layer("building", "b", "yes", box(0, 0, 20, 40), levels=np.nan)


def _exits(*widths: float) -> pd.DataFrame:
    n = len(widths)
    return pd.DataFrame(
        {
            "space_uid": ["sq"] * n,
            "networks": ["walk"] * n,
            "kind": ["crossing"] * n,
            "width_m": list(widths),
        }
    )


def test_usable_area_subtracts_buildings_once() -> None:
    twice = pd.concat([BUILDING, BUILDING.rename(index={"b": "b2"})])
    assert usable_area(SQUARE, buildings=twice, crs=CRS).loc["sq"] == pytest.approx(3_200)


def test_capacity_worked_example_is_density_limited() -> None:
    # brief §3.3: min(3,200 × 2, (5 − 1) × 4 m × 82 × 8 min) = min(6,400, 10,496)
    row = capacity(SQUARE, _exits(4, 4, 4, 4, 4), buildings=BUILDING, crs=CRS).loc["sq"]
    assert row["capacity_density"] == pytest.approx(6_400)
    assert row["capacity_egress"] == pytest.approx(10_496)
    assert row["capacity_persons"] == pytest.approx(6_400)
    assert row["limited_by"] == "density"
    assert row["los"] == "D"  # 0.5 m²/person standing: HCM queuing D (0.3–0.6)


def test_capacity_egress_limited_and_narrow_openings_do_not_count() -> None:
    # exits 3, 2, 1 m and a 1.0 m gap (< 1.05 m): (3 + 2 + 1 − 3) m... the largest (3) is
    # discounted: 3 m × 82 × 8 = 1,968 < 6,400
    row = capacity(SQUARE, _exits(3, 2, 1.05, 1.0), buildings=BUILDING, crs=CRS).loc["sq"]
    assert row["n_exits"] == 3
    assert row["capacity_egress"] == pytest.approx(3.05 * 82 * 8)
    assert row["capacity_persons"] == pytest.approx(3.05 * 82 * 8)
    assert row["limited_by"] == "egress"


def test_capacity_by_profile_and_without_exits() -> None:
    peak = capacity(SQUARE, None, profile="peak", buildings=BUILDING, crs=CRS).loc["sq"]
    assert peak["capacity_persons"] == pytest.approx(3_200 * 0.7)
    assert np.isnan(peak["capacity_egress"]) and peak["limited_by"] == "density"
    with pytest.raises(ConfigError, match="no profile 'rave'"):
        capacity(SQUARE, None, profile="rave", crs=CRS)


def test_level_of_service_bounds() -> None:
    d = pd.Series([0.1, 0.2, 0.5, 2.0, 4.0, 6.0])
    assert level_of_service(d, "moving").tolist() == ["A", "B", "D", "F", "F", "F"]
    assert level_of_service(d, "standing").tolist() == ["A", "A", "A", "D", "E", "F"]


def test_alert_bands_and_design_density_rule() -> None:
    d = pd.Series([1.9, 2.0, 3.6, 5.0])
    assert alert_band(d, "standing").tolist() == ["green", "amber", "red", "critical"]
    assert alert_band(d, "moving").tolist() == ["amber", "red", "red", "critical"]
    # a standing zone designed for 2 p/m² is critical above 2.5 p/m²
    assert alert_band(pd.Series([2.6]), "standing", design=pd.Series([2.0])).tolist() == [
        "critical"
    ]


MELBOURNE = (
    Path(__file__).resolve().parent.parent
    / "data/crowd/melbourne_pedestrian_counts_hourly_2019-01.csv"
)


def test_live_density_on_real_melbourne_counts() -> None:
    """Real hourly counts from Melbourne (NOT one of our cities: the only open pedestrian
    counts found, data/crowd/PROVENANCE.md). Zone areas, dwell and transit times are
    ASSUMED here to turn hourly pass-by counts into persons present (Little's law N = λ·T)."""
    counts = pd.read_csv(MELBOURNE)
    mall = counts.loc[
        (counts["Date"] == "11/01/2019") & (counts["Hour"] == 17), "Bourke Street Mall (North)"
    ]
    under = counts.loc[
        (counts["Date"] == "01/01/2019") & (counts["Hour"] == 14),
        "Flinders Street Station Underpass",
    ]
    # the mall's busiest hour of the month (3891: `grep '^11/01/2019,17,'` on the CSV)
    assert int(mall.iloc[0]) == counts["Bourke Street Mall (North)"].max() == 3891
    present = pd.Series(
        {
            "mall": mall.iloc[0] * 5 / 60,  # assumed 5 min dwell in a standing zone
            "underpass": under.iloc[0] * 1 / 60,  # assumed 1 min transit of a walkway
        }
    )
    zones = gpd.GeoDataFrame(
        {"area_type": ["standing", "moving"], "area_m2": [200.0, 150.0]},  # assumed areas
        geometry=[shapely.box(0, 0, 10, 20), shapely.box(0, 0, 5, 30)],
        index=["mall", "underpass"],
        crs=CRS,
    )
    live = live_density(present, zones)
    assert live.loc["mall", "density_p_m2"] == pytest.approx(3891 * 5 / 60 / 200)  # 1.62
    # mall 1 / 1.62 = 0.62 m²/person: queuing C (0.6–0.9); underpass 1714 / 60 / 150 =
    # 0.19 p/m², 5.25 m²/person: walkway B (3.7–5.6)
    assert live.loc["underpass", "density_p_m2"] == pytest.approx(under.iloc[0] / 60 / 150)
    assert live["los"].tolist() == ["C", "B"]
    assert live["alert"].tolist() == ["green", "green"]
    # the mall from 16:00 to 17:00 that day, as if read 5 minutes apart
    before = counts.loc[
        (counts["Date"] == "11/01/2019") & (counts["Hour"] == 16), "Bourke Street Mall (North)"
    ]
    prev = pd.Series(
        {"mall": before.iloc[0] * 5 / 60 / 200, "underpass": live.loc["underpass", "density_p_m2"]}
    )
    rise = live.loc["mall", "density_p_m2"] - prev["mall"]
    assert rate_alert(prev, live["density_p_m2"], 5).tolist() == [bool(rise > 0.5), False]


def test_rate_alert_threshold_and_bad_input() -> None:
    prev = pd.Series({"a": 1.0, "b": 1.0, "c": np.nan})
    now = pd.Series({"a": 1.6, "b": 1.4, "c": 3.0})
    assert rate_alert(prev, now, 5).tolist() == [True, False, False]
    assert rate_alert(prev, now, 10).tolist() == [False, False, False]  # 0.3 per 5 min
    with pytest.raises(ValidationError, match="positive"):
        rate_alert(prev, now, 0)


def test_exit_flow_alert_against_green_guide_limits() -> None:
    counts = pd.Series([300.0, 300.0, 280.0, 50.0], index=["a", "b", "c", "d"])
    widths = pd.Series([4.0, 4.0, 4.0, 0.0], index=counts.index)
    kinds = pd.Series(["level", "stepped", "stepped_alcohol", "level"], index=counts.index)
    out = exit_flow_alert(counts, widths, exit_type=kinds)
    # 300 p/min over 4 m = 75 p/min/m: under 82 (level), over 66 (stepped); 70 > 56
    assert out["flow_p_min_m"].tolist()[:3] == [75.0, 75.0, 70.0]
    assert out["limit_p_min_m"].tolist() == [82.0, 66.0, 56.0, 82.0]
    assert out["flow_alert"].tolist() == [False, True, True, False]  # no width, no alert
    with pytest.raises(ValidationError, match="unknown exit type"):
        exit_flow_alert(counts, widths, exit_type="ramp")
