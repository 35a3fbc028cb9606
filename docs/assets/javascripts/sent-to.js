// The thank-you pages repeat the address the mail went to, so a typo shows at once. The app keeps it in
// the visitor's session (GET /api/sent-to); it is shown as text, never as HTML, and never put in a URL.
(function () {
  var slot = document.querySelector("[data-sent-to]");
  if (!slot) return;
  fetch("/api/sent-to", { credentials: "same-origin", cache: "no-store" })
    .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
    .then(function (data) {
      if (!data.email) return;
      slot.querySelector("strong").textContent = data.email;
      slot.hidden = false;
    })
    .catch(function () { /* the page reads well without it */ });
})();
