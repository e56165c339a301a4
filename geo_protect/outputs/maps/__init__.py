"""Offline interactive risk maps: one per city (:mod:`.city_map`) and an index page.

:mod:`.layers` builds each folium layer, :mod:`.style` holds colours and the map chrome,
:mod:`.compact` the compact geometry encoding, :mod:`.assets` the vendored Leaflet files.
"""
