/* taskcenter dashboard: the little that htmx cannot do by itself.
   - flash messages: dismiss, auto-hide, and messages for network and server errors;
   - confirmation dialogs: open the <dialog> the server sent, close it after the action,
     give the focus back to the button that opened it.
   The log panel's behaviour is in log.js. */
(function () {
  "use strict";

  // --- Flash messages -------------------------------------------------------------------

  function armFlashes(root) {
    root.querySelectorAll(".flash[data-autohide]").forEach(function (el) {
      if (el.dataset.armed) return;
      el.dataset.armed = "1";
      setTimeout(function () { el.remove(); }, Number(el.dataset.autohide) || 8000);
    });
  }

  function flash(level, message, detail) {
    var region = document.getElementById("flash");
    if (!region) return;
    var box = document.createElement("div");
    box.className = "flash flash-" + level;
    box.setAttribute("role", level === "error" ? "alert" : "status");
    var body = document.createElement("div");
    body.className = "flash-body";
    var p = document.createElement("p");
    p.className = "flash-message";
    p.textContent = message;
    body.appendChild(p);
    if (detail) {
      var d = document.createElement("p");
      d.className = "flash-detail";
      d.textContent = detail;
      body.appendChild(d);
    }
    var close = document.createElement("button");
    close.type = "button";
    close.className = "flash-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    box.appendChild(body);
    box.appendChild(close);
    region.replaceChildren(box);
  }
  window.taskcenter = { flash: flash };

  document.addEventListener("click", function (event) {
    var close = event.target.closest(".flash-close");
    if (close) close.closest(".flash").remove();
  });

  var offline = false;
  document.addEventListener("htmx:sendError", function () {
    if (offline) return;
    offline = true;
    flash("error", "Cannot reach the server.", "Live updates pause until it answers again; check your connection.");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (offline && event.detail.successful) {
      offline = false;
      var region = document.getElementById("flash");
      if (region) region.replaceChildren();
    }
  });
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status >= 500) {
      flash("error", "The server could not complete this request (HTTP " + xhr.status + ").",
        "Try again in a moment; the error is in the server log with its trace id.");
    }
  });

  // --- Confirmation dialogs -----------------------------------------------------------

  var opener = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.getAttribute && elt.getAttribute("hx-target") === "#dialog-slot") opener = elt;
  });

  function openDialog(slot) {
    var dialog = slot.querySelector("dialog");
    if (!dialog || dialog.open) return;
    dialog.addEventListener("close", function () {
      dialog.remove();
      var back = opener;
      if (back && !back.isConnected && back.dataset.action) {
        back = document.querySelector('[data-action="' + back.dataset.action + '"]');
      }
      if (back && back.isConnected) back.focus();
    });
    dialog.showModal();
    var field = dialog.querySelector("textarea");
    if (field) field.focus();
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "dialog-slot") openDialog(event.detail.target);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.id === "confirm-form") {
      var dialog = form.closest("dialog");
      if (dialog && dialog.open) dialog.close();
    }
  });

  document.addEventListener("htmx:afterSettle", function () { armFlashes(document); });

  document.addEventListener("DOMContentLoaded", function () { armFlashes(document); });
})();
