// The Strata console: a few pages over the admin API (/v1/…), refreshed every few seconds.
// No framework and no build: DOM built with `h`, text always set as text (record keys and
// values are untrusted), one polling timer for the page shown.

const REFRESH_MS = 3000;
const HISTORY_MS = 10 * 60 * 1000;

const main = document.getElementById("main");
const live = document.getElementById("live");
let timer = null;
let generation = 0;
// Per group: [{t, lag}] while the console is open, for the lag chart.
const lagHistory = new Map();
// The last poll of each broker's counters, for rates.
let lastCounters = null;
const throughput = [];

// Replaces `el`'s children, skipping empty ones.
const setChildren = (el, children) => el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Credentials live in this tab only (sessionStorage): an Authorization header value.
const AUTH_KEY = "strata.authorization";
class Unauthenticated extends Error {}

// The console's own requests say so (X-Requested-With): a 401 then carries no Basic challenge,
// so the browser shows no password prompt of its own over the console's form.
function request(path, options = {}) {
  const headers = { "X-Requested-With": "XMLHttpRequest", ...(options.headers || {}) };
  const authorization = sessionStorage.getItem(AUTH_KEY);
  if (authorization) headers.Authorization = authorization;
  return fetch(path, { ...options, headers });
}

async function api(path, options) {
  const response = await request(path, options);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (response.status === 401) throw new Unauthenticated(body && body.error ? body.error : "sign in");
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return body;
}

function bytes(n) {
  if (n === null || n === undefined || n < 0) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
const num = (n) => (n === null || n === undefined || n < 0 ? "–" : Number(n).toLocaleString("en-US"));
const time = (ms) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");
const ids = (list) => (list || []).join(", ");
const card = (label, value, cls) => h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: `value ${cls || ""}` }, value));
const pill = (text, cls) => h("span", { class: `pill ${cls || ""}` }, text);

function table(headers, rows, numeric = []) {
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((t, i) => h("th", { class: numeric.includes(i) ? "num" : "" }, t)))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: numeric.includes(i) ? "num" : "" }, c))))
      : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "none"))));
}

