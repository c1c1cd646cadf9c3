/* taskcenter dashboard: the little that htmx cannot do by itself.
   - flash messages: dismiss, auto-hide, and messages for network and server errors;
   - confirmation dialogs: open the <dialog> the server sent, close it after the action,
     give the focus back to the button that opened it;
   - the live log: follow the bottom unless the reader scrolled up, keep at most the last
     few MB in the page;
   - times: every <time datetime> shown in the reader's zone (their account's choice, else
     the browser's), with UTC in its title; running durations ([data-since]) tick each
     second from their start, with no request;
   - a result table's "Show all rows". */
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

  // --- Times in the reader's zone ------------------------------------------------------
  // The server writes every time as <time datetime="ISO with offset"> and a text in UTC
  // (or the server's zone); the text is rewritten here in the reader's zone, in the same
  // shape, and the title keeps the UTC time. Swapped-in fragments get the same treatment,
  // so live updates and full pages agree.

  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch (e) {
      return "UTC";
    }
  }

  function readerZone() {
    var chosen = document.body && document.body.dataset.timeZone;
    return chosen || browserZone();
  }

  // The server reads the browser's zone from this cookie, to write times and read a time
  // typed without a zone (the list's "Created from") in it.
  function rememberBrowserZone() {
    var zone = browserZone();
    var value = "tz=" + encodeURIComponent(zone);
    if (document.cookie.split("; ").indexOf(value) === -1) {
      document.cookie = value + "; path=/; max-age=31536000; samesite=lax";
    }
  }

  var SHAPES = [
    ["full", /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/],
    ["minute", /^\d{4}-\d\d-\d\d \d\d:\d\d$/],
    ["time", /^\d\d:\d\d:\d\d$/],
  ];
  var formatters = {};

  function partsIn(date, zone) {
    var f = formatters[zone];
    if (!f) {
      f = formatters[zone] = new Intl.DateTimeFormat("en-GB", {
        timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
        timeZoneName: "short"
      });
    }
    var out = {};
    f.formatToParts(date).forEach(function (p) { out[p.type] = p.value; });
    return out;
  }

  function shaped(p, shape) {
    var day = p.year + "-" + p.month + "-" + p.day;
    if (shape === "time") return p.hour + ":" + p.minute + ":" + p.second;
    if (shape === "minute") return day + " " + p.hour + ":" + p.minute;
    return day + " " + p.hour + ":" + p.minute + ":" + p.second;
  }

  function localizeTimes(root) {
    var zone = readerZone();
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.zone === zone || el.hasAttribute("data-tz-keep")) return;
      var shape = el.dataset.shape;
      if (!shape) {
        var text = el.textContent.trim();
        SHAPES.forEach(function (s) { if (!shape && s[1].test(text)) shape = s[0]; });
        if (!shape) return;
        el.dataset.shape = shape;
      }
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      var local;
      var utc;
      try {
        local = partsIn(date, zone);
        utc = partsIn(date, "UTC");
      } catch (e) {  // a zone this browser does not know: leave the server's text
        return;
      }
      el.textContent = shaped(local, shape);
      el.title = shaped(utc, "full") + " UTC" + (zone === "UTC" ? "" : " · shown in " + zone + " (" + local.timeZoneName + ")");
      el.dataset.zone = zone;
    });
  }
  window.taskcenter.localizeTimes = localizeTimes;

  // --- Running durations --------------------------------------------------------------
  // The same words as the server's presenters.format_duration. The server's clock is the
  // reference (the page says when it was rendered), so a skewed client clock does not
  // make a fresh page jump.

  var skew = 0;

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function formatDuration(ms) {
    var total = ms / 1000;
    if (total < 60) {
      if (total < 0.1) return "<0.1s";
      if (total < 1) return total.toFixed(1) + "s";
      return Math.floor(total) + "s";
    }
    var seconds = Math.floor(total);
    var minutes = Math.floor(seconds / 60);
    seconds %= 60;
    if (minutes < 60) return minutes + "m " + pad(seconds) + "s";
    var hours = Math.floor(minutes / 60);
    minutes %= 60;
    if (hours < 24) return hours + "h " + pad(minutes) + "m";
    return Math.floor(hours / 24) + "d " + pad(hours % 24) + "h";
  }

  function tick() {
    var now = Date.now() + skew;
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var since = Date.parse(el.dataset.since);
      if (isNaN(since)) return;
      var text = formatDuration(Math.max(0, now - since));
      if (el.textContent !== text) el.textContent = text;
    });
  }

  // --- Result tables ------------------------------------------------------------------

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-show-rows]");
    if (!button) return;
    var box = button.closest(".result");
    if (!box) return;
    box.querySelectorAll("tr.result-more").forEach(function (row) { row.hidden = false; });
    button.remove();
  });

  document.addEventListener("htmx:afterSettle", function () { localizeTimes(document); });
  document.addEventListener("htmx:oobAfterSwap", function () { localizeTimes(document); });

  document.addEventListener("DOMContentLoaded", function () {
    armFlashes(document);
    onNewPanel();
    var rendered = Date.parse(document.body.dataset.renderedAt || "");
    if (!isNaN(rendered)) skew = rendered - Date.now();
    rememberBrowserZone();
    localizeTimes(document);
    document.querySelectorAll("[data-browser-zone]").forEach(function (el) {
      el.textContent = "(" + browserZone() + ")";
    });
    tick();
    setInterval(tick, 1000);
  });
})();
