/* taskcenter: the subtask log panel.
   - following: stay at the bottom unless the reader scrolled up, keep at most the last
     few MB in the page;
   - search: matches of the text shown are highlighted (CSS Custom Highlight API, so the
     log's nodes and text stay exactly as written), counted, and stepped through with
     Enter / Shift+Enter; the search runs again as lines are appended;
   - the attempt picker: the attempt shown is kept in the page's address, so it can be
     shared, and the picker keeps the focus when it swaps the panel. */
(function () {
  "use strict";

  var follow = true;

  function logEl() { return document.getElementById("log-text"); }
  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 24; }
  function part(name) { return document.querySelector('[data-log="' + name + '"]'); }

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

  function showJump(shown) {
    var jump = part("jump");
    if (jump) jump.hidden = !shown;
  }

  function toBottom() {
    var el = logEl();
    if (!el) return;
    el.scrollTop = el.scrollHeight;
    follow = true;
    showJump(false);
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
      var note = part("trimmed");
      if (note) note.hidden = false;
    }
  }

  // Every piece of log is a .log-chunk; anything else directly in the <pre> (whitespace
  // of a response) is not log text.
  function dropStrays(el) {
    Array.prototype.slice.call(el.childNodes).forEach(function (child) {
      if (child.nodeType === Node.TEXT_NODE) el.removeChild(child);
    });
  }

  document.addEventListener("scroll", function (event) {
    var el = event.target;
    if (!el || el.id !== "log-text") return;
    follow = atBottom(el);
    showJump(!follow);
  }, true);

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "log-text") return;
    dropStrays(target);
    trim(target);
    if (search.query) find(true);
    if (follow) toBottom();
    else showJump(true);
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest('[data-log="jump"]')) toBottom();
    else if (event.target.closest('[data-log="next"]')) step(1);
    else if (event.target.closest('[data-log="prev"]')) step(-1);
  });

  // --- Search -------------------------------------------------------------------------

  var MAX_MATCHES = 10000;
  var search = { query: "", ranges: [], current: -1, sid: null, capped: false };
  var highlights = window.CSS && CSS.highlights && typeof Highlight === "function";

  function escapeRegExp(text) { return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }

  function textMap(root) {
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    var nodes = [], starts = [], text = "", node;
    while ((node = walker.nextNode())) {
      nodes.push(node);
      starts.push(text.length);
      text += node.data;
    }
    return { nodes: nodes, starts: starts, text: text };
  }

  function position(map, index) {
    var lo = 0, hi = map.nodes.length - 1;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (map.starts[mid] <= index) lo = mid; else hi = mid - 1;
    }
    return [map.nodes[lo], index - map.starts[lo]];
  }

  // Finds the matches again; with `keep`, the current match stays the same text.
  function find(keep) {
    var el = logEl();
    var previous = keep ? search.ranges[search.current] : null;
    search.ranges = [];
    search.capped = false;
    if (el && search.query) {
      var map = textMap(el);
      var pattern = new RegExp(escapeRegExp(search.query), "gi");
      var match;
      while ((match = pattern.exec(map.text))) {
        if (search.ranges.length >= MAX_MATCHES) { search.capped = true; break; }
        var start = position(map, match.index);
        var end = position(map, match.index + match[0].length - 1);
        var range = document.createRange();
        range.setStart(start[0], start[1]);
        range.setEnd(end[0], end[1] + 1);
        search.ranges.push(range);
      }
    }
    var current = search.ranges.length ? 0 : -1;
    if (previous && previous.startContainer.isConnected) {
      for (var i = 0; i < search.ranges.length; i++) {
        var r = search.ranges[i];
        if (r.startContainer === previous.startContainer && r.startOffset === previous.startOffset) {
          current = i;
          break;
        }
      }
    }
    search.current = current;
    paint();
  }

  function paint() {
    var count = part("count");
    var total = search.ranges.length;
    if (count) {
      count.textContent = !search.query ? "" : total === 0 ? "No matches"
        : (search.current + 1) + " of " + total + (search.capped ? "+" : "");
      count.classList.toggle("is-none", Boolean(search.query) && total === 0);
    }
    ["next", "prev"].forEach(function (name) {
      var button = part(name);
      if (button) button.disabled = total === 0;
    });
    if (!highlights) return;
    CSS.highlights.set("log-match", new Highlight(...search.ranges));
    var current = search.ranges[search.current];
    if (current) CSS.highlights.set("log-current", new Highlight(current));
    else CSS.highlights.delete("log-current");
  }

  function reveal(range) {
    var el = logEl();
    if (!el || !range) return;
    var box = el.getBoundingClientRect();
    var at = range.getBoundingClientRect();
    if (at.top < box.top + 8 || at.bottom > box.bottom - 8) {
      el.scrollTop += at.top - box.top - el.clientHeight / 3;
    }
    follow = atBottom(el);
    showJump(!follow);
  }

  function step(by) {
    var total = search.ranges.length;
    if (!total) return;
    search.current = (search.current + by + total) % total;
    paint();
    reveal(search.ranges[search.current]);
  }

  var typing = null;
  document.addEventListener("input", function (event) {
    if (event.target.dataset.log !== "search") return;
    clearTimeout(typing);
    var input = event.target;
    typing = setTimeout(function () {
      search.query = input.value;
      find(false);
      reveal(search.ranges[search.current]);
    }, 120);
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target.dataset && target.dataset.log === "search") {
      if (event.key === "Enter") {
        event.preventDefault();
        clearTimeout(typing);
        if (search.query !== target.value) {
          search.query = target.value;
          find(false);
          reveal(search.ranges[search.current]);
        } else step(event.shiftKey ? -1 : 1);
      } else if (event.key === "Escape" && target.value) {
        event.preventDefault();
        target.value = "";
        search.query = "";
        find(false);
      }
    } else if (target.id === "log-text" && event.key === "/" && !event.ctrlKey && !event.metaKey) {
      // "/" searches, as in less and many log viewers.
      var input = part("search");
      if (input) { event.preventDefault(); input.focus(); input.select(); }
    }
  });

  // --- A new panel (another subtask or attempt) ---------------------------------------

  var refocusPicker = false;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.dataset && elt.dataset.log === "attempt") refocusPicker = true;
  });

  // The attempt shown is in the address (and in the view tabs' links) when it was picked,
  // so a reload or a shared link shows the same one; otherwise the latest is shown.
  function syncAddress() {
    var box = document.getElementById("log-box");
    var pinned = box && box.hasAttribute("data-attempt-pinned") ? box.dataset.attempt : "";
    var set = function (url) {
      if (pinned) url.searchParams.set("attempt", pinned);
      else url.searchParams.delete("attempt");
      return url;
    };
    var here = set(new URL(window.location.href));
    if (here.href !== window.location.href) history.replaceState(history.state, "", here);
    document.querySelectorAll("a[data-keep-subtask]").forEach(function (a) {
      a.href = set(new URL(a.href)).toString();
    });
  }

  function onNewPanel() {
    var el = logEl();
    var panel = document.getElementById("subtask-panel");
    syncAddress();
    if (!el) return;
    dropStrays(el);
    fitLog();
    toBottom();
    var sid = panel ? panel.dataset.sid : null;
    var input = part("search");
    if (sid && sid === search.sid && search.query && input) {
      input.value = search.query;  // the same subtask (another attempt): search on
    } else {
      search.query = "";
    }
    search.sid = sid;
    find(false);
    if (search.query) reveal(search.ranges[search.current]);
    if (refocusPicker) {
      refocusPicker = false;
      var picker = part("attempt");
      if (picker) picker.focus();
    }
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (target && target.id === "subtask-panel") onNewPanel();
  });
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.target && event.target.id === "subtask-panel") onNewPanel();
  });
  document.addEventListener("DOMContentLoaded", onNewPanel);
})();