function lineChart(points, label) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 1200 180");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const add = (tag, attrs, text) => {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
  };
  const max = Math.max(1, ...points.map((p) => p.v));
  const t0 = points.length ? points[0].t : 0;
  const t1 = points.length ? points[points.length - 1].t : 1;
  const x = (t) => 50 + ((t - t0) / Math.max(1, t1 - t0)) * 1140;
  const y = (v) => 160 - (v / max) * 140;
  add("line", { x1: 50, y1: 160, x2: 1190, y2: 160, stroke: "#cfd5de" });
  add("line", { x1: 50, y1: 20, x2: 50, y2: 160, stroke: "#cfd5de" });
  add("text", { x: 46, y: 24, "text-anchor": "end", "font-size": 11, fill: "#667085" }, num(Math.round(max)));
  add("text", { x: 46, y: 160, "text-anchor": "end", "font-size": 11, fill: "#667085" }, "0");
  add("text", { x: 1190, y: 176, "text-anchor": "end", "font-size": 11, fill: "#667085" }, points.length ? `${Math.round((t1 - t0) / 1000)} s` : "");
  if (points.length) {
    add("polyline", { fill: "none", stroke: "#3b5bdb", "stroke-width": 2, points: points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ") });
  }
  return h("div", { class: "chart" }, svg);
}

// Pages: each renders into `main`; `refresh` reruns while the page is shown.
const pages = {
  async overview() {
    const c = await api("/v1/cluster");
    const now = Date.now();
    const counters = { t: now, in: 0, out: 0, rin: 0, rout: 0 };
    for (const b of c.brokers) {
      counters.in += b.bytes_in || 0; counters.out += b.bytes_out || 0;
      counters.rin += b.records_in || 0; counters.rout += b.records_out || 0;
    }
    if (lastCounters && now > lastCounters.t) {
      const s = (now - lastCounters.t) / 1000;
      throughput.push({ t: now, in: Math.max(0, counters.in - lastCounters.in) / s, out: Math.max(0, counters.out - lastCounters.out) / s,
        rin: Math.max(0, counters.rin - lastCounters.rin) / s });
      while (throughput.length && now - throughput[0].t > HISTORY_MS) throughput.shift();
    }
    lastCounters = counters;
    const last = throughput[throughput.length - 1] || { in: 0, out: 0, rin: 0 };
    const active = c.brokers.filter((b) => b.state === "active").length;
    return [
      h("h1", {}, "Cluster ", h("span", { class: "muted" }, c.cluster_id)),
      h("div", { class: "cards" },
        card("Brokers", `${active} / ${c.brokers.length}`, active === c.brokers.length ? "good" : "bad"),
        card("Active controller", c.active_controller === null ? "none" : `node ${c.active_controller}`, c.active_controller === null ? "bad" : "good"),
        card("Topics", num(c.topics)),
        card("Partitions", num(c.partitions)),
        card("Under-replicated", num(c.under_replicated), c.under_replicated ? "bad" : "good"),
        card("Offline", num(c.offline), c.offline ? "bad" : "good"),
        card("Bytes in", `${bytes(last.in)}/s`),
        card("Bytes out", `${bytes(last.out)}/s`),
        card("Records in", `${num(Math.round(last.rin))}/s`)),
      h("h2", {}, "Throughput (bytes in per second)"),
      lineChart(throughput.map((p) => ({ t: p.t, v: p.in })), "bytes in per second"),
      h("div", { class: "grid2" },
        h("div", {}, h("h2", {}, "Brokers"),
          table(["ID", "Address", "Rack", "State", "Leaders", "Replicas"],
            c.brokers.map((b) => [String(b.id), `${b.host}:${b.port}`, b.rack || "–", pill(b.state, b.state === "active" ? "good" : "bad"), num(b.leaders), num(b.replicas)]), [4, 5])),
        h("div", {}, h("h2", {}, "Controllers"),
          table(["ID", "Address", "Role"], c.controllers.map((v) => [String(v.id), v.address, v.active ? pill("active", "good") : "voter"])))),
    ];
  },

  async topics() {
    const topics = await api("/v1/topics");
    const shown = topics.filter((t) => !t.internal);
    return [
      h("h1", {}, "Topics"),
      table(["Name", "Partitions", "Replication", "Under-replicated", "Mirror of"],
        shown.map((t) => [h("a", { href: `#/topics/${encodeURIComponent(t.name)}` }, t.name), num(t.partitions), num(t.replication_factor),
          t.under_replicated ? pill(num(t.under_replicated), "bad") : pill("0", "good"), t.mirror_of || "–"]), [1, 2]),
      h("p", { class: "muted" }, `${topics.length - shown.length} internal topic(s) not shown.`),
    ];
  },

  async topic(name) {
    const t = await api(`/v1/topics/${encodeURIComponent(name)}`);
    const overrides = t.configs.filter((c) => c.source !== "DEFAULT_CONFIG" && c.source !== "STATIC_BROKER_CONFIG");
    const local = t.partitions.reduce((s, p) => s + Math.max(0, p.local_bytes), 0);
    const remote = t.partitions.reduce((s, p) => s + (p.remote_bytes || 0), 0);
    const records = t.partitions.reduce((s, p) => s + Math.max(0, p.high_watermark - p.log_start_offset), 0);
    return [
      h("h1", {}, "Topic ", t.name),
      h("div", { class: "cards" }, card("Partitions", num(t.partitions.length)), card("Replication", num(t.replication_factor)),
        card("Records", num(records)), card("Local", bytes(local)), card("Remote", bytes(remote))),
      h("h2", {}, "Partitions"),
      table(["Partition", "Leader", "Replicas", "ISR", "Log start", "High watermark", "Local", "Remote"],
        t.partitions.map((p) => [String(p.partition), p.leader < 0 ? pill("none", "bad") : String(p.leader), ids(p.replicas),
          p.isr.length < p.replicas.length ? pill(ids(p.isr), "warn") : ids(p.isr), num(p.log_start_offset), num(p.high_watermark),
          bytes(p.local_bytes), p.remote_bytes === null || p.remote_bytes === undefined ? "–" : bytes(p.remote_bytes)]), [4, 5, 6, 7]),
      h("h2", {}, "Configs set on this topic"),
      table(["Name", "Value", "Source"], overrides.map((c) => [c.name, c.value ?? "–", c.source])),
      h("h2", {}, "Records"),
      recordBrowser(t),
    ];
  },

  async groups() {
    const groups = await api("/v1/groups");
    const details = await Promise.all(groups.map((g) => api(`/v1/groups/${encodeURIComponent(g.group)}`).catch(() => null)));
    return [
      h("h1", {}, "Consumer groups"),
      table(["Group", "State", "Members", "Lag", "Coordinator"],
        groups.map((g, i) => [h("a", { href: `#/groups/${encodeURIComponent(g.group)}` }, g.group), pill(g.state, g.state === "Stable" ? "good" : ""),
          details[i] ? num(details[i].members.length) : "–", details[i] ? num(details[i].lag) : "–", String(g.coordinator)]), [2, 3]),
    ];
  },

  async group(id) {
    const g = await api(`/v1/groups/${encodeURIComponent(id)}`);
    const history = lagHistory.get(id) || [];
    const now = Date.now();
    history.push({ t: now, v: g.lag });
    while (history.length && now - history[0].t > HISTORY_MS) history.shift();
    lagHistory.set(id, history);
    return [
      h("h1", {}, "Group ", g.group, " ", pill(g.state, g.state === "Stable" ? "good" : "")),
      h("div", { class: "cards" }, card("Total lag", num(g.lag), g.lag > 0 ? "" : "good"), card("Members", num(g.members.length)),
        card("Partitions", num(g.offsets.length)), card("Coordinator", `node ${g.coordinator}`)),
      h("h2", {}, "Lag over the last minutes"),
      lineChart(history, "total lag"),
      h("h2", {}, "Partitions"),
      table(["Topic", "Partition", "Committed", "Log end", "Lag", "Member"],
        g.offsets.map((o) => [o.topic, String(o.partition), num(o.committed), num(o.log_end), o.lag ? pill(num(o.lag), "warn") : num(o.lag), o.member || "–"]), [1, 2, 3, 4]),
      h("h2", {}, "Members"),
      table(["Member", "Client", "Host", "Assigned"],
        g.members.map((m) => [m.member_id, m.client_id, m.host, m.assignment.map((a) => `${a.topic} [${a.partitions.join(", ")}]`).join("; ") || "–"])),
    ];
  },

  async tiering() {
    const [rows, metrics] = await Promise.all([api("/v1/tiering"), request("/metrics").then((r) => r.text())]);
    const metric = (name, label) => metrics.split("\n").filter((l) => l.startsWith(name) && (!label || l.includes(label)))
      .reduce((s, l) => s + Number(l.split(" ").pop()), 0);
    const hits = metric("strata_tiering_cache_reads_total", 'result="hit"');
    const misses = metric("strata_tiering_cache_reads_total", 'result="miss"');
    const lag = rows.reduce((s, r) => s + r.upload_lag_bytes, 0);
    const stored = rows.reduce((s, r) => s + r.remote_stored_bytes, 0);
    return [
      h("h1", {}, "Tiered storage ", h("span", { class: "muted" }, "(partitions this node leads)")),
      h("div", { class: "cards" }, card("Upload lag", bytes(lag), lag ? "" : "good"), card("In the bucket", bytes(stored)),
        card("Cache hit ratio", hits + misses ? `${Math.round((100 * hits) / (hits + misses))}%` : "–"),
        card("Cache", bytes(metric("strata_tiering_cache_bytes", 'medium="disk"'))),
        card("Uploaded", bytes(metric("strata_tiering_uploaded_bytes_total"))), card("Read back", bytes(metric("strata_tiering_downloaded_bytes_total")))),
      h("h2", {}, "Partitions"),
      table(["Topic", "Partition", "Remote", "Local", "Log end", "Remote bytes", "Stored", "Local bytes", "Upload lag", "Last error"],
        rows.map((r) => [r.topic, String(r.partition), r.remote_start === null ? "–" : `${num(r.remote_start)}–${num(r.remote_end)}`,
          num(r.local_start), num(r.log_end), bytes(r.remote_bytes), bytes(r.remote_stored_bytes), bytes(r.local_bytes),
          r.upload_lag_segments ? pill(`${r.upload_lag_segments} (${bytes(r.upload_lag_bytes)})`, "warn") : "0", r.last_error || "–"]), [4, 5, 6, 7]),
    ];
  },

  async links() {
    const links = await api("/v1/links");
    const statuses = await Promise.all(links.map((l) => api(`/v1/links/${encodeURIComponent(l.name)}`).catch((e) => ({ error: e.message }))));
    const out = [h("h1", {}, "Cluster links")];
    if (!links.length) out.push(h("p", { class: "muted" }, "No cluster links. Create one with `strata link create` or POST /v1/links."));
    links.forEach((l, i) => {
      const s = statuses[i];
      out.push(h("h2", {}, `${l.name} ← ${l.source} `, pill(l.state, l.state === "active" ? "good" : "warn")));
      if (s.error) { out.push(h("div", { class: "error" }, s.error)); return; }
      out.push(h("div", { class: "cards" }, card("Lag (records)", num(s.lag_records), s.lag_records ? "" : "good"),
        card("Lag (seconds)", s.lag_seconds.toFixed(1)), card("Mirrored", bytes(s.bytes_mirrored)), card("Mirror topics", num(s.mirrors.length))));
      if (s.last_error) out.push(h("div", { class: "error" }, s.last_error));
      out.push(table(["Topic", "Source topic", "State", "Partition", "Mirror end", "Source end", "Lag", "Lag (s)"],
        s.mirrors.flatMap((m) => m.partitions.map((p) => [m.topic, m.source_topic, m.state, String(p.partition), num(p.mirror_end), num(p.source_end),
          num(p.lag_records), p.lag_seconds === null ? "–" : p.lag_seconds.toFixed(1)])), [3, 4, 5, 6, 7]));
    });
    return out;
  },
};

// The record browser of a topic page: kept across refreshes (it is not re-rendered).
let browser = null;
function recordBrowser(t) {
  if (browser && browser.topic === t.name) return browser.el;
  const partition = h("select", { "aria-label": "partition" }, t.partitions.map((p) => h("option", { value: p.partition }, `partition ${p.partition}`)));
  const mode = h("select", { "aria-label": "from" }, h("option", { value: "start" }, "from the start"), h("option", { value: "offset" }, "from offset"),
    h("option", { value: "time" }, "from time"), h("option", { value: "newest" }, "newest"));
  const at = h("input", { "aria-label": "offset or time", placeholder: "offset, or 2026-11-30 12:00", size: 22 });
  const pretty = h("input", { type: "checkbox", checked: "checked", id: "pretty" });
  const results = h("div", {});
  let next = null;
  const load = async (offset) => {
    const p = partition.value;
    let query = `partition=${p}&limit=50`;
    if (offset !== undefined) query += `&offset=${offset}`;
    else if (mode.value === "offset") query += `&offset=${Number(at.value) || 0}`;
    else if (mode.value === "time") query += `&timestamp=${Date.parse(at.value.replace(" ", "T")) || 0}`;
    else if (mode.value === "newest") {
      const part = t.partitions.find((x) => String(x.partition) === p);
      query += `&offset=${Math.max(part ? part.log_start_offset : 0, (part ? part.high_watermark : 0) - 50)}`;
    }
    setChildren(results, [h("p", { class: "muted" }, "loading…")]);
    try {
      const page = await api(`/v1/topics/${encodeURIComponent(t.name)}/records?${query}`);
      next = page.next;
      const value = (r) => {
        if (r.value === null) return h("span", { class: "muted" }, "null");
        if (pretty.checked && r.value_is_json) { try { return h("pre", {}, JSON.stringify(JSON.parse(r.value), null, 2)); } catch { /* shown as text */ } }
        return h("pre", {}, r.value);
      };
      setChildren(results, [
        h("p", { class: "muted" }, `offsets ${num(page.from)} to ${num(page.next - 1)} of ${num(page.log_start_offset)}–${num(page.high_watermark)}`),
        table(["Offset", "Timestamp", "Key", "Value", "Headers"],
          page.records.map((r) => [num(r.offset), time(r.timestamp), r.key ?? h("span", { class: "muted" }, "null"), value(r),
            Object.entries(r.headers).map(([k, v]) => `${k}=${v ?? ""}`).join(", ") || "–"]), [0]),
        page.next < page.high_watermark ? h("div", { class: "toolbar" }, h("button", { class: "secondary", onclick: () => load(next) }, "Next page")) : null]);
    } catch (e) {
      setChildren(results, [h("div", { class: "error" }, e.message)]);
    }
  };
  const el = h("div", {},
    h("div", { class: "toolbar" }, partition, mode, at, h("button", { onclick: () => load() }, "Show"),
      h("label", { for: "pretty" }, pretty, " pretty JSON")),
    results);
  browser = { topic: t.name, el };
  load();
  return el;
}

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "topics" && parts[1]) return ["topics", () => pages.topic(parts[1])];
  if (parts[0] === "groups" && parts[1]) return ["groups", () => pages.group(parts[1])];
  const name = pages[parts[0]] && parts[0] !== "topic" && parts[0] !== "group" ? parts[0] : "overview";
  return [name, pages[name]];
}

