// Self-hosted page count: tells our own server which path was viewed, nothing else.
// No cookie (credentials: "omit"), no query string, no referrer, nothing about the visitor.
// Runs only after consent for "analytics": consent.js adds it (see partials/consent.html).
(function () {
  var path = location.pathname;
  if (path.length > 200 || !window.fetch) return;
  fetch("/api/analytics", {
    method: "POST", body: path, headers: { "Content-Type": "text/plain" },
    credentials: "omit", cache: "no-store", keepalive: true, referrerPolicy: "no-referrer"
  }).catch(function () { /* a missed count is no problem */ });
})();
