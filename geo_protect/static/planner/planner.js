/* geo_protect planner workspace (templates/planner.html, issue 14).
 *
 * Two synchronised Leaflet maps: the baseline on the left, this scenario on the right
 * (in compare mode the left one shows the scenario compared). Barriers are drawn on the
 * right map with the vendored Leaflet-Geoman; existing barriers (grey) are clicked to
 * remove or open them. The scenario is a list of edits (state.edits); every change is one
 * step of the undo history and asks the service for a preview
 * (POST /cities/{city}/scenarios/preview): at once for a finished shape, debounced while
 * typing or dragging vertices. A newer preview cancels the one in flight.
 *
 * Text from the API reaches the page through textContent and attributes only. Unsafe
 * requests carry the CSRF token of <meta name="csrf-token"> as X-CSRF-Token.
 *
 * For tests and benchmarks: window.planner = {before, after, state, baseline, last
 * (the last preview applied), seq (previews applied), timings (ms from an edit to its
 * preview drawn), afterEntries (uid -> entry after), ready (a Promise)};
 * document.body.dataset.previewSeq counts previews drawn.
 */
(() => {
  "use strict";
  const CITY = document.body.dataset.city;
  const CAN_PLAN = document.body.dataset.canPlan === "true";
  const API = `/cities/${encodeURIComponent(CITY)}/scenarios`;
  const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const ATTRIBUTION = "© OpenStreetMap contributors, ODbL";
  const KEYS = { b: "bollard_row", k: "block", p: "planter", g: "gate", w: "wall", t: "temporary", v: "vehicle" };
  const DEBOUNCE_MS = 200;
  const css = getComputedStyle(document.documentElement);
  const colour = (n, d) => css.getPropertyValue(n).trim() || d;
  const CLASS_COLOUR = { vehicle_permeable: colour("--permeable", "#d7301f"), blocked: colour("--blocked", "#6b7280"),
    pedestrian_only: colour("--foot", "#2b8cbe") };
  const BAND = { low: colour("--band-low"), medium: colour("--band-medium"), high: colour("--band-high"),
    "very high": colour("--band-very-high") };
  const $ = (id) => document.getElementById(id);

  const state = { edits: [], tool: "bollard_row", geom: "line", selected: null, loadedName: null };
  const history = { undo: [], redo: [] };
  let baseline = null, types = {}, nextId = 1, timer = 0, inflight = null, requested = 0, pendingSince = null;
  let markReady;
  const P = (window.planner = { state, seq: 0, timings: [], afterEntries: {}, last: null,
    ready: new Promise((r) => { markReady = r; }) });

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") el.className = v; else el.setAttribute(k, v === true ? "" : String(v));
    }
    el.append(...kids.filter((k) => k != null && k !== false).map((k) => (typeof k === "number" ? String(k) : k)));
    return el;
  }
  const fmt = (v, d = 0) => (v == null ? "–" : Number(v).toFixed(d));
  function status(text, kind) { const s = $("status"); s.textContent = text; s.dataset.state = kind || "ok"; }

  async function api(method, url, body, signal) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = CSRF;
    const r = await fetch(url, { method, headers, credentials: "same-origin", signal,
      body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    const data = text ? JSON.parse(text) : null;
    if (!r.ok) {
      const d = data && data.detail;
      const err = new Error(typeof d === "string" ? d : (d && d.message) || `${r.status} ${r.statusText}`);
      err.status = r.status; err.detail = d; throw err;
    }
    return data;
  }

  // ---- maps ------------------------------------------------------------------------------
  function makeMap(id) {
    const map = L.map(id, { preferCanvas: true, zoomControl: true, attributionControl: true, boxZoom: false });
    map.attributionControl.setPrefix(false);
    map.attributionControl.addAttribution(`Map data ${ATTRIBUTION}`);
    if (L.vectorGrid) {
      for (const [layer, minZoom, style] of [
        ["building", 15, { fill: true, weight: 0.4, color: "#9aa5b1", fillColor: "#d9dee4", fillOpacity: 1 }],
        ["street", 13, { weight: 1.2, color: "#a7b1bd" }],
      ]) {
        const tiles = L.vectorGrid.protobuf(`/tiles/${encodeURIComponent(CITY)}/${layer}/{z}/{x}/{y}.mvt`, {
          rendererFactory: L.canvas.tile, interactive: false, minZoom, maxZoom: 22,
          fetchOptions: { credentials: "same-origin" }, vectorTileLayerStyles: { [layer]: style },
        });
        tiles.on("loading", () => { tilesLoading.add(tiles); });
        tiles.on("load", () => { tilesLoading.delete(tiles); });
        tiles.addTo(map);
      }
    }
    return map;
  }
  const tilesLoading = new Set(); // tile layers still loading (P.tilesIdle)
  const before = makeMap("before"), after = makeMap("after");
  P.tilesIdle = () => tilesLoading.size === 0;
  P.phases = []; // per preview: ms waiting for the service, applying, to the next frame
  P.before = before; P.after = after;
  let syncing = false;
  for (const [a, b] of [[before, after], [after, before]]) {
    a.on("move", () => {
      if (syncing) return;
      syncing = true; b.setView(a.getCenter(), a.getZoom(), { animate: false }); syncing = false;
    });
  }
  const layers = {};
  for (const side of ["before", "after"]) {
    const map = side === "before" ? before : after;
    layers[side] = {
      spaces: L.geoJSON(null, { style: spaceStyle, pmIgnore: true, interactive: false }).addTo(map),
      paths: L.layerGroup().addTo(map),
      entries: L.layerGroup().addTo(map),
      posts: L.geoJSON(null, { pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 2, color: "#1a9641", weight: 1, pmIgnore: true }), pmIgnore: true }).addTo(map),
      drawn: L.featureGroup().addTo(map),
      flags: L.layerGroup().addTo(map),
    };
  }
  const barrierLayer = L.layerGroup().addTo(after);

  function spaceStyle(f) {
    const c = BAND[f.properties.band] || "#9aa5b1";
    return { color: c, weight: 1, fillColor: c, fillOpacity: 0.25 };
  }

  // What each map shows of the entries and paths: per entry its marker, per space the
  // entries drawn, and which spaces and paths differ from the baseline (a preview redraws
  // only those, not the city's thousands of entries).
  const drawn = { before: { markers: new Map(), paths: new Map(), bySpace: new Map(), spaces: new Set(), redone: new Set() },
    after: { markers: new Map(), paths: new Map(), bySpace: new Map(), spaces: new Set(), redone: new Set() } };
  let baseBySpace = new Map(), basePaths = new Map();
  const PATH_STYLE = { color: colour("--path", "#f28e2b"), weight: 2, opacity: 0.8 };

  function setEntry(side, e) {
    const d = drawn[side];
    if (d.markers.has(e.uid)) layers[side].entries.removeLayer(d.markers.get(e.uid));
    if (!Number.isFinite(e.lat) || !Number.isFinite(e.lon)) return;
    const m = L.circleMarker([e.lat, e.lon], { radius: e.entry_class === "vehicle_permeable" ? 5 : 3.5, weight: 1,
      color: "#1f2933", fillOpacity: 0.95, fillColor: CLASS_COLOUR[e.entry_class] || "#999", pmIgnore: true });
    m.bindTooltip(`${e.uid}: ${e.entry_class}${e.worst_speed_kmh != null ? `, ${fmt(e.worst_speed_kmh)} km/h (${e.worst_vehicle})` : ""}`);
    d.markers.set(e.uid, m);
    layers[side].entries.addLayer(m);
  }
  function dropEntry(side, uid) {
    const d = drawn[side], m = d.markers.get(uid);
    if (m) { layers[side].entries.removeLayer(m); d.markers.delete(uid); }
  }
  function setPath(side, uid, feature) {
    const d = drawn[side];
    if (d.paths.has(uid)) { layers[side].paths.removeLayer(d.paths.get(uid)); d.paths.delete(uid); }
    if (!feature) return;
    const layer = L.geoJSON(feature, { style: PATH_STYLE, pmIgnore: true, interactive: false });
    d.paths.set(uid, layer);
    layers[side].paths.addLayer(layer);
  }
  function drawBaseline(side) {
    const d = drawn[side];
    for (const [space, entries] of baseBySpace) {
      for (const e of entries) setEntry(side, e);
      d.bySpace.set(space, entries.map((e) => e.uid));
    }
    for (const [uid, f] of basePaths) setPath(side, uid, f);
  }

  function entryIndex(fc) {
    const out = {};
    for (const f of fc.features) if (f.geometry) out[f.properties.uid] = { ...f.properties, lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1] };
    return out;
  }

  // ---- edits, history ----------------------------------------------------------------------
  const clone = (x) => JSON.parse(JSON.stringify(x));
  function commit(edits, { debounce = false } = {}) {
    history.undo.push(clone(state.edits));
    history.redo = [];
    state.edits = edits;
    changed(debounce);
  }
  function undo() { if (!history.undo.length) return; history.redo.push(clone(state.edits)); state.edits = history.undo.pop(); changed(false); }
  function redo() { if (!history.redo.length) return; history.undo.push(clone(state.edits)); state.edits = history.redo.pop(); changed(false); }
  function changed(debounce) {
    if (state.selected && !state.edits.some((e) => e.id === state.selected)) state.selected = null;
    renderEdits();
    schedule(debounce);
  }
  function newId() { while (state.edits.some((e) => e.id === `f${nextId}`)) nextId++; return `f${nextId++}`; }

  function addEdit(geometry) {
    const kind = state.tool, t = types[kind] || {};
    const edit = { id: newId(), action: "add", kind, geometry };
    const spacing = parseFloat($("spacing").value);
    if (t.default_spacing_m != null && geometry.type === "LineString" && spacing > 0) edit.spacing_m = spacing;
    const rating = $("rating").value.trim();
    if (rating) edit.rating = rating;
    const note = $("note").value.trim();
    if (note) edit.note = note;
    state.selected = edit.id;
    commit([...state.edits, edit]);
  }

  function updateSelected(fields) {
    const i = state.edits.findIndex((e) => e.id === state.selected);
    if (i < 0) return;
    const next = clone(state.edits);
    Object.assign(next[i], fields);
    for (const [k, v] of Object.entries(fields)) if (v == null || v === "") delete next[i][k];
    commit(next, { debounce: true });
  }

  function renderEdits() {
    const group = layers.after.drawn;
    group.clearLayers();
    layers.before.drawn.clearLayers();
    const list = $("edits");
    list.replaceChildren();
    for (const e of state.edits) {
      const label = e.action === "add" ? `${e.kind}${e.spacing_m ? ` @${e.spacing_m} m` : ""}${e.rating ? ` ${e.rating}` : ""}` : `${e.action} ${e.osm_id}`;
      const li = h("li", { "data-edit-id": e.id, "aria-selected": e.id === state.selected ? "true" : "false" }, label);
      li.addEventListener("click", () => select(e.id));
      list.append(li);
      if (!e.geometry) continue;
      const selected = e.id === state.selected;
      const style = { color: selected ? "#0b6623" : colour("--drawn", "#1a9641"), weight: selected ? 5 : 4, dashArray: e.kind === "temporary" ? "6 4" : null };
      const layer = e.geometry.type === "Point"
        ? L.circleMarker([e.geometry.coordinates[1], e.geometry.coordinates[0]], { ...style, radius: 6, fillOpacity: 0.9, pmIgnore: false })
        : L.polyline(e.geometry.coordinates.map(([x, y]) => [y, x]), { ...style, pmIgnore: false });
      layer.editId = e.id;
      layer.on("click", (ev) => { L.DomEvent.stopPropagation(ev); select(e.id); });
      layer.on("pm:edit pm:dragend", () => {
        const g = layer.toGeoJSON().geometry;
        const i = state.edits.findIndex((x) => x.id === e.id);
        if (i >= 0) { const next = clone(state.edits); next[i].geometry = g; commit(next, { debounce: true }); }
      });
      group.addLayer(layer);
      if (selected && CAN_PLAN && layer.pm) layer.pm.enable({ snappable: false, draggable: true });
      const ghost = e.geometry.type === "Point" ? L.circleMarker(layer.getLatLng(), { ...style, radius: 5, opacity: 0.4 }) : L.polyline(layer.getLatLngs(), { ...style, opacity: 0.4 });
      layers.before.drawn.addLayer(ghost);
    }
    $("edit-count").textContent = String(state.edits.length);
    const sel = state.edits.find((x) => x.id === state.selected);
    if (sel && sel.action === "add") {
      $("spacing").value = sel.spacing_m ?? ""; $("rating").value = sel.rating ?? ""; $("note").value = sel.note ?? "";
    }
    $("undo").disabled = !history.undo.length; $("redo").disabled = !history.redo.length;
  }
  function select(id) { state.selected = id; renderEdits(); }

  // ---- drawing tools -----------------------------------------------------------------------
  function setTool(kind) {
    state.tool = kind;
    const t = types[kind];
    if (t && !t[state.geom]) setGeom(t.line ? "line" : "point", false);
    for (const b of $("kinds").children) b.setAttribute("aria-pressed", b.dataset.kind === kind ? "true" : "false");
    if (t && t.default_spacing_m != null && !$("spacing").value) $("spacing").value = t.default_spacing_m;
    $("spacing").disabled = !(t && t.default_spacing_m != null);
    startDrawing();
  }
  function setGeom(geom, restart = true) {
    const t = types[state.tool];
    if (t && !t[geom]) { status(`a ${state.tool} is drawn as a ${t.line ? "line" : "point"}`, "error"); return; }
    state.geom = geom;
    for (const r of document.querySelectorAll('input[name="geom"]')) r.checked = r.value === geom;
    if (restart) startDrawing();
  }
  function startDrawing() {
    if (!CAN_PLAN) return;
    after.pm.disableDraw();
    after.pm.enableDraw(state.geom === "line" ? "Line" : "CircleMarker", { snappable: false, continueDrawing: false,
      templineStyle: { color: "#1a9641" }, hintlineStyle: { color: "#1a9641", dashArray: "4 4" } });
  }
  function stopDrawing() { after.pm.disableDraw(); }
  after.on("pm:create", (e) => {
    const g = e.layer.toGeoJSON().geometry;
    after.removeLayer(e.layer);
    if (g.type === "LineString" && g.coordinates.length < 2) return;
    addEdit(g);
  });

  function barrierPopup(uid, kind) {
    const box = h("div", { class: "barrier-popup" }, h("div", null, `${kind || "barrier"} ${uid}`));
    for (const action of ["remove", "open"]) {
      const b = h("button", { type: "button", "data-action": action }, action === "remove" ? "Remove it" : "Leave it open");
      b.addEventListener("click", () => {
        after.closePopup();
        if (state.edits.some((e) => e.osm_id === uid)) { status(`${uid} is edited already`, "error"); return; }
        commit([...state.edits, { id: newId(), action, osm_id: uid }]);
      });
      if (CAN_PLAN) box.append(b);
    }
    return box;
  }

  // ---- preview -----------------------------------------------------------------------------
  function payloadEdits(edits) { return edits.map((e) => ({ ...e })); }
  function schedule(debounce) {
    if (!CAN_PLAN) return;
    pendingSince = pendingSince ?? performance.now();
    clearTimeout(timer);
    timer = setTimeout(runPreview, debounce ? DEBOUNCE_MS : 0);
  }
  async function runPreview() {
    const started = pendingSince; pendingSince = null;
    if (inflight) inflight.abort();
    const ctrl = (inflight = new AbortController());
    const n = ++requested;
    if (!state.edits.length) { apply(null, started); return; }
    status("previewing…");
    try {
      const sent = performance.now();
      const body = await api("POST", `${API}/preview`, { edits: payloadEdits(state.edits), scheme: $("scheme").value || null }, ctrl.signal);
      if (n !== requested) return;
      const got = performance.now();
      apply(body, started);
      const applied = performance.now();
      requestAnimationFrame(() => P.phases.push({ queued_ms: sent - started, service_ms: got - sent,
        apply_ms: applied - got, frame_ms: performance.now() - applied }));
      status(`preview ${fmt(body.elapsed_ms)} ms${body.kept ? " (kept)" : ""}`);
    } catch (err) {
      if (err.name === "AbortError") return;
      status(err.message, "error");
      showProblems(err);
    }
  }
  function showProblems(err) {
    const list = $("flags");
    list.replaceChildren();
    const problems = (err.detail && err.detail.problems) || [];
    for (const p of problems) list.append(h("li", { class: "flag-row", "data-kind": "invalid", "data-feature": p.sensor_id }, `edit ${p.index + 1}, ${p.field}: ${p.reason}`));
    if (!problems.length) list.append(h("li", { class: "flag-row", "data-kind": "error" }, err.message));
  }

  function apply(body, started, side = "after") {
    const d = drawn[side], ok = body && !body.empty;
    const now = new Set(ok ? body.affected_spaces : []);
    const fresh = new Map();
    if (ok && body.after_entries) {
      for (const e of Object.values(entryIndex(body.after_entries))) {
        if (!fresh.has(e.space_uid)) fresh.set(e.space_uid, []);
        fresh.get(e.space_uid).push(e);
      }
    }
    for (const space of new Set([...d.spaces, ...now])) { // replaced now, or restored
      for (const uid of d.bySpace.get(space) || []) {
        dropEntry(side, uid);
        if (side === "after") delete P.afterEntries[uid];
      }
      const entries = now.has(space) ? fresh.get(space) || [] : baseBySpace.get(space) || [];
      for (const e of entries) {
        setEntry(side, e);
        if (side === "after") P.afterEntries[e.uid] = e;
      }
      d.bySpace.set(space, entries.map((e) => e.uid));
    }
    d.spaces = now;
    const redone = new Set(ok ? body.entries.map((e) => e.uid) : []);
    const paths = new Map((ok && body.after_approaches ? body.after_approaches.features : []).map((f) => [f.properties.entry_uid, f]));
    for (const uid of new Set([...d.redone, ...redone])) setPath(side, uid, redone.has(uid) ? paths.get(uid) : basePaths.get(uid));
    d.redone = redone;
    layers[side].posts.clearLayers();
    if (body && body.posts) layers[side].posts.addData(body.posts);
    drawFlags(side, body ? body.flags || [] : []);
    if (side === "after") {
      P.last = body;
      renderTables(body);
      requestAnimationFrame(() => {
        P.seq += 1;
        if (started != null) P.timings.push(performance.now() - started);
        document.body.dataset.previewSeq = String(P.seq);
      });
    }
  }

  function drawFlags(side, flags) {
    const group = layers[side].flags;
    group.clearLayers();
    for (const f of flags) {
      if (f.lat == null) continue;
      const icon = L.divIcon({ className: "", html: "", iconSize: [18, 18] });
      const m = L.marker([f.lat, f.lon], { icon, pmIgnore: true, keyboard: false });
      m.on("add", () => {
        const el = m.getElement();
        el.replaceChildren(h("div", { class: "flag", "data-kind": f.kind, "data-feature": f.feature, title: f.message }, "!"));
      });
      m.bindTooltip(f.message);
      group.addLayer(m);
    }
  }

  function renderTables(body) {
    const empty = !body || body.empty;
    const s = empty ? null : body.summary;
    $("summary").textContent = empty ? "No edits." : `${s.turned_blocked} entr${s.turned_blocked === 1 ? "y turns" : "ies turn"} blocked, ${s.opened} open · ${s.spaces_affected} space(s) affected · ${s.flags} problem(s) flagged`;
    const rows = (id, items, make) => { const tb = $(id).tBodies[0]; tb.replaceChildren(...(items || []).map(make)); };
    rows("entry-table", empty ? [] : body.entries, (e) => h("tr", { class: "entry-change", "data-entry-uid": e.uid, "data-space-uid": e.space_uid, "data-class-before": e.class_before, "data-class-after": e.class_after },
      h("td", null, e.uid), h("td", null, e.space_name), h("td", null, `${e.class_before || "–"} → ${e.class_after || "–"}`), h("td", null, `${fmt(e.speed_before)} → ${fmt(e.speed_after)}`)));
    rows("speed-table", empty ? [] : body.speeds, (r) => h("tr", { class: "speed-change", "data-entry-uid": r.entry_uid, "data-vehicle": r.vehicle },
      h("td", null, r.entry_uid), h("td", null, r.vehicle), h("td", null, fmt(r.before)), h("td", null, r.after == null ? "blocked" : fmt(r.after))));
    rows("score-table", empty ? [] : body.scores, (r) => h("tr", { class: "score-change", "data-space-uid": r.space_uid, "data-threat": r.threat, "data-falls": r.falls ? "true" : "false", "data-index-before": r.index_before, "data-index-after": r.index_after },
      h("td", null, r.space_name), h("td", null, r.threat), h("td", null, `${fmt(r.risk_100_before, 1)} → ${fmt(r.risk_100_after, 1)} (${r.band_after || "–"})`), h("td", null, `${fmt(r.index_before)} → ${fmt(r.index_after)}`)));
    const list = $("flags");
    list.replaceChildren(...(empty ? [] : body.flags).map((f) => h("li", { class: "flag-row", "data-kind": f.kind, "data-feature": f.feature }, `${f.barrier_uid}: ${f.message}`)));
  }

  // ---- scenarios ---------------------------------------------------------------------------
  async function refreshList(selectName) {
    const rows = await api("GET", API);
    const sel = $("saved");
    sel.replaceChildren(h("option", { value: "" }, "—"), ...rows.map((r) => h("option", { value: r.name }, `${r.name} (${r.n_edits})`)));
    if (selectName) sel.value = selectName;
  }
  function askOverwrite(name) {
    return new Promise((resolve) => {
      $("overwrite-text").textContent = `“${name}” is saved already. Save over it with what is drawn now?`;
      $("overwrite").hidden = false;
      const done = (yes) => { $("overwrite").hidden = true; $("overwrite-yes").onclick = $("overwrite-no").onclick = null; resolve(yes); };
      $("overwrite-yes").onclick = () => done(true); $("overwrite-no").onclick = () => done(false);
    });
  }
  async function save() {
    const name = $("name").value.trim();
    if (!name) { status("give the scenario a name first", "error"); $("name").focus(); return; }
    const body = { name, scheme: $("scheme").value || null, edits: payloadEdits(state.edits) };
    try {
      let out;
      try { out = await api("POST", API, body); } catch (err) {
        if (err.status !== 409) throw err;
        if (!(await askOverwrite(name))) { status("not saved"); return; }
        out = await api("PUT", `${API}/${encodeURIComponent(name)}`, body);
      }
      state.loadedName = name;
      status(`saved “${name}”`);
      document.body.dataset.saved = name;
      await refreshList(name);
      apply(out.preview, null);
    } catch (err) { status(err.message, "error"); showProblems(err); }
  }
  async function load(name) {
    const doc = await api("GET", `${API}/${encodeURIComponent(name)}`);
    return doc;
  }
  async function open() {
    const name = $("saved").value;
    if (!name) return;
    const doc = await load(name);
    history.undo.push(clone(state.edits)); history.redo = [];
    state.edits = doc.edits.map((e) => ({ id: newId(), ...Object.fromEntries(Object.entries(e).filter(([, v]) => v != null && v !== "")) }));
    state.loadedName = name; $("name").value = name; $("scheme").value = doc.scheme || "";
    status(`opened “${name}”`);
    document.body.dataset.opened = name;
    changed(false);
    if (!CAN_PLAN) { renderEdits(); }
  }
  async function compare() {
    const name = $("saved").value;
    if (!name) { status("choose a saved scenario to compare", "error"); return; }
    const doc = await load(name);
    const body = await api("POST", `${API}/preview`, { edits: doc.edits, scheme: doc.scheme });
    $("left-title").textContent = `Compared: ${name}`;
    apply(body, null, "before");
    layers.before.drawn.clearLayers();
    for (const e of doc.edits) if (e.geometry) layers.before.drawn.addLayer(L.geoJSON(e.geometry, { style: { color: "#7b3294", weight: 4 } }));
    document.body.dataset.compared = name;
  }
  function chosen() { const n = $("saved").value; if (!n) status("choose a saved scenario", "error"); return n; }

  // ---- wiring ------------------------------------------------------------------------------
  function wire() {
    for (const t of baseline.barrier_types) {
      const key = Object.keys(KEYS).find((k) => KEYS[k] === t.type);
      const b = h("button", { type: "button", "data-kind": t.type, title: t.description, "aria-pressed": "false" }, `${t.type.replace("_", " ")}${key ? ` (${key.toUpperCase()})` : ""}`);
      b.addEventListener("click", () => setTool(t.type));
      $("kinds").append(b);
    }
    $("scheme").replaceChildren(h("option", { value: "" }, "— choose —"), ...baseline.schemes.map((s) => h("option", { value: s.option, title: `${s.description} (${s.confidence})` }, s.label)));
    for (const r of document.querySelectorAll('input[name="geom"]')) r.addEventListener("change", () => setGeom(r.value));
    $("spacing").addEventListener("change", () => { const v = parseFloat($("spacing").value); if (state.selected) updateSelected({ spacing_m: v > 0 ? v : null }); });
    $("rating").addEventListener("change", () => { if (state.selected) updateSelected({ rating: $("rating").value.trim() || null }); });
    $("note").addEventListener("change", () => { if (state.selected) updateSelected({ note: $("note").value.trim() || null }); });
    $("scheme").addEventListener("change", () => schedule(false));
    $("undo").addEventListener("click", undo); $("redo").addEventListener("click", redo);
    $("remove-edit").addEventListener("click", removeSelected);
    $("save").addEventListener("click", save);
    $("open").addEventListener("click", () => open().catch((e) => status(e.message, "error")));
    $("compare").addEventListener("click", () => compare().catch((e) => status(e.message, "error")));
    $("export").addEventListener("click", () => { const n = chosen(); if (n) window.location.assign(`${API}/${encodeURIComponent(n)}.geojson`); });
    $("report").addEventListener("click", () => { const n = chosen(); if (n) window.open(`${API}/${encodeURIComponent(n)}/report`, "_blank"); });
    $("delete").addEventListener("click", async () => {
      const n = chosen(); if (!n) return;
      try { await api("DELETE", `${API}/${encodeURIComponent(n)}`); status(`deleted “${n}”`); await refreshList(); } catch (e) { status(e.message, "error"); }
    });
    document.addEventListener("keydown", onKey);
  }
  function removeSelected() { if (state.selected) commit(state.edits.filter((e) => e.id !== state.selected)); }
  function onKey(ev) {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(ev.target.tagName);
    const k = ev.key.toLowerCase();
    if (ev.ctrlKey || ev.metaKey) {
      if (k === "z" && !ev.shiftKey && !typing) { ev.preventDefault(); undo(); }
      else if ((k === "y" || (k === "z" && ev.shiftKey)) && !typing) { ev.preventDefault(); redo(); }
      else if (k === "s" && CAN_PLAN) { ev.preventDefault(); save(); }
      return;
    }
    if (typing || !CAN_PLAN) return;
    if (KEYS[k] && types[KEYS[k]]) setTool(KEYS[k]);
    else if (k === "l") setGeom("line");
    else if (k === "o") setGeom("point");
    else if (k === "escape") stopDrawing();
    else if (k === "enter") { const d = after.pm.Draw.Line; if (d && d._enabled && d._layer.getLatLngs().length > 1) d._finishShape(); }
    else if (k === "delete" || k === "backspace") removeSelected();
  }

  async function start() {
    if (L.PM) L.PM.setOptIn(true);
    baseline = await api("GET", `/planner/${encodeURIComponent(CITY)}/baseline.json`);
    P.baseline = baseline;
    for (const t of baseline.barrier_types) types[t.type] = t;
    for (const side of ["before", "after"]) layers[side].spaces.addData(baseline.spaces);
    for (const f of baseline.barriers.features) {
      if (!f.geometry || f.geometry.type !== "Point") continue;
      const [x, y] = f.geometry.coordinates;
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      const m = L.circleMarker([y, x], { radius: 3, color: "#52606d", weight: 1, fillOpacity: 0.7, pmIgnore: true });
      m.bindPopup(() => barrierPopup(f.properties.uid, f.properties.kind));
      barrierLayer.addLayer(m);
    }
    const [w, s, e, n] = baseline.bbox;
    const fit = layers.after.spaces.getBounds().isValid() ? layers.after.spaces.getBounds() : L.latLngBounds([s, w], [n, e]);
    after.fitBounds(fit); before.fitBounds(fit);
    wire();
    for (const e of Object.values(entryIndex(baseline.entries))) {
      if (!baseBySpace.has(e.space_uid)) baseBySpace.set(e.space_uid, []);
      baseBySpace.get(e.space_uid).push(e);
      P.afterEntries[e.uid] = e;
    }
    basePaths = new Map(baseline.approaches.features.map((f) => [f.properties.entry_uid, f]));
    drawBaseline("before");
    drawBaseline("after");
    apply(null, null, "after");
    if (CAN_PLAN) setTool(state.tool);
    renderEdits();
    await refreshList();
    markReady(performance.now());
  }
  start().catch((err) => { status(`could not load the planner: ${err.message}`, "error"); markReady(-1); });
})();
