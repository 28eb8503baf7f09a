// Live progress of a monthly close in the back office. The page works
// without this script (it refreshes itself through <noscript>); with it, the
// counts update in place every second until the close is finished.
(function () {
  "use strict";
  var root = document.getElementById("close-progress");
  if (!root || !window.fetch) {
    return;
  }
  var url = root.getAttribute("data-url");
  var finishedText = root.querySelector("[data-finished-text]");
  var state = root.querySelector('[data-field="state"]');

  function render(data) {
    root.querySelector('[data-field="done"]').textContent = data.done;
    root.querySelector('[data-field="percent"]').value = data.percent;
    Object.keys(data.counts).forEach(function (status) {
      var cell = root.querySelector('[data-count="' + status + '"]');
      if (cell) {
        cell.textContent = data.counts[status];
      }
    });
    if (data.finished && state && finishedText) {
      state.textContent = finishedText.textContent;
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        render(data);
        if (data.finished) {
          // Reload once so the "needs attention" list is complete.
          if (root.getAttribute("data-finished") !== "1") {
            window.location.reload();
          }
          return;
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () {
        window.setTimeout(poll, 5000);
      });
  }

  if (root.getAttribute("data-finished") !== "1") {
    window.setTimeout(poll, 1000);
  }
})();
