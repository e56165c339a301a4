"""OpenStreetMap in: read extracts and registers, classify tags, derive spaces, ingest a city.

Data path: :mod:`.readers` (PBF/XML, Overpass JSON, GraphML, GeoJSON) and
:mod:`.overpass` → one *elements* frame (:mod:`.elements`) → :mod:`.taxonomy` (tag values
read by :mod:`.tags`) and :mod:`.derived_spaces` → the source layers of
:mod:`geo_protect.schema`, merged with a city's own register (:mod:`.register`) and
clipped to its study area (:mod:`.study_area`) by :func:`.ingest.ingest_city`.
"""
