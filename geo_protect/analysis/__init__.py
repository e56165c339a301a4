"""Analysis of a city's source layers: networks, barriers, entries, vehicles, crowds.

Data path: :mod:`.network` (noded walk and hostile-vehicle networks, closed by
:mod:`.barriers`) → :mod:`.entries` (:mod:`.crossings`, :mod:`.frontage`) →
:mod:`.approach` (attainable impact speed per :mod:`.vehicles` class) and :mod:`.crowd`
(static capacity) → :mod:`.space_metrics`; :func:`.city.analyse_city` runs them in order.
"""
