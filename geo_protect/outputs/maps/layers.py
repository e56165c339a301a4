"""The folium layers of a risk map, one builder per map layer (used by :mod:`.city_map`).

The builders live in :mod:`.analysis_layers` (public spaces, crowd capacity, approach
paths, entry points) and :mod:`.context_layers` (basemap, barriers, surveillance, crowded
places), on the shared helpers of :mod:`.display`; this module gathers them under one name.
"""

from __future__ import annotations

from geo_protect.outputs.maps.analysis_layers import (
    approach_layer,
    arrowheads,
    crowd_layer,
    entry_layer,
    space_layer,
)
from geo_protect.outputs.maps.context_layers import (
    barrier_layer,
    basemap_layers,
    poi_layer,
    surveillance_layer,
)
from geo_protect.outputs.maps.display import DisplayOptions, optional_layer

__all__ = [
    "DisplayOptions",
    "approach_layer",
    "arrowheads",
    "barrier_layer",
    "basemap_layers",
    "crowd_layer",
    "entry_layer",
    "optional_layer",
    "poi_layer",
    "space_layer",
    "surveillance_layer",
]
