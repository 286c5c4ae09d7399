// The account page: sign-in by e-mailed link, then the dashboard, keys and package.
// Every call goes to /api/compte (same origin); the session is an HttpOnly cookie this script
// never sees; state-changing calls carry the session's CSRF token (X-CSRF-Token).
"use strict";
(function () {
  var state = { csrf: "", account: null, lastUsed: {}, keys: null, usage: null };
  var $ = function (id) { return document.getElementById(id); };

  var nf = new Intl.NumberFormat("fr-FR");
  function dzd(v) { return nf.format(v) + " DZD"; }
  // French writes the first of the month as an ordinal: « 1er janvier », not « 1 janvier ».
  function firstOrdinal(s) { return s.replace(/^1 /, "1er "); }
  function date(iso) {
    if (!iso) return "";
    return firstOrdinal(new Date(iso).toLocaleDateString("fr-FR", { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" }));
  }
  function dateTime(iso) {
    return firstOrdinal(new Date(iso).toLocaleString("fr-FR", { day: "numeric", month: "long", hour: "2-digit", minute: "2-digit", timeZone: "UTC" })) + " UTC";
  }
  function text(el, s) { el.textContent = s; return el; }
  function make(tag, cls, s) { var e = document.createElement(tag); if (cls) e.className = cls; if (s != null) e.textContent = s; return e; }

  function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    return fetch(path, {
      method: method, headers: headers, credentials: "same-origin",
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

  function show(id) {
    ["connexion", "ouverture", "espace"].forEach(function (s) { $(s).hidden = s !== id; });
    document.querySelectorAll("[data-signed-in]").forEach(function (e) { e.hidden = id !== "espace"; });
  }
  function pageError(msg) { var e = $("page-error"); e.hidden = !msg; text(e, msg || ""); }

  function signedOut() { state.csrf = ""; state.account = null; show("connexion"); }
  function failed(statusEl) {
    return function (err) {
      if (err.status === 401) { signedOut(); return; }
      text(statusEl, err.message);
    };
  }

  // --- Sign-in ---------------------------------------------------------------------------
  $("link-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var email = $("email").value.trim();
    var status = $("link-status");
    if (!email) { text(status, "Indiquez votre adresse e-mail."); $("email").focus(); return; }
    text(status, "Envoi…");
    api("POST", "/api/compte/lien", { email: email })
      .then(function (r) { text(status, r.message); })
      .catch(function (e) { text(status, e.message); });
  });

  function openSession(token) {
    show("ouverture");
    text($("ouverture-status"), "Connexion en cours…");
    api("POST", "/api/compte/session", { token: token }).then(function (r) {
      state.csrf = r.csrf_token;
      history.replaceState(null, "", "/compte/");
      loadDashboard();
    }).catch(function (e) {
      history.replaceState(null, "", "/compte/");
      text($("ouverture-status"), e.message);
      var again = $("open-session");
      again.hidden = false;
      text(again, "Demander un nouveau lien");
      again.onclick = function () { show("connexion"); $("email").focus(); };
    });
  }

  function signOut(everywhere) {
    // Signed out on the page only once the server says so (or the session was already gone): a
    // failed request leaves the session, and « tous mes appareils » would otherwise be a lie.
    api("DELETE", "/api/compte/session" + (everywhere ? "?partout=true" : ""))
      .then(function () { pageError(""); signedOut(); })
      .catch(function (e) {
        if (e.status === 401) { signedOut(); return; }
        pageError("La déconnexion n'a pas abouti : " + e.message);
      });
  }
  $("signout").addEventListener("click", function () { signOut(false); });
  $("signout-all").addEventListener("click", function () { signOut(true); });

  // --- Billing ---------------------------------------------------------------------------
  var STATES = { active: "Actif", past_due: "En retard de paiement", suspended: "Suspendu (clés refusées)", cancelled: "Résilié" };
  var INVOICE_STATES = { unpaid: "À payer", partially_paid: "Partiellement payée", paid: "Payée" };
  function loadBilling() {
    return api("GET", "/api/compte/facturation").then(renderBilling).catch(failed($("billing-message")));
  }
  function renderBilling(b) {
    text($("billing-message"), b.message);
    text($("billing-state"), STATES[b.state] || b.state);
    text($("billing-balance"), b.balance_dzd > 0 ? "Reste à payer : " + dzd(b.balance_dzd)
      : b.balance_dzd < 0 ? "Crédit disponible : " + dzd(-b.balance_dzd) : "Rien à payer.");
    text($("billing-next"), b.next_amount_dzd ? "Prochaine période : " + dzd(b.next_amount_dzd) + " TTC." : "");
    var dl = $("transfer-details");
    dl.textContent = "";
    var d = b.payment_details;
    [["Bénéficiaire", d.beneficiary], ["RIB (virement bancaire)", d.bank_account], ["CCP", d.ccp_account], ["RIP BaridiMob", d.baridimob_rip]].forEach(function (row) {
      if (!row[1]) return;
      dl.appendChild(make("dt", null, row[0]));
      dl.appendChild(make("dd", null, row[1]));
    });
    text($("transfer-instructions"), d.instructions);
    var body = $("invoices-body");
    body.textContent = "";
    if (!b.invoices.length) {
      var tr = make("tr"); var td = make("td", "muted", "Aucune facture pour l'instant."); td.colSpan = 7; tr.appendChild(td); body.appendChild(tr);
    }
    b.invoices.forEach(function (inv) {
      var tr = make("tr");
      tr.appendChild(make("td", null, inv.number));
      // The last day the invoice covers (the next period starts the day after), as the PDF prints it.
      tr.appendChild(make("td", null, (inv.kind === "proration" ? "Changement de forfait : " : "") + date(inv.period_start) + " – " + date(inv.period_last_day)));
      tr.appendChild(make("td", null, dzd(inv.total_dzd)));
      tr.appendChild(make("td", null, dzd(inv.balance_dzd)));
      tr.appendChild(make("td", null, date(inv.due_at)));
      tr.appendChild(make("td", null, INVOICE_STATES[inv.status] || inv.status));
      var actions = make("td");
      var pdf = make("a", "btn btn-ghost-dark", "PDF");
      pdf.href = "/api/compte/factures/" + encodeURIComponent(inv.number) + "/pdf";
      pdf.setAttribute("aria-label", "Télécharger la facture " + inv.number + " en PDF");
      actions.appendChild(pdf);
      if (inv.balance_dzd > 0) {
        var pay = make("button", "btn btn-primary", "Payer par carte");
        pay.type = "button";
        // The accessible name starts with the visible text (WCAG 2.5.3, "label in name").
        pay.setAttribute("aria-label", "Payer par carte la facture " + inv.number + " (Edahabia ou CIB)");
        pay.addEventListener("click", function () { payByCard(inv.number, pay); });
        actions.appendChild(pay);
      }
      tr.appendChild(actions);
      body.appendChild(tr);
    });
  }
  function payByCard(number, button) {
    var status = $("pay-status");
    button.disabled = true;
    text(status, "Redirection vers le paiement sécurisé…");
    api("POST", "/api/compte/factures/" + encodeURIComponent(number) + "/paiement-carte").then(function (c) {
      window.location.assign(c.checkout_url);
    }).catch(function (e) { button.disabled = false; failed(status)(e); });
  }
  (function paymentReturn() {
    var m = /[?&]paiement=(recu|echec)/.exec(window.location.search);
    if (!m) return;
    // The return from the payment page proves nothing: the invoice shows paid once the payment
    // provider has confirmed it to the server.
    text($("pay-status"), m[1] === "recu"
      ? "Paiement envoyé : la facture apparaît payée dès sa confirmation par la banque (quelques secondes)."
      : "Le paiement n'a pas abouti : vous pouvez réessayer ou payer par virement.");
  })();

  // --- Dashboard -------------------------------------------------------------------------
  function loadDashboard() {
    return api("GET", "/api/compte").then(function (a) {
      state.account = a;
      state.csrf = a.csrf_token;
      pageError("");
      show("espace");
      renderAccount(a);
      loadKeys();
      loadUsage();
      loadCalls(true);
      loadBilling();
    }).catch(function (e) {
      if (e.status === 401) signedOut(); else pageError(e.message);
    });
  }

  function renderAccount(a) {
    text($("account-email"), "Connecté en tant que " + a.email + " — client " + a.user_id);
    var p = a.package || { name: "?", tokens_per_month: 0 };
    text($("pkg-name"), p.name);
    text($("pkg-price"), dzd(a.price_dzd) + " par mois" + (a.discount_percent ? " (−" + a.discount_percent + " % avec " + a.promo_code + ")" : ""));
    text($("pkg-after"), a.discount_ends_at
      ? "À partir du " + date(a.discount_ends_at) + " : " + dzd(a.base_price_dzd) + " par mois."
      : "Période en cours : du " + date(a.period_start) + " au " + date(a.period_last_day) + ".");
    var pending = $("pkg-pending");
    pending.hidden = !a.pending_package;
    if (a.pending_package) text(pending, "Passage au forfait " + a.pending_package + " à partir du " + date(a.pending_from) + " (début de votre prochaine période) ; d'ici là, votre forfait actuel, déjà facturé.");
    var cancel = $("pkg-cancel");
    cancel.hidden = !a.cancel_at;
    if (a.cancel_at) text(cancel, "Abonnement résilié : il prend fin le " + date(a.cancel_at) + ".");
    $("pkg-suspended").hidden = !a.suspended;
    text($("cancel-btn"), a.cancel_at ? "Annuler la résiliation" : "Résilier à la fin de la période");
    text($("cancel-text"), a.cancel_at
      ? "Votre abonnement prend fin le " + date(a.cancel_at) + ". Vous pouvez encore changer d'avis."
      : "La résiliation prend effet à la fin de la période en cours, le " + date(a.period_end) + " ; vos clés fonctionnent jusque-là.");
    var select = $("package");
    select.textContent = "";
    a.packages.forEach(function (pk) {
      if (pk.id === p.id) return;
      var o = make("option", null, pk.name + " — " + dzd(pk.monthly_price_dzd) + " / mois, " + nf.format(pk.tokens_per_month) + " tokens");
      o.value = pk.id;
      select.appendChild(o);
    });
    $("plan").hidden = true;
  }

  // --- Usage -----------------------------------------------------------------------------
  function loadUsage() {
    var box = $("usage-figures");
    api("GET", "/api/compte/consommation").then(function (u) {
      box.textContent = "";
      var pct = u.tokens_per_month ? Math.min(100, Math.round(100 * u.total_tokens / u.tokens_per_month)) : 0;
      box.appendChild(make("p", "big", nf.format(u.total_tokens) + " tokens"));
      box.appendChild(make("p", "muted", "sur " + nf.format(u.tokens_per_month) + " inclus (" + pct + " %) — " + nf.format(u.requests) + " requêtes"));
      var meter = make("div", "meter");
      meter.setAttribute("role", "progressbar");
      meter.setAttribute("aria-label", "Part du quota mensuel de tokens utilisée");
      meter.setAttribute("aria-valuemin", "0"); meter.setAttribute("aria-valuemax", "100"); meter.setAttribute("aria-valuenow", String(pct));
      var fill = make("div", "meter-fill" + (pct >= 80 ? " high" : ""));
      fill.style.width = pct + "%";
      meter.appendChild(fill);
      box.appendChild(meter);
      box.appendChild(make("p", "muted", "Quota remis à zéro le " + date(u.resets_at) + "."));
      state.usage = u;
      $("chart-card").hidden = false;
      renderChart(u);
      renderModels(u.models || []);
      state.lastUsed = {};
      (u.keys || []).forEach(function (k) { state.lastUsed[k.id] = k.last_used_at; });
      if (state.keys) renderKeys(state.keys);
    }).catch(function (e) {
      if (e.status === 401) { signedOut(); return; }
      box.textContent = "";
      box.appendChild(make("p", "muted", "Consommation momentanément indisponible."));
    });
  }

  // --- My latest calls (the request log) -------------------------------------------------
  var OUTCOMES = {
    quota_exceeded: "Quota épuisé", rate_limited: "Limite par minute atteinte", upstream_error: "Erreur du fournisseur",
    upstream_timeout: "Fournisseur trop lent", unsupported_parameter: "Paramètre non pris en charge",
    cancelled: "Interrompu", model_not_found: "Modèle inconnu", model_not_allowed: "Modèle hors forfait",
    invalid_argument: "Requête invalide", unavailable: "Service indisponible", payment_required: "Paiement en attente"
  };
  var callsToken = "";
  function loadCalls(reset) {
    if (reset) callsToken = "";
    var path = "/api/compte/appels?page_size=20" + (callsToken ? "&page_token=" + encodeURIComponent(callsToken) : "");
    api("GET", path).then(function (page) {
      var body = $("calls-table").tBodies[0];
      var rows = page.appels.map(function (c) {
        var tr = make("tr");
        [[dateTime(c.at), "Date"], [c.key_prefix ? c.key_prefix + "…" : "—", "Clé"],
          [c.model + (c.kind === "chat_stream" ? " (flux)" : c.kind === "embed" ? " (embeddings)" : ""), "Modèle"],
          [nf.format(c.prompt_tokens) + " / " + nf.format(c.completion_tokens), "Tokens (entrée / sortie)"],
          [nf.format(c.latency_ms) + " ms", "Durée"],
          [c.status === "ok" ? "Réussi" : (OUTCOMES[c.error_code] || c.error_code), "Résultat"]].forEach(function (v) {
          var td = make("td", null, v[0]); td.setAttribute("data-label", v[1]); tr.appendChild(td);
        });
        return tr;
      });
      if (reset) body.replaceChildren.apply(body, rows); else rows.forEach(function (r) { body.appendChild(r); });
      callsToken = page.next_page_token || "";
      $("calls-more").hidden = !callsToken;
      $("calls-empty").hidden = body.rows.length > 0;
    }).catch(function (e) {
      if (e.status === 401) { signedOut(); return; }
      $("calls-empty").hidden = false;
      text($("calls-empty"), "Derniers appels momentanément indisponibles.");
    });
  }
  $("calls-more").addEventListener("click", function () { loadCalls(false); });

  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  // Days in the month of a period `2026-11`.
  function daysIn(period) {
    return new Date(Date.UTC(Number(period.slice(0, 4)), Number(period.slice(5, 7)), 0)).getUTCDate();
  }
  var monthName = new Intl.DateTimeFormat("fr-FR", { month: "long", year: "numeric", timeZone: "UTC" });
  // The month's tokens per day as bars drawn at the box's own width (so the labels keep their
  // size on a phone), the whole month on the axis (days to come are empty slots), the busiest
  // day's value written above it, and the quota's daily pace (monthly tokens / days in the
  // month) as a dashed line when it fits the scale, else said in the legend. The <title> is
  // the text alternative: the same facts in a sentence.
  function renderChart(u) {
    var box = $("chart"), legend = $("chart-legend");
    box.textContent = "";
    var days = u.days || [], n = daysIn(u.period);
    var w = Math.max(280, Math.round(box.clientWidth || 720)), h = w < 500 ? 180 : 220;
    var left = 8, right = 8, top = 26, bottom = 26;
    var plotH = h - top - bottom, slot = (w - left - right) / n;
    var max = 0, maxDay = null, total = 0, active = 0;
    days.forEach(function (d) {
      total += d.total_tokens;
      if (d.total_tokens > 0) active++;
      if (d.total_tokens > max) { max = d.total_tokens; maxDay = d; }
    });
    var pace = u.tokens_per_month ? u.tokens_per_month / n : 0;
    // The pace line squeezes the bars when it is far above them: drawn only within 2.5 × the
    // busiest day.
    var showPace = pace > 0 && max > 0 && pace <= 2.5 * max;
    var scale = Math.max(max, showPace ? pace : 0) || 1;
    var y = function (v) { return top + plotH - plotH * v / scale; };
    var month = monthName.format(new Date(u.period + "-01T00:00:00Z"));
    var summary = "Tokens consommés par jour en " + month + " : " + nf.format(total) + " au total sur " +
      days.length + " jour" + (days.length > 1 ? "s" : "") + " écoulé" + (days.length > 1 ? "s" : "") + " (" + active + " avec des appels)" +
      (maxDay ? ", au plus " + nf.format(max) + " le " + Number(maxDay.day.slice(8)) + "." : ".") +
      (pace ? " Quota : " + nf.format(u.tokens_per_month) + " tokens par mois, soit " + nf.format(Math.round(pace)) + " par jour en moyenne." : "");
    var chart = svg("svg", { viewBox: "0 0 " + w + " " + h, width: w, height: h, role: "img", "aria-labelledby": "chart-svg-title", focusable: "false" });
    var title = svg("title", { id: "chart-svg-title" });
    title.textContent = summary;
    chart.appendChild(title);
    chart.appendChild(svg("line", { x1: left, y1: top + plotH, x2: w - right, y2: top + plotH, "class": "chart-axis" }));
    var dense = slot < 22;
    for (var i = 0; i < n; i++) {
      var dayNum = i + 1, d = days[i], cx = left + slot * (i + 0.5);
      if (d && d.total_tokens > 0) {
        var bh = Math.max(2, plotH * d.total_tokens / scale);
        var bar = svg("rect", { x: (left + slot * i + slot * 0.15).toFixed(1), y: (top + plotH - bh).toFixed(1), width: (slot * 0.7).toFixed(1), height: bh.toFixed(1), rx: Math.min(3, slot * 0.2).toFixed(1), "class": d === maxDay ? "chart-bar chart-max" : "chart-bar" });
        var tip = svg("title", {});
        tip.textContent = dayNum + " : " + nf.format(d.total_tokens) + " tokens, " + nf.format(d.requests) + " requêtes";
        bar.appendChild(tip);
        chart.appendChild(bar);
      } else if (!d) {
        // A day still to come: a tick on the axis.
        chart.appendChild(svg("line", { x1: cx, y1: top + plotH, x2: cx, y2: top + plotH + 3, "class": "chart-tick" }));
      }
      if (!dense || dayNum === 1 || dayNum % 5 === 0) {
        var label = svg("text", { x: cx.toFixed(1), y: h - 8, "text-anchor": "middle", "class": "chart-label" });
        label.textContent = String(dayNum);
        chart.appendChild(label);
      }
    }
    if (maxDay) {
      var mi = Number(maxDay.day.slice(8)) - 1, mx = left + slot * (mi + 0.5);
      var anchor = mx < 40 ? "start" : (mx > w - 40 ? "end" : "middle");
      var value = svg("text", { x: (anchor === "start" ? left : anchor === "end" ? w - right : mx).toFixed(1), y: (y(max) - 6).toFixed(1), "text-anchor": anchor, "class": "chart-value" });
      value.textContent = nf.format(max);
      chart.appendChild(value);
    }
    if (showPace) {
      var py = y(pace).toFixed(1);
      chart.appendChild(svg("line", { x1: left, y1: py, x2: w - right, y2: py, "class": "chart-pace" }));
    }
    box.appendChild(chart);
    legend.textContent = "";
    if (!total) { legend.appendChild(make("span", null, "Aucun appel ce mois-ci.")); return; }
    legend.appendChild(make("span", "legend-bar", "Tokens du jour (le plus haut : " + nf.format(max) + ")"));
    if (pace) {
      legend.appendChild(make("span", showPace ? "legend-pace" : null,
        (showPace ? "Rythme du quota" : "Rythme du quota, hors échelle") + " : " + nf.format(Math.round(pace)) + " tokens par jour"));
    }
  }
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () { if (state.usage && !$("chart-card").hidden) renderChart(state.usage); }, 150);
  });
  function renderModels(models) {
    var box = $("models");
    box.textContent = "";
    if (!models.length) { box.appendChild(make("p", "muted", "Aucun appel ce mois-ci.")); return; }
    var t = make("table", "models");
    var cap = make("caption", "visually-hidden", "Consommation par modèle");
    t.appendChild(cap);
    var head = make("tr");
    ["Modèle", "Requêtes", "Tokens"].forEach(function (s) { var th = make("th", null, s); th.scope = "col"; head.appendChild(th); });
    var thead = make("thead"); thead.appendChild(head); t.appendChild(thead);
    var body = make("tbody");
    models.forEach(function (m) {
      var tr = make("tr");
      tr.appendChild(make("td", null, m.model));
      tr.appendChild(make("td", null, nf.format(m.requests)));
      tr.appendChild(make("td", null, nf.format(m.prompt_tokens + m.completion_tokens)));
      body.appendChild(tr);
    });
    t.appendChild(body);
    box.appendChild(t);
  }

  // --- Keys ------------------------------------------------------------------------------
  var STATUS = { active: "Active", grace: "Remplacée", revoked: "Révoquée" };
  function loadKeys() {
    api("GET", "/api/compte/cles").then(renderKeys).catch(failed($("keys-status")));
  }
  function renderKeys(list) {
    state.keys = list;
    var body = $("keys-body");
    body.textContent = "";
    list.keys.forEach(function (k) {
      var tr = make("tr");
      tr.appendChild(make("td", null, k.name || "Clé d'inscription"));
      var code = make("td"); code.appendChild(make("code", null, k.prefix + "…")); tr.appendChild(code);
      tr.appendChild(make("td", null, date(k.created_at)));
      var used = state.lastUsed[k.id];
      tr.appendChild(make("td", null, used ? dateTime(used) : (k.id in state.lastUsed ? "Jamais" : "—")));
      var st = STATUS[k.status] || k.status;
      if (k.status === "grace") st += " — fonctionne jusqu'au " + dateTime(k.revoked_at);
      if (k.status === "revoked" && k.revoked_by === "operator") st += " par l'opérateur";
      tr.appendChild(make("td", "status-" + k.status, st));
      var actions = make("td");
      var buttons = make("div", "key-actions");
      actions.appendChild(buttons);
      if (k.status === "active") {
        var label = k.name || k.prefix;
        var grace = make("select");
        grace.setAttribute("aria-label", "Délai avant révocation de l'ancienne clé " + label);
        [["3600", "ancienne clé : 1 h"], ["86400", "ancienne clé : 24 h"], ["604800", "ancienne clé : 7 jours"], ["0", "ancienne clé : aussitôt"]].forEach(function (g) {
          var o = make("option", null, g[1]); o.value = g[0]; grace.appendChild(o);
        });
        var rotate = make("button", "btn btn-ghost-dark", "Remplacer");
        rotate.type = "button";
        rotate.setAttribute("aria-label", "Remplacer la clé " + label);
        rotate.addEventListener("click", function () {
          api("POST", "/api/compte/cles/" + encodeURIComponent(k.id) + "/rotation", { grace_seconds: Number(grace.value) })
            .then(function (c) { showNewKey(c.api_key, "Clé de remplacement"); loadKeys(); })
            .catch(failed($("keys-status")));
        });
        var revoke = make("button", "btn btn-ghost-dark", "Révoquer");
        revoke.type = "button";
        revoke.setAttribute("aria-label", "Révoquer la clé " + label);
        revoke.addEventListener("click", function () {
          if (!window.confirm("Révoquer la clé " + k.prefix + "… ? Elle cessera de fonctionner tout de suite.")) return;
          api("POST", "/api/compte/cles/" + encodeURIComponent(k.id) + "/revocation")
            .then(function () { text($("keys-status"), "Clé " + k.prefix + "… révoquée."); loadKeys(); })
            .catch(failed($("keys-status")));
        });
        buttons.appendChild(grace); buttons.appendChild(rotate); buttons.appendChild(revoke);
      }
      tr.appendChild(actions);
      ["Nom", "Début de la clé", "Créée le", "Dernière utilisation", "État"].forEach(function (label, i) {
        tr.children[i].setAttribute("data-label", label);
      });
      body.appendChild(tr);
    });
  }
  function showNewKey(key, title) {
    text($("new-key-title"), title);
    text($("new-key-value"), key);
    text($("copy-status"), "");
    var box = $("new-key");
    box.hidden = false;
    box.focus();
  }
  $("copy-key").addEventListener("click", function () {
    var key = $("new-key-value").textContent;
    if (navigator.clipboard) {
      navigator.clipboard.writeText(key).then(function () { text($("copy-status"), "Clé copiée."); },
        function () { text($("copy-status"), "Copie impossible : sélectionnez la clé."); });
    }
  });
  $("key-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var name = $("key-name").value.trim();
    if (!name) { text($("keys-status"), "Donnez un nom à la clé."); $("key-name").focus(); return; }
    api("POST", "/api/compte/cles", { name: name })
      .then(function (c) { $("key-name").value = ""; showNewKey(c.api_key, "Nouvelle clé « " + name + " »"); text($("keys-status"), ""); loadKeys(); })
      .catch(failed($("keys-status")));
  });

  // --- Package ---------------------------------------------------------------------------
  $("change-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var pkg = $("package").value;
    text($("change-status"), "");
    api("GET", "/api/compte/forfait/apercu?package=" + encodeURIComponent(pkg)).then(function (plan) {
      text($("plan-message"), plan.message);
      $("plan").hidden = false;
      $("plan").focus();
      $("plan-confirm").onclick = function () {
        api("POST", "/api/compte/forfait", { package: pkg }).then(function (done) {
          text($("change-status"), done.kind !== "upgrade" ? "Changement programmé."
            : done.prorated_dzd ? "Changement effectué. Facture de " + dzd(done.prorated_dzd) + " TTC émise pour la différence de prix jusqu'à la fin de la période (voir Factures)."
            : "Changement effectué.");
          loadDashboard();
        }).catch(failed($("change-status")));
      };
    }).catch(failed($("change-status")));
  });
  $("cancel-btn").addEventListener("click", function () {
    var undo = !!(state.account && state.account.cancel_at);
    if (!undo && !window.confirm("Résilier votre abonnement à la fin de la période en cours ?")) return;
    api("POST", "/api/compte/resiliation", { undo: undo }).then(function (a) {
      text($("cancel-status"), undo ? "Résiliation annulée." : "Résiliation enregistrée.");
      state.account = a; renderAccount(a);
    }).catch(failed($("cancel-status")));
  });

  // --- Start -----------------------------------------------------------------------------
  var m = /[#&]jeton=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (m) openSession(m[1]); else loadDashboard();
})();
