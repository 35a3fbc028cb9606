// The checklist on the page, one theme at a time with a progress indicator. The form works without
// this script (one plain POST, the app draws the result page); with it, the app's result fragment
// replaces the form without a reload. The scoring lives in the app only (leadform/scoring.py).
(function () {
  var form = document.querySelector("form[data-scorecard]");
  if (!form || !window.fetch) return;
  var result = document.querySelector("[data-scorecard-result]");
  var themes = Array.prototype.slice.call(form.querySelectorAll("section[data-theme]"));
  var total = Number(form.getAttribute("data-total"));
  var current = 0;
  var MISSING = "Kies een antwoord bij deze uitspraak.";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text) node.textContent = text;
    return node;
  }

  // Progress: a visible bar and a sentence (not a live region: it would speak after every click).
  var progress = el("div", { class: "coach-scorecard__progress" });
  var status = el("p", { class: "coach-scorecard__status" });   // read on arrival; each theme heading gets focus
  var bar = el("progress", { max: String(total), value: "0", "aria-hidden": "true" });
  progress.appendChild(status);
  progress.appendChild(bar);
  form.insertBefore(progress, themes[0]);
  var alert = el("p", { class: "coach-scorecard__alert", role: "alert" });
  var actions = form.querySelector(".coach-scorecard__actions");
  var submit = actions.querySelector("button[type=submit]");
  var back = el("button", { type: "button", class: "md-button" }, "Vorige thema");
  var next = el("button", { type: "button", class: "md-button md-button--primary" }, "Volgende thema");
  actions.insertBefore(alert, submit);
  actions.insertBefore(back, submit);
  actions.insertBefore(next, submit);
  form.classList.add("coach-scorecard--steps");

  function statements(section) {
    return Array.prototype.slice.call(section.querySelectorAll("fieldset"));
  }
  function answered(fieldset) {
    return !!fieldset.querySelector("input:checked");
  }
  function count() {
    return statements(form).filter(answered).length;
  }

  function update() {
    var done = count();
    status.textContent = "Thema " + (current + 1) + " van " + themes.length + " · " + done + " van " + total +
      " uitspraken beantwoord";
    bar.value = done;
  }

  function flag(fieldset, on) {
    var id = fieldset.id + "-fout";
    var message = document.getElementById(id);
    fieldset.classList.toggle("coach-statement--error", on);
    if (on && !message) {
      message = el("p", { class: "coach-field__error", id: id }, MISSING);
      fieldset.appendChild(message);
      fieldset.setAttribute("aria-describedby", id);
    } else if (!on && message) {
      message.remove();
      fieldset.removeAttribute("aria-describedby");
    }
  }

  function show(index, focus) {
    current = index;
    themes.forEach(function (section, i) { section.hidden = i !== index; });
    back.hidden = index === 0;
    next.hidden = index === themes.length - 1;
    submit.hidden = index !== themes.length - 1;
    alert.textContent = "";
    update();
    if (focus) themes[index].querySelector("h3").focus();
  }

  // The open statements of some themes flagged; the first one focused. Returns how many are open.
  function check(sections) {
    var open = [];
    sections.forEach(function (section) {
      statements(section).forEach(function (fieldset) {
        var missing = !answered(fieldset);
        flag(fieldset, missing);
        if (missing) open.push(fieldset);
      });
    });
    if (open.length) {
      var owner = themes.indexOf(open[0].closest("section"));
      if (owner !== current) show(owner, false);
      alert.textContent = "Nog " + open.length + (open.length === 1 ? " uitspraak" : " uitspraken") +
        " zonder antwoord. Je andere antwoorden blijven bewaard.";
      open[0].querySelector("input").focus();
    }
    return open.length;
  }

  form.addEventListener("change", function (event) {
    var fieldset = event.target.closest("fieldset");
    if (fieldset && answered(fieldset)) flag(fieldset, false);
    update();
  });
  back.addEventListener("click", function () { show(current - 1, true); });
  next.addEventListener("click", function () {
    if (!check([themes[current]])) show(current + 1, true);
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (check(themes)) return;
    submit.disabled = true;
    fetch(form.action, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "X-Scorecard": "fragment" }, body: new URLSearchParams(new FormData(form))
    }).then(function (response) {
      return response.ok ? response.text() : Promise.reject(response.status);
    }).then(function (html) {
      result.innerHTML = html;
      form.hidden = true;
      var heading = result.querySelector("h2");
      heading.focus();
      heading.scrollIntoView({ block: "start" });
      var again = result.querySelector("[data-scorecard-again]");
      if (again) again.addEventListener("click", function (e) {
        e.preventDefault();
        result.innerHTML = "";
        form.hidden = false;
        submit.disabled = false;
        show(0, true);
      });
    }).catch(function () {
      form.submit();   // the app's own result page (or its error page) takes over
    });
  });

  // A page restored with answers (back button) or shown again by the app opens where work is left.
  var firstOpen = themes.findIndex(function (s) { return !statements(s).every(answered); });
  show(firstOpen < 0 ? 0 : firstOpen, false);
})();
