// Gives the site's static forms what the app checks: a CSRF token and, for the contact
// form, a signed start time. Fetched when the visitor starts using a form (focus) or sends it,
// never at page load: a visitor who only reads gets no session cookie. Without JavaScript the
// app shows the form again, filled in.
(function () {
  var forms = document.querySelectorAll("form[data-csrf]");
  if (!forms.length || !window.fetch) return;
  var pending = null;

  function token() {
    if (!pending) {
      pending = fetch("/api/csrf", { credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
        .then(function (data) {
          forms.forEach(function (form) {
            form.querySelector('input[name="csrf_token"]').value = data.csrf_token;
            var started = form.querySelector('input[name="started"]');
            if (started) started.value = data.started;
          });
        })
        .catch(function () { pending = null; /* the app's fallback page takes over */ });
    }
    return pending;
  }

  forms.forEach(function (form) {
    form.addEventListener("focusin", token);
    form.addEventListener("submit", function (event) {
      if (form.querySelector('input[name="csrf_token"]').value) return;
      event.preventDefault();  // sent before any focus (a keyboard shortcut, a script): fetch first
      token().then(function () { HTMLFormElement.prototype.submit.call(form); });
    });
  });
})();
