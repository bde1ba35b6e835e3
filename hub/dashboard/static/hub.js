// Numéribus hub dashboard: the one script of the pages, optional — every
// page works without it. The plan form's commune field offers, as the
// mediators' interface does, the communes whose name, postal code or
// INSEE code starts with what is typed (/api/communes, the reader's
// territories only); the choice fills in "Nom (code INSEE)".
(function () {
  "use strict";
  document.querySelectorAll("input[list=communes-list]").forEach(function (input) {
    var list = document.getElementById("communes-list");
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (q.length < 2 || /\([0-9][0-9AB][0-9]{3}\)$/.test(q)) return;
      timer = setTimeout(function () {
        fetch("/api/communes?q=" + encodeURIComponent(q), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (cs) {
            list.textContent = "";
            cs.forEach(function (c) {
              var o = document.createElement("option");
              o.value = c.label;
              o.textContent = c.label + " — " + c.departement;
              list.appendChild(o);
            });
          }).catch(function () {});
      }, 150);
    });
  });

  // The printable report's button, hidden without scripts (the browser's
  // own Print gives the same pages).
  document.querySelectorAll("button[data-print]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () { window.print(); });
  });
})();
