// IAFactory landing page: the waitlist form, shown once the launch offer has no place left
// (app.js sets the banner's data-state to "over"). Posts to /api/promo/waitlist; the answer is
// the same whatever the address (double opt-in: a confirmation e-mail carries the real step).
'use strict';

(() => {
  const banner = document.getElementById('promo');
  const section = document.getElementById('liste-attente');
  const form = document.getElementById('waitlist-form');
  if (!banner || !section || !form) return;
  const email = document.getElementById('waitlist-email');
  const consent = document.getElementById('waitlist-consent');
  const error = document.getElementById('waitlist-error');
  const done = document.getElementById('waitlist-done');
  const button = document.getElementById('waitlist-submit');
  const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

  const sync = () => { section.hidden = banner.dataset.state !== 'over'; };
  new MutationObserver(sync).observe(banner, { attributes: true, attributeFilter: ['data-state'] });
  sync();

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const address = email.value.trim();
    if (!address || address.length > 254 || !EMAIL_RE.test(address)) {
      error.textContent = 'Saisissez une adresse e-mail valide, par exemple nom@domaine.dz.';
      email.focus();
      return;
    }
    if (!consent.checked) {
      error.textContent = 'Cochez la case pour accepter de recevoir nos e-mails sur ces places.';
      consent.focus();
      return;
    }
    button.disabled = true;
    let r = null;
    let body = null;
    try {
      r = await fetch('/api/promo/waitlist', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ email: address, consent: true }),
      });
      body = await r.json().catch(() => null);
    } catch (_) {
      r = null;
    }
    button.disabled = false;
    if (r && r.status === 202 && body && typeof body.message === 'string') {
      form.hidden = true;
      done.textContent = body.message;
      done.hidden = false;
      return;
    }
    if (!r) error.textContent = 'Impossible de joindre le serveur. Vérifiez votre connexion et réessayez.';
    else if (r.status === 429) error.textContent = 'Trop de demandes. Patientez un instant puis réessayez.';
    else if (r.status >= 500) error.textContent = 'Le service est momentanément indisponible. Réessayez dans quelques instants.';
    else {
      const msg = body && body.error && body.error.message;
      error.textContent = msg ? `Inscription impossible : ${msg}` : 'Inscription impossible. Vérifiez l\u2019adresse saisie.';
    }
  });
})();
