// The cookie banner (site_config/overrides/partials/consent.html).
//
// - Shows the banner until the visitor chooses; the choice is kept in localStorage "consent"
//   ({version, given_at, expires_at, choices}) for data-consent-max-age days and only for this
//   policy version, then the banner asks again. A refusal is kept as long as an acceptance.
// - Every choice goes to POST /api/consent, which stores it as proof (GDPR art. 7(1)). A choice
//   that allows an optional category takes effect only once the app stored that proof; a refusal
//   takes effect at once, proof or not.
// - A script of an optional category waits as <script type="text/plain" data-consent="CATEGORY"
//   data-src="...">; it is added as a real script only after consent for that category. When a
//   visitor withdraws consent for a script that already ran, the page reloads without it.
// - Any element with data-consent-open (the footer's "Cookie-instellingen") reopens the banner, with a
//   close button; closing it (or Escape) gives the focus back to where it was.
// - At first view it does only what the banner needs: read the stored choice, then show the banner or
//   start the allowed scripts; everything else is set up on the first interaction.
(function () {
  "use strict";
  var root = document.getElementById("__consent");
  if (!root || !window.JSON) return;

  var KEY = "consent";
  var ENDPOINT = "/api/consent";
  var DAY_MS = 864e5;
  var version = Number(root.getAttribute("data-consent-version"));
  var maxAgeDays = Number(root.getAttribute("data-consent-max-age"));
  var required = words(root.getAttribute("data-consent-required"));
  var optional = words(root.getAttribute("data-consent-optional"));
  var settings = root.querySelector(".md-consent__settings");
  var toggle = root.querySelector("[data-consent-toggle]");
  var save = root.querySelector('[data-consent-action="save"]');
  var title = document.getElementById("__consent-title");
  var closer = root.querySelector("[data-consent-close]");
  var opener = null;

  function words(value) {
    return (value || "").split(/\s+/).filter(Boolean);
  }

  // The stored choice when it is for this policy version and not expired, else null.
  function stored() {
    try {
      var record = JSON.parse(localStorage.getItem(KEY));
      if (record && record.version === version && record.choices && typeof record.choices === "object"
          && Date.now() < Date.parse(record.expires_at)) return record;
    } catch (e) { /* storage blocked or unreadable: ask again */ }
    return null;
  }

  function remember(choices) {
    var now = new Date();
    var record = { version: version, given_at: now.toISOString(),
                   expires_at: new Date(now.getTime() + maxAgeDays * DAY_MS).toISOString(), choices: choices };
    try { localStorage.setItem(KEY, JSON.stringify(record)); } catch (e) { /* asked again next time */ }
  }

  function activate(choices) {
    document.querySelectorAll('script[type="text/plain"][data-consent][data-src]').forEach(function (held) {
      if (choices[held.getAttribute("data-consent")] !== true || held.hasAttribute("data-consent-active")) return;
      var script = document.createElement("script");
      script.src = held.getAttribute("data-src");
      held.setAttribute("data-consent-active", "");
      held.parentNode.insertBefore(script, held.nextSibling);
    });
  }

  function ranAny(categories) {
    return categories.some(function (category) {
      return document.querySelector('script[data-consent="' + category + '"][data-consent-active]') !== null;
    });
  }

  function showSettings(open) {
    settings.hidden = !open;
    toggle.hidden = open;
    save.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
  }

  function show(byVisitor) {
    if (byVisitor) {
      // Reflect the visitor's own current choice; on a first visit the page's HTML has nothing ticked
      // and the settings closed, so there is nothing to do then.
      var current = stored();
      root.querySelectorAll('input[type="checkbox"][name]').forEach(function (box) {
        box.checked = !!(current && current.choices[box.name] === true);
      });
      showSettings(false);
    }
    if (closer) closer.hidden = !byVisitor;
    root.hidden = false;
    if (byVisitor) {
      opener = document.activeElement;
      title.focus();
    }
  }

  function hide() {
    root.hidden = true;
    if (closer) closer.hidden = true;
    if (opener && document.contains(opener)) opener.focus();
    opener = null;
  }

  // given / refused on a first choice; withdrawn when a category allowed before is now refused.
  function eventFor(before, choices) {
    var had = optional.filter(function (c) { return before && before[c] === true; });
    var has = optional.filter(function (c) { return choices[c] === true; });
    if (had.some(function (c) { return choices[c] !== true; })) return "withdrawn";
    if (!has.length) return "refused";
    return had.length ? "updated" : "given";
  }

  function send(payload) {
    return fetch(ENDPOINT, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload),
      credentials: "same-origin", cache: "no-store", keepalive: true
    }).then(function (response) {
      var ok = response.ok;
      return response.text().then(function () { return ok; }, function () { return ok; });  // frees the request
    }, function () { return false; });
  }

  function choose(button) {
    var before = stored();
    var choices = {};
    required.forEach(function (c) { choices[c] = true; });
    optional.forEach(function (c) {
      var box = root.querySelector('input[type="checkbox"][name="' + c + '"]');
      choices[c] = button === "accept_all" || (button === "save" && !!box && box.checked);
    });
    var withdrawn = optional.filter(function (c) { return before && before.choices[c] === true && !choices[c]; });
    var allows = optional.some(function (c) { return choices[c]; });
    var payload = { event: eventFor(before && before.choices, choices), choices: choices, button: button,
                    policy_version: version, banner_hash: root.getAttribute("data-consent-hash") };
    hide();
    if (!allows) remember(choices);
    send(payload).then(function (recorded) {
      if (allows && recorded) {
        remember(choices);
        activate(choices);
      }
      if (ranAny(withdrawn)) location.reload();
    });
  }

  root.addEventListener("click", function (event) {
    var target = event.target.closest("[data-consent-action], [data-consent-toggle], [data-consent-close]");
    if (!target) return;
    event.preventDefault();
    if (target.hasAttribute("data-consent-close")) {
      hide();
    } else if (target.hasAttribute("data-consent-toggle")) {
      showSettings(true);
      var first = settings.querySelector("input");
      (first || save).focus();
    } else {
      choose(target.getAttribute("data-consent-action"));
    }
  });

  root.addEventListener("keydown", function (event) {
    // Closing without a choice: only the banner the visitor reopened, or when a choice is in force.
    if (event.key === "Escape" && ((closer && !closer.hidden) || stored())) hide();
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-consent-open]");
    if (!link) return;
    event.preventDefault();
    show(true);
  });

  // A choice made in another tab of this site.
  window.addEventListener("storage", function (event) {
    var current = event.key === KEY && stored();
    if (!current) return;
    root.hidden = true;
    if (ranAny(optional.filter(function (c) { return current.choices[c] !== true; }))) location.reload();
    else activate(current.choices);
  });

  var current = stored();
  if (current) activate(current.choices);
  else show(false);
})();
