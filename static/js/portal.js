/* Progressive enhancement for the portal. Everything here is optional: without
   JavaScript the server enforces the same rules with redirects.
   - focus the error summary when a form comes back with errors;
   - the session clock: warn two minutes before the idle sign-out, offer
     "Stay signed in", re-confirm the password in place after an hour;
   - every tab follows the one session (localStorage events). */
(function () {
  "use strict";

  var STORAGE_KEY = "portal-session-event";
  var body = document.body;
  // What the page tells this script sits on #page, which every page and every
  // boosted form's answer replaces (a new CSRF token after sign-in, say).
  function page() { return document.getElementById("page") || body; }

  function focusErrorSummary(root) {
    var summary = (root || document).querySelector("[data-autofocus]");
    if (summary) { summary.focus(); }
  }

  function broadcast(kind, extra) {
    try {
      var message = { kind: kind, at: Date.now() };
      if (extra) { for (var key in extra) { message[key] = extra[key]; } }
      window.localStorage.setItem(STORAGE_KEY, JSON.stringify(message));
    } catch (e) { /* private mode: tabs simply do not share */ }
  }

  function csrfToken() {
    try { return JSON.parse(page().getAttribute("data-hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }

  function request(method, url, onDone) {
    var xhr = new XMLHttpRequest();
    xhr.open(method, url, true);
    xhr.setRequestHeader("Accept", "application/json");
    if (method === "GET") {
      xhr.setRequestHeader("X-Background-Request", "1"); // asking is not activity
    } else {
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
    }
    xhr.onload = function () {
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      onDone(xhr.status, data);
    };
    xhr.onerror = function () { onDone(0, null); };
    xhr.send(method === "GET" ? null : "");
  }

  document.addEventListener("DOMContentLoaded", function () { focusErrorSummary(document); });
  document.addEventListener("htmx:afterSwap", function (event) { focusErrorSummary(event.target); });
  // A "Next page" link swaps only the results and itself goes: focus the new
  // results, as a new page would put the reader at its start.
  // The wrapper on the page names the results (data-focus-results); the link was
  // inside the old results, so it is no longer in the document. A filter with
  // errors replaces its form and empties the results too: there the error
  // summary keeps the focus it was given when the form was swapped in.
  document.addEventListener("htmx:afterSettle", function (event) {
    var trigger = event.detail.requestConfig ? event.detail.requestConfig.elt : null;
    var results = event.target;
    var holder = results && results.parentElement ? results.parentElement.closest("[data-focus-results]") : null;
    var summaryFocused = document.activeElement && document.activeElement.hasAttribute("data-autofocus");
    if (holder && holder.getAttribute("data-focus-results") === results.id && trigger
        && !document.body.contains(trigger) && !summaryFocused) {
      results.focus();
    }
  });
  // A new page swapped into the body (a boosted link, or a form's answer with the
  // next page in it): put the reader at its start, as a page load does, unless an
  // error summary took the focus.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target !== body) { return; }
    if (document.activeElement && document.activeElement.hasAttribute("data-autofocus")) { return; }
    var main = document.getElementById("main");
    if (main) { main.focus({ preventScroll: true }); }
  });

  // Choosing a role ticks that role's permissions (a preset the person can then
  // change). Without JavaScript the boxes simply keep what they show.
  document.addEventListener("change", function (event) {
    var radio = event.target;
    if (!radio.matches || !radio.matches("input[type=radio][data-permissions]")) { return; }
    var form = radio.form;
    var chosen = radio.getAttribute("data-permissions").split(" ");
    var boxes = form ? form.querySelectorAll("input[type=checkbox][name=permissions]") : [];
    for (var i = 0; i < boxes.length; i++) { boxes[i].checked = chosen.indexOf(boxes[i].value) !== -1; }
  });

  // The session clock. It reads its deadlines from the page (each page and each
  // swapped-in page is a request, so the idle clock restarts) and asks the server
  // (/auth/session) only when a warning is due: nothing is requested on page load.
  var statusUrl, extendUrl, confirmUrl, signInUrl, warningMs, idleMs;
  var idleDeadline = null;
  var reauthDeadline = null;
  var backdrop, dialog, timeoutPart, confirmPart, countdown, live, stayButton;

  function readPage() {
    var holder = page();
    // A signed-out page tells every other tab, which then leaves its page too.
    if (holder.hasAttribute("data-signed-out-page")) { broadcast("signed-out"); }
    statusUrl = holder.getAttribute("data-session-status");
    if (!statusUrl) { idleDeadline = null; return; }
    extendUrl = holder.getAttribute("data-session-extend");
    confirmUrl = holder.getAttribute("data-session-confirm");
    signInUrl = holder.getAttribute("data-session-signin");
    warningMs = parseInt(holder.getAttribute("data-warning-seconds"), 10) * 1000;
    idleMs = parseInt(holder.getAttribute("data-idle-seconds"), 10) * 1000;
    idleDeadline = Date.now() + idleMs;
    reauthDeadline = Date.now() + parseInt(holder.getAttribute("data-reauth-seconds"), 10) * 1000;
  }
  var shown = null; // null, "timeout" or "confirm"
  var returnFocus = null;
  var lastAnnounced = null;
  var checking = false;

  function adopt(state) {
    if (!state) { return; }
    if (!state.signed_in) { leave(); return; }
    idleDeadline = Date.now() + state.idle_remaining * 1000;
    reauthDeadline = Date.now() + state.reauth_remaining * 1000;
  }

  // A form the person has typed into. On time-out it is sent as it is: the
  // server keeps it (never passwords) and hands it back after the next sign-in.
  var dirtyForm = null;
  document.addEventListener("input", function (event) {
    var form = event.target.form;
    if (form && form.method.toLowerCase() === "post" && !form.hasAttribute("data-sign-out")
        && !form.closest("#session-dialog")) { dirtyForm = form; }
  });

  var leaving = false;
  function leave() {
    if (leaving) { return; } // a second timer or poll may also find the session over
    leaving = true;
    broadcast("signed-out");
    if (dirtyForm && document.body.contains(dirtyForm)) {
      HTMLFormElement.prototype.submit.call(dirtyForm);
      return;
    }
    window.location.assign(signInUrl);
  }

  function describe(ms) {
    var seconds = Math.max(0, Math.ceil(ms / 1000));
    if (seconds >= 60) {
      var minutes = Math.ceil(seconds / 60);
      return minutes + (minutes === 1 ? " minute" : " minutes");
    }
    return seconds + (seconds === 1 ? " second" : " seconds");
  }

  // A boosted navigation replaces the body, and the dialog with it: find the
  // current one (hidden, as every page renders it) before using it.
  function bindDialog() {
    var found = document.getElementById("session-dialog");
    if (!found || found === backdrop) { return; }
    backdrop = found;
    dialog = backdrop.querySelector("[role=alertdialog]");
    timeoutPart = backdrop.querySelector("[data-dialog-part=timeout]");
    confirmPart = backdrop.querySelector("[data-dialog-part=confirm]");
    countdown = backdrop.querySelector("[data-countdown]");
    live = backdrop.querySelector("[data-countdown-live]");
    stayButton = backdrop.querySelector("[data-stay-signed-in]");
    stayButton.addEventListener("click", staySignedIn);
    backdrop.addEventListener("keydown", keepFocusInside);
    shown = null;
  }

  function show(part) {
    bindDialog();
    if (shown === part) { return; }
    if (!shown) { returnFocus = document.activeElement; }
    shown = part;
    timeoutPart.hidden = part !== "timeout";
    confirmPart.hidden = part !== "confirm";
    dialog.setAttribute("aria-labelledby", part === "timeout" ? "session-dialog-title" : "session-confirm-title");
    backdrop.hidden = false;
    if (part === "confirm" && window.htmx) {
      window.htmx.ajax("GET", confirmUrl, { target: "#reauth-slot", swap: "innerHTML" }).then(function () {
        var field = confirmPart.querySelector("input[type=password]");
        if (field) { field.focus(); }
      });
    } else if (part === "timeout") {
      lastAnnounced = null;
      stayButton.focus();
    }
  }

  function hide() {
    bindDialog();
    if (!shown) { return; }
    shown = null;
    backdrop.hidden = true;
    if (returnFocus && returnFocus.focus) { returnFocus.focus(); }
  }

  function check(then) {
    if (checking) { return; }
    checking = true;
    request("GET", statusUrl, function (status, data) {
      checking = false;
      if (status === 200) { adopt(data); }
      if (then) { then(); }
    });
  }

  function tick() {
    if (idleDeadline === null) { return; } // signed out: no clock
    bindDialog();
    var now = Date.now();
    var left = idleDeadline - now;
    if (left <= 0) {
      // The server has the last word: another tab may have kept the session alive.
      check(function () { if (idleDeadline - Date.now() <= 0) { leave(); } });
      return;
    }
    if (left <= warningMs) {
      if (shown !== "timeout") {
        check(function () { if (idleDeadline - Date.now() <= warningMs) { show("timeout"); } });
      }
      countdown.textContent = describe(left);
      // Screen readers hear the countdown every 30 seconds, then at 10 seconds.
      var bucket = left > 10000 ? Math.ceil(left / 30000) : 0;
      if (shown === "timeout" && bucket !== lastAnnounced) {
        lastAnnounced = bucket;
        live.textContent = "You will be signed out in " + describe(left) + ".";
      }
      return;
    }
    if (shown === "timeout") { hide(); }
    if (reauthDeadline !== null && reauthDeadline - now <= 0 && shown !== "confirm" && !onConfirmPage()) {
      show("confirm");
    }
  }

  // The server sends a request made while re-confirmation is due to the confirm
  // page itself (auth.confirm): its form is the one prompt, so the dialog stays shut.
  function onConfirmPage() {
    return document.querySelector("main #confirm-form") !== null;
  }

  function staySignedIn() {
    request("POST", extendUrl, function (status, data) {
      if (status === 200 && data && data.signed_in) {
        adopt(data);
        broadcast("extended", { idle: data.idle_remaining, reauth: data.reauth_remaining });
        hide();
      } else {
        leave();
      }
    });
  }

  // Keep keyboard focus inside the open dialog.
  function keepFocusInside(event) {
    if (event.key !== "Tab") { return; }
    var focusable = Array.prototype.filter.call(
      dialog.querySelectorAll("button, input:not([type=hidden]):not([hidden]), a[href]"),
      function (el) { return el.offsetParent !== null; });
    if (!focusable.length) { return; }
    var first = focusable[0], last = focusable[focusable.length - 1];
    if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
  }

  // A page swapped into the body brings its own deadlines (and may be signed out);
  // htmx fires afterSwap before afterRequest.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target === body) { readPage(); }
  });

  // Any request this tab makes is activity on the server: restart the clock.
  document.addEventListener("htmx:afterRequest", function (event) {
    if (idleDeadline === null) { return; }
    if (event.detail.successful !== false) {
      idleDeadline = Date.now() + idleMs;
      broadcast("extended", { idle: idleMs / 1000 });
    }
  });

  document.addEventListener("session-reconfirmed", function () {
    check(function () {
      broadcast("reconfirmed", { idle: Math.round((idleDeadline - Date.now()) / 1000) });
      document.getElementById("reauth-slot").innerHTML = "";
      hide();
    });
  });

  document.addEventListener("submit", function (event) {
    if (event.target.hasAttribute("data-sign-out")) { broadcast("signing-out"); }
  });

  window.addEventListener("storage", function (event) {
    if (event.key !== STORAGE_KEY || !event.newValue || idleDeadline === null) { return; }
    var message;
    try { message = JSON.parse(event.newValue); } catch (e) { return; }
    if (message.kind === "signed-out") {
      window.location.assign(signInUrl.split("?")[0] + "?reason=signed-out");
    } else if (message.kind === "extended" || message.kind === "reconfirmed") {
      check(function () { if (idleDeadline - Date.now() > warningMs) { hide(); } });
    }
  });

  readPage();
  window.setInterval(tick, 1000);
})();

