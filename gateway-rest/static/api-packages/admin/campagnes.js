// The console's "Campagnes" page: contact import (CSV), campaigns (draft, test copy to the
// operator, schedule, progress), the confirmed waitlist and the suppression list. Same session
// and CSRF token as the console (/api/admin/moi); roles are enforced by the server.
"use strict";
(function () {
  var state = { csrf: "", role: "" };
  var $ = function (id) { return document.getElementById(id); };
  var nf = new Intl.NumberFormat("fr-FR");
  function text(el, s) { el.textContent = s; return el; }
  function make(tag, cls, s) { var e = document.createElement(tag); if (cls) e.className = cls; if (s != null) e.textContent = s; return e; }
  function cell(tr, s, label) { var td = make("td", null, s); if (label) td.setAttribute("data-label", label); tr.appendChild(td); return td; }
  function dateTime(iso) {
    if (!iso) return "—";
    return new Date(iso).toLocaleString("fr-FR", { day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit", timeZone: "UTC" }) + " UTC";
  }
  var TEMPLATES = { announcement: "Annonce (J-3)", reminder: "Rappel (J+3)", waitlist_back: "Places revenues", waitlist_over: "Offre terminée" };
  var AUDIENCES = { contacts: "Contacts", prospects: "Pas encore clients", waitlist: "Liste d'attente" };
  var STATUSES = { draft: "Brouillon", scheduled: "Programmée", sending: "Envoi en cours / fait" };
  var REASONS = { unsubscribed: "Désinscrit", bounced: "Rejeté", complained: "Plainte" };

  function api(method, path, body, contentType) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = contentType || "application/json";
    if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    return fetch(path, {
      method: method, headers: headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : (contentType ? body : JSON.stringify(body))
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
  function signedOut() { $("console").hidden = true; $("signed-out").hidden = false; }
  function failed(statusEl) {
    return function (err) {
      if (err.status === 401) { signedOut(); return; }
      statusEl.setAttribute("data-kind", "error");
      text(statusEl, err.message);
    };
  }
  function done(statusEl, msg) { statusEl.setAttribute("data-kind", "ok"); text(statusEl, msg); }

  function loadContacts() {
    return api("GET", "/api/admin/contacts").then(function (c) {
      text($("contact-totals"), nf.format(c.total) + " contact(s), dont " + nf.format(c.with_consent) + " avec consentement ; " + nf.format(c.suppressed) + " désinscrit(s) ou bloqué(s).");
    });
  }

  $("import-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var status = $("import-status");
    var file = $("import-file").files[0];
    if (!file) { failed(status)(new Error("Choisissez un fichier CSV.")); return; }
    if (file.size > 512 * 1024) { failed(status)(new Error("Fichier trop volumineux (512 Kio au plus).")); return; }
    text(status, "Import…");
    file.text().then(function (csv) {
      return api("POST", "/api/admin/contacts/import", csv, "text/csv");
    }).then(function (r) {
      done(status, nf.format(r.rows) + " ligne(s) lue(s) : " + nf.format(r.created) + " contact(s) créé(s), " + nf.format(r.merged) + " fusionné(s), " + nf.format(r.problems.length) + " ligne(s) refusée(s).");
      var body = $("problems-table").tBodies[0];
      body.replaceChildren();
      r.problems.forEach(function (p) {
        var tr = make("tr");
        cell(tr, p.line ? String(p.line) : "—", "Ligne");
        cell(tr, p.reason, "Raison");
        body.appendChild(tr);
      });
      $("problems-wrap").hidden = r.problems.length === 0;
      return loadContacts();
    }).catch(failed(status));
  });

  function progressText(p) {
    return nf.format(p.sent) + " / " + nf.format(p.suppressed) + " / " + nf.format(p.failed) + " / " + nf.format(p.pending) + " (sur " + nf.format(p.recipients) + ")";
  }

  function percent(n, of) {
    if (!of) return "";
    return new Intl.NumberFormat("fr-FR", { style: "percent", maximumFractionDigits: 1 }).format(n / of);
  }

  // One card per campaign that started sending: where its messages stand (a stacked bar with
  // its legend, the same numbers as text) and what it produced (unsubscribed, conversions).
  function metricsCard(c) {
    var p = c.progress;
    var card = make("article", "campaign-card");
    card.setAttribute("data-campaign", c.id);
    card.appendChild(make("h3", null, c.name));
    card.appendChild(make("p", "campaign-meta", (TEMPLATES[c.template] || c.template) + " — " + c.locale.toUpperCase() + " — " + (AUDIENCES[c.audience] || c.audience)));
    var parts = [
      ["sent", "Envoyés", p.sent],
      ["pending", "En attente", p.pending],
      ["failed", "Échecs", p.failed],
      ["skipped", "Ignorés (désinscrits, déjà clients)", p.suppressed]
    ];
    var total = p.recipients || 1;
    var bar = make("div", "campaign-bar");
    bar.setAttribute("role", "img");
    bar.setAttribute("aria-label", parts.map(function (x) { return x[1] + " : " + nf.format(x[2]); }).join(", ") + " sur " + nf.format(p.recipients) + " destinataire(s)");
    var legend = make("ul", "campaign-legend");
    parts.forEach(function (x) {
      if (x[2] > 0) {
        var seg = make("span", "seg-" + x[0]);
        seg.style.flexGrow = String(x[2]);
        seg.style.flexBasis = "0";
        bar.appendChild(seg);
      }
      var li = make("li", "leg-" + x[0], x[1] + " : " + nf.format(x[2]));
      li.setAttribute("data-part", x[0]);
      legend.appendChild(li);
    });
    if (!p.recipients) bar.appendChild(make("span"));
    card.append(bar, legend);
    var figures = make("dl", "campaign-figures");
    function figure(name, label, value, share) {
      var d = make("div");
      d.setAttribute("data-figure", name);
      var dd = make("dd", null, nf.format(value));
      if (share) { dd.append(" "); dd.appendChild(make("small", null, share)); }
      d.append(make("dt", null, label), dd);
      figures.appendChild(d);
    }
    figure("audience", "Audience", p.audience, "");
    figure("unsubscribed", "Désinscrits par ce lien", p.unsubscribed, percent(p.unsubscribed, p.sent));
    figure("conversions", "Inscrits après l'envoi", p.conversions, percent(p.conversions, p.sent));
    card.appendChild(figures);
    return card;
  }

  function loadCampaigns() {
    return api("GET", "/api/admin/campagnes").then(function (r) {
      var cards = $("campaign-metrics");
      cards.replaceChildren();
      r.campaigns.forEach(function (c) { if (c.status === "sending") cards.appendChild(metricsCard(c)); });
      $("metrics-empty").hidden = cards.children.length > 0;
      var body = $("campaigns-table").tBodies[0];
      body.replaceChildren();
      r.campaigns.forEach(function (c) {
        var tr = make("tr");
        cell(tr, c.name, "Nom");
        cell(tr, (TEMPLATES[c.template] || c.template) + " — " + c.locale.toUpperCase(), "Modèle");
        cell(tr, AUDIENCES[c.audience] || c.audience, "Audience");
        cell(tr, (STATUSES[c.status] || c.status) + (c.send_at ? " — " + dateTime(c.send_at) : ""), "État");
        cell(tr, c.status === "sending" ? progressText(c.progress) : "audience : " + nf.format(c.progress.audience), "Progression");
        var actions = cell(tr, "", "Actions");
        if (state.role === "owner" && c.status !== "sending") {
          var test = make("button", "btn btn-ghost-dark btn-small", "Envoyer un test");
          test.type = "button";
          test.addEventListener("click", function () {
            api("POST", "/api/admin/campagnes/" + encodeURIComponent(c.id) + "/test").then(function (t) {
              done($("campaign-status"), "Copie de test envoyée à " + t.recipient + ".");
            }).catch(failed($("campaign-status")));
          });
          var label = make("label", "visually-hidden", "Date d'envoi de « " + c.name + " » (UTC, vide : maintenant)");
          var id = "when-" + c.id;
          label.htmlFor = id;
          var when = make("input");
          when.type = "datetime-local";
          when.id = id;
          var go = make("button", "btn btn-primary btn-small", "Programmer");
          go.type = "button";
          go.addEventListener("click", function () {
            var at = when.value ? new Date(when.value + ":00Z").toISOString() : "";
            if (!at && !window.confirm("Envoyer « " + c.name + " » maintenant ?")) return;
            api("POST", "/api/admin/campagnes/" + encodeURIComponent(c.id) + "/programmer", { send_at: at }).then(function () {
              done($("campaign-status"), at ? "Campagne programmée." : "Envoi commencé.");
              return loadCampaigns();
            }).catch(failed($("campaign-status")));
          });
          actions.append(test, " ", label, when, " ", go);
        }
        body.appendChild(tr);
      });
    });
  }

  $("campaign-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var status = $("campaign-status");
    var name = $("cmp-name").value.trim();
    if (!name) { failed(status)(new Error("Donnez un nom à la campagne.")); return; }
    api("POST", "/api/admin/campagnes", {
      name: name, template: $("cmp-template").value, locale: $("cmp-locale").value, audience: $("cmp-audience").value
    }).then(function (c) {
      done(status, "Brouillon « " + c.name + " » créé (audience : " + (AUDIENCES[c.audience] || c.audience) + ").");
      $("cmp-name").value = "";
      return loadCampaigns();
    }).catch(failed(status));
  });

  function loadWaitlist() {
    return api("GET", "/api/admin/liste-attente").then(function (w) {
      text($("waitlist-totals"), nf.format(w.confirmed) + " inscription(s) confirmée(s), " + nf.format(w.unconfirmed) + " en attente de confirmation (jamais ciblées).");
      var body = $("waitlist-table").tBodies[0];
      body.replaceChildren();
      w.entries.forEach(function (e) {
        var tr = make("tr");
        cell(tr, e.email, "E-mail");
        cell(tr, dateTime(e.confirmed_at), "Confirmé le");
        cell(tr, e.lang === "ar" ? "Arabe" : "Français", "Langue");
        body.appendChild(tr);
      });
    });
  }

  function loadSuppressions() {
    return api("GET", "/api/admin/suppressions").then(function (r) {
      var body = $("suppressions-table").tBodies[0];
      body.replaceChildren();
      r.suppressions.forEach(function (s) {
        var tr = make("tr");
        cell(tr, s.email, "E-mail");
        cell(tr, REASONS[s.reason] || s.reason, "Motif");
        cell(tr, s.note || "—", "Note");
        cell(tr, dateTime(s.created_at), "Depuis");
        body.appendChild(tr);
      });
    });
  }

  $("suppress-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var status = $("suppress-status");
    var email = $("sup-email").value.trim();
    if (!email) { failed(status)(new Error("Indiquez l'adresse.")); return; }
    api("POST", "/api/admin/suppressions", { email: email, reason: $("sup-reason").value, note: $("sup-note").value.trim() }).then(function (s) {
      done(status, s.email + " ne recevra plus aucune campagne.");
      $("sup-email").value = "";
      $("sup-note").value = "";
      return Promise.all([loadSuppressions(), loadContacts()]);
    }).catch(failed(status));
  });

  api("GET", "/api/admin/moi").then(function (me) {
    state.csrf = me.csrf_token;
    state.role = me.role;
    var who = me.operator ? me.operator.display_name + " (" + me.operator.email + ")" : "jeton d'administration";
    text($("whoami"), "Connecté : " + who + " — rôle " + (me.role === "owner" ? "propriétaire" : "support (lecture seule)") + ".");
    document.querySelectorAll("[data-owner]").forEach(function (e) { e.hidden = me.role !== "owner"; });
    $("console").hidden = false;
    return Promise.all([loadContacts(), loadCampaigns(), loadWaitlist(), loadSuppressions()]);
  }).catch(function (e) {
    if (e.status === 401) { signedOut(); return; }
    var err = $("page-error");
    err.hidden = false;
    text(err, e.message);
  });
  // Progress moves while a campaign sends.
  setInterval(function () { if (!$("console").hidden) loadCampaigns().catch(function () {}); }, 5000);
})();
