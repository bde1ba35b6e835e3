// Numéribus local UI: small helpers; every page works without them.
(function () {
  "use strict";
  var body = document.body;

  // Small or zoomed screens: the header's menu and sync details fold
  // (style.css, class js) and open on demand, one at a time; Escape or a
  // click elsewhere closes them. Wider, they stay open.
  document.documentElement.classList.add("js");
  var folds = document.querySelectorAll("details.fold");
  var small = window.matchMedia("(max-width: 48rem), (max-height: 30rem)");
  var fit = function () { folds.forEach(function (d) { d.open = !small.matches; }); };
  fit();
  small.addEventListener("change", fit);
  folds.forEach(function (d) {
    d.addEventListener("toggle", function () {
      if (d.open && small.matches) folds.forEach(function (o) { if (o !== d) o.open = false; });
    });
  });
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape" || !small.matches) return;
    folds.forEach(function (d) {
      if (!d.open) return;
      var back = d.contains(document.activeElement);
      d.open = false;
      if (back) d.querySelector("summary").focus();
    });
  });
  document.addEventListener("click", function (e) {
    if (!small.matches) return;
    folds.forEach(function (d) { if (d.open && !d.contains(e.target)) d.open = false; });
  });

  // Duration presets fill the duration field.
  document.querySelectorAll("button.preset").forEach(function (b) {
    b.addEventListener("click", function () {
      var input = document.getElementById(b.dataset.target);
      if (!input) return;
      input.value = b.dataset.value;
      document.querySelectorAll("button.preset").forEach(function (o) { o.setAttribute("aria-pressed", o === b ? "true" : "false"); });
      input.focus();
    });
  });

  // Commune autocomplete: fills the datalist from /api/communes.
  document.querySelectorAll("input[list=communes-list]").forEach(function (input) {
    var list = document.getElementById("communes-list");
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (q.length < 2 || /^[0-9][0-9AB][0-9]{3}$/.test(q)) return;
      timer = setTimeout(function () {
        fetch("/api/communes?q=" + encodeURIComponent(q), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (cs) {
            list.textContent = "";
            cs.forEach(function (c) {
              var o = document.createElement("option");
              o.value = c.code;
              o.label = c.nom + " (" + c.departement + ")";
              o.textContent = c.nom + " (" + c.departement + ")";
              list.appendChild(o);
            });
          }).catch(function () {});
      }, 150);
    });
  });

  // A create form is one record: its id (form_id) is kept in the page's
  // history entry, so that the form loaded again by Back (the browser
  // restoring what was typed) keeps the id it was first shown with, and
  // the server recognises a second submission of it. A new visit is a new
  // entry, hence a new form.
  var formId = document.querySelector('input[name="form_id"]');
  if (formId && window.history && history.replaceState) {
    var state = history.state || {};
    if (typeof state.formId === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(state.formId)) {
      formId.value = state.formId;
    } else {
      try { history.replaceState(Object.assign({}, state, { formId: formId.value }), ""); } catch (e) {}
    }
  }

  // The notice's print button, hidden without scripts (the browser's
  // own Print gives the same page).
  document.querySelectorAll("button[data-print]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () { window.print(); });
  });

  // After an error, bring the summary into view and focus.
  var summary = document.getElementById("summary");
  if (summary) summary.focus();

  // Auto-lock: typing counts as activity for the server (at most once a
  // minute); after the delay without any activity, leave the page so
  // that no personal data stays on screen.
  if (body.dataset.unlocked === "true") {
    var delay = parseInt(body.dataset.autolock, 10) * 1000;
    var lastPing = Date.now(), lastActivity = Date.now();
    var activity = function () {
      lastActivity = Date.now();
      if (Date.now() - lastPing > 60000) {
        lastPing = Date.now();
        fetch("/api/ping", { method: "POST", credentials: "same-origin" }).catch(function () {});
      }
    };
    ["keydown", "mousedown", "input", "touchstart"].forEach(function (e) { document.addEventListener(e, activity, true); });
    // A create form typed in is kept, sealed by the agent, before the
    // page is left: it comes back after the unlock (agent/ui/draft.go).
    var typed = false;
    document.addEventListener("input", function () { typed = true; }, true);
    var leave = function () {
      var id = document.querySelector("form input[name=form_id]");
      if (!typed || !id) { window.location.replace("/unlock"); return; }
      var data = new URLSearchParams(new FormData(id.form));
      data.set("_form", new URL(id.form.action, window.location.href).pathname);
      fetch("/brouillon", { method: "POST", body: data, credentials: "same-origin" })
        .catch(function () {})
        .then(function () { window.location.replace("/unlock"); });
    };
    if (delay > 0) {
      var leaving = false;
      setInterval(function () {
        if (!leaving && Date.now() - lastActivity > delay + 5000) { leaving = true; leave(); }
      }, 5000);
    }
  }
})();
