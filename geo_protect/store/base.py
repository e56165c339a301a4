"""The storage contract shared by the GeoPackage and PostGIS backends."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

import geopandas as gpd

from geo_protect.citydata import IngestReport
from geo_protect.store.audit import Actor
from geo_protect.store.scenarios import ScenarioDocument, StoredScenario

__all__ = ["Store"]


@runtime_checkable
class Store(Protocol):
    """Where layers live. Every write is atomic: readers see the old or the new state.

    Layers are the GeoDataFrames of :mod:`geo_protect.schema` (WGS84, ``uid`` index);
    a store returns them with the same columns, dtypes, index and CRS it was given.
    """

    def replace_city(
        self, city: str, layers: Mapping[str, gpd.GeoDataFrame], report: IngestReport
    ) -> None:
        """Replace everything stored for ``city`` (all layers, analysis included) at once."""
        ...

    def write_layers(
        self, city: str, layers: Mapping[str, gpd.GeoDataFrame], *, actor: Actor | None = None
    ) -> None:
        """Replace the given layers of an already ingested city, in one transaction.

        A write of the ``assessment`` layer is a change of record: PostGIS writes its
        audit row (:func:`geo_protect.store.audit.record_assessment`) in the same
        transaction and refuses it without an ``actor``. The GeoPackage store keeps no
        audit trail and ignores ``actor``.
        """
        ...

    def read_layer(self, city: str, layer: str) -> gpd.GeoDataFrame:
        """One layer of a city (an empty layer if the city has none of it)."""
        ...

    def read_layers(
        self, city: str, names: Iterable[str] | None = None
    ) -> dict[str, gpd.GeoDataFrame]:
        """Several layers of a city, read from one consistent state of the store.

        A concurrent ``replace_city`` or ``write_layers`` is seen entirely or not at all:
        every returned layer comes from the same version of the city.

        Parameters
        ----------
        city : str
            The city's slug.
        names : iterable of str, optional
            The layers to read, each as :meth:`read_layer` would (an empty layer if the
            city has none of it); by default every layer stored for the city.

        Returns
        -------
        dict of str to GeoDataFrame
            Layer name to layer, in the order of ``names`` (of :meth:`layers` by default).
        """
        ...

    def report(self, city: str) -> IngestReport:
        """The ingest report stored with the city."""
        ...

    def cities(self) -> list[str]:
        """Slugs of the cities in the store."""
        ...

    def layers(self, city: str) -> list[str]:
        """Names of the layers stored for ``city``."""
        ...

    def save_scenario(self, city: str, scenario: ScenarioDocument, *, actor: Actor) -> None:
        """Store a barrier scenario of an ingested city, in one transaction.

        A scenario of the same name in the city is replaced; the layers are not touched.

        Parameters
        ----------
        city : str
            The city's slug (an :class:`~geo_protect.errors.UnknownCityError` if not stored).
        scenario : ScenarioDocument
            A :class:`~geo_protect.scenario.model.Scenario` (kept as its JSON dump, with
            its name, author, creation time and number of edits).
        actor : Actor
            Who saves it (PostGIS: a ``scenario.save`` audit row in the same transaction;
            the GeoPackage store keeps no audit trail).
        """
        ...

    def scenarios(self, city: str) -> list[str]:
        """Names of the scenarios stored for ``city``, sorted."""
        ...

    def read_scenario(self, city: str, name: str) -> StoredScenario:
        """The stored scenario ``name`` of ``city``.

        Its ``document`` is the JSON that ``Scenario.model_validate_json`` reads back.

        Raises
        ------
        MissingDataError
            The city has no scenario of that name (the message names both).
        """
        ...