const who = document.getElementById("who");

// Who is signed in, in the header, with a way out.
function showIdentity(me) {
  if (!me.methods.length) return setChildren(who, []);
  const out = me.methods.length
    ? h("button", { class: "link", onclick: () => { sessionStorage.removeItem(AUTH_KEY); show(); } }, "Sign out")
    : null;
  setChildren(who, [h("span", {}, `${me.principal} · ${me.role}`), out]);
}

// The sign-in form, for the methods the admin API accepts; `why` says what went wrong before.
function loginForm(me, why) {
  clearTimeout(timer);
  setChildren(who, []);
  for (const a of document.querySelectorAll("nav a")) a.classList.remove("active");
  const user = h("input", { id: "user", name: "username", autocomplete: "username", placeholder: "user" });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", placeholder: "password" });
  const token = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", placeholder: "token" });
  const basic = me.methods.includes("basic");
  const tokens = me.methods.includes("token");
  const submit = async (e) => {
    e.preventDefault();
    const value = token.value
      ? `Bearer ${token.value.trim()}`
      : `Basic ${btoa(String.fromCodePoint(...new TextEncoder().encode(`${user.value}:${password.value}`)))}`;
    sessionStorage.setItem(AUTH_KEY, value);
    await show();
  };
  setChildren(main, [h("form", { class: "login", onsubmit: submit },
    h("h1", {}, "Sign in to Strata"),
    why ? h("div", { class: "error" }, why) : null,
    basic ? [h("label", { for: "user" }, "User"), user, h("label", { for: "password" }, "Password"), password] : null,
    basic && tokens ? h("p", { class: "muted" }, "or") : null,
    tokens ? [h("label", { for: "token" }, "Token"), token] : null,
    h("button", { type: "submit" }, "Sign in"),
    h("p", { class: "muted" }, "Viewers read; admins also change the cluster."))]);
  live.textContent = "";
}

