/* Progress of a CDR import in the back office: polls the import's JSON
   progress endpoint and updates the bar and the counts; reloads the page
   once the import has finished so the summary and errors show. The page
   works without this script (it refreshes itself and has a reload link). */
(function () {
  "use strict";
  var root = document.getElementById("cdr-import");
  if (!root || root.getAttribute("data-running") !== "1") { return; }
  var url = root.getAttribute("data-progress-url");
  var bar = document.getElementById("cdr-import-progress");

  function show(data) {
    bar.value = data.percent;
    bar.textContent = data.percent + "%";
    var fields = root.querySelectorAll("[data-field]");
    for (var i = 0; i < fields.length; i++) {
      var name = fields[i].getAttribute("data-field");
      if (Object.prototype.hasOwnProperty.call(data, name)) {
        fields[i].textContent = data[name];
      }
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) {
        show(data);
        if (data.running) { window.setTimeout(poll, 1000); }
        else { window.location.reload(); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
