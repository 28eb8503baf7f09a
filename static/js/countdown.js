/* Hold countdowns: every element with data-countdown-until (an ISO date-time)
   shows the minutes and seconds left, then "expired". The page already shows
   the expiry time, so without JavaScript nothing is lost. */
(function () {
  "use strict";
  var items = Array.prototype.slice.call(
    document.querySelectorAll("[data-countdown-until]")
  );
  if (!items.length) { return; }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function tick() {
    var now = Date.now();
    items.forEach(function (el) {
      var until = Date.parse(el.getAttribute("data-countdown-until"));
      if (isNaN(until)) { return; }
      var left = Math.max(0, Math.floor((until - now) / 1000));
      if (left === 0) {
        el.textContent = el.getAttribute("data-expired-text");
        el.classList.add("is-expired");
        return;
      }
      var text = pad(Math.floor(left / 60)) + ":" + pad(left % 60);
      var format = el.getAttribute("data-left-text") || "{time}";
      el.textContent = format.replace("{time}", text);
      el.setAttribute("title", el.getAttribute("data-countdown-until"));
    });
  }

  tick();
  window.setInterval(tick, 1000);
})();
