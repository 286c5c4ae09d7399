// The operator console: sign-in with e-mail and password, then the launch dashboard, customers,
// catalogue and audit log. Every call goes to /api/admin (same origin); the session is an
// HttpOnly cookie this script never sees; changes carry the session's CSRF token. Roles are
// enforced by the server: the page only hides what a support operator could not do anyway.
"use strict";
(function () {
  var state = { csrf: "", role: "", me: null, packages: [], customer: null, auditToken: "", dash: null, callsToken: "", providers: null };
  var $ = function (id) { return document.getElementById(id); };
  var nf = new Intl.NumberFormat("fr-FR");
  function num(v) { return nf.format(v); }
  function dzd(v) { return nf.format(v) + " DZD"; }
  var usdf = new Intl.NumberFormat("fr-FR", { minimumFractionDigits: 2, maximumFractionDigits: 6 });
  function usd(v) { return usdf.format(v) + " $"; }
  function pct(a, b) { return b > 0 ? (Math.round((a / b) * 1000) / 10).toLocaleString("fr-FR") + " %" : "—"; }
  function firstOrdinal(s) { return s.replace(/^1 /, "1er "); }
  function date(iso) {
    if (!iso) return "";
    return firstOrdinal(new Date(iso).toLocaleDateString("fr-FR", { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" }));
  }
  function dateTime(iso) {
    return firstOrdinal(new Date(iso).toLocaleString("fr-FR", { day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit", timeZone: "UTC" })) + " UTC";
  }
  function shortDay(day) {
    var p = day.split("-");
    return Number(p[2]) + "/" + Number(p[1]);
  }
  function text(el, s) { el.textContent = s; return el; }
  function make(tag, cls, s) { var e = document.createElement(tag); if (cls) e.className = cls; if (s != null) e.textContent = s; return e; }
  function cell(tr, s, label) { var td = make("td", null, s); if (label) td.setAttribute("data-label", label); tr.appendChild(td); return td; }

  function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    return fetch(path, {
      method: method, headers: headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
        if (!r.ok) {
          var err = new Error((data && data.error && data.error.message) || ("Erreur " + r.status));
          err.status = r.status;
          throw err;
        }
        return data;
      });
    });
  }

  function show(signedIn) {
    $("connexion").hidden = signedIn;
    $("console").hidden = !signedIn;
    document.querySelectorAll("[data-signed-in]").forEach(function (e) { e.hidden = !signedIn; });
  }
  function pageError(msg) { var e = $("page-error"); e.hidden = !msg; text(e, msg || ""); }
  function signedOut() { state.csrf = ""; state.role = ""; show(false); }
  function failed(statusEl) {
    return function (err) {
      if (err.status === 401) { signedOut(); return; }
      statusEl.setAttribute("data-kind", "error");
      text(statusEl, err.message);
    };
  }
  function done(statusEl, msg) { statusEl.setAttribute("data-kind", "ok"); text(statusEl, msg); }

  // --- Sign-in ---------------------------------------------------------------------------
  $("signin-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var status = $("signin-status");
    var email = $("email").value.trim(), password = $("password").value;
    if (!email || !password) { text(status, "Indiquez votre adresse e-mail et votre mot de passe."); return; }
    text(status, "Connexion…");
    api("POST", "/api/admin/session", { email: email, password: password }).then(function () {
      $("password").value = "";
      text(status, "");
      start();
    }).catch(function (e) { status.setAttribute("data-kind", "error"); text(status, e.message); });
  });
  $("signout").addEventListener("click", function () {
    // Signed out on the page only once the server says so (or the session was already gone): a
    // failed request leaves the session valid.
    api("DELETE", "/api/admin/session").then(function () { pageError(""); signedOut(); }, function (e) {
      if (e.status === 401) { signedOut(); return; }
      pageError("La déconnexion n'a pas abouti : " + e.message);
    });
  });

  function start() {
    api("GET", "/api/admin/moi").then(function (me) {
      state.csrf = me.csrf_token;
      state.role = me.role;
      state.me = me.operator || null;
      // The admin token has no password of its own to change.
      $("own-password").hidden = !me.operator;
      var who = me.operator ? me.operator.display_name + " (" + me.operator.email + ")" : "jeton d'administration";
      text($("whoami"), "Connecté : " + who + " — rôle " + (me.role === "owner" ? "propriétaire" : "support (lecture seule)") + ".");
      document.querySelectorAll("[data-owner]").forEach(function (e) { e.hidden = me.role !== "owner"; });
      show(true);
      pageError("");
      return Promise.all([loadDashboard(), loadCatalogue(), loadCustomers(), loadCalls(true), loadProviders(), loadAudit(true), loadOperators()]);
    }).catch(function (e) {
      if (e.status === 401) { signedOut(); return; }
      pageError(e.message);
    });
  }

  // --- Charts (SVG pictures; each has a title and a text alternative) --------------------
  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  var chartSeq = 0;
  function frame(w, h, label) {
    var id = "chart-title-" + (++chartSeq);
    var c = svg("svg", { viewBox: "0 0 " + w + " " + h, width: w, height: h, role: "img", "aria-labelledby": id, focusable: "false" });
    var t = svg("title", { id: id }); t.textContent = label; c.appendChild(t);
    return c;
  }
  function label(c, x, y, s, anchor, cls) {
    var t = svg("text", { x: x, y: y, "text-anchor": anchor || "middle", "class": cls || "chart-label" });
    t.textContent = s; c.appendChild(t); return t;
  }
  // The picture's width in its own units: the room the card gives it (at most 720), so the
  // 12 px labels stay 12 px on a phone instead of shrinking with the picture.
  function widthOf(holder) {
    return Math.max(300, Math.min(720, Math.floor(holder.clientWidth || 720)));
  }
  // Bars per day; `fmt` writes a value.
  function barChart(holder, points, title, fmt) {
    var w = widthOf(holder), h = 220, left = 10, right = 10, top = 24, bottom = 28, plotH = h - top - bottom;
    var max = Math.max.apply(null, points.map(function (p) { return p.value; }).concat([1]));
    var slot = (w - left - right) / Math.max(points.length, 1);
    var total = points.reduce(function (s, p) { return s + p.value; }, 0);
    var c = frame(w, h, title + " : " + points.map(function (p) { return p.label + " " + fmt(p.value); }).join(", "));
    c.appendChild(svg("line", { x1: left, y1: top + plotH, x2: w - right, y2: top + plotH, "class": "chart-axis" }));
    var every = Math.ceil(points.length / Math.max(3, Math.floor(w / 72)));
    points.forEach(function (p, i) {
      var bh = (p.value / max) * plotH, cx = left + slot * i + slot / 2;
      if (p.value > 0) {
        var r = svg("rect", { x: (left + slot * i + slot * 0.15).toFixed(1), y: (top + plotH - bh).toFixed(1), width: (slot * 0.7).toFixed(1), height: Math.max(bh, 1).toFixed(1), rx: "2", "class": "chart-bar" });
        var tip = svg("title", {}); tip.textContent = p.label + " : " + fmt(p.value); r.appendChild(tip);
        c.appendChild(r);
        if (slot >= 16) label(c, cx.toFixed(1), (top + plotH - bh - 6).toFixed(1), fmt(p.value), "middle", "chart-value");
      }
      if (i % every === 0 || i === points.length - 1) label(c, cx.toFixed(1), h - 8, p.label);
    });
    holder.replaceChildren(c, make("p", "chart-legend", "Total : " + fmt(total)));
  }
  function lineChart(holder, points, title, fmt, empty) {
    if (!points.length) { holder.replaceChildren(make("p", "muted", empty)); return; }
    var w = widthOf(holder), h = 220, left = 10, right = 10, top = 28, bottom = 28, plotH = h - top - bottom;
    var max = Math.max.apply(null, points.map(function (p) { return p.value; }).concat([1]));
    // The first and last values are written above their points: room for them on both sides.
    var pad = 70;
    var step = points.length > 1 ? (w - left - right - 2 * pad) / (points.length - 1) : 0;
    var c = frame(w, h, title + " : " + points.map(function (p) { return p.label + " " + fmt(p.value); }).join(", "));
    c.appendChild(svg("line", { x1: left, y1: top + plotH, x2: w - right, y2: top + plotH, "class": "chart-axis" }));
    var xy = points.map(function (p, i) {
      var x = points.length > 1 ? left + pad + step * i : w / 2;
      return [x, top + plotH - (p.value / max) * plotH];
    });
    c.appendChild(svg("polyline", { points: xy.map(function (q) { return q[0].toFixed(1) + "," + q[1].toFixed(1); }).join(" "), "class": "chart-line" }));
    var every = Math.ceil(points.length / Math.max(2, Math.floor(w / 100)));
    xy.forEach(function (q, i) {
      var dot = svg("circle", { cx: q[0].toFixed(1), cy: q[1].toFixed(1), r: 4, "class": "chart-dot" });
      var tip = svg("title", {}); tip.textContent = points[i].label + " : " + fmt(points[i].value); dot.appendChild(tip);
      c.appendChild(dot);
      if (i % every === 0 || i === xy.length - 1) {
        label(c, q[0].toFixed(1), h - 8, points[i].label);
        label(c, q[0].toFixed(1), (q[1] - 8).toFixed(1), fmt(points[i].value), "middle", "chart-value");
      }
    });
    holder.replaceChildren(c);
  }
  // Horizontal bars with a text per row (revenue by package, funnel).
  function hbarChart(holder, rows, title) {
    // Narrow: the name above its bar; wide: the name on its left.
    var w = widthOf(holder), narrow = w < 520, rowH = narrow ? 56 : 40, h = rows.length * rowH + 10;
    var left = narrow ? 10 : 150, right = narrow ? 10 : 230;
    var max = Math.max.apply(null, rows.map(function (r) { return r.value; }).concat([1]));
    var c = frame(w, h, title + " : " + rows.map(function (r) { return r.label + " " + r.text; }).join(", "));
    rows.forEach(function (r, i) {
      var y = 5 + i * rowH;
      if (narrow) {
        var nbw = (r.value / max) * (w - left - right);
        label(c, left, y + 14, r.label + " : " + r.text, "start", "chart-value");
        c.appendChild(svg("rect", { x: left, y: y + 22, width: Math.max(nbw, 1).toFixed(1), height: rowH - 30, rx: 3, "class": "chart-hbar" }));
        return;
      }
      var bw = (r.value / max) * (w - left - right);
      label(c, left - 10, y + 24, r.label, "end");
      c.appendChild(svg("rect", { x: left, y: y + 6, width: Math.max(bw, 1).toFixed(1), height: rowH - 14, rx: 3, "class": "chart-hbar" }));
      label(c, (left + bw + 8).toFixed(1), y + 24, r.text, "start", "chart-value");
    });
    holder.replaceChildren(c);
  }

  // --- Dashboard ---------------------------------------------------------------------------
  function loadDashboard() {
    return api("GET", "/api/admin/tableau-de-bord?jours=30").then(function (d) {
      state.dash = d;
      renderDashboard(d);
    }).catch(function (e) { if (e.status === 401) signedOut(); else pageError(e.message); });
  }
  // Charts are drawn for the room they have: drawn again when the window changes width.
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      if ($("console").hidden) return;
      if (state.dash) renderDashboard(state.dash);
      if (state.providers) renderProviders(state.providers);
    }, 150);
  });
  function renderDashboard(d) {
    {
      text($("range"), "Du " + date(d.from_day + "T00:00:00Z") + " au " + date(d.to_day + "T00:00:00Z") + " (jours UTC).");
      text($("kpi-places"), d.launch_total == null ? "illimité" : num(d.launch_remaining) + " / " + num(d.launch_total));
      text($("kpi-places-detail"), "Code " + d.launch_code + " : " + num(d.launch_used) + " place(s) prise(s).");
      text($("kpi-customers"), num(d.total_customers));
      text($("kpi-mrr"), dzd(d.mrr_now_dzd));
      barChart($("chart-signups"), d.signups_per_day.map(function (p) { return { label: shortDay(p.day), value: p.count }; }), "Inscriptions par jour", num);
      lineChart($("chart-mrr"), d.mrr.map(function (p) { return { label: shortDay(p.day), value: p.mrr_dzd }; }), "MRR par jour", dzd, "Pas encore de relevé quotidien.");
      hbarChart($("chart-revenue"), d.revenue_by_package.map(function (p) {
        return { label: p.name, value: p.revenue_monthly_dzd, text: dzd(p.revenue_monthly_dzd) + " (" + num(p.customers) + " client" + (p.customers > 1 ? "s" : "") + ")" };
      }), "Revenu mensuel par forfait");
      var f = d.funnel;
      hbarChart($("chart-funnel"), [
        { label: "Visites", value: f.landing_views, text: num(f.landing_views) },
        { label: "Clics", value: f.cta_clicks, text: num(f.cta_clicks) + " (" + pct(f.cta_clicks, f.landing_views) + " des visites)" },
        { label: "Codes vérifiés", value: f.code_checks, text: num(f.code_checks) + " (" + pct(f.code_checks, f.cta_clicks) + " des clics)" },
        { label: "Inscriptions", value: f.signups, text: num(f.signups) + " (" + pct(f.signups, f.landing_views) + " des visites)" }
      ], "Entonnoir sur la période");
      var cac = $("cac-table").tBodies[0];
      cac.replaceChildren.apply(cac, d.cac.map(function (m) {
        var tr = make("tr");
        cell(tr, m.month, "Mois"); cell(tr, dzd(m.spend_dzd), "Dépenses"); cell(tr, num(m.signups), "Inscriptions");
        cell(tr, m.cac_dzd == null ? "—" : dzd(m.cac_dzd), "CAC");
        return tr;
      }));
      var sp = $("spend-table").tBodies[0];
      sp.replaceChildren.apply(sp, d.spend.map(function (s) {
        var tr = make("tr");
        cell(tr, s.day, "Date"); cell(tr, s.channel, "Canal"); cell(tr, dzd(s.amount_dzd), "Montant"); cell(tr, s.created_by, "Saisie par");
        return tr;
      }));
    }
  }
  $("spend-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var status = $("spend-status");
    api("POST", "/api/admin/depenses", {
      day: $("spend-day").value, channel: $("spend-channel").value.trim(), amount_dzd: Number($("spend-amount").value)
    }).then(function () { done(status, "Dépense ajoutée."); $("spend-form").reset(); loadDashboard(); loadAudit(true); })
      .catch(failed(status));
  });

  // --- Customers -----------------------------------------------------------------------------
  function customerQuery() {
    var q = new URLSearchParams();
    if ($("search").value.trim()) q.set("recherche", $("search").value.trim());
    if ($("filter-package").value) q.set("forfait", $("filter-package").value);
    if ($("filter-status").value) q.set("statut", $("filter-status").value);
    return q.toString();
  }
  function loadCustomers() {
    var q = customerQuery();
    $("export").setAttribute("href", "/api/admin/clients/export.csv" + (q ? "?" + q : ""));
    return api("GET", "/api/admin/clients?page_size=100" + (q ? "&" + q : "")).then(function (r) {
      text($("customers-count"), num(r.total) + " client" + (r.total > 1 ? "s" : "") + " trouvé" + (r.total > 1 ? "s" : "") + (r.total > r.customers.length ? " (les " + r.customers.length + " plus récents affichés)" : "") + ".");
      var body = $("customers-table").tBodies[0];
      body.replaceChildren.apply(body, r.customers.map(function (c) {
        var tr = make("tr");
        cell(tr, c.email, "E-mail"); cell(tr, c.package, "Forfait"); cell(tr, dzd(c.price_dzd), "Prix / mois");
        cell(tr, c.suspended ? "Suspendu" : "Actif", "Statut"); cell(tr, num(c.live_keys), "Clés actives");
        cell(tr, date(c.created_at), "Inscrit le");
        var td = cell(tr, "");
        var b = make("button", "btn btn-ghost-dark btn-small", "Détails");
        b.type = "button";
        b.setAttribute("aria-label", "Détails de " + c.email);
        b.addEventListener("click", function () { openCustomer(c.user_id); });
        td.appendChild(b);
        return tr;
      }));
    }).catch(function (e) { if (e.status === 401) signedOut(); else pageError(e.message); });
  }
  $("search-form").addEventListener("submit", function (ev) { ev.preventDefault(); loadCustomers(); });

  function openCustomer(id) {
    var status = $("customer-status");
    text(status, "");
    return api("GET", "/api/admin/clients/" + encodeURIComponent(id)).then(function (d) {
      var c = d.customer;
      state.customer = c;
      $("customer").hidden = false;
      text($("customer-title"), c.email);
      var promo = c.promo_code ? " avec " + c.promo_code + " (−" + c.discount_percent + " %" + (c.discount_ends_at ? " jusqu'au " + date(c.discount_ends_at) : "") + ")" : "";
      text($("customer-summary"), "Forfait " + c.package + " : " + dzd(c.price_dzd) + " / mois" + promo + ". Prix de base : " + dzd(c.base_price_dzd) + ". " + (c.suspended ? "Compte suspendu." : "Compte actif."));
      var m = d.margin;
      text($("customer-margin"), "Coût fournisseurs de " + d.period + " : " + dzd(m.cost_dzd) + " (" + usd(m.cost_usd) + " à " + m.usd_dzd_rate.toLocaleString("fr-FR") + " DZD le dollar, arrondi au dinar supérieur). Revenu du mois : " + dzd(m.revenue_dzd) + ". Marge : " + dzd(m.margin_dzd) + ".");
      $("customer-margin").setAttribute("data-kind", m.margin_dzd < 0 ? "error" : "ok");
      text($("customer-usage"), "Consommation de " + d.period + " : " + num(d.total_tokens) + " jetons sur " + num(d.tokens_per_month) + " (" + pct(d.total_tokens, d.tokens_per_month) + "), " + num(d.requests) + " requête" + (d.requests > 1 ? "s" : "") + ".");
      var body = $("customer-keys").tBodies[0];
      body.replaceChildren.apply(body, d.keys.map(function (k) {
        var tr = make("tr");
        cell(tr, k.name || "—", "Nom"); cell(tr, k.prefix + "…", "Préfixe");
        cell(tr, { active: "Active", grace: "En remplacement", revoked: "Révoquée" }[k.status] || k.status, "Statut");
        cell(tr, num(k.total_tokens), "Jetons ce mois"); cell(tr, num(k.requests), "Requêtes ce mois");
        var td = cell(tr, "");
        if (state.role === "owner" && k.status !== "revoked") {
          var b = make("button", "btn btn-ghost-dark btn-small", "Révoquer");
          b.type = "button";
          b.setAttribute("aria-label", "Révoquer la clé " + k.prefix);
          b.addEventListener("click", function () {
            api("POST", "/api/admin/clients/" + encodeURIComponent(c.user_id) + "/cles/" + encodeURIComponent(k.id) + "/revocation")
              .then(function () {
                loadCustomers(); loadAudit(true);
                return openCustomer(c.user_id).then(function () { done($("customer-status"), "Clé révoquée."); });
              })
              .catch(failed(status));
          });
          td.appendChild(b);
        }
        return tr;
      }));
      text($("suspend"), c.suspended ? "Réactiver le compte" : "Suspendre le compte");
      $("suspend").hidden = state.role !== "owner";
    }).catch(failed(status));
  }
  $("suspend").addEventListener("click", function () {
    var c = state.customer;
    if (!c) return;
    api("PUT", "/api/admin/clients/" + encodeURIComponent(c.user_id) + "/suspension", { suspended: !c.suspended })
      .then(function (r) {
        loadCustomers(); loadAudit(true);
        return openCustomer(c.user_id).then(function () {
          done($("customer-status"), r.suspended ? "Compte suspendu." : "Compte réactivé.");
        });
      }).catch(failed($("customer-status")));
  });

  // --- Catalogue -----------------------------------------------------------------------------
  // The cost budget travels in nano-dollars (integers, the unit of llm-gateway's usage rows);
  // the operator reads and types dollars. Converted on the digits, never through a float.
  function usdOf(nano) {
    if (nano == null) return "";
    var s = String(nano).padStart(10, "0");
    var whole = s.slice(0, -9).replace(/^0+(?=\d)/, ""), frac = s.slice(-9).replace(/0+$/, "");
    return frac ? whole + "," + frac : whole;
  }
  function nanoOf(v) {
    v = v.trim().replace(",", ".");
    if (!v) return null;
    var m = /^(\d{1,6})(?:\.(\d{1,9}))?$/.exec(v);
    if (!m) return undefined;
    var n = Number(m[1]) * 1e9 + Number(((m[2] || "") + "000000000").slice(0, 9));
    return n > 0 ? n : undefined;
  }
  function field(id, labelText, value, attrs) {
    var f = make("div", "field");
    var l = make("label", null, labelText); l.setAttribute("for", id);
    var i = make("input"); i.id = id; i.value = value;
    Object.keys(attrs || {}).forEach(function (k) { i.setAttribute(k, attrs[k]); });
    if (state.role !== "owner") i.readOnly = true;
    f.appendChild(l); f.appendChild(i);
    return f;
  }
  function loadCatalogue() {
    return Promise.all([api("GET", "/api/admin/forfaits"), api("GET", "/api/admin/codes")]).then(function (r) {
      state.packages = r[0].packages;
      var sel = $("filter-package"), chosen = sel.value;
      sel.replaceChildren.apply(sel, [make("option", null, "Tous")].concat(state.packages.map(function (p) { var o = make("option", null, p.name); o.value = p.id; return o; })));
      sel.firstChild.value = "";
      sel.value = chosen;
      var holder = $("packages");
      holder.replaceChildren.apply(holder, state.packages.map(packageForm));
      var codes = $("codes");
      codes.replaceChildren.apply(codes, r[1].codes.map(codeForm));
    }).catch(function (e) { if (e.status === 401) signedOut(); else pageError(e.message); });
  }
  function packageForm(p) {
    var box = make("div", "catalogue-item");
    box.appendChild(make("h3", null, p.name + " (" + p.id + ")"));
    var form = make("form", "inline-form");
    form.noValidate = true;
    var pre = "pkg-" + p.id + "-";
    form.appendChild(field(pre + "price", "Prix mensuel (DZD)", p.monthly_price_dzd, { type: "number", min: "0", step: "1" }));
    form.appendChild(field(pre + "tokens", "Jetons / mois", p.tokens_per_month, { type: "number", min: "0", step: "1" }));
    form.appendChild(field(pre + "rpm", "Requêtes / min", p.requests_per_minute, { type: "number", min: "0", step: "1" }));
    form.appendChild(field(pre + "models", "Modèles autorisés (séparés par des virgules ; vide : tous)", p.allowed_models.join(", "), { type: "text" }));
    form.appendChild(field(pre + "budget", "Budget coût fournisseur (USD / client / mois ; vide : aucun)", usdOf(p.monthly_cost_budget_nano_usd), { type: "text", inputmode: "decimal" }));
    var status = make("p", "field-status"); status.setAttribute("role", "status");
    if (state.role === "owner") {
      var b = make("button", "btn btn-primary", "Enregistrer " + p.name); b.type = "submit";
      form.appendChild(b);
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var models = $(pre + "models").value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
      var budget = nanoOf($(pre + "budget").value);
      if (budget === undefined) {
        status.setAttribute("data-kind", "error");
        text(status, "Budget : un montant en dollars, par exemple 12,50 (moins d’un million, 9 décimales au plus), ou vide.");
        return;
      }
      api("PATCH", "/api/admin/forfaits/" + encodeURIComponent(p.id), {
        monthly_price_dzd: Number($(pre + "price").value), tokens_per_month: Number($(pre + "tokens").value),
        requests_per_minute: Number($(pre + "rpm").value), allowed_models: models,
        monthly_cost_budget_nano_usd: budget
      }).then(function () { done(status, "Forfait enregistré."); loadAudit(true); loadDashboard(); })
        .catch(failed(status));
    });
    box.appendChild(form); box.appendChild(status);
    return box;
  }
  function codeForm(c) {
    var box = make("div", "catalogue-item");
    var used = c.max_redemptions == null ? num(c.used) + " utilisation(s), sans limite" : num(c.used) + " / " + num(c.max_redemptions) + " places prises";
    box.appendChild(make("h3", null, c.code + (c.active ? "" : " (inactif)")));
    box.appendChild(make("p", "muted", used + " — réduction pendant " + c.duration_months + " mois."));
    var form = make("form", "inline-form");
    form.noValidate = true;
    var pre = "code-" + c.code + "-";
    form.appendChild(field(pre + "max", "Places (maximum)", c.max_redemptions == null ? "" : c.max_redemptions, { type: "number", min: "1", step: "1" }));
    form.appendChild(field(pre + "months", "Durée (mois)", c.duration_months, { type: "number", min: "1", max: "120", step: "1" }));
    state.packages.forEach(function (p) {
      form.appendChild(field(pre + "d-" + p.id, "Réduction " + p.name + " (%)", c.discounts[p.id] == null ? "" : c.discounts[p.id], { type: "number", min: "1", max: "100", step: "1" }));
    });
    var status = make("p", "field-status"); status.setAttribute("role", "status");
    if (state.role === "owner") {
      var b = make("button", "btn btn-primary", "Enregistrer " + c.code); b.type = "submit";
      form.appendChild(b);
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      // Only what changed is sent: the server merges (a discount emptied here is removed).
      var change = {}, discounts = {}, any = false;
      var max = $(pre + "max").value.trim();
      if (max && Number(max) !== c.max_redemptions) change.max_redemptions = Number(max);
      var months = Number($(pre + "months").value);
      if (months !== c.duration_months) change.duration_months = months;
      state.packages.forEach(function (p) {
        var v = $(pre + "d-" + p.id).value.trim();
        var was = c.discounts[p.id];
        if (v === "" && was != null) { discounts[p.id] = null; any = true; }
        else if (v !== "" && Number(v) !== was) { discounts[p.id] = Number(v); any = true; }
      });
      if (any) change.discounts = discounts;
      if (!Object.keys(change).length) { done(status, "Rien à changer."); return; }
      api("PATCH", "/api/admin/codes/" + encodeURIComponent(c.code), change)
        .then(function () { done(status, "Code enregistré."); loadCatalogue(); loadAudit(true); loadDashboard(); })
        .catch(failed(status));
    });
    box.appendChild(form); box.appendChild(status);
    return box;
  }

  // --- Request log ---------------------------------------------------------------------------
  var OUTCOMES = {
    ok: "Réussi", quota_exceeded: "Quota épuisé", rate_limited: "Limite par minute", upstream_error: "Erreur fournisseur",
    upstream_timeout: "Fournisseur trop lent", unsupported_parameter: "Paramètre non pris en charge", cancelled: "Annulé par le client",
    model_not_found: "Modèle inconnu", model_not_allowed: "Modèle hors forfait", invalid_argument: "Requête invalide",
    unavailable: "Indisponible", payment_required: "Paiement en attente", budget_exceeded: "Budget épuisé"
  };
  function ms(v) { return v == null ? "—" : num(v) + " ms"; }
  function dayStartMs(v, plusDay) { return v ? Date.parse(v + "T00:00:00Z") + (plusDay ? 86400000 : 0) : null; }
  function callsQuery() {
    var q = new URLSearchParams();
    [["calls-customer", "client"], ["calls-key", "cle"], ["calls-model", "modele"], ["calls-provider", "fournisseur"], ["calls-status", "statut"]].forEach(function (f) {
      var v = $(f[0]).value.trim();
      if (v) q.set(f[1], v);
    });
    var from = dayStartMs($("calls-from").value, false), to = dayStartMs($("calls-to").value, true);
    if (from != null) q.set("depuis", String(from));
    if (to != null) q.set("jusqua", String(to));
    return q;
  }
  function loadCalls(reset) {
    if (reset) state.callsToken = "";
    var q = callsQuery();
    // The export takes the filters shown, without paging: every matching call.
    var filters = q.toString();
    $("calls-export").setAttribute("href", "/api/admin/appels/export.csv" + (filters ? "?" + filters : ""));
    q.set("page_size", "50");
    if (state.callsToken) q.set("page_token", state.callsToken);
    return api("GET", "/api/admin/appels?" + q.toString()).then(function (page) {
      var body = $("calls-table").tBodies[0];
      var rows = page.appels.map(function (c) {
        var tr = make("tr");
        tr.setAttribute("data-status", c.status);
        cell(tr, dateTime(c.at), "Date"); cell(tr, c.customer_id, "Client"); cell(tr, c.key_prefix ? c.key_prefix + "…" : "—", "Clé");
        cell(tr, c.model + (c.kind === "chat_stream" ? " (flux)" : c.kind === "embed" ? " (embeddings)" : ""), "Modèle");
        cell(tr, c.provider ? c.provider + (c.upstream_model ? " · " + c.upstream_model : "") : "—", "Fournisseur");
        cell(tr, num(c.prompt_tokens) + " / " + num(c.completion_tokens), "Jetons (entrée / sortie)");
        cell(tr, usd(c.cost_usd), "Coût");
        cell(tr, ms(c.latency_ms) + (c.ttft_ms != null ? " (1er jeton " + ms(c.ttft_ms) + ")" : ""), "Durée");
        cell(tr, num(c.attempts) + (c.fallbacks ? " (" + num(c.fallbacks) + " repli" + (c.fallbacks > 1 ? "s" : "") + ")" : ""), "Tentatives");
        cell(tr, c.status === "ok" ? OUTCOMES.ok : (OUTCOMES[c.error_code] || c.error_code), "Résultat");
        return tr;
      });
      if (reset) body.replaceChildren.apply(body, rows); else rows.forEach(function (r) { body.appendChild(r); });
      state.callsToken = page.next_page_token || "";
      $("calls-more").hidden = !state.callsToken;
      var shown = body.rows.length;
      text($("calls-count"), shown === 0 ? "Aucun appel pour ces critères." : num(shown) + " appel" + (shown > 1 ? "s" : "") + " affiché" + (shown > 1 ? "s" : "") + (state.callsToken ? " (d'autres, plus anciens, suivent)." : "."));
    }).catch(function (e) { if (e.status === 401) signedOut(); else pageError(e.message); });
  }
  $("calls-form").addEventListener("submit", function (ev) { ev.preventDefault(); loadCalls(true); });
  $("calls-more").addEventListener("click", function () { loadCalls(false); });

  // --- Providers -----------------------------------------------------------------------------
  var CIRCUITS = { closed: "Circuit fermé (normal)", open: "Circuit ouvert (écarté)", half_open: "Circuit en essai", unknown: "Inconnu" };
  function loadProviders() {
    return api("GET", "/api/admin/fournisseurs?heures=" + encodeURIComponent($("providers-hours").value)).then(function (d) {
      state.providers = d;
      renderProviders(d);
    }).catch(function (e) { if (e.status === 401) signedOut(); else pageError(e.message); });
  }
  function renderProviders(d) {
    text($("providers-note"), "Chiffres des " + (d.heures < 48 ? num(d.heures) + " dernière" + (d.heures > 1 ? "s heures" : " heure") : num(d.heures / 24) + " derniers jours") +
      " tirés du journal des appels (toutes les instances) ; l'état du circuit est celui de l'instance qui a répondu. Coûts convertis à " + d.usd_dzd_rate.toLocaleString("fr-FR") + " DZD le dollar." +
      (d.mock_active ? " Aucun fournisseur configuré : le fournisseur hors ligne « mock » répond." : "") + (d.truncated ? " Seuls les appels les plus récents ont été lus." : ""));
    var body = $("providers-table").tBodies[0];
    body.replaceChildren.apply(body, d.fournisseurs.map(function (p) {
      var tr = make("tr");
      cell(tr, p.name + (p.kind ? " (" + p.kind + ")" : ""), "Fournisseur");
      cell(tr, p.configured ? CIRCUITS[p.circuit] || p.circuit : "Non configuré (pas de clé)", "État");
      cell(tr, num(p.calls), "Appels");
      cell(tr, p.calls ? p.error_rate_percent.toLocaleString("fr-FR") + " % (" + num(p.errors) + ")" : "—", "Taux d'erreur");
      cell(tr, p.calls ? ms(p.p50_ms) : "—", "Latence p50"); cell(tr, p.calls ? ms(p.p95_ms) : "—", "Latence p95");
      cell(tr, dzd(p.cost_dzd) + " (" + usd(p.cost_usd) + ")", "Coût");
      return tr;
    }));
    // One small bar chart per provider with calls: its cost in dinars per day.
    var holder = $("chart-provider-cost");
    var names = [];
    d.jours.forEach(function (j) { if (names.indexOf(j.provider) < 0) names.push(j.provider); });
    if (!names.length) { holder.replaceChildren(make("p", "muted", "Aucun appel sur la période.")); return; }
    holder.replaceChildren.apply(holder, names.map(function (n) {
      var box = make("div", "provider-chart");
      box.appendChild(make("h3", null, n));
      var inner = make("div");
      box.appendChild(inner);
      return box;
    }));
    names.forEach(function (n, i) {
      var inner = holder.children[i].lastChild;
      var points = d.jours.filter(function (j) { return j.provider === n; }).map(function (j) { return { label: shortDay(j.day), value: j.cost_dzd }; });
      barChart(inner, points, "Coût de " + n + " par jour", dzd);
    });
  }
  $("providers-form").addEventListener("submit", function (ev) { ev.preventDefault(); loadProviders(); });

  // --- Audit log -----------------------------------------------------------------------------
  var ACTIONS = {
    "code.create": "Code créé", "code.update": "Code modifié", "package.update": "Forfait modifié",
    "customer.suspend": "Compte suspendu", "customer.resume": "Compte réactivé", "customer.revoke_keys": "Clés révoquées",
    "key.revoke": "Clé révoquée", "spend.add": "Dépense ajoutée", "operator.create": "Opérateur créé", "outbox.retry": "E-mail renvoyé",
    "operator.password": "Mot de passe changé", "operator.role": "Rôle changé", "operator.deactivate": "Opérateur désactivé",
    "operator.reactivate": "Opérateur réactivé"
  };
  function changeText(before, after) {
    if (before === null) return JSON.stringify(after);
    var keys = Object.keys(after || {}).filter(function (k) { return JSON.stringify(before[k]) !== JSON.stringify(after[k]); });
    if (!keys.length) return "—";
    return keys.map(function (k) { return k + " : " + JSON.stringify(before[k]) + " → " + JSON.stringify(after[k]); }).join(" ; ");
  }
  function loadAudit(reset) {
    if (reset) state.auditToken = "";
    var path = "/api/admin/journal?page_size=50" + (state.auditToken ? "&page_token=" + encodeURIComponent(state.auditToken) : "");
    return api("GET", path).then(function (page) {
      var body = $("audit-table").tBodies[0];
      var rows = page.entries.map(function (e) {
        var tr = make("tr");
        cell(tr, dateTime(e.at), "Date"); cell(tr, e.actor, "Qui"); cell(tr, ACTIONS[e.action] || e.action, "Action");
        cell(tr, e.target, "Cible");
        cell(tr, changeText(e.before, e.after), "Avant → après").className = "audit-change";
        return tr;
      });
      if (reset) body.replaceChildren.apply(body, rows); else rows.forEach(function (r) { body.appendChild(r); });
      state.auditToken = page.next_page_token || "";
      $("audit-more").hidden = !state.auditToken;
    }).catch(function (e) { if (e.status === 401) signedOut(); else pageError(e.message); });
  }
  $("audit-more").addEventListener("click", function () { loadAudit(false); });

  // --- Operators -----------------------------------------------------------------------------
  function loadOperators() {
    return api("GET", "/api/admin/operateurs/comptes").then(function (r) {
      var body = $("operators-table").tBodies[0];
      body.replaceChildren.apply(body, r.operators.map(operatorRow));
    }).catch(function (e) { if (e.status === 401) signedOut(); else pageError(e.message); });
  }
  function operatorRow(a) {
    var o = a.operator, tr = make("tr");
    tr.setAttribute("data-operator", o.email);
    cell(tr, o.display_name, "Nom"); cell(tr, o.email, "E-mail");
    cell(tr, o.role === "owner" ? "Propriétaire" : "Support", "Rôle");
    cell(tr, a.active ? "Actif" : "Désactivé le " + date(a.deactivated_at), "Statut");
    var actions = cell(tr, "", "Actions");
    if (state.role === "owner") {
      var status = $("operators-table-status");
      var change = function (body, msg) {
        return function () {
          api("PATCH", "/api/admin/operateurs/" + encodeURIComponent(o.id), body)
            .then(function () { done(status, msg); loadOperators(); loadAudit(true); })
            .catch(failed(status));
        };
      };
      var role = make("button", "btn btn-ghost-dark btn-small", o.role === "owner" ? "Passer en support" : "Passer propriétaire");
      role.type = "button";
      role.setAttribute("aria-label", (o.role === "owner" ? "Passer en support : " : "Passer propriétaire : ") + o.display_name);
      role.addEventListener("click", change({ role: o.role === "owner" ? "support" : "owner" }, "Rôle de " + o.display_name + " changé."));
      var act = make("button", "btn btn-ghost-dark btn-small", a.active ? "Désactiver" : "Réactiver");
      act.type = "button";
      act.setAttribute("aria-label", (a.active ? "Désactiver : " : "Réactiver : ") + o.display_name);
      act.addEventListener("click", change({ active: !a.active }, o.display_name + (a.active ? " désactivé." : " réactivé.")));
      actions.appendChild(role); actions.appendChild(document.createTextNode(" ")); actions.appendChild(act);
    }
    return tr;
  }
  $("password-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var status = $("password-status");
    var current = $("pw-current").value, next = $("pw-new").value;
    if (!current || next.length < 12) { status.setAttribute("data-kind", "error"); text(status, "Indiquez le mot de passe actuel et un nouveau de 12 caractères au moins."); return; }
    api("PUT", "/api/admin/moi/mot-de-passe", { current_password: current, new_password: next }).then(function (r) {
      $("password-form").reset();
      done(status, "Mot de passe changé." + (r.sessions_ended ? " Vos autres sessions (" + r.sessions_ended + ") sont fermées." : ""));
      loadAudit(true);
    }).catch(function (err) {
      // A wrong current password is a 401 here, not an expired session: stay signed in.
      status.setAttribute("data-kind", "error");
      text(status, err.message);
    });
  });
  $("operator-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var status = $("operator-status");
    api("POST", "/api/admin/operateurs", {
      display_name: $("op-name").value.trim(), email: $("op-email").value.trim(),
      role: $("op-role").value, password: $("op-password").value
    }).then(function () {
      done(status, "Opérateur ajouté.");
      $("operator-form").reset();
      loadOperators(); loadAudit(true);
    }).catch(failed(status));
  });

  start();
})();
