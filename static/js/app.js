/* taskcenter dashboard: the little that htmx cannot do by itself.
   - flash messages: dismiss, auto-hide, and messages for network and server errors;
   - confirmation dialogs: open the <dialog> the server sent, close it after the action,
     give the focus back to the button that opened it;
   - the live log: follow the bottom unless the reader scrolled up, keep at most the last
     few MB in the page;
   - the live task list: drop a poll overtaken by a filter, keep the reader's place. */
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

  // --- Live log -------------------------------------------------------------------------

  var follow = true;

  function logEl() { return document.getElementById("log-text"); }
  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 24; }
  function jumpButton() { return document.querySelector('[data-log="jump"]'); }

  // The log fills the window below its top (at least 260 px), so the newest lines show
  // without scrolling the page.
  function fitLog() {
    var el = logEl();
    if (!el) return;
    var top = el.getBoundingClientRect().top + window.scrollY;
    var room = window.innerHeight - top - 20;
    el.style.maxHeight = Math.max(260, Math.min(room, 1200)) + "px";
  }
  window.addEventListener("resize", fitLog);

  function toBottom() {
    var el = logEl();
    if (!el) return;
    el.scrollTop = el.scrollHeight;
    follow = true;
    var jump = jumpButton();
    if (jump) jump.hidden = true;
  }

  function trim(el) {
    var max = Number(el.dataset.maxChars) || 2097152;
    var total = el.textContent.length;
    var trimmed = false;
    while (total > max && el.childNodes.length > 1) {
      total -= el.firstChild.textContent.length;
      el.removeChild(el.firstChild);
      trimmed = true;
    }
    if (trimmed) {
      var note = document.querySelector('[data-log="trimmed"]');
      if (note) note.hidden = false;
    }
  }

  document.addEventListener("scroll", function (event) {
    var el = event.target;
    if (!el || el.id !== "log-text") return;
    follow = atBottom(el);
    var jump = jumpButton();
    if (jump) jump.hidden = follow;
  }, true);

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "log-text") {
      trim(target);
      if (follow) toBottom();
      else {
        var jump = jumpButton();
        if (jump) jump.hidden = false;
      }
    }
  });

  function onNewPanel() {
    var el = logEl();
    if (!el) return;
    fitLog();
    toBottom();
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (target && (target.id === "subtask-panel" || target.closest && target.closest("#subtask-panel"))) {
      if (target.id === "subtask-panel") onNewPanel();
    }
    armFlashes(document);
  });
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.target && event.target.id === "subtask-panel") onNewPanel();
  });
  document.addEventListener("click", function (event) {
    if (event.target.closest('[data-log="jump"]')) toBottom();
  });

  // --- The live task list ----------------------------------------------------------------
  // A filter, sort or page request replaces the results: a poll already on its way would
  // answer for the old ones, so it is dropped. When a poll rebuilds the results, the
  // reader's place on the page (scroll, focused row link) stays where it was.

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt || elt.id === "list-poller" || !event.detail.target) return;
    if (event.detail.target.id !== "task-results") return;
    var poller = document.getElementById("list-poller");
    if (poller) htmx.trigger(poller, "htmx:abort");
  });
  var kept = null;
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    if (!event.target || event.target.id !== "task-results") return;
    var focused = document.activeElement;
    var row = focused && focused.closest && focused.closest("tr[id]");
    kept = { x: window.scrollX, y: window.scrollY, row: row ? row.id : null };
  });
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (!kept || !event.target || event.target.id !== "task-results") return;
    window.scrollTo(kept.x, kept.y);
    var link = kept.row && document.querySelector("#" + kept.row + " .row-link");
    if (link) link.focus({ preventScroll: true });
    kept = null;
  });

  document.addEventListener("DOMContentLoaded", function () {
    armFlashes(document);
    onNewPanel();
  });
})();
