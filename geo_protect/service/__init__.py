"""The live control-room service: a thin FastAPI surface over :mod:`geo_protect.live`.

Run it with ``geo-protect serve``. :mod:`.app` builds the application, :mod:`.runtime`
holds one process's state, :mod:`.routes` the HTTP routes, :mod:`.push` the event
stream (SSE over LISTEN/NOTIFY), :mod:`.mqtt` the MQTT consumer and :mod:`.pages` the
control-room page. The library does the work: the service validates, calls and
serialises.
"""

from __future__ import annotations

__all__: list[str] = []
