"""Labels a person can place for every public space, named or not.

A named space is labelled with its name. An unnamed one takes its kind and the nearest
named street within ``label_search/street`` metres of its outline (``park by Strada
Lungă``), else the nearest named POI or landmark within ``label_search/poi`` metres
(``park near Biserica Neagră``), else just its kind (``unnamed park``). The OSM id is
never part of the label: every output shows it next to the label, so the label helps a
person find the place and the id says exactly which feature it is.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.errors import AnalysisError
from geo_protect.reference import table

__all__ = ["space_labels"]


def space_labels(
    spaces: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame | None = None,
    pois: gpd.GeoDataFrame | None = None,
    *,
    crs: str | None = None,
    search: pd.DataFrame | None = None,
) -> pd.Series:
    """A label per space: its name, else ``"<kind> by <street>"`` or ``"<kind> near <POI>"``.

    Parameters
    ----------
    spaces : GeoDataFrame
        The ``public_space`` layer (``name`` and ``kind`` columns).
    streets, pois : GeoDataFrame, optional
        The ``street`` and ``poi`` layers; only their features with a name are used.
    crs : str, optional
        Metric CRS for the distances; ``spaces.crs`` when it is already metric.
    search : DataFrame, optional
        ``feature, max_distance_m, wording``; the ``label_search`` table by default.

    Returns
    -------
    Series
        ``label`` (string dtype), indexed like ``spaces``. Ties in distance go to the
        feature that comes first in its layer, so the label is stable between runs.

    Examples
    --------
    >>> sp = gpd.GeoDataFrame({"name": [None, "Piața Sfatului"], "kind": ["park", "square"]},
    ...     geometry=[shapely.box(0, 0, 50, 50), shapely.box(500, 0, 550, 50)],
    ...     crs="EPSG:32635")
    >>> st = gpd.GeoDataFrame({"name": ["Strada Lungă", None]},
    ...     geometry=[shapely.LineString([(60, -10), (60, 60)]),
    ...               shapely.LineString([(52, -10), (52, 60)])], crs="EPSG:32635")
    >>> space_labels(sp, st).tolist()
    ['park by Strada Lungă', 'Piața Sfatului']
    """
    metric = spaces if crs is None else spaces.to_crs(crs)
    if metric.crs is None or not metric.crs.is_projected:
        raise AnalysisError(f"space labels: CRS {metric.crs} is not metric; pass crs=")
    ref = (table("label_search") if search is None else search).set_index("feature")
    name = _names(spaces)
    kind = spaces["kind"].astype("string").fillna("space").str.replace("_", " ", regex=False)
    label = pd.Series(name.to_numpy(dtype=object), index=spaces.index)
    todo = name.isna().to_numpy(dtype=bool).copy()
    geoms = metric.geometry.to_numpy()
    for feature, layer in (("street", streets), ("poi", pois)):
        if not todo.any() or layer is None or layer.empty or feature not in ref.index:
            continue
        found = _nearest_name(
            geoms[todo], layer, metric.crs, float(ref.at[feature, "max_distance_m"])
        )
        hit = pd.notna(found)
        where = np.flatnonzero(todo)[hit]
        wording = str(ref.at[feature, "wording"])
        label.iloc[where] = (kind.iloc[where] + f" {wording} " + found[hit].astype(str)).to_numpy()
        todo[where] = False
    label.iloc[np.flatnonzero(todo)] = ("unnamed " + kind.iloc[np.flatnonzero(todo)]).to_numpy()
    return pd.Series(
        pd.array(label.to_numpy(dtype=object), dtype="string"), index=spaces.index, name="label"
    )


def _names(frame: gpd.GeoDataFrame) -> pd.Series:
    """Names with blanks as NA."""
    if "name" not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    name = frame["name"].astype("string").str.strip()
    return name.mask(name == "")


def _nearest_name(
    geoms: np.ndarray, layer: gpd.GeoDataFrame, crs: object, max_m: float
) -> np.ndarray:
    """Per geometry: the name of the nearest named feature within ``max_m`` (else None)."""
    names = _names(layer)
    named = layer[names.notna().to_numpy()]
    out = np.full(len(geoms), None, dtype=object)
    if named.empty:
        return out
    feat = named.to_crs(crs).geometry.to_numpy()
    text = _names(named).to_numpy(dtype=object)
    (gi, fi), dist = shapely.STRtree(feat).query_nearest(
        geoms, max_distance=max_m, return_distance=True, all_matches=True
    )
    if len(gi) == 0:
        return out
    pick = pd.DataFrame({"g": gi, "f": fi, "d": dist}).sort_values(["g", "d", "f"], kind="stable")
    first = pick.drop_duplicates("g")
    out[first["g"].to_numpy()] = text[first["f"].to_numpy()]
    return out
