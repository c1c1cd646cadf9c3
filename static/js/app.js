/* taskcenter dashboard: the little that htmx cannot do by itself.
   - flash messages: dismiss, auto-hide, and messages for network and server errors;
   - confirmation dialogs: open the <dialog> the server sent, close it after the action,
     give the focus back to the button that opened it (or to what replaced it);
   - every modal dialog keeps Tab and Shift+Tab inside it;
   - focus kept when a live update replaces the region that holds it;
   - roving tab stop: a group of many items ([data-roving]) is one Tab stop, the arrow keys
     move inside it, Enter or Space opens the item;
   - times: every <time datetime> shown in the reader's zone (their account's choice, else
     the browser's), with UTC in its title; running durations ([data-since]) tick each
     second from their start, with no request;
   - a result table's "Show all rows".
   - the live task list: drop a poll overtaken by a filter, keep the reader's place.
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

  // Polls ("every Ns" triggers, and their "visibilitychange from:document") ask only
  // while the page is shown: a hidden tab sends nothing, and a tab shown again asks at
  // once. Decided here rather than in a trigger filter ([document.hidden]), which htmx
  // would compile with eval: the Content-Security-Policy allows no eval.
  // A plain form that asks first: <form data-confirm="Delete this rule?"> (a handler in a
  // file, as the Content-Security-Policy allows no inline onsubmit).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:confirm", function (event) {
    var trigger = event.detail.elt.getAttribute("hx-trigger") || "";
    if (document.visibilityState !== "visible" && /\bevery\b|visibilitychange/.test(trigger)) {
      event.preventDefault();
    }
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

  // --- Focus that survives a swap ----------------------------------------------------
  // htmx puts the focus back on an element with the same id after a swap; buttons and
  // regions without one would leave it on <body>. A memo names the element by id, by its
  // operation (data-action) or by its place among its region's focusable elements, and the
  // regions around it from the nearest out, so the focus can go to its replacement or, when
  // that is gone (an operation that no longer applies), to the region's heading.

  var FOCUSABLE = 'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]';

  function memoOf(el) {
    if (!el || el === document.body || !el.closest) return null;
    var regions = [];
    for (var r = el.parentElement && el.parentElement.closest("[id]"); r; r = r.parentElement && r.parentElement.closest("[id]")) {
      regions.push(r.id);
    }
    var region = regions.length ? document.getElementById(regions[0]) : null;
    var index = region ? Array.prototype.indexOf.call(region.querySelectorAll(FOCUSABLE), el) : -1;
    return { el: el, id: el.id, action: el.dataset ? el.dataset.action : null, regions: regions, index: index };
  }

  function lost() {
    var el = document.activeElement;
    return !el || el === document.body || !el.isConnected;
  }

  function restoreFocus(memo) {
    if (!memo) return false;
    var el = memo.el && memo.el.isConnected ? memo.el : null;
    if (!el && memo.id) el = document.getElementById(memo.id);
    for (var i = 0; !el && i < memo.regions.length; i++) {
      var region = document.getElementById(memo.regions[i]);
      if (!region) continue;
      // An operation's button is replaced by the same operation's, or by the heading when
      // the operation no longer applies (a neighbour would be a different operation);
      // anything else by what is at its place.
      if (memo.action) el = region.querySelector('[data-action="' + memo.action + '"]');
      else if (i === 0 && memo.index >= 0) el = region.querySelectorAll(FOCUSABLE)[memo.index] || null;
      if (!el) el = region.querySelector("[data-focus-fallback]");
    }
    if (!el) return false;
    el.focus({ preventScroll: true });
    return document.activeElement === el;
  }

  var swapMemo = null;
  function rememberFocusIn(target) {
    var el = document.activeElement;
    if (target && el && el !== document.body && target.contains(el)) swapMemo = memoOf(el);
  }
  function restoreAfterSwap() {
    if (swapMemo && lost()) restoreFocus(swapMemo);
    if (swapMemo && !lost()) swapMemo = null;
  }
  document.addEventListener("htmx:beforeSwap", function (event) { rememberFocusIn(event.detail.target); });
  document.addEventListener("htmx:oobBeforeSwap", function (event) { rememberFocusIn(event.detail.target); });
  document.addEventListener("htmx:oobAfterSwap", restoreAfterSwap);
  document.addEventListener("htmx:afterSwap", restoreAfterSwap);
  document.addEventListener("htmx:afterSettle", function () {
    restoreAfterSwap();
    swapMemo = null;
  });

  // --- Dialogs ------------------------------------------------------------------------------

  var opener = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.getAttribute && elt.getAttribute("hx-target") === "#dialog-slot") opener = memoOf(elt);
  });

  function openDialog(slot) {
    var dialog = slot.querySelector("dialog");
    if (!dialog || dialog.open) return;
    var back = opener;
    dialog.addEventListener("close", function () {
      dialog.remove();
      // After a confirmation the answer has replaced the button's region; after a cancel
      // the button is still there (or a live update replaced it meanwhile).
      restoreFocus(back);
    });
    // Its form must be htmx's before a fast Enter can submit it: opened at swap time, it
    // would otherwise post natively and reload the page, losing the place and the focus.
    if (window.htmx) htmx.process(dialog);
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

  // A modal dialog keeps the focus: Tab from its last control goes to its first, Shift+Tab
  // from its first to its last (the browser would otherwise leave the page for its own UI).
  function tabbables(root) {
    return Array.prototype.filter.call(root.querySelectorAll(FOCUSABLE), function (el) {
      if (el.tabIndex < 0 || el.disabled || el.closest("[hidden], [inert]")) return false;
      return el.getClientRects().length > 0;
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Tab" || event.ctrlKey || event.metaKey || event.altKey) return;
    var dialogs = document.querySelectorAll("dialog[open]");
    var dialog = null;
    for (var i = dialogs.length - 1; i >= 0; i--) {
      if (dialogs[i].matches(":modal")) { dialog = dialogs[i]; break; }
    }
    if (!dialog) return;
    var list = tabbables(dialog);
    if (!list.length) { event.preventDefault(); return; }
    var first = list[0], last = list[list.length - 1];
    var here = document.activeElement;
    var inside = here && dialog.contains(here);
    if (event.shiftKey && (!inside || here === first || here === dialog)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (!inside || here === last)) {
      event.preventDefault();
      first.focus();
    }
  });

  // --- Roving tab stop ----------------------------------------------------------------------
  // [data-roving="grid"]: the arrow keys follow the drawing (the nearest item in that
  // direction); [data-roving="list"]: up and down (and left and right) the item order.
  // Home and End go to the first and last item; the items are [data-sid] elements (ITEMS).

  // The history grid's links are its items too: 6,500 cells carry no attribute for it.
  var ITEMS = "[data-sid], .hgrid a";

  // The items with a condition (":not([tabindex])"), for each alternative of ITEMS.
  function itemsWith(condition) {
    return ITEMS.split(", ").map(function (one) { return one + condition; }).join(", ");
  }

  function rovingItems(group) { return group.querySelectorAll(ITEMS); }

  // Idempotent and cheap to repeat: new items (a "Show more" chunk) join as non-stops.
  function initRoving(group) {
    if (!group.querySelector(itemsWith('[tabindex="0"]'))) {
      var stop = group.querySelector(itemsWith(".is-selected")) || group.querySelector(ITEMS);
      if (stop) stop.setAttribute("tabindex", "0");
    }
    group.querySelectorAll(itemsWith(":not([tabindex])")).forEach(function (el) {
      el.setAttribute("tabindex", "-1");
    });
  }

  function initAllRoving(root) {
    var scope = root && root.querySelectorAll ? root : document;
    if (scope.matches && scope.matches("[data-roving]")) initRoving(scope);
    scope.querySelectorAll("[data-roving]").forEach(initRoving);
    var up = scope.closest && scope.closest("[data-roving]");
    if (up && up !== scope) initRoving(up);
  }

  // Make `el` its group's one tab stop.
  function rove(el) {
    var group = el && el.closest("[data-roving]");
    if (!group) return;
    group.querySelectorAll(itemsWith('[tabindex="0"]')).forEach(function (other) {
      if (other !== el) other.setAttribute("tabindex", "-1");
    });
    el.setAttribute("tabindex", "0");
  }

  function gap(a1, a2, b1, b2) { return Math.max(0, b1 - a2, a1 - b2); }

  // Where each item is drawn, relative to the group's scrolled content: measured once and
  // kept while the content keeps its size (a zoom changes it; scrolling and live status
  // changes do not), so a key press in a 5,000-tile graph reads no layout.
  var boxes = new WeakMap();

  function boxesOf(group, list) {
    var content = group.firstElementChild || group;
    var size = content.getBoundingClientRect();
    var key = list.length + ":" + Math.round(size.width) + "x" + Math.round(size.height);
    var cached = boxes.get(group);
    if (cached && cached.key === key) return cached;
    var g = group.getBoundingClientRect();
    var dx = group.scrollLeft - g.left, dy = group.scrollTop - g.top;
    var map = new Map();
    for (var i = 0; i < list.length; i++) {
      var r = list[i].getBoundingClientRect();
      map.set(list[i], { left: r.left + dx, right: r.right + dx, top: r.top + dy, bottom: r.bottom + dy });
    }
    cached = { key: key, map: map };
    boxes.set(group, cached);
    return cached;
  }

  // The nearest item in the arrow's direction: distance along it, plus three times the
  // distance across it (so the same row or column wins over a diagonal).
  function nearest(group, list, from, key) {
    var map = boxesOf(group, list).map;
    var a = map.get(from);
    if (!a) return null;
    var ax = (a.left + a.right) / 2, ay = (a.top + a.bottom) / 2;
    var best = null, bestScore = Infinity;
    for (var i = 0; i < list.length; i++) {
      var el = list[i];
      if (el === from) continue;
      var r = map.get(el);
      var x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2;
      var along, across;
      if (key === "ArrowRight") { if (x <= ax + 1) continue; along = Math.max(0, r.left - a.right); across = gap(a.top, a.bottom, r.top, r.bottom); }
      else if (key === "ArrowLeft") { if (x >= ax - 1) continue; along = Math.max(0, a.left - r.right); across = gap(a.top, a.bottom, r.top, r.bottom); }
      else if (key === "ArrowDown") { if (y <= ay + 1) continue; along = Math.max(0, r.top - a.bottom); across = gap(a.left, a.right, r.left, r.right); }
      else { if (y >= ay - 1) continue; along = Math.max(0, a.top - r.bottom); across = gap(a.left, a.right, r.left, r.right); }
      var score = along + 3 * across + 0.001 * (Math.abs(x - ax) + Math.abs(y - ay));
      if (score < bestScore) { bestScore = score; best = el; }
    }
    return best;
  }

  function moveTo(el) {
    rove(el);
    el.focus({ preventScroll: true });
    el.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    var item = event.target.closest && event.target.closest(ITEMS);
    var group = item && item.closest("[data-roving]");
    if (!group) return;
    var key = event.key;
    if (key === "Enter" || key === " ") {
      if (event.shiftKey) return;
      event.preventDefault();
      // What a click does (SVG links have no click() method).
      item.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true, view: window }));
      return;
    }
    var list = rovingItems(group);
    var index = Array.prototype.indexOf.call(list, item);
    var next = null;
    if (key === "Home") next = list[0];
    else if (key === "End") next = list[list.length - 1];
    else if (group.dataset.roving === "grid" && key.indexOf("Arrow") === 0) next = nearest(group, list, item, key);
    else if (key === "ArrowDown" || key === "ArrowRight") next = list[index + 1];
    else if (key === "ArrowUp" || key === "ArrowLeft") next = list[index - 1];
    else if (key === "PageDown") next = list[Math.min(list.length - 1, index + 10)];
    else if (key === "PageUp") next = list[Math.max(0, index - 10)];
    else return;
    event.preventDefault();
    if (next) moveTo(next);
  });

  document.addEventListener("focusin", function (event) {
    var item = event.target.closest && event.target.closest(ITEMS);
    if (item && item.closest("[data-roving]")) rove(item);
  });
  document.addEventListener("htmx:afterSettle", function (event) { initAllRoving(event.target); });

  window.taskcenter.rove = rove;
  window.taskcenter.initRoving = initAllRoving;

  document.addEventListener("htmx:afterSettle", function () { armFlashes(document); });

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
    initAllRoving(document);
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

/* Bulk selection on the task list: the count, the page's checkbox, and the marks kept
   when the live poll replaces a row. The form sends the checked ids (or "all matching
   this filter") to the dry run page; nothing is done before its confirmation. */
