/* The survey editor's live preview: the call as text refreshed as the admin types.

   Progressive enhancement only: without this script the form's Preview button does the
   same by a round trip. Served as a static file (the dashboard's Content-Security-Policy
   allows no inline script); posts the form, CSRF token included, to the preview endpoint,
   puts the answer in the preview, and says so in one short line in the status region (a
   screen reader hears that line, not the whole call again). */
(function () {
  "use strict";
  var form = document.getElementById("survey-form");
  var region = document.getElementById("live-preview");
  var status = document.getElementById("live-preview-status");
  if (!form || !region || !status || !window.fetch || !window.FormData) {
    return;
  }
  var url = form.getAttribute("data-preview-url");
  var timer = null;
  var latest = 0;

  function refresh() {
    var mine = ++latest;
    fetch(url, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) {
        // A redirect is the sign-in page (the session ran out): not a preview.
        if (!response.ok || response.redirected) {
          throw new Error("preview: " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        // Only the newest answer counts: an older, slower one must not overwrite it.
        if (mine === latest) {
          region.innerHTML = html;
          region.setAttribute("data-refreshed", String(mine));
          status.textContent = region.querySelector("#preview-waiting")
            ? "Preview waiting: the form has a problem (shown in the preview)."
            : "Preview updated.";
        }
      })
      .catch(function () {
        /* The Preview button still works; nothing to tell the admin while typing. */
      });
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 400);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();
