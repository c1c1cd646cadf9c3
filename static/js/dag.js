/* taskcenter: the task detail page's graph and subtask selection.
   - pan (drag, arrow keys, scroll bars) and zoom (buttons, + / -, Ctrl + wheel) of the
     server-drawn SVG, fit and actual size;
   - selecting a subtask in the graph or the list loads its panel with htmx and keeps the
     address bar in step;
   - "locate current progress" and "jump to subtask" (a search by name or id);
   - the first view fits the graph's width, so no node of a wide layer is cut off;
   - recolouring nodes and list rows from the live status feed (#subtask-states). */
(function () {
  "use strict";

  var MIN_SCALE = 0.08;
  var MAX_SCALE = 2.5;
  var scale = 1;

  function $(id) { return document.getElementById(id); }
  function canvas() { return $("dag-canvas"); }
  function svg() { return $("dag-svg"); }
  function body() { return document.querySelector(".detail-body"); }

  // --- Zoom and pan ---------------------------------------------------------------------

  function setScale(next, anchorX, anchorY) {
    var c = canvas(), s = svg();
    if (!c || !s) return;
    next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, next));
    var ax = anchorX === undefined ? c.clientWidth / 2 : anchorX;
    var ay = anchorY === undefined ? c.clientHeight / 2 : anchorY;
    var px = (c.scrollLeft + ax) / scale;
    var py = (c.scrollTop + ay) / scale;
    scale = next;
    s.setAttribute("width", Math.round(Number(s.dataset.width) * scale));
    s.setAttribute("height", Math.round(Number(s.dataset.height) * scale));
    c.scrollLeft = px * scale - ax;
    c.scrollTop = py * scale - ay;
    var out = $("dag-zoom");
    if (out) out.textContent = Math.round(scale * 100) + "%";
  }

  function fitScale() {
    var c = canvas(), s = svg();
    if (!c || !s) return 1;
    var w = Number(s.dataset.width), h = Number(s.dataset.height);
    return Math.min((c.clientWidth - 8) / w, (c.clientHeight - 8) / h, 1);
  }

  function center(el, smooth) {
    var c = canvas();
    if (!c || !el) return;
    var r = el.getBoundingClientRect(), cr = c.getBoundingClientRect();
    c.scrollBy({
      left: r.left + r.width / 2 - (cr.left + cr.width / 2),
      top: r.top + r.height / 2 - (cr.top + cr.height / 2),
      behavior: smooth ? "smooth" : "auto",
    });
  }

  function initCanvas() {
    var c = canvas(), s = svg();
    if (!c || !s) return;
    // The first view never cuts a node off at the sides: the whole graph when that is
    // about as large as fitting its width, else its full width (a long graph scrolls down,
    // which is natural). A wide layer is smaller than life until zoomed, but all there.
    var widthFit = Math.min((c.clientWidth - 8) / Number(s.dataset.width), 1);
    var fit = fitScale();
    var start = fit >= Math.min(0.85, widthFit) ? fit : widthFit;
    setScale(start, 0, 0);
    var selected = s.querySelector("[data-sid].is-selected");
    if (selected) center(selected, false);
    // When the graph is drawn, sized and interactive (tests and the benchmark read it).
    window.taskcenterDagReadyAt = performance.now();
    document.documentElement.dataset.dagReady = "1";

    var drag = null;
    c.addEventListener("pointerdown", function (event) {
      if (event.button !== 0 || event.target.closest("[data-sid]")) return;
      drag = { x: event.clientX, y: event.clientY, left: c.scrollLeft, top: c.scrollTop, id: event.pointerId };
      c.setPointerCapture(event.pointerId);
      c.classList.add("is-panning");
    });
    c.addEventListener("pointermove", function (event) {
      if (!drag || event.pointerId !== drag.id) return;
      c.scrollLeft = drag.left - (event.clientX - drag.x);
      c.scrollTop = drag.top - (event.clientY - drag.y);
    });
    function end(event) {
      if (!drag || event.pointerId !== drag.id) return;
      drag = null;
      c.classList.remove("is-panning");
    }
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener("wheel", function (event) {
      if (!event.ctrlKey && !event.metaKey) return;
      event.preventDefault();
      var r = c.getBoundingClientRect();
      setScale(scale * (event.deltaY < 0 ? 1.12 : 1 / 1.12), event.clientX - r.left, event.clientY - r.top);
    }, { passive: false });
    c.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "+" || event.key === "=") setScale(scale * 1.2);
      else if (event.key === "-" || event.key === "_") setScale(scale / 1.2);
      else if (event.key === "0") setScale(fitScale());
      else if (event.key === "1") setScale(1);
      else return;
      event.preventDefault();
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-dag]");
    if (button) {
      var action = button.dataset.dag;
      if (action === "zoom-in") setScale(scale * 1.25);
      else if (action === "zoom-out") setScale(scale / 1.25);
      else if (action === "fit") setScale(fitScale(), 0, 0);
      else if (action === "reset") setScale(1);
      else if (action === "locate") locate();
      return;
    }
    var legend = event.target.closest("[data-locate-tone]");
    if (legend) locate(legend.dataset.locateTone);
  });

  // --- Selecting a subtask ------------------------------------------------------------------

  function select(sid) {
    var b = body();
    if (!b) return;
    document.querySelectorAll("[data-subtask-picker] [data-sid].is-selected").forEach(function (el) {
      el.classList.remove("is-selected");
    });
    document.querySelectorAll('[data-subtask-picker] [data-sid="' + sid + '"]').forEach(function (el) {
      el.classList.add("is-selected");
      if (window.taskcenter && window.taskcenter.rove) window.taskcenter.rove(el);
    });
    htmx.ajax("GET", b.dataset.panelBase + sid + "/?view=" + b.dataset.view, {
      target: "#subtask-panel",
      swap: "outerHTML",
    });
    var url = new URL(window.location.href);
    url.searchParams.set("subtask", sid);
    history.replaceState(history.state, "", url);
    document.querySelectorAll("a[data-keep-subtask]").forEach(function (a) {
      var u = new URL(a.href);
      u.searchParams.set("subtask", sid);
      a.href = u.toString();
    });
  }

  document.addEventListener("click", function (event) {
    var node = event.target.closest("[data-subtask-picker] [data-sid]");
    if (!node || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    select(node.dataset.sid);
  });

  var ORDER = ["running", "canceling", "failed", "ready"];

  function locate(tone) {
    var root = svg() || document.querySelector(".subtasks");
    if (!root) return;
    var tones = tone ? [tone] : ORDER;
    for (var i = 0; i < tones.length; i++) {
      var el = root.querySelector('[data-sid][data-tone="' + tones[i] + '"]');
      if (!el) continue;
      center(el, true);
      el.classList.add("is-located");
      setTimeout(function () { el.classList.remove("is-located"); }, 2600);
      select(el.dataset.sid);
      el.focus({ preventScroll: true });
      return;
    }
    if (window.taskcenter) {
      window.taskcenter.flash("success", "Nothing is running, queued or failed right now.",
        "The task has finished or is waiting; every subtask is shown in its final colour.");
    }
  }

  // --- Jump to subtask ---------------------------------------------------------------------
  // A combobox over the nodes already on the page: a name (every word, any case) or an id
  // ("#123" or "123"); exact matches first, then names that start with the text, then the
  // rest in the graph's order. Choosing one centres it, selects it (its panel opens) and
  // gives it the focus, so the arrow keys go on from there.

  var MAX_SUGGESTIONS = 50;
  var jumpIndex = null;
  var suggestions = [];
  var active = -1;

  function jumpInput() { return $("dag-jump-input"); }
  function jumpList() { return $("dag-jump-list"); }

  function jumpItems() {
    if (!jumpIndex) {
      var root = svg();
      jumpIndex = root ? Array.prototype.map.call(root.querySelectorAll("[data-sid]"), function (el, order) {
        var name = nameOf(el);
        return { el: el, sid: el.dataset.sid, name: name, lower: name.toLowerCase(), order: order };
      }) : [];
    }
    return jumpIndex;
  }

  function findSubtasks(text) {
    var q = text.trim().toLowerCase().replace(/\s+/g, " ");
    if (!q) return [];
    var id = /^#?\d+$/.test(q) ? q.replace("#", "") : null;
    var terms = q.charAt(0) === "#" && id ? [] : q.split(" ");
    var found = [];
    jumpItems().forEach(function (item) {
      var rank = -1;
      if (id !== null && item.sid === id) rank = 0;
      else if (item.lower === q) rank = 0;
      else if (terms.length && terms.every(function (t) { return item.lower.indexOf(t) >= 0; })) {
        rank = item.lower.indexOf(q) === 0 ? 1 : 2;
      } else if (id !== null && item.sid.indexOf(id) === 0) rank = 3;
      if (rank >= 0) found.push({ item: item, rank: rank });
    });
    found.sort(function (a, b) { return a.rank - b.rank || a.item.order - b.item.order; });
    return found.map(function (f) { return f.item; });
  }

  function stateOf(el) {
    var label = el.getAttribute("aria-label") || "";
    var cut = label.lastIndexOf(" — ");
    return cut >= 0 ? label.slice(cut + 3) : "";
  }

  function setActive(index) {
    var list = jumpList(), input = jumpInput();
    var options = list.querySelectorAll("[role=option]");
    active = options.length ? Math.max(-1, Math.min(index, options.length - 1)) : -1;
    options.forEach(function (opt, i) { opt.setAttribute("aria-selected", i === active ? "true" : "false"); });
    if (active >= 0) {
      input.setAttribute("aria-activedescendant", options[active].id);
      options[active].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function closeSuggestions() {
    var list = jumpList(), input = jumpInput();
    if (!list || !input) return;
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    suggestions = [];
    active = -1;
  }

  function showSuggestions() {
    var list = jumpList(), input = jumpInput(), status = $("dag-jump-status");
    var text = input.value;
    if (!text.trim()) { closeSuggestions(); return; }
    var found = findSubtasks(text);
    suggestions = found.slice(0, MAX_SUGGESTIONS);
    var items = suggestions.map(function (item, i) {
      var li = document.createElement("li");
      li.id = "dag-jump-opt-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.dataset.index = String(i);
      li.dataset.tone = item.el.dataset.tone || "";
      var name = document.createElement("span");
      name.className = "dag-jump-name";
      name.textContent = item.name;
      var meta = document.createElement("span");
      meta.className = "dag-jump-meta";
      meta.textContent = "#" + item.sid + " · " + stateOf(item.el);
      li.append(name, meta);
      return li;
    });
    if (!found.length) {
      var none = document.createElement("li");
      none.className = "dag-jump-none";
      none.setAttribute("role", "presentation");
      none.textContent = "No subtask matches “" + text.trim() + "”.";
      items.push(none);
    } else if (found.length > suggestions.length) {
      var more = document.createElement("li");
      more.className = "dag-jump-none";
      more.setAttribute("role", "presentation");
      more.textContent = (found.length - suggestions.length) + " more: type more of the name to narrow.";
      items.push(more);
    }
    list.replaceChildren.apply(list, items);
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    active = -1;
    input.removeAttribute("aria-activedescendant");
    if (status) {
      status.textContent = found.length ? found.length + " subtask" + (found.length === 1 ? "" : "s") + " found" : "No subtask found";
    }
  }

  function jumpTo(item) {
    var el = item.el, input = jumpInput();
    closeSuggestions();
    if (input) input.value = item.name;
    if (scale < 0.6) setScale(1);
    center(el, false);
    el.classList.add("is-located");
    setTimeout(function () { el.classList.remove("is-located"); }, 2600);
    select(item.sid);
    el.focus({ preventScroll: true });
  }

  document.addEventListener("input", function (event) {
    if (event.target.id === "dag-jump-input") showSuggestions();
  });

  document.addEventListener("keydown", function (event) {
    var input = jumpInput();
    if (!input) return;
    if (event.target === input) {
      var open = !jumpList().hidden;
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (!open) showSuggestions();
        setActive(active + 1);
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        setActive(active <= 0 ? suggestions.length - 1 : active - 1);
      } else if (event.key === "Home" && open && active >= 0) {
        event.preventDefault();
        setActive(0);
      } else if (event.key === "End" && open && active >= 0) {
        event.preventDefault();
        setActive(suggestions.length - 1);
      } else if (event.key === "Enter") {
        event.preventDefault();
        if (!open) showSuggestions();
        var chosen = suggestions[active >= 0 ? active : 0];
        if (chosen) jumpTo(chosen);
      } else if (event.key === "Escape") {
        // A search field clears itself on Escape; close the list first, clear on a second.
        if (open) { event.preventDefault(); closeSuggestions(); }
      } else if (event.key === "Tab") {
        closeSuggestions();
      }
      return;
    }
    // "/" anywhere but in a field or a dialog goes to the search.
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var t = event.target;
    if (t.closest && t.closest("input, textarea, select, [contenteditable], dialog")) return;
    event.preventDefault();
    input.focus();
    input.select();
  });

  document.addEventListener("mousedown", function (event) {
    if (event.target.closest && event.target.closest("#dag-jump-list")) event.preventDefault();
  });
  document.addEventListener("click", function (event) {
    var option = event.target.closest && event.target.closest("#dag-jump-list [role=option]");
    if (option) jumpTo(suggestions[Number(option.dataset.index)]);
  });
  document.addEventListener("focusout", function (event) {
    if (event.target.id === "dag-jump-input") closeSuggestions();
  });

  // --- Live status ----------------------------------------------------------------------------

  var lastStates = "";

  function nameOf(el) {
    if (!el.dataset.name) {
      var label = el.getAttribute("aria-label") || "";
      var cut = label.lastIndexOf(" — ");
      el.dataset.name = cut >= 0 ? label.slice(0, cut) : label;
    }
    return el.dataset.name;
  }

  function applyStates() {
    var holder = $("subtask-states");
    if (!holder) return;
    var text = holder.textContent.trim();
    if (!text || text === lastStates) return;
    lastStates = text;
    var data;
    try { data = JSON.parse(text); } catch (e) { return; }
    var byId = new Map();
    Object.keys(data.groups).forEach(function (key) {
      var g = data.groups[key];
      g.ids.forEach(function (id) { byId.set(String(id), g); });
    });
    var changedGroups = new Set();
    document.querySelectorAll("[data-subtask-picker] [data-sid]").forEach(function (el) {
      var g = byId.get(el.dataset.sid);
      if (!g) return;
      var run = String(data.runs[el.dataset.sid] || 1);
      if (el.dataset.status === g.status && el.dataset.op === g.op && (el.dataset.run || "1") === run) return;
      el.dataset.status = g.status;
      el.dataset.op = g.op;
      el.dataset.tone = g.tone;
      el.dataset.run = run;
      var full = nameOf(el) + " — " + g.label;
      el.setAttribute("aria-label", full);
      var title = el.querySelector("title");
      if (title) title.textContent = full;
      var label = el.querySelector(".dag-label");
      if (label) label.textContent = g.label;
      var runs = el.querySelector(".dag-runs");
      if (runs) runs.textContent = Number(run) > 1 ? " · run " + run : "";
      var badge = el.querySelector(".badge");
      if (badge) {
        badge.className = "badge badge-sm badge-" + g.tone;
        var bt = badge.querySelector(".badge-text");
        if (bt) bt.textContent = g.label;
      }
      var rowRuns = el.querySelector(".runs");
      if (rowRuns) rowRuns.textContent = Number(run) > 1 ? "×" + run : "";
      var group = el.closest(".dag-group");
      if (group) changedGroups.add(group);
    });
    changedGroups.forEach(function (group) {
      var counts = new Map();
      group.querySelectorAll("[data-sid]").forEach(function (el) {
        var g = byId.get(el.dataset.sid);
        var label = g ? g.label.toLowerCase() : "";
        counts.set(label, (counts.get(label) || 0) + 1);
      });
      var text = Array.from(counts.entries())
        .sort(function (a, b) { return b[1] - a[1]; })
        .map(function (e) { return e[1] + " " + e[0]; })
        .join(" · ");
      var out = group.querySelector(".dag-group-counts");
      if (out) out.textContent = text;
    });
  }

  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.target && event.target.id === "subtask-states") applyStates();
  });
  document.addEventListener("htmx:afterSettle", applyStates);

  document.addEventListener("DOMContentLoaded", function () {
    initCanvas();
    var selectedRow = document.querySelector(".subtasks .is-selected");
    if (selectedRow) selectedRow.scrollIntoView({ block: "nearest" });
  });
})();
