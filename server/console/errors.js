// Loaded first, as a classic script, so that it sees the modules fail too: every
// error of the page (an uncaught exception, a rejected promise nobody handled, a file
// that did not load, a Content-Security-Policy violation) is shown to the person at
// the screen and kept in `window.wanggeErrors`, which the browser tests read.
(function () {
  "use strict";
  var errors = [];
  window.wanggeErrors = errors;
  function record(text) {
    errors.push(text);
    var banner = document.getElementById("error-banner");
    if (banner) {
      banner.textContent = "出错了 Something went wrong: " + text;
      banner.hidden = false;
    }
  }
  window.addEventListener("error", function (event) {
    var target = event.target;
    // A base-map tile that did not load is the tile server's trouble, shown as a
    // gap in the map; Leaflet handles it.
    if (target && target.classList && target.classList.contains("leaflet-tile")) return;
    if (target && target !== window && (target.src || target.href)) {
      record("could not load " + (target.src || target.href));
    } else {
      record((event.message || "error") + " (" + (event.filename || "") + ":" + (event.lineno || 0) + ")");
    }
  }, true);
  window.addEventListener("unhandledrejection", function (event) {
    var reason = event.reason;
    record("unhandled: " + (reason && reason.message ? reason.message : String(reason)));
  });
  document.addEventListener("securitypolicyviolation", function (event) {
    record("blocked by the Content-Security-Policy: " + event.violatedDirective + " " + event.blockedURI);
  });
})();
