/* geo_protect control room: the live map, alerts and feed of one city (templates/control.html).
 *
 * Start: the city's event stream is opened first, then spaces, state, alerts and sensors
 * are fetched together, so nothing that happens between the snapshot and the stream is
 * lost (events that arrive meanwhile wait in a backlog). The map is drawn once (Leaflet,
 * canvas renderer; buildings, streets, entries come as vector tiles, basemap.js); after
 * that an event only marks what changed, and one requestAnimationFrame flush restyles those
 * features in place and rewrites those rows.
 *
 * Colours: the palettes are the custom properties of control.css (--los-A … --los-F for the
 * live level of service, --band-* for the baseline risk band drawn muted where a space has
 * no live state, --stale for the hatching of spaces whose sensors are silent).
 *
 * Text from the API reaches the page only through textContent and attributes (h() below),
 * never as HTML. For tests and benchmarks: window.controlReady (a Promise of the
 * performance.now() at which spaces, state and alerts were first drawn; also
 * window.controlReadyAt), window.controlState (uid -> live summary), data-* attributes on
 * the rows (#space-<uid with non-[A-Za-z0-9_-] as _>, [data-alert-id], [data-sensor-id]).
 */
(() => {
  "use strict";
  const CITY = document.body.dataset.city;
  const BASE = `/cities/${encodeURIComponent(CITY)}`;
  const STALE_S = Number(document.body.dataset.staleAfterS) || 300; // alert_rules.csv `stale`
  const HISTORY = 360; // sparkline points kept per space
  const MAX_FLASH = 12; // rows that start flashing in one frame (a burst would only be noise)
  const KINDS = { los: "Crowd density", rapid_rise: "Rapid rise", exit_flow: "Exit flow",
    geofence: "Crowd at vehicle entry", stale: "Sensor silent" };
  const SEVERITY = { Minor: 1, Moderate: 2, Severe: 3, Extreme: 4 };
  const $ = (id) => document.getElementById(id);
  const css = getComputedStyle(document.documentElement);
  const colour = (name) => css.getPropertyValue(name).trim() || "#7d8da3";
  const LOS = Object.fromEntries([..."ABCDEF"].map((l) => [l, colour(`--los-${l}`)]));
  const BAND = { low: colour("--band-low"), medium: colour("--band-medium"),
    high: colour("--band-high"), "very high": colour("--band-very-high") };
  const NONE = colour("--band-none");
  const HATCH = hatch(colour("--stale"));

  const spaces = new Map(); // uid -> {uid, props, layer, live, history, key, row}
  const alerts = new Map(); // alert_id -> {data, row, flash}
  const sensors = new Map(); // sensor_id -> {data, row}
  const bySpace = new Map(); // space uid -> [sensor entries]
  const dirty = { spaces: new Set(), alerts: new Set(), sensors: new Set(), feed: false }, backlog = [];
  let map, popup, markReady, openUid = null, ready = false, frame = 0, skew = 0, lastId = null, sensorsTimer = 0;
  window.controlState = {};
  window.controlReady = new Promise((resolve) => { markReady = resolve; });

  // ---- helpers ---------------------------------------------------------------------------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") el.className = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    el.append(...kids.filter((k) => k != null && k !== false)); // strings become text nodes
    return el;
  }
  function svg(tag, attrs) {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    return el;
  }
  function hatch(stroke) {
    const c = document.createElement("canvas");
    c.width = c.height = 8;
    const g = c.getContext("2d");
    if (!g) return stroke;
    Object.assign(g, { strokeStyle: stroke, lineWidth: 1.6 });
    g.beginPath();
    for (const o of [-8, 0, 8]) { g.moveTo(o, 8); g.lineTo(o + 8, 0); }
    g.stroke();
    return g.createPattern(c, "repeat") || stroke; // a canvas fillStyle: Leaflet passes it on
  }
  const now = () => Date.now() + skew;
  const time = (iso) => (iso ? Date.parse(String(iso).replace(" ", "T").replace(/(\.\d{3})\d+/, "$1")) : NaN);
  const domId = (uid) => `space-${String(uid).replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const num = (v, d = 0) => (v == null || Number.isNaN(Number(v)) ? "—" : Number(v).toFixed(d));
  function age(iso) {
    const s = (now() - time(iso)) / 1000;
    if (!Number.isFinite(s)) return "never";
    if (s < 60) return `${Math.max(0, Math.round(s))} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }
  const silent = (iso) => !(now() - time(iso) < STALE_S * 1000);
  const spaceName = (s) => (s ? s.props.name || `Unnamed ${String(s.props.kind || "space").replace(/_/g, " ")}` : null);
  const losChip = (los) => (los ? h("span", { class: `chip los-${los}`, title: `level of service ${los}` }, los) : "—");
  async function getJSON(url, init) {
    const r = await fetch(url, init);
    const date = Date.parse(r.headers.get("date") || "");
    if (Number.isFinite(date) && Math.abs(date - Date.now()) > 2000) skew = date - Date.now();
    let body = null;
    try { body = await r.json(); } catch { /* no JSON body */ }
    if (r.status === 401) location.assign(`/login?next=${encodeURIComponent(location.pathname)}`); // logged out
    if (!r.ok) {
      const detail = body && body.detail ? (body.detail.message || body.detail) : r.statusText;
      throw Object.assign(new Error(`${r.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`), { status: r.status });
    }
    return body;
  }
  function schedule() { if (!frame) frame = requestAnimationFrame(flush); }

  // ---- map -------------------------------------------------------------------------------
  function stale(s) {
    return !!s.live && (s.live.stale || s.live.density == null || silent(s.live.last_reading_at));
  }
  function styleOf(s) {
    const live = s.live;
    if (live && !stale(s)) {
      return { key: `L${live.los}`, color: "#eef2f6", weight: 1.6, opacity: 0.95, dashArray: null,
        fillColor: LOS[live.los] || NONE, fillOpacity: 0.8 };
    }
    if (live) {
      return { key: `S${live.los}`, color: LOS[live.los] || colour("--stale"), weight: 2, opacity: 0.95,
        dashArray: "4 3", fillColor: HATCH, fillOpacity: 1 };
    }
    const band = BAND[s.props.band] || NONE;
    return { key: `B${s.props.band}`, color: band, weight: 1, opacity: 0.55, dashArray: null,
      fillColor: band, fillOpacity: 0.15 };
  }
  function drawMap(geo) {
    map = L.map("map", { preferCanvas: true, zoomControl: true, attributionControl: false });
    L.control.attribution({ prefix: false }).addAttribution(
      '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors, ODbL').addTo(map);
    L.control.scale({ imperial: false }).addTo(map);
    const legend = L.control({ position: "topright" });
    legend.onAdd = () => { const el = $("legend"); el.hidden = false; L.DomEvent.disableClickPropagation(el); return el; };
    legend.addTo(map);
    popup = L.popup({ maxWidth: 340, autoPanPadding: [24, 24] });
    map.on("popupclose", () => { openUid = null; });
    const layer = L.geoJSON(geo, {
      style: (f) => { const s = { uid: String(f.id ?? f.properties.uid), props: f.properties, live: null, history: [] };
        spaces.set(s.uid, s); const st = styleOf(s); s.key = st.key; return st; },
      onEachFeature: (f, l) => { spaces.get(String(f.id ?? f.properties.uid)).layer = l; },
    }).addTo(map);
    layer.on("click", (e) => openSpace(String(e.layer.feature.id ?? e.layer.feature.properties.uid), e.latlng));
    const bounds = layer.getBounds();
    if (bounds.isValid()) map.fitBounds(bounds, { padding: [16, 16], animate: false });
    else map.setView([0, 0], 2);
    if (window.controlBasemap) window.controlBasemap(map, CITY); // buildings, streets, entries: tiles
  }
  function openSpace(uid, at, zoom) {
    const s = spaces.get(uid);
    if (!s || !s.layer) return;
    const b = s.layer.getBounds();
    if (zoom) map.fitBounds(b, { maxZoom: 18, padding: [60, 60], animate: false });
    openUid = uid;
    popup.setLatLng(at || b.getCenter()).setContent(popupNode(s)).openOn(map);
  }
  function sparkline(hist) {
    const W = 160, H = 34, el = svg("svg", { class: "spark", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" });
    if (!hist.length) return el;
    const t0 = hist[0][0], span = Math.max(1, hist[hist.length - 1][0] - t0);
    const top = Math.max(1, ...hist.map((p) => p[1])) * 1.1;
    const pts = hist.map(([t, d]) => [hist.length < 2 ? W - 3 : 3 + ((t - t0) / span) * (W - 6), H - 2 - (d / top) * (H - 4)]);
    el.append(svg("polyline", { points: pts.map((p) => p.map((v) => v.toFixed(1)).join(",")).join(" ") }));
    const [x, y] = pts[pts.length - 1];
    el.append(svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 2.5 }));
    const lo = Math.min(...hist.map((p) => p[1])), hi = Math.max(...hist.map((p) => p[1]));
    const title = svg("title", {});
    title.textContent = `density since the page opened: ${hist.length} readings, ${num(lo, 2)}–${num(hi, 2)} p/m²`;
    el.append(title);
    el.setAttribute("aria-label", title.textContent);
    return el;
  }
  function popupNode(s) {
    const p = s.props, live = s.live;
    const table = h("table");
    const row = (k, ...v) => table.append(h("tr", null, h("th", null, k), h("td", null, ...v)));
    if (live) {
      row("Density", live.density == null ? "no reading" : `${num(live.density, 2)} p/m² `, losChip(live.los),
        live.alert ? ` ${live.alert}` : "");
      const rise = live.rise_per_min == null ? "rise —" : `rise ${live.rise_per_min >= 0 ? "+" : ""}${num(live.rise_per_min, 2)} p/m²/min`;
      row("Trend", sparkline(s.history), h("span", { class: live.rapid_rise ? "warn" : null }, rise, live.rapid_rise ? " (rapid)" : ""));
      row("Live risk", `${num(live.live_risk)} vs baseline ${num(live.risk_100 ?? p.risk_100)}`);
      if (live.exit_flow_p_min_m != null) row("Exit flow", h("span", { class: live.exit_flow_alert ? "warn" : null }, `${num(live.exit_flow_p_min_m)} p/min/m`));
      row("Last reading", h("span", { class: "age", "data-at": live.last_reading_at || "" }, age(live.last_reading_at)));
      if (stale(s)) row("Sensors", h("span", { class: "warn" }, `stale: ${(live.stale_sensors || []).join(", ") || "no recent reading"}`));
    } else {
      row("Live", "no sensor on this space");
      row("Baseline risk", `${num(p.risk_100)}`, p.band ? ` (${p.band}${p.threat ? `, ${p.threat}` : ""})` : "");
    }
    const speed = live && live.worst_speed_kmh != null ? live.worst_speed_kmh : p.worst_speed_kmh;
    row("Worst approach", speed == null ? "no vehicle approach" : `${num(speed)} km/h`);
    if (p.capacity_persons != null) row("Capacity", `${num(p.capacity_persons)} persons`);
    return h("div", { class: "popup", "data-space-uid": s.uid }, h("h3", null, spaceName(s)),
      h("p", { class: "sub" }, String(p.kind || "").replace(/_/g, " ")), table);
  }

  // ---- state -----------------------------------------------------------------------------
  function applyState(row) {
    const s = spaces.get(String(row.space_uid));
    if (!s) return;
    if (s.live && time(row.last_reading_at) < time(s.live.last_reading_at)) return; // older
    const t = time(row.last_reading_at), last = s.history[s.history.length - 1];
    if (row.density != null && Number.isFinite(t) && (!last || t > last[0])) {
      s.history.push([t, Number(row.density)]);
      if (s.history.length > HISTORY) s.history.shift();
    }
    const fresh = !s.live || time(s.live.last_reading_at) !== t;
    s.live = row;
    dirty.spaces.add(s.uid);
    for (const x of bySpace.get(s.uid) || []) dirty.sensors.add(x.data.sensor_id);
    if (fresh && ready && !sensorsTimer) sensorsTimer = setTimeout(refreshSensors, 1000); // exact values
  }
  function drawSpace(s) {
    const st = styleOf(s);
    if (st.key !== s.key) {
      s.layer.setStyle(st);
      if (s.live && !s.key.startsWith("L") && !s.key.startsWith("S")) s.layer.bringToFront();
      s.key = st.key;
    }
    const live = s.live;
    if (live) {
      window.controlState[s.uid] = { name: spaceName(s), density: live.density, los: live.los, alert: live.alert,
        stale: stale(s), rise_per_min: live.rise_per_min, live_risk: live.live_risk,
        last_reading_at: live.last_reading_at, seen_at: performance.now(), points: s.history.length };
    }
    if (s.row) {
      const d = s.row;
      d.dataset.los = live && live.los ? live.los : "";
      d.dataset.density = live && live.density != null ? String(live.density) : "";
      d.dataset.alert = (live && live.alert) || "";
      d.dataset.stale = String(stale(s));
      d.querySelector(".density").textContent = live && live.density != null ? `${num(live.density, 2)} p/m²` : "no reading";
      d.querySelector(".losc").replaceChildren(losChip(live && live.los));
    }
    if (openUid === s.uid) popup.setContent(popupNode(s));
  }

  // ---- alerts ----------------------------------------------------------------------------
  function applyAlert(data) {
    const { event_id: _e, at: _a, ...a } = data;
    if (a.alert_id == null) return;
    const id = String(a.alert_id), old = alerts.get(id);
    if (old && time(a.updated_at) < time(old.data.updated_at)) return; // an older copy
    const merged = { ...(old && old.data), ...a };
    const flash = ready && (!old || (SEVERITY[merged.severity] || 0) > (SEVERITY[old.data.severity] || 0));
    alerts.set(id, { data: merged, row: old && old.row, flash: flash || (old && old.flash) });
    dirty.alerts.add(id);
  }
  function drawAlert(id) {
    const entry = alerts.get(id), a = entry.data, list = $("alerts");
    if (a.state === "resolved") {
      if (entry.row) entry.row.remove();
      alerts.delete(id);
      return;
    }
    const s = spaces.get(String(a.space_uid));
    const where = spaceName(s) || a.sensor_id || a.space_uid || "—";
    const li = entry.row || h("li");
    li.className = `alert sev-${a.severity}${li.className.match(/ flash-[ab]/)?.[0] || ""}`;
    Object.assign(li.dataset, { alertId: id, kind: a.kind || "", state: a.state || "open", severity: a.severity || "",
      condition: a.condition || "", spaceUid: a.space_uid || "", openedAt: a.opened_at || "" });
    const decided = a.state === "acknowledged" ? `acknowledged by ${a.acknowledged_by || "?"}${a.acknowledged_note ? ` — ${a.acknowledged_note}` : ""}` : "open";
    li.replaceChildren(
      h("div", { class: "head" }, h("span", { class: "sev" }, a.severity || "?"), h("span", { class: "kind" }, KINDS[a.kind] || a.kind || ""),
        h("button", { class: "where", type: "button", "data-action": "show", title: "Show on the map" }, where),
        h("time", { class: "age", "data-at": a.opened_at || "", title: `opened ${a.opened_at || "?"}, updated ${a.updated_at || "?"}` }, age(a.opened_at))),
      h("p", { class: "msg" }, a.message || "", a.condition === "cleared" ? " (cleared)" : ""),
      h("div", { class: "foot" }, h("span", { class: "state" }, decided),
        a.state === "open" ? h("button", { type: "button", "data-action": "acknowledge" }, "Acknowledge") : null,
        h("button", { type: "button", "data-action": "resolve" }, "Resolve"),
        h("a", { href: `/alerts/${encodeURIComponent(id)}.cap`, target: "_blank", rel: "noopener", title: "CAP 1.2 message" }, "CAP")));
    if (entry.flash && flashes++ < MAX_FLASH) { // alternate names: the animation restarts, no reflow
      const on = li.classList.contains("flash-a") ? "flash-b" : "flash-a";
      li.classList.remove("flash-a", "flash-b");
      li.classList.add(on);
    }
    entry.flash = false;
    if (!entry.row) { // newest first; a new alert is usually the newest
      entry.row = li;
      li.openedAt = time(a.opened_at);
      let next = list.firstElementChild;
      while (next && !(next.openedAt < li.openedAt)) next = next.nextElementSibling;
      list.insertBefore(li, next);
    }
  }
  $("alerts").addEventListener("click", (e) => {
    const btn = e.target.closest("button[data-action]");
    if (!btn) return;
    const id = btn.closest("[data-alert-id]").dataset.alertId, a = alerts.get(id);
    if (!a) return;
    if (btn.dataset.action === "show") openSpace(String(a.data.space_uid), null, true);
    else decide(id, btn.dataset.action);
  });

  // ---- the operator's decision (an in-page dialog): recorded as the logged-in user's -----
  let deciding = null, me = { user: null, csrf: null }; // /auth/me: who, and the CSRF token
  function decide(id, action) {
    const a = alerts.get(id).data;
    deciding = { id, action };
    const verb = action === "acknowledge" ? "Acknowledge" : "Resolve";
    $("decide-title").textContent = `${verb} alert`;
    $("decide-submit").textContent = verb;
    $("decide-what").textContent = `${a.severity} · ${KINDS[a.kind] || a.kind} · ${spaceName(spaces.get(String(a.space_uid))) || a.sensor_id || ""}: ${a.message || ""}`;
    $("decide-known-name").textContent = me.user || "?";
    $("decide-note").value = "";
    $("decide-error").hidden = true;
    $("decide").showModal();
    $("decide-note").focus();
  }
  $("decide-cancel").addEventListener("click", () => $("decide").close());
  $("decide-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const note = $("decide-note").value.trim(), err = $("decide-error");
    const { id, action } = deciding, submit = $("decide-submit");
    submit.disabled = true;
    try {
      const headers = { "content-type": "application/json", ...(me.csrf ? { "X-CSRF-Token": me.csrf } : {}) };
      applyAlert(await getJSON(`/alerts/${encodeURIComponent(id)}/${action}`, { method: "POST",
        headers, body: JSON.stringify({ note: note || null }) }));
      $("decide").close();
    } catch (ex) {
      err.textContent = `Not ${action}d: ${ex.message}`;
      err.hidden = false;
      if (ex.status === 409) getJSON(`/alerts/${encodeURIComponent(id)}`).then(applyAlert, () => {});
      if (ex.status === 404 && alerts.has(id)) applyAlert({ ...alerts.get(id).data, state: "resolved" });
    } finally {
      submit.disabled = false;
      schedule();
    }
  });

  // ---- feed: each space with sensors, its sensors' last readings --------------------------
  function setSensors(list) {
    const known = new Set(sensors.keys());
    let changed = list.length !== known.size;
    for (const data of list) {
      const id = String(data.sensor_id), old = sensors.get(id);
      changed = changed || !old || old.data.space_uid !== data.space_uid;
      sensors.set(id, { data, row: old && old.row });
      dirty.sensors.add(id);
      known.delete(id);
    }
    for (const id of known) sensors.delete(id);
    bySpace.clear();
    for (const x of sensors.values()) {
      const uid = String(x.data.space_uid);
      if (!bySpace.has(uid)) bySpace.set(uid, []);
      bySpace.get(uid).push(x);
    }
    dirty.feed = dirty.feed || changed;
  }
  function drawFeed() {
    for (const s of spaces.values()) s.row = null;
    const rows = [...bySpace].map(([uid, xs]) => {
      const s = spaces.get(uid);
      const li = h("li", { class: "space-row", id: s ? domId(uid) : null, "data-space-uid": s ? uid : "" },
        h("div", { class: "line" }, h("button", { class: "name", type: "button", title: "Show on the map" }, s ? spaceName(s) : "Sensors without a space"),
          h("span", { class: "flag" }, "stale"), h("span", { class: "density" }), h("span", { class: "losc" })),
        h("ul", { class: "sensors" }, ...xs.sort((a, b) => String(a.data.sensor_id).localeCompare(String(b.data.sensor_id))).map((x) => {
          x.row = h("li", { class: "sensor", "data-sensor-id": x.data.sensor_id },
            h("span", { class: "sid", title: String(x.data.kind || "") }, x.data.name ? `${x.data.name} (${x.data.sensor_id})` : String(x.data.sensor_id)),
            h("span", { class: "value" }), h("span", { class: "age" }), h("span", { class: "flag" }, "stale"));
          dirty.sensors.add(String(x.data.sensor_id));
          return x.row;
        })));
      if (s) { s.row = li; dirty.spaces.add(uid); }
      return [s ? spaceName(s) : "\uffff", li];
    });
    rows.sort((a, b) => a[0].localeCompare(b[0]));
    $("feed").replaceChildren(...rows.map((r) => r[1]));
  }
  $("feed").addEventListener("click", (e) => {
    const btn = e.target.closest("button.name"), row = btn && btn.closest("[data-space-uid]");
    if (row && row.dataset.spaceUid) openSpace(row.dataset.spaceUid, null, true);
  });
  function sensorAt(x) { // its last reading: the register's, or its space's state when it is alone there
    const s = spaces.get(String(x.data.space_uid)), own = x.data.last ? x.data.last.observed_at : null;
    const state = s && s.live && (bySpace.get(s.uid) || []).length === 1 ? s.live.last_reading_at : null;
    return !own || time(state) > time(own) ? state || own : own;
  }
  function sensorStale(x) { // the state's stale_sensors, else its own silence
    const s = spaces.get(String(x.data.space_uid)), at = sensorAt(x);
    if (s && s.live && (s.live.stale_sensors || []).includes(x.data.sensor_id)) return true;
    return at ? silent(at) : !(s && s.live);
  }
  function refreshSensors() {
    getJSON(`${BASE}/sensors`).then((list) => { setSensors(list); schedule(); }, () => {})
      .finally(() => { sensorsTimer = 0; });
  }
  function drawSensor(x) {
    if (!x.row) return;
    const last = x.data.last, at = sensorAt(x);
    let value = at ? "…" : "no reading";
    if (last && last.present != null) value = `${last.present} present`;
    else if (last && last.density != null) value = `${num(last.density, 2)} p/m²`;
    else if (last && last.count_in != null) value = `in ${last.count_in} / out ${last.count_out ?? 0} per ${num(last.interval_s)} s`;
    x.row.querySelector(".value").textContent = value;
    const ageEl = x.row.querySelector(".age");
    ageEl.dataset.at = at || "";
    ageEl.textContent = age(ageEl.dataset.at);
    x.row.dataset.stale = String(sensorStale(x));
  }

  // ---- flush, ticker, stream -------------------------------------------------------------
  let flashes = 0;
  function flush() {
    frame = flashes = 0;
    if (dirty.feed) { dirty.feed = false; drawFeed(); }
    for (const uid of dirty.spaces) drawSpace(spaces.get(uid));
    for (const id of dirty.alerts) drawAlert(id);
    for (const id of dirty.sensors) if (sensors.has(id)) drawSensor(sensors.get(id));
    dirty.spaces.clear(); dirty.alerts.clear(); dirty.sensors.clear();
    summary();
  }
  function summary() {
    const open = [...alerts.values()].filter((a) => a.data.state === "open").length;
    const live = [...spaces.values()].filter((s) => s.live);
    const f = live.filter((s) => s.live.los === "F" && !stale(s)).length;
    const silentN = [...sensors.values()].filter(sensorStale).length;
    $("alert-count").textContent = String(alerts.size);
    $("alerts-empty").hidden = alerts.size > 0;
    $("feed-count").textContent = sensors.size ? `${sensors.size} sensors${silentN ? `, ${silentN} stale` : ""}` : "";
    $("feed-empty").hidden = sensors.size > 0;
    $("summary").replaceChildren(h("b", null, String(open)), " open alerts · ", h("b", null, String(live.length)),
      ` of ${spaces.size} spaces live · `, h("b", null, String(f)), " at LOS F · ", h("b", null, String(silentN)), " sensors stale");
  }
  function tick() {
    $("clock").textContent = new Date(now()).toLocaleTimeString();
    for (const el of document.querySelectorAll(".age[data-at]")) { const t = age(el.dataset.at); if (el.textContent !== t) el.textContent = t; }
    for (const s of spaces.values()) if (s.live && s.key !== styleOf(s).key) dirty.spaces.add(s.uid);
    for (const x of sensors.values()) if (x.row && x.row.dataset.stale !== String(sensorStale(x))) dirty.sensors.add(x.data.sensor_id);
    schedule();
  }
  const setConn = (state, label) => { $("conn").dataset.state = state; $("conn").querySelector(".label").textContent = label; };
  function connect(after) {
    const es = new EventSource(`${BASE}/events${after != null ? `?after=${after}` : ""}`);
    let wasDown = false;
    es.addEventListener("open", () => {
      setConn("live", "live");
      if (wasDown && lastId == null && ready) resync(); // nothing to resume from
      wasDown = false;
    });
    es.addEventListener("error", () => {
      wasDown = true;
      if (es.readyState !== EventSource.CLOSED) { setConn("reconnecting", "reconnecting…"); return; }
      setConn("offline", "offline — retrying");
      setTimeout(() => { connect(lastId); if (ready) resync(); }, 3000); // the browser gave up
    });
    for (const [kind, apply] of [["state", (d) => (d.spaces || []).forEach(applyState)], ["alert", applyAlert]]) {
      es.addEventListener(kind, (e) => {
        if (e.lastEventId) lastId = Number(e.lastEventId);
        let data;
        try { data = JSON.parse(e.data); } catch { return; }
        if (!ready) { backlog.push([apply, data]); return; }
        apply(data);
        schedule();
      });
    }
  }
  async function resync() {
    try {
      const [state, open, list] = await Promise.all([getJSON(`${BASE}/state`),
        getJSON(`${BASE}/alerts?state=open,acknowledged`), getJSON(`${BASE}/sensors`)]);
      state.spaces.forEach(applyState);
      const ids = new Set(open.map((a) => String(a.alert_id)));
      for (const [id, a] of alerts) if (!ids.has(id)) applyAlert({ ...a.data, state: "resolved" });
      open.forEach(applyAlert);
      setSensors(list);
      schedule();
    } catch { /* the stream's next reconnect tries again */ }
  }
  async function start() {
    connect(null);
    try {
      const [geo, state, open, list, who] = await Promise.all([getJSON(`${BASE}/spaces.geojson`), getJSON(`${BASE}/state`),
        getJSON(`${BASE}/alerts?state=open,acknowledged`), getJSON(`${BASE}/sensors`), getJSON("/auth/me")]);
      me = { user: who.user, csrf: who.csrf_token };
      drawMap(geo);
      setSensors(list);
      state.spaces.forEach(applyState);
      open.forEach(applyAlert);
      flush();
      ready = true;
      for (const [apply, data] of backlog.splice(0)) apply(data);
      schedule();
      $("banner").hidden = true;
      setInterval(tick, 1000);
      tick();
      requestAnimationFrame(() => { window.controlReadyAt = performance.now(); markReady(window.controlReadyAt); });
    } catch (ex) {
      $("banner").textContent = `Could not load the control room of ${CITY}: ${ex.message}. Retrying…`;
      $("banner").hidden = false;
      setTimeout(() => location.reload(), 5000);
    }
  }
  start();
})();