async function show() {
  const mine = ++generation;
  clearTimeout(timer);
  let me;
  try {
    me = await api("/v1/whoami");
  } catch (e) {
    if (!(e instanceof Unauthenticated)) {
      // The node is away, not the credentials wrong: keep them and try again.
      if (mine !== generation) return;
      live.textContent = "not updating";
      live.classList.add("stale");
      if (!main.querySelector(".error")) main.prepend(h("div", { class: "error" }, `Cannot reach the admin API: ${e.message}`));
      timer = setTimeout(show, REFRESH_MS);
      return;
    }
    sessionStorage.removeItem(AUTH_KEY);
    me = await api("/v1/whoami").catch(() => null);
    if (mine === generation) loginForm(me || { methods: ["basic", "token"] }, e.message);
    return;
  }
  if (mine !== generation) return;
  if (!me.authenticated) return loginForm(me, null);
  showIdentity(me);
  const [nav, page] = route();
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.nav === nav);
  const refresh = async () => {
    try {
      const content = await page();
      if (mine !== generation) return;
      setChildren(main, content);
      live.textContent = `live · ${new Date().toLocaleTimeString("en-GB")}`;
      live.classList.remove("stale");
    } catch (e) {
      if (mine !== generation) return;
      if (e instanceof Unauthenticated) {
        sessionStorage.removeItem(AUTH_KEY);
        return loginForm(me, e.message);
      }
      live.textContent = "not updating";
      live.classList.add("stale");
      if (!main.querySelector(".error")) main.prepend(h("div", { class: "error" }, `Cannot load this page: ${e.message}`));
    }
    if (mine === generation) timer = setTimeout(refresh, REFRESH_MS);
  };
  await refresh();
}

window.addEventListener("hashchange", () => { browser = null; show(); });
show();
