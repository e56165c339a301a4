"""Where layers live: an embedded GeoPackage folder or a PostGIS database.

Both backends implement :class:`~geo_protect.store.base.Store`; :func:`open_store`
picks one from the settings. Layers are described once, in :mod:`geo_protect.schema`:
the GeoPackage store needs nothing more for a new layer, the PostGIS store one Alembic
migration that creates its table (:func:`geo_protect.store.migrations.create_layer_table`).
"""

from __future__ import annotations

from geo_protect.errors import ConfigError
from geo_protect.reference import version
from geo_protect.settings import Settings
from geo_protect.store._common import CityInfo
from geo_protect.store.base import Store
from geo_protect.store.geopackage import GeoPackageStore
from geo_protect.store.postgis import PostGISStore, masked_url

__all__ = ["CityInfo", "GeoPackageStore", "PostGISStore", "Store", "masked_url", "open_store"]


def open_store(settings: Settings) -> GeoPackageStore | PostGISStore:
    """Open the store configured by ``settings.store``.

    ``gpkg`` opens the folder ``settings.store_dir``; ``postgis`` connects to
    ``settings.database_url`` and brings its schema up to date. Each ingest records the
    version of the reference tables in ``settings.data_dir``.

    Raises
    ------
    StoreUnavailableError
        PostGIS cannot be reached or lacks the extension.
    ConfigError
        Unknown backend, or the reference tables have no version.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> store = open_store(Settings(store="gpkg", store_dir=Path(tempfile.mkdtemp())))
    >>> type(store).__name__
    'GeoPackageStore'
    """
    reference_version = version(settings.data_dir)
    if settings.store == "gpkg":
        return GeoPackageStore(settings.store_dir, reference_version=reference_version)
    if settings.store == "postgis":
        return PostGISStore(settings.database_url, reference_version=reference_version)
    raise ConfigError(f"setting GEO_PROTECT_STORE={settings.store!r}: use 'gpkg' or 'postgis'")
