// Ferrum Studio: a single-page app over the JSON API under /api/.
// Vanilla JS, no framework, no network access beyond this server.
// Pages are hash routes (#/overview, #/keys, #/doc/KEY, #/new, #/query,
// #/indexes, #/metrics, #/ops); the live parts poll the API once a second.
"use strict";

(function () {
  // ---------- token and API ----------
  const TOKEN_KEY = "ferrum-studio-token";
  (function takeToken() {
    const params = new URLSearchParams(location.search);
    const token = params.get("token");
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token);
      params.delete("token");
      const rest = params.toString();
      history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
    }
  })();

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body, headers) {
    const h = Object.assign({}, headers || {});
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) h["Authorization"] = "Bearer " + token;
    if (method !== "GET") h["X-Ferrum-Studio"] = "1";
    const init = { method: method, headers: h, cache: "no-store" };
    if (body !== undefined) {
      h["Content-Type"] = "application/json";
      init.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "Studio is not reachable (" + e.message + ")");
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      throw new ApiError(res.status, (data && data.error) || res.status + " " + res.statusText);
    }
    return data;
  }

  const docPath = (key) => "/api/docs/" + encodeURIComponent(key);

  // ---------- small helpers ----------
  function el(tag, attrs) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "class") node.className = v;
        else if (k === "text") node.textContent = v;
        else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : v);
      }
    }
    for (let i = 2; i < arguments.length; i++) {
      const c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) c.forEach((x) => x && node.append(x));
      else node.append(c);
    }
    return node;
  }

  function fmtNum(n) {
    if (n === null || n === undefined) return "–";
    return Number(n).toLocaleString("en-US", { maximumFractionDigits: n < 10 ? 1 : 0 });
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
  }

  function fmtDuration(s) {
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + (s % 60) + "s";
    return s + "s";
  }

  function toast(message, isError) {
    const t = document.getElementById("toast");
    t.textContent = message;
    t.className = "toast show" + (isError ? " error" : "");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (t.className = "toast"), isError ? 5000 : 2200);
  }

  function confirmDialog(title, text, okLabel) {
    const back = document.getElementById("modal");
    document.getElementById("modal-title").textContent = title;
    document.getElementById("modal-text").textContent = text;
    const ok = document.getElementById("modal-ok");
    const cancel = document.getElementById("modal-cancel");
    ok.textContent = okLabel || "Delete";
    back.hidden = false;
    ok.focus();
    return new Promise((resolve) => {
      function done(answer) {
        back.hidden = true;
        ok.removeEventListener("click", yes);
        cancel.removeEventListener("click", no);
        document.removeEventListener("keydown", key);
        resolve(answer);
      }
      const yes = () => done(true);
      const no = () => done(false);
      const key = (e) => e.key === "Escape" && done(false);
      ok.addEventListener("click", yes);
      cancel.addEventListener("click", no);
      document.addEventListener("keydown", key);
    });
  }

  // Pretty JSON with syntax colours, built from text nodes (never innerHTML).
  function jsonView(value) {
    const pre = el("pre", { class: "json" });
    function put(text, cls) {
      pre.append(cls ? el("span", { class: cls, text: text }) : document.createTextNode(text));
    }
    function walk(v, indent) {
      const pad = "  ".repeat(indent);
      if (v === null) put("null", "j-null");
      else if (typeof v === "string") put(JSON.stringify(v), "j-str");
      else if (typeof v === "number") put(String(v), "j-num");
      else if (typeof v === "boolean") put(String(v), "j-bool");
      else if (Array.isArray(v)) {
        if (!v.length) return put("[]");
        put("[\n");
        v.forEach((x, i) => {
          put(pad + "  ");
          walk(x, indent + 1);
          put(i < v.length - 1 ? ",\n" : "\n");
        });
        put(pad + "]");
      } else {
        const keys = Object.keys(v);
        if (!keys.length) return put("{}");
        put("{\n");
        keys.forEach((k, i) => {
          put(pad + "  ");
          put(JSON.stringify(k), "j-key");
          put(": ");
          walk(v[k], indent + 1);
          put(i < keys.length - 1 ? ",\n" : "\n");
        });
        put(pad + "}");
      }
    }
    walk(value, 0);
    return pre;
  }

  function compact(v) {
    const s = typeof v === "string" ? v : JSON.stringify(v);
    return s === undefined ? "" : s.length > 80 ? s.slice(0, 79) + "…" : s;
  }

  // ---------- relaxed JSON (the query page's input) ----------
  // JSON as people type it: keys may go unquoted ({age: {$gte: 40}}),
  // strings may use single quotes ('Paris'), and a trailing comma is fine.
  // Errors name the line and column, with the line and a caret under it.
  class RelaxedJsonError extends Error {}

  function parseRelaxed(text, what) {
    let i = 0;
    const fail = (msg, at) => {
      const pos = at === undefined ? i : at;
      const before = text.slice(0, pos);
      const line = before.split("\n").length;
      const lineStart = before.lastIndexOf("\n") + 1;
      const lineEnd = text.indexOf("\n", pos) < 0 ? text.length : text.indexOf("\n", pos);
      const col = pos - lineStart + 1;
      const shown = text.slice(lineStart, lineEnd);
      throw new RelaxedJsonError(what + ": " + msg + " at line " + line + ", column " + col +
        "\n  " + shown + "\n  " + " ".repeat(Math.max(0, col - 1)) + "^");
    };
    const ws = () => {
      while (i < text.length && /\s/.test(text[i])) i++;
    };
    const describe = () => (i >= text.length ? "the end of the input" : JSON.stringify(text[i]));
    function string() {
      const quote = text[i];
      const start = i;
      i++;
      let out = "";
      while (i < text.length && text[i] !== quote) {
        let c = text[i];
        if (c === "\n") fail("unterminated string", start);
        if (c === "\\") {
          i++;
          const e = text[i];
          const simple = { n: "\n", t: "\t", r: "\r", b: "\b", f: "\f", "/": "/", "\\": "\\", '"': '"', "'": "'" };
          if (e in simple) c = simple[e];
          else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) {
            c = String.fromCharCode(parseInt(text.slice(i + 1, i + 5), 16));
            i += 4;
          } else fail("unknown escape \\" + (e === undefined ? "" : e), i - 1);
        }
        out += c;
        i++;
      }
      if (i >= text.length) fail("unterminated string", start);
      i++;
      return out;
    }
    function word() {
      const m = /^[A-Za-z_$][\w$.\-]*/.exec(text.slice(i));
      if (!m) return null;
      i += m[0].length;
      return m[0];
    }
    function value() {
      ws();
      const c = text[i];
      if (c === "{") return object();
      if (c === "[") return array();
      if (c === '"' || c === "'") return string();
      const num = /^-?(\d+)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
      if (num) {
        i += num[0].length;
        return Number(num[0]);
      }
      const start = i;
      const w = word();
      if (w === "true") return true;
      if (w === "false") return false;
      if (w === "null") return null;
      if (w !== null) fail("unexpected word " + JSON.stringify(w) + " (quote strings: '" + w + "')", start);
      fail("expected a value but found " + describe());
    }
    function object() {
      const out = {};
      i++;
      ws();
      while (text[i] !== "}") {
        ws();
        let key;
        const at = i;
        if (text[i] === '"' || text[i] === "'") key = string();
        else key = word();
        if (key === null) fail("expected a key or \"}\" but found " + describe());
        ws();
        if (text[i] !== ":") fail("expected \":\" after key " + JSON.stringify(key) + " but found " + describe());
        i++;
        if (Object.prototype.hasOwnProperty.call(out, key)) fail("key " + JSON.stringify(key) + " appears twice", at);
        out[key] = value();
        ws();
        if (text[i] === ",") {
          i++;
          ws();
        } else if (text[i] !== "}") fail("expected \",\" or \"}\" but found " + describe());
      }
      i++;
      return out;
    }
    function array() {
      const out = [];
      i++;
      ws();
      while (text[i] !== "]") {
        out.push(value());
        ws();
        if (text[i] === ",") {
          i++;
          ws();
        } else if (text[i] !== "]") fail("expected \",\" or \"]\" but found " + describe());
      }
      i++;
      return out;
    }
    const result = value();
    ws();
    if (i < text.length) fail("unexpected " + describe() + " after the value");
    return result;
  }

  // ---------- the chart (canvas, drawn by hand) ----------
  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  // Series colours: get, set, delete, query; file size, garbage.
  const SERIES = {
    get: { label: "get", color: "#2f6db7" },
    set: { label: "set", color: "#b7410e" },
    delete: { label: "delete", color: "#c62828" },
    query: { label: "query", color: "#2f7d4f" },
    file: { label: "file size", color: "#6b655f" },
    garbage: { label: "garbage", color: "#e0a384" },
  };

  // A line chart of one or more series ({name, points: [{t, v}]}) over the
  // last samples; opts.format labels the y axis (numbers by default).
  function drawChart(canvas, series, opts) {
    opts = opts || {};
    const fmt = opts.format || fmtNum;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h) return;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, w, h);
    const left = opts.format ? 70 : 56, right = 12, top = 12, bottom = 26;
    const pw = w - left - right, ph = h - top - bottom;
    const all = series.flatMap((s) => s.points);
    const tEnd = all.length ? Math.max(...all.map((p) => p.t)) : 0;
    const tFirst = all.length ? Math.min(...all.map((p) => p.t)) : 0;
    // The window grows with the history, in steps of 30 s, up to two minutes.
    const span = Math.min(120, Math.max(30, Math.ceil((tEnd - tFirst) / 30) * 30));
    const tStart = tEnd - span;
    const visible = series.map((s) => ({ name: s.name, points: s.points.filter((p) => p.t >= tStart) }));
    const max = niceMax(Math.max(1, ...visible.flatMap((s) => s.points.map((p) => p.v))));
    const x = (t) => left + ((t - tStart) / span) * pw;
    const y = (v) => top + ph - (v / max) * ph;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b655f";
    ctx.strokeStyle = "#ece8e3";
    ctx.lineWidth = 1;
    const rows = 4;
    for (let i = 0; i <= rows; i++) {
      const v = (max / rows) * i;
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, yy);
      ctx.lineTo(left + pw, yy);
      ctx.stroke();
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      ctx.fillText(fmt(v), left - 8, yy);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const step = span <= 30 ? 10 : span <= 60 ? 15 : 30;
    for (let s = 0; s <= span; s += step) {
      ctx.fillText(s === span ? "now" : "-" + Math.round(span - s) + "s", x(tStart + s), top + ph + 8);
    }
    if (!visible.some((s) => s.points.length >= 2)) {
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("collecting samples…", left + pw / 2, top + ph / 2);
      return;
    }
    for (const s of visible) {
      if (s.points.length < 2) continue;
      const color = SERIES[s.name].color;
      ctx.beginPath();
      s.points.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v))));
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      ctx.stroke();
      const last = s.points[s.points.length - 1];
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.arc(x(last.t), y(last.v), 3, 0, Math.PI * 2);
      ctx.fill();
    }
  }

  // The legend under a chart: a swatch and a label per series, with a value.
  function chartLegend(names, values) {
    return el("div", { class: "legend" }, names.map((n) => el("span", { "data-series": n },
      el("i", { style: "background:" + SERIES[n].color }), SERIES[n].label + (values ? " " + values[n] : ""))));
  }

  const OPS = ["get", "set", "delete", "query"];

  function opsSeries(metrics) {
    return OPS.map((name) => ({ name: name, points: metrics.samples.map((s) => ({ t: s.t, v: s[name + "_per_sec"] })) }));
  }

  function storageSeries(metrics) {
    return [
      { name: "file", points: metrics.samples.map((s) => ({ t: s.t, v: s.file_bytes })) },
      { name: "garbage", points: metrics.samples.map((s) => ({ t: s.t, v: s.garbage_bytes })) },
    ];
  }

  // ---------- shell: sidebar, router, polling ----------
  const main = document.getElementById("main");
  let overviewCache = null;
  let tick = null; // the current page's refresh, called once a second
  let generation = 0; // bumped on navigation: stale async renders stop
  let refocus = null; // the id of an input to focus again after a re-render

  // The dot in the sidebar: "on" (green) only for a handle that sees new
  // writes; "snapshot" (grey) for one that cannot; "off" (red) when Studio
  // itself does not answer.
  function setLive(state, text) {
    const dot = document.getElementById("live-dot");
    dot.className = "live " + state;
    document.getElementById("live-text").textContent = text;
  }

  // What the open handle is, in words (the Overview's subtitle).
  function modeText(o) {
    if (o.database_live === false) {
      return "A read-only snapshot of the file as it was when opened: writes made since do not show here. Reopen to refresh.";
    }
    if (o.database_read_only) return "A read-only handle that follows the writer: new writes show up live; nothing can be changed here.";
    if (o.studio_read_only) return "The database this process has open, live; this Studio is read-only.";
    return "The database this process has open, live.";
  }

  async function refreshShell() {
    try {
      const o = await api("GET", "/api/overview");
      overviewCache = o;
      document.getElementById("db-path").textContent = o.path;
      const badges = document.getElementById("badges");
      const list = [el("span", { class: "badge", text: "v" + o.version }), el("span", { class: "badge", text: "fsync " + o.fsync })];
      if (o.studio_read_only || o.database_read_only) list.push(el("span", { class: "badge", id: "read-only-badge", text: "read-only" }));
      badges.replaceChildren(...list);
      // A read-only handle that cannot follow the writer shows the file as of its open.
      if (o.database_live === false) setLive("snapshot", "snapshot as of open · not live");
      else setLive("on", "live · " + new Date().toLocaleTimeString());
      return o;
    } catch (e) {
      setLive("off", e.status === 403 ? "access denied" : "disconnected");
      throw e;
    }
  }

  function readOnly() {
    return !!(overviewCache && (overviewCache.studio_read_only || overviewCache.database_read_only));
  }

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, "");
    const q = raw.indexOf("?");
    const path = q < 0 ? raw : raw.slice(0, q);
    const params = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
    const slash = path.indexOf("/");
    const page = slash < 0 ? path : path.slice(0, slash);
    const arg = slash < 0 ? null : decodeURIComponent(path.slice(slash + 1));
    return { page: page || "overview", arg: arg, params: params };
  }

  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  const keysHash = (prefix) => "#/keys" + (prefix ? "?prefix=" + encodeURIComponent(prefix) : "");
  const docHash = (key) => "#/doc/" + encodeURIComponent(key);

  function header(title, sub) {
    return [el("h1", { text: title }), el("p", { class: "sub", text: sub || "" })];
  }

  function errorBox() {
    return el("div", { class: "error-box", role: "alert" });
  }

  async function route() {
    const gen = ++generation;
    tick = null;
    const r = parseHash();
    document.querySelectorAll("nav a").forEach((a) => {
      const page = r.page === "doc" || r.page === "new" ? "keys" : r.page;
      a.classList.toggle("active", a.dataset.page === page);
    });
    const pages = { overview: overview, keys: keys, doc: doc, new: newDoc, query: query, indexes: indexes, metrics: metricsPage, ops: opsPage };
    const render = pages[r.page] || overview;
    main.replaceChildren();
    try {
      await render(r, gen);
    } catch (e) {
      if (gen === generation) main.append(el("div", { class: "error-box", text: e.message }));
    }
  }

  // ---------- Overview ----------
  async function overview(r, gen) {
    const heads = header("Overview", "");
    heads[1].id = "overview-mode";
    main.append(...heads);
    const cards = el("div", { class: "grid" });
    const storage = el("div", { class: "panel" });
    const chartCanvas = el("canvas", { class: "chart mid", id: "overview-chart" });
    const legend = el("div");
    const idx = el("div", { class: "panel" });
    main.append(
      cards,
      el("div", { class: "cols2" },
        el("div", null, storage, el("div", { class: "panel" }, el("h2", { text: "Operations per second" }), chartCanvas, legend)),
        idx)
    );
    function card(label, value, hint, id) {
      return el("div", { class: "card" }, el("div", { class: "label", text: label }),
        el("div", { class: "value", text: value, id: id }), hint ? el("div", { class: "hint", text: hint }) : null);
    }
    async function refresh() {
      const o = await refreshShell();
      const m = await api("GET", "/api/metrics");
      if (gen !== generation) return;
      heads[1].textContent = modeText(o);
      const total = Math.max(1, o.file_bytes);
      const livePct = (100 * o.live_bytes) / total;
      cards.replaceChildren(
        card("Keys", fmtNum(o.keys), null, "o-keys"),
        card("File size", fmtBytes(o.file_bytes), o.path),
        card("Live data", fmtBytes(o.live_bytes), livePct.toFixed(0) + "% of the file"),
        card("Garbage", fmtBytes(o.garbage_bytes), o.garbage_bytes > 0 ? "Compact reclaims it (Operations)" : "nothing to reclaim"),
        card("Ops / sec", fmtNum(o.ops_per_sec), fmtNum(o.gets) + " gets · " + fmtNum(o.sets) + " sets"),
        card("Uptime", fmtDuration(o.uptime_s), "since the database was opened")
      );
      storage.replaceChildren(
        el("h2", { text: "Storage" }),
        el("div", { class: "bar", title: "live vs. garbage bytes" },
          el("div", { class: "live-part", style: "width:" + livePct + "%" }),
          el("div", { class: "garbage-part", style: "width:" + (100 - livePct) + "%" })),
        el("div", { class: "legend" },
          el("span", null, el("i", { style: "background:var(--ok)" }), "live " + fmtBytes(o.live_bytes)),
          el("span", null, el("i", { style: "background:#e0a384" }), "garbage " + fmtBytes(o.garbage_bytes)),
          el("span", null, "index memory " + fmtBytes(o.index_bytes)))
      );
      idx.replaceChildren(
        el("h2", { text: "Indexes" }),
        o.indexes.length
          ? el("table", null,
              el("thead", null, el("tr", null, el("th", { text: "Field" }), el("th", { text: "Entries" }))),
              el("tbody", null, o.indexes.map((i) => el("tr", null, el("td", { class: "mono", text: i.field }), el("td", { text: fmtNum(i.entries) })))))
          : el("div", { class: "empty", text: "No indexes yet." }),
        el("div", { class: "row", style: "margin-top:12px" }, el("a", { href: "#/indexes", text: "Manage indexes →" }))
      );
      legend.replaceChildren(chartLegend(OPS));
      drawChart(chartCanvas, opsSeries(m));
    }
    await refresh();
    tick = refresh;
  }

  // ---------- Keys ----------
  // One level of the key tree from /api/tree; groups load their children
  // when first opened.
  async function treeLevel(prefix) {
    const res = await api("GET", "/api/tree?" + new URLSearchParams({ prefix: prefix, limit: "200" }).toString());
    const out = [];
    for (const g of res.groups) {
      const children = el("div", { class: "children" });
      const details = el("details", null,
        el("summary", null,
          el("span", { text: g.name + ":" }),
          el("span", { class: "count", text: fmtNum(g.count) + (g.capped ? "+" : "") }),
          el("a", { class: "drill", href: keysHash(g.prefix), title: "list keys starting with " + g.prefix, text: "filter" })),
        children);
      let loaded = false;
      details.addEventListener("toggle", async () => {
        if (!details.open || loaded) return;
        loaded = true;
        children.replaceChildren(el("div", { class: "muted leaf", text: "loading…" }));
        try {
          children.replaceChildren(...(await treeLevel(g.prefix)));
        } catch (e) {
          children.replaceChildren(el("div", { class: "error-box", text: e.message }));
        }
      });
      out.push(details);
    }
    for (const key of res.keys) {
      out.push(el("a", { class: "leaf", href: docHash(key), title: key, text: key.slice(prefix.length) || key }));
    }
    if (res.more) out.push(el("div", { class: "muted leaf", text: "… more: filter by a prefix to see them" }));
    if (!out.length) out.push(el("div", { class: "empty", text: "–" }));
    return out;
  }

  // "expires in" for a TTL in seconds: 45s, 12m, 3h 5m, 2d 4h.
  function fmtTtl(seconds) {
    return seconds < 1 ? "<1s" : fmtDuration(seconds);
  }

  // One key list row: the key, then its type, size and TTL, then a preview.
  function entryRow(e) {
    return el("li", { class: "entry" },
      el("div", { class: "entry-head" },
        el("a", { href: docHash(e.key), title: e.key, text: e.key }),
        el("span", { class: "entry-meta" },
          e.ttl !== null ? el("span", { class: "ttl", title: "expires in " + e.ttl.toFixed(1) + " s", text: "TTL " + fmtTtl(e.ttl) }) : null,
          el("span", { class: "type type-" + e.type, text: e.type }),
          el("span", { class: "size", text: fmtBytes(e.bytes) }))),
      el("div", { class: "preview", title: e.preview, text: e.preview }));
  }

  const SEARCH_HELP = "search content: role:admin · address.city:Paris · age:42 · or free text";

  async function keys(r, gen) {
    const prefix = r.params.get("prefix") || "";
    const q = r.params.get("q") || "";
    const limit = Number(r.params.get("limit") || 100);
    const keysLink = (p, query, lim) => {
      const params = new URLSearchParams();
      if (p) params.set("prefix", p);
      if (query) params.set("q", query);
      if (lim && lim !== 100) params.set("limit", String(lim));
      const text = params.toString();
      return "#/keys" + (text ? "?" + text : "");
    };
    main.append(...header("Keys", "Browse in key order with each value's type, size, TTL and a preview; the tree groups keys on \":\"."));
    const input = el("input", { type: "text", class: "grow", id: "prefix", placeholder: "key prefix, e.g. user:", value: prefix, "aria-label": "key prefix" });
    const search = el("input", { type: "search", class: "grow", id: "search", placeholder: SEARCH_HELP, value: q, "aria-label": "search document content",
      title: "field:value terms (all must match; values are JSON when they parse, so age:42 is a number and zip:\"75001\" a string) become a query filter; anything else is free text, matched against keys and values, ignoring case" });
    const size = el("select", { id: "page-size", "aria-label": "page size" },
      [25, 100, 500, 1000].map((n) => el("option", { value: n, selected: n === limit, text: n + " per page" })));
    const newBtn = el("a", { class: "btn primary", href: "#/new?prefix=" + encodeURIComponent(prefix), id: "new-doc", text: "New document" });
    let timer = null;
    const later = (from) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        refocus = from.id; // typing goes on in the re-rendered page
        go(keysLink(input.value, search.value, limit));
      }, 300);
    };
    input.addEventListener("input", () => later(input));
    search.addEventListener("input", () => later(search));
    size.addEventListener("change", () => go(keysLink(prefix, q, Number(size.value))));
    const crumbs = el("div", { class: "crumbs" }, el("a", { href: keysHash(""), text: "all keys" }));
    let acc = "";
    const segs = prefix.split(":");
    segs.forEach((seg, i) => {
      if (i === segs.length - 1 && seg === "") return;
      acc += seg + (i < segs.length - 1 ? ":" : "");
      crumbs.append(el("span", { class: "muted", text: "›" }), el("a", { href: keysHash(acc), text: seg + (i < segs.length - 1 ? ":" : "") }));
    });
    const mapping = el("div", { class: "muted mono small", id: "search-mapping" });
    const treePanel = el("div", { class: "panel tree", id: "key-tree" });
    const list = el("ul", { class: "keylist", id: "key-list" });
    const status = el("span", { class: "muted", id: "page-status" });
    const prev = el("button", { class: "btn", type: "button", id: "prev-page", text: "← Previous" });
    const next = el("button", { class: "btn", type: "button", id: "next-page", text: "Next →" });
    const err = errorBox();
    main.append(
      el("div", { class: "panel" }, el("div", { class: "row" }, input, size, newBtn), el("div", { class: "row" }, search),
        el("div", { class: "row" }, mapping), el("div", { class: "row" }, crumbs), err),
      el("div", { class: "cols" },
        el("div", null, el("h2", { text: "Tree" }), treePanel),
        el("div", null, el("h2", { text: q ? "Matches" : "Keys" }),
          el("div", { class: "panel" }, list, el("div", { class: "row", style: "margin-top:12px" }, prev, next, status))))
    );
    if (refocus) {
      const again = refocus === "search" ? search : input;
      refocus = null;
      again.focus();
      again.setSelectionRange(again.value.length, again.value.length);
    }
    const cursors = [""]; // cursors[i] starts page i
    let page = 0;
    async function load() {
      const params = new URLSearchParams({ prefix: prefix, limit: String(limit) });
      if (q) params.set("q", q);
      if (cursors[page]) params.set("after", cursors[page]);
      let res;
      try {
        res = await api("GET", "/api/entries?" + params.toString());
      } catch (e) {
        list.replaceChildren();
        err.textContent = e.message;
        return;
      }
      if (gen !== generation) return;
      err.textContent = "";
      if (res.search && res.search.filter) mapping.textContent = "searching with the query filter " + JSON.stringify(res.search.filter);
      else if (res.search) mapping.textContent = "free text: keys and values containing \"" + res.search.text + "\" (any case)";
      else mapping.textContent = "";
      if (res.next) cursors[page + 1] = res.next;
      const none = q ? "No document matches." : prefix ? "No keys start with \"" + prefix + "\"." : "The database is empty.";
      list.replaceChildren(...(res.entries.length ? res.entries.map(entryRow) : [el("li", { class: "empty", text: none })]));
      prev.disabled = page === 0;
      next.disabled = !res.next;
      status.textContent = "page " + (page + 1) + " · " + res.entries.length + (q ? " matches" : " keys") + (res.next ? " · more follow" : "");
    }
    prev.addEventListener("click", () => { if (page > 0) { page--; load().catch((e) => toast(e.message, true)); } });
    next.addEventListener("click", () => { if (cursors[page + 1]) { page++; load().catch((e) => toast(e.message, true)); } });
    await load();
    treeLevel(prefix)
      .then((nodes) => gen === generation && treePanel.replaceChildren(...nodes))
      .catch((e) => treePanel.replaceChildren(el("div", { class: "error-box", text: e.message })));
    refreshShell().catch(() => {});
  }

  // ---------- Document ----------
  function parentPrefix(key) {
    const i = key.lastIndexOf(":");
    return i < 0 ? "" : key.slice(0, i + 1);
  }

  async function doc(r, gen) {
    const key = r.arg || "";
    await refreshShell().catch(() => {});
    let data;
    try {
      data = await api("GET", docPath(key));
    } catch (e) {
      if (gen !== generation) return;
      main.append(...header("Document", key), el("div", { class: "error-box", text: e.message }),
        el("p", null, el("a", { href: keysHash(parentPrefix(key)), text: "← back to keys" })));
      return;
    }
    if (gen !== generation) return;
    const ro = readOnly();
    const title = el("h1", { class: "mono", id: "doc-key", text: key });
    const ttlText = () => (data.ttl === null ? "no expiry" : "expires in " + fmtTtl(data.ttl) + " (" + data.ttl.toFixed(1) + " s)");
    const meta = el("p", { class: "sub", id: "doc-ttl-text", text: ttlText() });
    const body = el("div", { class: "panel", id: "doc-body" });
    const err = errorBox();
    const editBtn = el("button", { class: "btn primary", type: "button", id: "edit-doc", text: "Edit", disabled: ro, title: ro ? "read-only" : null });
    const delBtn = el("button", { class: "btn danger", type: "button", id: "delete-doc", text: "Delete", disabled: ro, title: ro ? "read-only" : null });
    const back = el("a", { class: "btn", href: keysHash(parentPrefix(key)), text: "← Keys" });
    main.append(title, meta, el("div", { class: "row", style: "margin-bottom:14px" }, back, editBtn, delBtn), body, err);

    function view() {
      body.replaceChildren(jsonView(data.value));
      editBtn.hidden = false;
    }
    function edit() {
      err.textContent = "";
      editBtn.hidden = true;
      const area = el("textarea", { id: "doc-editor", spellcheck: "false", rows: 18, "aria-label": "document JSON" });
      area.value = JSON.stringify(data.value, null, 2);
      // The TTL in seconds; left as shown, the save keeps the key's TTL exactly.
      const shownTtl = data.ttl === null ? "" : data.ttl.toFixed(1);
      const ttlInput = el("input", { type: "text", id: "doc-ttl", inputmode: "decimal", placeholder: "never", value: shownTtl, "aria-label": "expires in (seconds)" });
      const never = el("button", { class: "btn", type: "button", id: "doc-ttl-clear", text: "Never expire", onclick: () => { ttlInput.value = ""; } });
      const ttlRow = el("div", { class: "row" }, el("label", { for: "doc-ttl", text: "Expires in (seconds, empty for never)" }), ttlInput, never);
      const save = el("button", { class: "btn primary", type: "button", id: "save-doc", text: "Save" });
      const cancel = el("button", { class: "btn", type: "button", text: "Cancel", onclick: view });
      save.addEventListener("click", async () => {
        let value;
        try {
          value = JSON.parse(area.value);
        } catch (e) {
          err.textContent = "Not valid JSON: " + e.message;
          return;
        }
        const ttl = ttlInput.value.trim();
        let path = docPath(key);
        if (ttl !== shownTtl) {
          if (ttl !== "" && !(Number(ttl) > 0)) {
            err.textContent = "The TTL must be a positive number of seconds, or empty for never.";
            return;
          }
          path += "?ttl=" + (ttl === "" ? "none" : encodeURIComponent(ttl));
        }
        try {
          const saved = await api("PUT", path, value);
          data.value = value;
          data.ttl = saved.ttl;
          meta.textContent = ttlText();
          toast("Saved " + key);
          view();
        } catch (e) {
          err.textContent = e.message;
        }
      });
      body.replaceChildren(area, ttlRow, el("div", { class: "row end", style: "margin-top:10px" }, cancel, save));
      area.focus();
    }
    editBtn.addEventListener("click", edit);
    delBtn.addEventListener("click", async () => {
      if (!(await confirmDialog("Delete this document?", "The document under \"" + key + "\" will be removed. This cannot be undone.", "Delete"))) return;
      try {
        await api("DELETE", docPath(key));
        toast("Deleted " + key);
        go(keysHash(parentPrefix(key)));
      } catch (e) {
        err.textContent = e.message;
      }
    });
    view();
  }

  async function newDoc(r) {
    await refreshShell().catch(() => {});
    const prefix = r.params.get("prefix") || "";
    main.append(...header("New document", "Insert a JSON value under a new key (an existing key is never overwritten here)."));
    const keyInput = el("input", { type: "text", class: "grow", id: "new-key", placeholder: "key, e.g. user:42", value: prefix, "aria-label": "key" });
    const area = el("textarea", { id: "new-value", spellcheck: "false", rows: 14, "aria-label": "document JSON" });
    area.value = "{\n  \n}";
    const ttlInput = el("input", { type: "text", id: "new-ttl", inputmode: "decimal", placeholder: "never", "aria-label": "expires in (seconds)" });
    const err = errorBox();
    const insert = el("button", { class: "btn primary", type: "button", id: "insert-doc", text: "Insert", disabled: readOnly() });
    insert.addEventListener("click", async () => {
      err.textContent = "";
      const key = keyInput.value;
      if (!key) return (err.textContent = "The key must not be empty.");
      let value;
      try {
        value = JSON.parse(area.value);
      } catch (e) {
        return (err.textContent = "Not valid JSON: " + e.message);
      }
      const ttl = ttlInput.value.trim();
      if (ttl !== "" && !(Number(ttl) > 0)) return (err.textContent = "The TTL must be a positive number of seconds, or empty for never.");
      try {
        await api("PUT", docPath(key) + (ttl ? "?ttl=" + encodeURIComponent(ttl) : ""), value, { "If-None-Match": "*" });
        toast("Inserted " + key);
        go(docHash(key));
      } catch (e) {
        err.textContent = e.message;
      }
    });
    main.append(el("div", { class: "panel" }, el("div", { class: "row" }, keyInput), el("div", { class: "row" }, area),
      el("div", { class: "row" }, el("label", { for: "new-ttl", text: "Expires in (seconds, empty for never)" }), ttlInput),
      el("div", { class: "row end" }, el("a", { class: "btn", href: keysHash(prefix), text: "Cancel" }), insert), err));
    keyInput.focus();
  }

  // ---------- Query / Find ----------
  // Result columns: the key, then every top-level field met on the page (in
  // order of appearance), up to MAX_COLUMNS; FIELDS narrows them.
  const MAX_COLUMNS = 40;

  function resultsTable(rows) {
    const cols = [];
    let dropped = 0;
    for (const [, v] of rows) {
      if (v && typeof v === "object" && !Array.isArray(v)) {
        for (const k of Object.keys(v)) {
          if (cols.includes(k)) continue;
          if (cols.length < MAX_COLUMNS) cols.push(k);
          else dropped++;
        }
      }
    }
    const plain = cols.length === 0;
    const cell = (v, c) => {
      const has = v && typeof v === "object" && !Array.isArray(v) && c in v;
      const text = has ? compact(v[c]) : "";
      return el("td", { class: "cell", title: text, text: text });
    };
    return el("div", null,
      el("div", { class: "table-wrap" }, el("table", { id: "results" },
        el("thead", null, el("tr", null, el("th", { text: "key" }), plain ? el("th", { text: "value" }) : cols.map((c) => el("th", { text: c })))),
        el("tbody", null, rows.map(([k, v]) => el("tr", null,
          el("td", { class: "mono" }, el("a", { href: docHash(k), text: k })),
          plain ? el("td", { class: "cell", text: compact(v) }) : cols.map((c) => cell(v, c))))))),
      dropped ? el("p", { class: "muted", text: "More fields than fit: list the ones to show under fields." }) : null);
  }

  // The fields box: "name, address.city" or a JSON list; empty for whole documents.
  function fieldsValue(text) {
    const t = text.trim();
    if (!t) return null;
    if (t.startsWith("[")) return parseRelaxed(t, "fields");
    return t.split(",").map((f) => f.trim()).filter((f) => f);
  }

  async function query(r, gen) {
    await refreshShell().catch(() => {});
    main.append(...header("Query", "Mongo-style filters ($eq $ne $gt $gte $lt $lte $in $nin $exists $regex $and $or …) and find by field. Keys may go unquoted and strings may use single quotes."));
    const tabQuery = el("button", { type: "button", class: "active", text: "Query" });
    const tabFind = el("button", { type: "button", text: "Find" });
    const form = el("div", { class: "panel" });
    const out = el("div", { id: "query-out" });
    main.append(el("div", { class: "tabs" }, tabQuery, tabFind), form, out);

    const filter = el("textarea", { id: "filter", spellcheck: "false", rows: 5, "aria-label": "filter", placeholder: "{role: 'admin', score: {$gte: 40}}" });
    filter.value = r.params.get("filter") || "{}";
    const sort = el("input", { type: "text", id: "sort", placeholder: "sort: score, -score or [['score', -1]]", class: "grow", "aria-label": "sort" });
    const fields = el("input", { type: "text", id: "fields", placeholder: "fields: name, address.city (empty: whole documents)", class: "grow", "aria-label": "fields" });
    const limit = el("input", { type: "number", id: "limit", min: 1, max: 10000, value: 50, "aria-label": "results per page", style: "width:90px" });
    const run = el("button", { class: "btn primary", type: "button", id: "run-query", text: "Run query" });
    const explainBtn = el("button", { class: "btn", type: "button", id: "explain-query", text: "Explain" });
    const err = errorBox();
    err.classList.add("pre");

    const field = el("input", { type: "text", id: "find-field", placeholder: "field, e.g. address.city", class: "grow", "aria-label": "field" });
    const value = el("input", { type: "text", id: "find-value", placeholder: "value as JSON, e.g. \"Paris\" or 42", class: "grow", "aria-label": "value" });
    const runFind = el("button", { class: "btn primary", type: "button", id: "run-find", text: "Find" });

    function showQuery() {
      tabQuery.className = "active";
      tabFind.className = "";
      form.replaceChildren(filter,
        el("div", { class: "row" }, sort, fields),
        el("div", { class: "row end" }, el("label", { class: "muted", for: "limit", text: "per page" }), limit, explainBtn, run), err);
    }
    function showFind() {
      tabQuery.className = "";
      tabFind.className = "active";
      form.replaceChildren(el("div", { class: "row" }, field, value, runFind), err);
    }
    tabQuery.addEventListener("click", showQuery);
    tabFind.addEventListener("click", showFind);

    function planPanel(plan) {
      return el("div", { class: "panel" }, el("h2", { text: "Plan" }), jsonView(plan));
    }
    function sortValue() {
      const t = sort.value.trim();
      if (!t) return null;
      return /^[[{"']/.test(t) ? parseRelaxed(t, "sort") : t;
    }
    // A failed query leaves no old results behind that could be taken for its own.
    function failed(e) {
      out.replaceChildren();
      err.textContent = e.message;
    }
    let body = null; // the last query run, for paging
    let skip = 0;
    async function runPage() {
      err.textContent = "";
      try {
        const res = await api("POST", "/api/query", Object.assign({}, body, { skip: skip }));
        if (gen !== generation) return;
        const first = res.results.length ? skip + 1 : 0;
        const lastRow = skip + res.results.length;
        const prev = el("button", { class: "btn", type: "button", id: "prev-results", text: "← Previous", disabled: skip === 0 });
        const next = el("button", { class: "btn", type: "button", id: "next-results", text: "Next →", disabled: !res.more });
        prev.addEventListener("click", () => { skip = Math.max(0, skip - body.limit); runPage(); });
        next.addEventListener("click", () => { skip += body.limit; runPage(); });
        out.replaceChildren(
          el("div", { class: "panel" },
            el("h2", { text: "Results" }),
            el("div", { class: "row" },
              el("span", { class: "muted grow", id: "result-count",
                text: (res.total ? first + "–" + lastRow + " of " + fmtNum(res.total) : "0") + " documents · " + res.elapsed_ms.toFixed(1) + " ms" }),
              prev, next),
            res.results.length ? resultsTable(res.results) : el("div", { class: "empty", text: "No document matches." })),
          planPanel(res.plan));
      } catch (e) {
        failed(e);
      }
    }
    run.addEventListener("click", async () => {
      err.textContent = "";
      try {
        const per = Number(limit.value || 50);
        if (!(per >= 1 && per <= 10000)) throw new Error("per page must be from 1 to 10000");
        body = { filter: parseRelaxed(filter.value.trim() || "{}", "filter"), sort: sortValue(), fields: fieldsValue(fields.value), limit: per };
      } catch (e) {
        return failed(e);
      }
      skip = 0;
      await runPage();
    });
    explainBtn.addEventListener("click", async () => {
      err.textContent = "";
      try {
        const res = await api("POST", "/api/explain", { filter: parseRelaxed(filter.value.trim() || "{}", "filter") });
        out.replaceChildren(planPanel(res.plan));
      } catch (e) {
        failed(e);
      }
    });
    runFind.addEventListener("click", async () => {
      err.textContent = "";
      let v;
      try {
        v = parseRelaxed(value.value, "value");
      } catch (e) {
        v = value.value; // a bare word is a string
      }
      try {
        const res = await api("POST", "/api/find", { field: field.value, value: v });
        out.replaceChildren(
          el("div", { class: "panel" },
            el("h2", { text: "Keys" }),
            el("p", { class: "muted", text: res.count + " keys · " + res.elapsed_ms.toFixed(1) + " ms" }),
            res.keys.length ? el("ul", { class: "keylist" }, res.keys.map((k) => el("li", null, el("a", { href: docHash(k), text: k }))))
              : el("div", { class: "empty", text: "No document matches." })),
          res.plan ? planPanel(res.plan) : null);
      } catch (e) {
        failed(e);
      }
    });
    showQuery();
  }

  // ---------- Indexes ----------
  async function indexes(r, gen) {
    await refreshShell().catch(() => {});
    main.append(...header("Indexes", "Secondary indexes on document fields (dotted paths reach into nested objects)."));
    const table = el("div", { class: "panel", id: "index-list" });
    const field = el("input", { type: "text", id: "index-field", class: "grow", placeholder: "field, e.g. role or address.city", "aria-label": "field" });
    const create = el("button", { class: "btn primary", type: "button", id: "create-index", text: "Create index", disabled: readOnly() });
    const err = errorBox();
    main.append(el("div", { class: "panel" }, el("h2", { text: "New index" }), el("div", { class: "row" }, field, create), err), table);
    async function load() {
      const res = await api("GET", "/api/indexes");
      if (gen !== generation) return;
      table.replaceChildren(el("h2", { text: "Indexes" }), res.indexes.length
        ? el("table", null,
            el("thead", null, el("tr", null, el("th", { text: "Field" }), el("th", { text: "Entries" }), el("th", { text: "" }))),
            el("tbody", null, res.indexes.map((i) => el("tr", null,
              el("td", { class: "mono", text: i.field }),
              el("td", { text: fmtNum(i.entries) }),
              el("td", { style: "text-align:right" }, el("button", { class: "btn danger", type: "button", text: "Drop", disabled: readOnly(),
                onclick: async () => {
                  if (!(await confirmDialog("Drop this index?", "The index on \"" + i.field + "\" will be removed; queries on it fall back to scans.", "Drop"))) return;
                  try {
                    await api("DELETE", "/api/indexes/" + encodeURIComponent(i.field));
                    toast("Dropped index " + i.field);
                    load();
                  } catch (e) {
                    err.textContent = e.message;
                  }
                } }))))))
        : el("div", { class: "empty", text: "No indexes yet." }));
    }
    create.addEventListener("click", async () => {
      err.textContent = "";
      try {
        const res = await api("POST", "/api/indexes", { field: field.value });
        toast(res.created ? "Created index " + res.field : "Index " + res.field + " already exists");
        field.value = "";
        await load();
      } catch (e) {
        err.textContent = e.message;
      }
    });
    await load();
  }

  // ---------- Metrics ----------
  async function metricsPage(r, gen) {
    main.append(...header("Metrics", "Sampled once a second from the engine's counters; the charts show up to the last two minutes."));
    const cards = el("div", { class: "grid", id: "metric-cards" });
    const canvas = el("canvas", { class: "chart", id: "ops-chart" });
    const opsLegend = el("div", { id: "ops-legend" });
    const storageCanvas = el("canvas", { class: "chart mid", id: "storage-chart" });
    const storageLegend = el("div", { id: "storage-legend" });
    main.append(cards,
      el("div", { class: "panel" }, el("h2", { text: "Operations per second, by type" }), canvas, opsLegend),
      el("div", { class: "panel" }, el("h2", { text: "File size and garbage" }), storageCanvas, storageLegend));
    function card(label, value, id, hint) {
      return el("div", { class: "card" }, el("div", { class: "label", text: label }), el("div", { class: "value", id: id, text: value }),
        hint ? el("div", { class: "hint", text: hint }) : null);
    }
    async function refresh() {
      await refreshShell().catch(() => {});
      const m = await api("GET", "/api/metrics");
      if (gen !== generation) return;
      const s = m.stats;
      const last = m.samples.length ? m.samples[m.samples.length - 1] : null;
      const rate = (name) => fmtNum(last ? last[name + "_per_sec"] : 0) + "/s";
      cards.replaceChildren(
        card("Ops / sec", fmtNum(last ? last.ops_per_sec : s.ops_per_sec), "m-ops", "gets, sets and deletes"),
        card("Gets", fmtNum(s.gets), "m-gets", rate("get")),
        card("Sets", fmtNum(s.sets), "m-sets", rate("set")),
        card("Deletes", fmtNum(s.deletes), "m-deletes", rate("delete")),
        card("Queries", fmtNum(last ? last.queries : 0), "m-queries", rate("query")),
        card("Keys", fmtNum(s.keys), "m-keys"),
        card("File size", fmtBytes(s.file_bytes), "m-file"),
        card("Garbage", fmtBytes(s.file_bytes - s.live_bytes), "m-garbage"),
        card("Uptime", fmtDuration(s.uptime_s), "m-uptime")
      );
      canvas.dataset.samples = String(m.samples.length);
      canvas.dataset.last = last ? String(last.ops_per_sec) : "0";
      canvas.dataset.total = last ? String(last.gets + last.sets + last.deletes) : "0";
      canvas.dataset.peak = String(Math.max(0, ...m.samples.map((x) => x.ops_per_sec)));
      for (const op of OPS) canvas.dataset[op + "Peak"] = String(Math.max(0, ...m.samples.map((x) => x[op + "_per_sec"])));
      storageCanvas.dataset.file = last ? String(last.file_bytes) : "0";
      storageCanvas.dataset.garbage = last ? String(last.garbage_bytes) : "0";
      opsLegend.replaceChildren(chartLegend(OPS, last ? { get: rate("get"), set: rate("set"), delete: rate("delete"), query: rate("query") } : null));
      storageLegend.replaceChildren(chartLegend(["file", "garbage"], last ? { file: fmtBytes(last.file_bytes), garbage: fmtBytes(last.garbage_bytes) } : null));
      drawChart(canvas, opsSeries(m));
      drawChart(storageCanvas, storageSeries(m), { format: fmtBytes });
    }
    await refresh();
    tick = refresh;
  }

  // ---------- Operations ----------
  // Compact, backup and export run as server jobs; the page polls their
  // progress. Compact and backup ask first (they rewrite or replace a file).
  async function opsPage(r, gen) {
    const o = await refreshShell().catch(() => null);
    main.append(...header("Operations", "Maintenance on the open database. One operation runs at a time; progress shows below."));
    const ro = readOnly();
    const dbPath = o && o.path !== ":memory:" ? o.path : "";
    const compactBtn = el("button", { class: "btn primary", type: "button", id: "op-compact", text: "Compact…", disabled: ro, title: ro ? "read-only" : null });
    const backupPath = el("input", { type: "text", class: "grow", id: "backup-path", "aria-label": "backup file on the server",
      placeholder: "/absolute/path/on/the/server/backup.db", value: dbPath ? dbPath + ".backup" : "" });
    const backupBtn = el("button", { class: "btn primary", type: "button", id: "op-backup", text: "Back up…", disabled: ro, title: ro ? "read-only" : null });
    const exportPrefix = el("input", { type: "text", class: "grow", id: "export-prefix", placeholder: "only keys starting with (empty: all)", "aria-label": "export prefix" });
    const exportBtn = el("button", { class: "btn primary", type: "button", id: "op-export", text: "Export JSONL" });
    const bar = el("div", { class: "bar progress" }, el("div", { class: "live-part", id: "op-bar", style: "width:0%" }));
    const statusLine = el("div", { class: "muted", id: "op-status", text: "No operation yet." });
    const err = errorBox();
    err.id = "op-error";
    main.append(
      el("div", { class: "panel" }, el("h2", { text: "Compact" }),
        el("p", { class: "muted", text: "Rewrite the file with only live records, reclaiming garbage. Reads and writes go on meanwhile." }),
        el("div", { class: "row" }, compactBtn)),
      el("div", { class: "panel" }, el("h2", { text: "Backup" }),
        el("p", { class: "muted", text: "A consistent copy to a file on the server (replaced if it exists), verified before it is renamed into place." }),
        el("div", { class: "row" }, backupPath, backupBtn)),
      el("div", { class: "panel" }, el("h2", { text: "Export" }),
        el("p", { class: "muted", text: "Every key as JSON Lines ({\"key\", \"value\", \"expires_at\"}), downloaded by this browser; ferrumdb import reads it back." }),
        el("div", { class: "row" }, exportPrefix, exportBtn)),
      el("div", { class: "panel", id: "op-panel" }, el("h2", { text: "Progress" }), bar, statusLine, err));

    const units = (job, n) => (job.unit === "bytes" ? fmtBytes(n) : fmtNum(n) + " records");
    let downloaded = 0; // the export job already handed to the browser
    function show(job) {
      if (!job) return;
      const pct = job.state === "done" ? 100 : job.total ? Math.min(100, (100 * job.done) / job.total) : 0;
      document.getElementById("op-bar").style.width = pct.toFixed(1) + "%";
      bar.dataset.state = job.state;
      let text = job.kind + " · " + job.state + " · " + units(job, job.done) + (job.total ? " of " + units(job, job.total) : "") + " · " + job.elapsed_s.toFixed(1) + " s";
      if (job.state === "done" && job.kind === "compact") text += " · file " + fmtBytes(job.result.file_bytes_before) + " → " + fmtBytes(job.result.file_bytes_after);
      if (job.state === "done" && job.kind === "backup") text += " · " + fmtBytes(job.result.bytes) + " written to " + job.result.path;
      if (job.state === "done" && job.kind === "export") text += " · " + fmtNum(job.result.records) + " records";
      statusLine.textContent = text;
      err.textContent = job.state === "failed" ? job.kind + " failed: " + job.error : "";
      const busy = job.state === "running";
      compactBtn.disabled = busy || ro;
      backupBtn.disabled = busy || ro;
      exportBtn.disabled = busy;
    }
    async function download(job) {
      // fetch (not a link) so the token header goes along; then save the blob.
      const h = {};
      const token = sessionStorage.getItem(TOKEN_KEY);
      if (token) h["Authorization"] = "Bearer " + token;
      const res = await fetch(job.download, { headers: h, cache: "no-store" });
      if (!res.ok) throw new Error("download failed: " + res.status + " " + res.statusText);
      const url = URL.createObjectURL(await res.blob());
      const a = el("a", { href: url, download: "ferrumdb-export.jsonl" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    }
    async function poll() {
      const res = await api("GET", "/api/ops");
      if (gen !== generation) return;
      show(res.job);
      const job = res.job;
      if (job && job.kind === "export" && job.state === "done" && job.id > downloaded && exporting) {
        downloaded = job.id;
        exporting = false;
        await download(job).catch((e) => (err.textContent = e.message));
      }
      if (job && job.state === "running") setTimeout(() => poll().catch(() => {}), 200);
    }
    let exporting = false;
    async function start(path, body) {
      err.textContent = "";
      try {
        const res = await api("POST", path, body);
        show(res.job);
        await poll();
      } catch (e) {
        exporting = false;
        err.textContent = e.message;
      }
    }
    compactBtn.addEventListener("click", async () => {
      if (!(await confirmDialog("Compact the database?", "The file is rewritten with only its live records (" + (o ? fmtBytes(o.garbage_bytes) + " of garbage now" : "") + "). Reads and writes go on meanwhile.", "Compact"))) return;
      start("/api/ops/compact");
    });
    backupBtn.addEventListener("click", async () => {
      const path = backupPath.value.trim();
      if (!path) return (err.textContent = "Enter the backup file's absolute path on the server.");
      if (!(await confirmDialog("Back up the database?", "A copy is written to " + path + " on the server; a file already there is replaced.", "Back up"))) return;
      start("/api/ops/backup", { path: path });
    });
    exportBtn.addEventListener("click", () => {
      exporting = true;
      start("/api/ops/export", { prefix: exportPrefix.value });
    });
    await poll();
  }

  // ---------- start ----------
  window.addEventListener("hashchange", route);
  window.addEventListener("resize", () => tick && tick().catch(() => {}));
  let busy = false;
  setInterval(async () => {
    if (busy || document.hidden) return;
    busy = true;
    try {
      if (tick) await tick();
      else await refreshShell();
    } catch (e) {
      setLive("off", "disconnected");
    } finally {
      busy = false;
    }
  }, 1000);
  route();
})();
