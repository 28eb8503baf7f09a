/* Feedback on long actions. Once a form is posted its buttons are disabled
   and the one pressed says what is happening (data-busy-text on the button,
   the form or <body>), so a slow upload shows progress and a second click
   cannot order twice. A form opts out with data-no-busy. */
(function () {
  "use strict";
  var SUBMITS = "button[type=submit], button:not([type]), input[type=submit]";

  function busyText(form, submitter) {
    return (submitter && submitter.getAttribute("data-busy-text")) ||
      form.getAttribute("data-busy-text") ||
      document.body.getAttribute("data-busy-text");
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || form.hasAttribute("data-no-busy") ||
        (form.getAttribute("method") || "get").toLowerCase() !== "post") {
      return;
    }
    if (form.getAttribute("aria-busy") === "true") {
      event.preventDefault();  // already on its way
      return;
    }
    form.setAttribute("aria-busy", "true");
    var submitter = event.submitter;
    // After this event the browser has read the pressed button's name and
    // value (e.g. action=confirm); disabling it now would drop them.
    window.setTimeout(function () {
      var buttons = form.querySelectorAll(SUBMITS);
      for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = true; }
      var text = busyText(form, submitter);
      if (submitter && text) {
        if (submitter.tagName === "INPUT") { submitter.value = text; }
        else { submitter.textContent = text; }
      }
    }, 0);
  });

  // A page restored by the Back button is usable again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    if (document.querySelector("form[aria-busy=true]")) { window.location.reload(); }
  });
})();