(function () {
  "use strict";
  var picked = new Set();

  function sync() {
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var boxes = document.querySelectorAll(".bulk-check");
    var all = form.querySelector("[data-bulk-all]");
    var every = Boolean(all && all.checked);
    // "All matching" covers every row: shown checked, not separately choosable.
    boxes.forEach(function (box) { box.checked = every || picked.has(box.value); box.disabled = every; });
    var onPage = document.querySelectorAll(".bulk-check:checked").length;
    var count = every ? Number(all.dataset.total) : onPage;
    form.querySelector("[data-bulk-count]").textContent = String(count);
    form.querySelectorAll("[data-bulk-action]").forEach(function (button) { button.disabled = count === 0; });
    var pageBox = document.querySelector("[data-bulk-page]");
    if (pageBox) {
      pageBox.disabled = every;
      pageBox.checked = boxes.length > 0 && onPage === boxes.length;
      pageBox.indeterminate = onPage > 0 && onPage < boxes.length;
    }
  }

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches(".bulk-check")) {
      if (el.checked) picked.add(el.value); else picked.delete(el.value);
    } else if (el.matches("[data-bulk-page]")) {
      document.querySelectorAll(".bulk-check").forEach(function (box) {
        if (el.checked) picked.add(box.value); else picked.delete(box.value);
      });
    } else if (!el.matches("[data-bulk-all]")) {
      return;
    }
    sync();
  });
  document.addEventListener("htmx:afterSettle", sync);
  document.addEventListener("DOMContentLoaded", sync);
})();