/* Upload progress for the supporting documents form (optional: without
   JavaScript the form is a plain multipart POST). htmx posts the form and fires
   htmx:xhr:progress as the bytes go; this shows them in the form's <progress>
   bar, with the percentage as text and a status line screen readers announce
   ("Uploading 45%", "Upload complete"). The region keeps its place (data-hx-preserve)
   when the page the upload leads to has it too, so "Upload complete" stays in
   view beside the new list. */
(function () {
  "use strict";

  var STEP = 10; // announce every 10 percent, not every event

  function formOf(event) {
    var elt = event.detail && event.detail.elt ? event.detail.elt : event.target;
    return elt && elt.closest ? elt.closest("form[data-upload-progress]") : null;
  }

  function regionOf(form) {
    return form ? document.getElementById(form.getAttribute("data-upload-progress")) : null;
  }

  function parts(region) {
    return {
      bar: region.querySelector("progress"),
      percent: region.querySelector(".upload-progress__percent"),
      status: region.querySelector("[role=status]")
    };
  }

  var current = null; // {region, shown, announced} while an upload is under way

  function show(region, value) {
    var p = parts(region);
    p.bar.value = value;
    p.bar.textContent = value + "%";
    p.percent.textContent = value + "%";
  }

  function announce(region, text) {
    parts(region).status.textContent = text;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = formOf(event);
    var region = regionOf(form);
    if (!region) {
      // The page a finished upload leads to came in the upload's own answer and kept
      // the bar in view (data-hx-preserve); any later request puts it away.
      var old = document.getElementById("upload-progress");
      if (old) { old.hidden = true; announce(old, ""); }
      return;
    }
    var files = form.querySelector("input[type=file]");
    if (!files || !files.files || !files.files.length) { current = null; return; }
    current = { region: region, shown: 0, announced: -1 };
    region.hidden = false;
    show(region, 0);
    announce(region, "Uploading 0%");
  });

  document.addEventListener("htmx:xhr:progress", function (event) {
    if (!current || !formOf(event)) { return; }
    var detail = event.detail;
    if (!detail.lengthComputable || !detail.total) { return; }
    var value = Math.min(100, Math.floor((detail.loaded * 100) / detail.total));
    // The answer's own download fires progress too: the bar only goes forward.
    if (value <= current.shown) { return; }
    current.shown = value;
    show(current.region, value);
    if (value >= 100) {
      announce(current.region, "Upload complete");
    } else if (value - current.announced >= STEP) {
      current.announced = value - (value % STEP);
      announce(current.region, "Uploading " + value + "%");
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    if (!current) { return; }
    var region = document.getElementById(current.region.id) || current.region;
    var xhr = event.detail.xhr;
    current = null;
    if (!xhr || xhr.status === 0) {
      announce(region, "The upload did not finish. Check your connection and try again.");
      return;
    }
    if (xhr.status >= 400) {
      // Refused: the error summary says why (and takes the focus).
      region.hidden = true;
      announce(region, "");
      return;
    }
    show(region, 100);
    announce(region, "Upload complete");
  });

  document.addEventListener("htmx:sendError", function () {
    if (!current) { return; }
    announce(current.region, "The upload did not finish. Check your connection and try again.");
    current = null;
  });
})();
