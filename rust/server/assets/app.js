// Ferrum Studio: a single-page app over the JSON API under /api/.
// Vanilla JS, no framework, no network access beyond this server.
// Pages are hash routes (#/overview, #/keys, #/doc/KEY, #/new, #/query,
// #/indexes, #/metrics); the live parts poll the API once a second.
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

  // ---------- the chart (canvas, drawn by hand) ----------
  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function drawChart(canvas, points, opts) {
    opts = opts || {};
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h) return;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, w, h);
    const left = opts.small ? 8 : 56, right = 12, top = 12, bottom = opts.small ? 8 : 26;
    const pw = w - left - right, ph = h - top - bottom;
    const tEnd = points.length ? points[points.length - 1].t : 0;
    const tFirst = points.length ? points[0].t : 0;
    // The window grows with the history, in steps of 30 s, up to two minutes.
    const span = opts.span || Math.min(120, Math.max(30, Math.ceil((tEnd - tFirst) / 30) * 30));
    const tStart = tEnd - span;
    const visible = points.filter((p) => p.t >= tStart);
    const max = niceMax(Math.max(1, ...visible.map((p) => p.v)));
    const x = (t) => left + ((t - tStart) / span) * pw;
    const y = (v) => top + ph - (v / max) * ph;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b655f";
    ctx.strokeStyle = "#ece8e3";
    ctx.lineWidth = 1;
    const rows = opts.small ? 2 : 4;
    for (let i = 0; i <= rows; i++) {
      const v = (max / rows) * i;
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, yy);
      ctx.lineTo(left + pw, yy);
      ctx.stroke();
      if (!opts.small) {
        ctx.textAlign = "right";
        ctx.textBaseline = "middle";
        ctx.fillText(fmtNum(v), left - 8, yy);
      }
    }
    if (!opts.small) {
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      const step = span <= 30 ? 10 : span <= 60 ? 15 : 30;
      for (let s = 0; s <= span; s += step) {
        ctx.fillText(s === span ? "now" : "-" + Math.round(span - s) + "s", x(tStart + s), top + ph + 8);
      }
    }
    if (visible.length < 2) {
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("collecting samples…", left + pw / 2, top + ph / 2);
      return;
    }
    ctx.beginPath();
    visible.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v))));
    ctx.lineTo(x(visible[visible.length - 1].t), y(0));
    ctx.lineTo(x(visible[0].t), y(0));
    ctx.closePath();
    const grad = ctx.createLinearGradient(0, top, 0, top + ph);
    grad.addColorStop(0, "rgba(183,65,14,0.28)");
    grad.addColorStop(1, "rgba(183,65,14,0.02)");
    ctx.fillStyle = grad;
    ctx.fill();
    ctx.beginPath();
    visible.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v))));
    ctx.strokeStyle = "#b7410e";
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    ctx.stroke();
    const last = visible[visible.length - 1];
    ctx.fillStyle = "#b7410e";
    ctx.beginPath();
    ctx.arc(x(last.t), y(last.v), 3.5, 0, Math.PI * 2);
    ctx.fill();
  }

  function opsPoints(metrics) {
    return metrics.samples.map((s) => ({ t: s.t, v: s.ops_per_sec }));
  }

  // ---------- shell: sidebar, router, polling ----------
  const main = document.getElementById("main");
  let overviewCache = null;
  let tick = null; // the current page's refresh, called once a second
  let generation = 0; // bumped on navigation: stale async renders stop

  function setLive(ok, text) {
    const dot = document.getElementById("live-dot");
    dot.className = "live " + (ok ? "on" : "off");
    document.getElementById("live-text").textContent = text;
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
      if (o.database_live === false) setLive(false, "snapshot as of open · reopen to refresh");
      else setLive(true, "live · " + new Date().toLocaleTimeString());
      return o;
    } catch (e) {
      setLive(false, e.status === 403 ? "access denied" : "disconnected");
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
    const pages = { overview: overview, keys: keys, doc: doc, new: newDoc, query: query, indexes: indexes, metrics: metricsPage };
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
    main.append(...header("Overview", "The database this process has open, live."));
    const cards = el("div", { class: "grid" });
    const storage = el("div", { class: "panel" });
    const chartCanvas = el("canvas", { class: "chart mid", id: "overview-chart" });
    const idx = el("div", { class: "panel" });
    main.append(
      cards,
      el("div", { class: "cols2" },
        el("div", null, storage, el("div", { class: "panel" }, el("h2", { text: "Operations per second" }), chartCanvas)),
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
      const total = Math.max(1, o.file_bytes);
      const livePct = (100 * o.live_bytes) / total;
      cards.replaceChildren(
        card("Keys", fmtNum(o.keys), null, "o-keys"),
        card("File size", fmtBytes(o.file_bytes), o.path),
        card("Live data", fmtBytes(o.live_bytes), livePct.toFixed(0) + "% of the file"),
        card("Garbage", fmtBytes(o.garbage_bytes), o.garbage_bytes > 0 ? "COMPACT reclaims it" : "nothing to reclaim"),
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
      drawChart(chartCanvas, opsPoints(m));
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

  async function keys(r, gen) {
    const prefix = r.params.get("prefix") || "";
    const limit = Number(r.params.get("limit") || 100);
    main.append(...header("Keys", "Browse in key order; the tree groups keys on \":\" (open a group to see its children)."));
    const input = el("input", { type: "text", class: "grow", id: "prefix", placeholder: "prefix filter, e.g. user:", value: prefix, "aria-label": "prefix filter" });
    const size = el("select", { id: "page-size", "aria-label": "page size" },
      [25, 100, 500, 1000].map((n) => el("option", { value: n, selected: n === limit, text: n + " per page" })));
    const newBtn = el("a", { class: "btn primary", href: "#/new?prefix=" + encodeURIComponent(prefix), id: "new-doc", text: "New document" });
    let timer = null;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => go(keysHash(input.value) + (limit !== 100 ? (input.value ? "&" : "?") + "limit=" + limit : "")), 250);
    });
    size.addEventListener("change", () => go(keysHash(prefix) + (prefix ? "&" : "?") + "limit=" + size.value));
    const crumbs = el("div", { class: "crumbs" }, el("a", { href: keysHash(""), text: "all keys" }));
    let acc = "";
    const segs = prefix.split(":");
    segs.forEach((s, i) => {
      if (i === segs.length - 1 && s === "") return;
      acc += s + (i < segs.length - 1 ? ":" : "");
      crumbs.append(el("span", { class: "muted", text: "›" }), el("a", { href: keysHash(acc), text: s + (i < segs.length - 1 ? ":" : "") }));
    });
    const treePanel = el("div", { class: "panel tree", id: "key-tree" });
    const list = el("ul", { class: "keylist", id: "key-list" });
    const status = el("span", { class: "muted", id: "page-status" });
    const prev = el("button", { class: "btn", type: "button", id: "prev-page", text: "← Previous" });
    const next = el("button", { class: "btn", type: "button", id: "next-page", text: "Next →" });
    main.append(
      el("div", { class: "panel" }, el("div", { class: "row" }, input, size, newBtn), el("div", { class: "row" }, crumbs)),
      el("div", { class: "cols" },
        el("div", null, el("h2", { text: "Tree" }), treePanel),
        el("div", null, el("h2", { text: "Keys" }), el("div", { class: "panel" }, list, el("div", { class: "row", style: "margin-top:12px" }, prev, next, status))))
    );
    const cursors = [""]; // cursors[i] starts page i
    let page = 0;
    async function load() {
      const q = new URLSearchParams({ prefix: prefix, limit: String(limit) });
      if (cursors[page]) q.set("after", cursors[page]);
      const res = await api("GET", "/api/keys?" + q.toString());
      if (gen !== generation) return;
      if (res.next) cursors[page + 1] = res.next;
      list.replaceChildren(...(res.keys.length
        ? res.keys.map((k) => el("li", null, el("a", { href: docHash(k), title: k, text: k })))
        : [el("li", { class: "empty", text: prefix ? "No keys start with \"" + prefix + "\"." : "The database is empty." })]));
      prev.disabled = page === 0;
      next.disabled = !res.next;
      status.textContent = "page " + (page + 1) + " · " + res.keys.length + " keys" + (res.next ? " · more follow" : "");
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
    const ttlText = () => (data.ttl === null ? "no expiry" : "expires in " + data.ttl.toFixed(1) + " s");
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
      const ttlRow = el("div", { class: "row" }, el("label", { for: "doc-ttl", text: "Expires in (seconds, empty for never)" }), ttlInput);
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
      try {
        await api("PUT", docPath(key), value, { "If-None-Match": "*" });
        toast("Inserted " + key);
        go(docHash(key));
      } catch (e) {
        err.textContent = e.message;
      }
    });
    main.append(el("div", { class: "panel" }, el("div", { class: "row" }, keyInput), el("div", { class: "row" }, area),
      el("div", { class: "row end" }, el("a", { class: "btn", href: keysHash(prefix), text: "Cancel" }), insert), err));
    keyInput.focus();
  }

  // ---------- Query / Find ----------
  function resultsTable(rows) {
    // Columns: the key, then the top-level fields of the first documents.
    const cols = [];
    for (const [, v] of rows.slice(0, 50)) {
      if (v && typeof v === "object" && !Array.isArray(v)) {
        for (const k of Object.keys(v)) if (!cols.includes(k) && cols.length < 8) cols.push(k);
      }
    }
    const plain = cols.length === 0;
    return el("div", { class: "table-wrap" }, el("table", { id: "results" },
      el("thead", null, el("tr", null, el("th", { text: "key" }), plain ? el("th", { text: "value" }) : cols.map((c) => el("th", { text: c })))),
      el("tbody", null, rows.map(([k, v]) => el("tr", null,
        el("td", { class: "mono" }, el("a", { href: docHash(k), text: k })),
        plain ? el("td", { class: "cell", text: compact(v) })
          : cols.map((c) => el("td", { class: "cell", title: v && typeof v === "object" && c in v ? compact(v[c]) : "",
              text: v && typeof v === "object" && c in v ? compact(v[c]) : "" })))))));
  }

  function parseJsonField(text, what) {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(what + " is not valid JSON: " + e.message);
    }
  }

  async function query(r, gen) {
    await refreshShell().catch(() => {});
    main.append(...header("Query", "Mongo-style filters ($eq $ne $gt $gte $lt $lte $in $nin $exists $and $or) and find by field."));
    const tabQuery = el("button", { type: "button", class: "active", text: "Query" });
    const tabFind = el("button", { type: "button", text: "Find" });
    const form = el("div", { class: "panel" });
    const out = el("div", { id: "query-out" });
    main.append(el("div", { class: "tabs" }, tabQuery, tabFind), form, out);

    const filter = el("textarea", { id: "filter", spellcheck: "false", rows: 5, "aria-label": "filter" });
    filter.value = r.params.get("filter") || "{}";
    const sort = el("input", { type: "text", id: "sort", placeholder: "sort: \"field\", \"-field\" or [[\"field\", -1]]", class: "grow", "aria-label": "sort" });
    const limit = el("input", { type: "number", id: "limit", min: 0, max: 10000, value: 50, "aria-label": "limit", style: "width:110px" });
    const run = el("button", { class: "btn primary", type: "button", id: "run-query", text: "Run query" });
    const explainBtn = el("button", { class: "btn", type: "button", id: "explain-query", text: "Explain" });
    const err = errorBox();

    const field = el("input", { type: "text", id: "find-field", placeholder: "field, e.g. address.city", class: "grow", "aria-label": "field" });
    const value = el("input", { type: "text", id: "find-value", placeholder: "value as JSON, e.g. \"Paris\" or 42", class: "grow", "aria-label": "value" });
    const runFind = el("button", { class: "btn primary", type: "button", id: "run-find", text: "Find" });

    function showQuery() {
      tabQuery.className = "active";
      tabFind.className = "";
      form.replaceChildren(filter, el("div", { class: "row" }, sort, el("label", { class: "muted", text: "limit" }), limit, explainBtn, run), err);
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
      const s = sort.value.trim();
      if (!s) return null;
      return s.startsWith("[") || s.startsWith("\"") ? parseJsonField(s, "sort") : s;
    }
    run.addEventListener("click", async () => {
      err.textContent = "";
      try {
        const body = { filter: parseJsonField(filter.value || "{}", "filter"), sort: sortValue(), limit: Number(limit.value || 50) };
        const res = await api("POST", "/api/query", body);
        if (gen !== generation) return;
        out.replaceChildren(
          el("div", { class: "panel" },
            el("h2", { text: "Results" }),
            el("p", { class: "muted", id: "result-count", text: res.results.length + (res.more ? "+" : "") + " documents · " + res.elapsed_ms.toFixed(1) + " ms" }),
            res.results.length ? resultsTable(res.results) : el("div", { class: "empty", text: "No document matches." })),
          planPanel(res.plan));
      } catch (e) {
        err.textContent = e.message;
      }
    });
    explainBtn.addEventListener("click", async () => {
      err.textContent = "";
      try {
        const res = await api("POST", "/api/explain", { filter: parseJsonField(filter.value || "{}", "filter") });
        out.replaceChildren(planPanel(res.plan));
      } catch (e) {
        err.textContent = e.message;
      }
    });
    runFind.addEventListener("click", async () => {
      err.textContent = "";
      let v;
      try {
        v = JSON.parse(value.value);
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
        err.textContent = e.message;
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
    main.append(...header("Metrics", "Sampled once a second from the engine's counters; the chart shows up to the last two minutes."));
    const cards = el("div", { class: "grid", id: "metric-cards" });
    const canvas = el("canvas", { class: "chart", id: "ops-chart" });
    main.append(cards, el("div", { class: "panel" }, el("h2", { text: "Operations per second" }), canvas));
    function card(label, value, id) {
      return el("div", { class: "card" }, el("div", { class: "label", text: label }), el("div", { class: "value", id: id, text: value }));
    }
    async function refresh() {
      await refreshShell().catch(() => {});
      const m = await api("GET", "/api/metrics");
      if (gen !== generation) return;
      const s = m.stats;
      const last = m.samples.length ? m.samples[m.samples.length - 1] : null;
      cards.replaceChildren(
        card("Ops / sec", fmtNum(last ? last.ops_per_sec : s.ops_per_sec), "m-ops"),
        card("Gets", fmtNum(s.gets), "m-gets"),
        card("Sets", fmtNum(s.sets), "m-sets"),
        card("Deletes", fmtNum(s.deletes), "m-deletes"),
        card("Keys", fmtNum(s.keys), "m-keys"),
        card("File size", fmtBytes(s.file_bytes), "m-file"),
        card("Uptime", fmtDuration(s.uptime_s), "m-uptime")
      );
      canvas.dataset.samples = String(m.samples.length);
      canvas.dataset.last = last ? String(last.ops_per_sec) : "0";
      canvas.dataset.total = last ? String(last.gets + last.sets + last.deletes) : "0";
      canvas.dataset.peak = String(Math.max(0, ...m.samples.map((x) => x.ops_per_sec)));
      drawChart(canvas, opsPoints(m));
    }
    await refresh();
    tick = refresh;
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
      setLive(false, "disconnected");
    } finally {
      busy = false;
    }
  }, 1000);
  route();
})();
