// Gives the site's static forms what the app checks: a CSRF token and, for the contact
// form, a signed start time. Without JavaScript the app shows the form again, filled in.
(function () {
  var forms = document.querySelectorAll("form[data-csrf]");
  if (!forms.length) return;
  fetch("/api/csrf", { credentials: "same-origin", cache: "no-store" })
    .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
    .then(function (data) {
      forms.forEach(function (form) {
        form.querySelector('input[name="csrf_token"]').value = data.csrf_token;
        var started = form.querySelector('input[name="started"]');
        if (started) started.value = data.started;
      });
    })
    .catch(function () { /* the app's fallback page takes over */ });
})();
