/* geo_protect control room: the dense context layers (buildings, streets, entries) drawn
 * from the service's vector tiles (/tiles/{city}/{layer}/{z}/{x}/{y}.mvt, cut by PostGIS at
 * request time) with the vendored Leaflet.VectorGrid, instead of being sent whole.
 *
 * The tiles sit in Leaflet's tile pane, under the spaces (overlay pane), and take no
 * clicks: a space is what an operator opens. Each layer has a zoom from which it is asked
 * for, so a city-wide view does not fetch every building; the layer control switches them.
 * Palettes: the --tile-* custom properties of control.css.
 *
 * For tests: window.controlTiles[layer] = {tiles, features, failed}, the tiles decoded (a
 * 204 is a tile with nothing in it), the features they held and the fetches that failed;
 * window.controlMap, the map.
 */
(() => {
  "use strict";
  const css = getComputedStyle(document.documentElement);
  const colour = (name, dflt) => css.getPropertyValue(name).trim() || dflt;
  const LAYERS = [
    { id: "building", title: "Buildings", minZoom: 15, style: () => ({ fill: true, weight: 0.5,
      color: colour("--tile-building-line", "#3a4656"), fillColor: colour("--tile-building", "#232d39"), fillOpacity: 0.9 }) },
    { id: "street", title: "Streets", minZoom: 13, style: (p) => ({ weight: p.highway === "pedestrian" || p.highway === "footway" ? 1 : 1.6,
      color: p.highway === "pedestrian" || p.highway === "footway" ? colour("--tile-footway", "#4e5d6e") : colour("--tile-street", "#5f7186"), opacity: 0.9 }) },
    { id: "entry_point", title: "Entries", minZoom: 14, style: (p) => ({ radius: 3, weight: 1, fill: true, fillOpacity: 0.9,
      color: "#10161d", fillColor: p.entry_class === "pedestrian_only" ? colour("--tile-entry-foot", "#7fc4ff") : colour("--tile-entry-vehicle", "#ff7a1a") }) },
  ];
  window.controlTiles = Object.fromEntries(LAYERS.map((l) => [l.id, { tiles: 0, features: 0, failed: 0 }]));

  window.controlBasemap = (map, city) => {
    window.controlMap = map;
    const overlays = {};
    for (const spec of LAYERS) {
      const count = window.controlTiles[spec.id];
      const url = `/tiles/${encodeURIComponent(city)}/${spec.id}/{z}/{x}/{y}.mvt`;
      const layer = L.vectorGrid.protobuf(url, {
        rendererFactory: L.canvas.tile,
        interactive: false,
        minZoom: spec.minZoom,
        maxZoom: 22,
        fetchOptions: { credentials: "same-origin" },
        vectorTileLayerStyles: { [spec.id]: spec.style },
      });
      const fetchTile = layer._getVectorTilePromise; // count what each tile held
      layer._getVectorTilePromise = function (coords, bounds) {
        return fetchTile.call(this, coords, bounds).then((tile) => {
          count.tiles += 1;
          const held = tile.layers && tile.layers[spec.id];
          count.features += held && held.features ? held.features.length : 0;
          return tile;
        }, (err) => { count.failed += 1; throw err; });
      };
      layer.addTo(map);
      overlays[spec.title] = layer;
    }
    L.control.layers(null, overlays, { position: "topleft", collapsed: true }).addTo(map);
  };
})();
