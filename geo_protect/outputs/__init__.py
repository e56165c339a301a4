"""Outputs for people: interactive maps, cross-city comparison, exports, site reports.

:mod:`.maps` (one offline Leaflet map per city and an index page), :mod:`.comparison`
(ranking, then charts and an HTML report), :mod:`.exports` (GeoJSON, GeoPackage, CSV) and
:mod:`.site_reports` (a printable page per assessed site).
"""
