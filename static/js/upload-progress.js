/* Upload progress for the supporting documents form (optional: without
   JavaScript the form is a plain multipart POST). htmx posts the form and fires
   htmx:xhr:progress as the bytes go; this shows them in the form's <progress>
   bar, with the percentage as text and a status line screen readers announce
   ("Uploading 45%", "Upload complete"). The region keeps its place (hx-preserve)
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

  var current = null; // {region, shown, announced, followed} while an upload is under way
  var justUploaded = false; // the page the upload leads to is still to be asked for

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
      // The page a finished upload leads to (HX-Location) keeps the bar in view;
      // any later request puts it away.
      if (current) { current.followed = true; return; }
      if (justUploaded) { justUploaded = false; return; }
      var old = document.getElementById("upload-progress");
      if (old) { old.hidden = true; announce(old, ""); }
      return;
    }
    justUploaded = false;
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
    var followed = current.followed;
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
    justUploaded = !followed;
  });

  document.addEventListener("htmx:sendError", function () {
    if (!current) { return; }
    announce(current.region, "The upload did not finish. Check your connection and try again.");
    current = null;
  });
})();
