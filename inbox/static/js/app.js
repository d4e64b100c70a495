/* Small behaviours around htmx: toasts, live indicator, row selection, dedupe, keyboard. */
(function () {
  "use strict";

  function toast(detail) {
    var box = document.getElementById("toasts");
    if (!box || !detail) return;
    var el = document.createElement("div");
    el.className = "toast toast-" + (detail.level || "info");
    el.textContent = detail.message;
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, 6000);
  }

  function markCurrentRow() {
    var match = location.pathname.match(/\/inbox\/c\/(\d+)/);
    document.querySelectorAll(".row").forEach(function (row) {
      var current = match && row.dataset.conversationId === match[1];
      if (current) row.setAttribute("aria-current", "true"); else row.removeAttribute("aria-current");
    });
    var inbox = document.querySelector(".inbox");
    if (inbox) inbox.classList.toggle("has-thread", !!match);
  }

  // A message can arrive twice (the reply's response and the live update): keep the first.
  function dedupeMessages() {
    var seen = {};
    document.querySelectorAll("#messages [id^=msg-]").forEach(function (el) {
      if (seen[el.id]) el.remove(); else seen[el.id] = true;
    });
  }

  // The open list follows each change row by row (issue #7). A change naming a conversation comes
  // with its row and this agent's sidebar counts (inbox/blueprints/live_rows.py): the page keeps the
  // row where its list's filters do (rowMatches) and puts it in place, without a request. A list the
  // page cannot filter (a search) fetches the one row it names instead.
  // Changes are applied one at a time, in event order: a later answer is never overwritten by an
  // earlier one, and a change arriving during a fetch is applied after it. A change already
  // waiting for a fetch is not queued twice. A change naming no conversation (a label renamed), or
  // more rows waiting than a page's worth of requests is worth (a sweep touching many
  // conversations), refetches the rows.
  var ROWS_BEFORE_REFETCH = 10;
  var liveQueue = Promise.resolve(), waitingRows = {}, waitingCount = 0, waitingList = false;

  function followChange(detail) {
    var change = {};
    try { change = JSON.parse((detail && detail.data) || "{}"); } catch (err) { change = {}; }
    var id = change.conversation_id;
    if (waitingList || (id && waitingRows[id])) return;  // the request already waiting will see this change
    var list = document.getElementById("conv-list");
    if (id && "row" in change && list && list.dataset.match !== "null") {
      enqueue(function () { applyPushed(list, id, change); });
    } else if (id && waitingCount < ROWS_BEFORE_REFETCH) {
      waitingRows[id] = true; waitingCount++;
      enqueue(function () {
        if (!waitingRows[id]) return null;  // a list refetch took its place
        delete waitingRows[id]; waitingCount--;
        return fetchRow(id);
      });
    } else {
      waitingList = true; waitingRows = {}; waitingCount = 0;
      enqueue(function () { waitingList = false; return refetchList(); });
    }
  }

  // Whether a conversation belongs in the list: exactly as the server's query filters it
  // (inbox/models/queries.py _filtered; tests/e2e/test_live_rows.py compares them).
  function rowMatches(spec, facts) {
    if (spec.view === "mine" && facts.assignee !== spec.user) return false;
    if (spec.view === "unassigned" && facts.assignee !== null) return false;
    if (spec.status !== "any" && facts.status !== spec.status) return false;
    if (spec.priority && facts.priority !== spec.priority) return false;
    if (spec.assignee && facts.assignee !== spec.assignee) return false;
    if (spec.channel && facts.channel !== spec.channel) return false;
    if (spec.label && facts.labels.indexOf(spec.label) < 0) return false;
    return true;
  }
  window.coccinelleRowMatches = rowMatches;

  function applyPushed(list, id, change) {
    if (document.getElementById("conv-list") !== list) return;  // the filters changed: that list is fresh
    var spec = JSON.parse(list.dataset.match), row = null;
    Object.keys(change.counts || {}).forEach(function (key) {
      var count = document.getElementById("count-" + key);
      if (count) count.textContent = change.counts[key];
    });
    if (change.row && rowMatches(spec, change.row.facts)) {
      var answer = document.createElement("template");
      answer.innerHTML = change.row.html;
      row = answer.content.querySelector(".row");
      var link = row.getAttribute("href") + (list.dataset.filters ? "?" + list.dataset.filters : "");
      row.setAttribute("href", link);
      row.setAttribute("hx-get", link);
      row.dataset.sort = change.row.facts.sort[spec.sort];
    }
    placeRow(list, id, row);
  }

  function enqueue(job) {
    liveQueue = liveQueue.then(job).catch(function () { return refetchList(); }).catch(function () {});
  }

  function refetchList() {
    var list = document.getElementById("conv-list");
    if (!list) return null;
    return htmx.ajax("GET", list.dataset.listUrl,
                     { source: list, target: list, swap: "innerHTML", select: "#conv-list > *" });
  }

  function fetchRow(id) {
    var list = document.getElementById("conv-list");
    if (!list) return null;
    var url = list.dataset.rowUrl.replace(/\/0(?=\?|$)/, "/" + id);
    return fetch(url, { headers: { "HX-Request": "true" }, cache: "no-store" }).then(function (response) {
      if (!response.ok) throw new Error("row " + response.status);
      return response.text();
    }).then(function (html) {
      if (document.getElementById("conv-list") !== list) return;  // the filters changed: that list is fresh
      var answer = document.createElement("template");
      answer.innerHTML = html;
      var row = answer.content.querySelector(".row");
      if (row) row.remove();
      htmx.swap(list, answer.innerHTML, { swapStyle: "none" });  // the sidebar counts, out of band
      placeRow(list, id, row);
    });
  }

  // Rows are in descending data-sort order. A row that sorts after the last loaded one while more
  // pages remain is left to "More conversations", which will bring it in its turn.
  function placeRow(list, id, row) {
    var old = document.getElementById("row-" + id), hadFocus = old && old === document.activeElement;
    if (old) { old.remove(); if (row && old.classList.contains("kbd-focus")) row.classList.add("kbd-focus"); }
    if (!row) { sayWhenEmpty(list); return; }  // it left this view
    var more = list.querySelector(".btn-more"), next = null;
    var rows = list.querySelectorAll(".row");
    for (var i = 0; i < rows.length && !next; i++) if (rows[i].dataset.sort < row.dataset.sort) next = rows[i];
    if (!next && more) return;
    var empty = list.querySelector(".empty-state");
    if (empty) empty.remove();
    list.insertBefore(row, next || more);
    htmx.process(row);
    markCurrentRow();
    if (hadFocus) row.focus({ preventScroll: true });
  }

  // The last row left and no page follows: the list says so, as when it loads empty.
  function sayWhenEmpty(list) {
    if (list.querySelector(".row, .btn-more, .empty-state")) return;
    var empty = document.createElement("div"), text = document.createElement("p");
    empty.className = "empty-state small";
    text.textContent = list.dataset.empty;
    empty.appendChild(text);
    list.appendChild(empty);
  }

  // A page of "More conversations" may bring a row a live change already placed higher: keep that one.
  function dedupeRows() {
    var seen = {};
    document.querySelectorAll("#conv-list .row").forEach(function (row) {
      if (seen[row.id]) row.remove(); else seen[row.id] = true;
    });
  }

  function scrollThreadToEnd() {
    var box = document.getElementById("messages");
    if (box) box.scrollTop = box.scrollHeight;
  }

  document.addEventListener("DOMContentLoaded", function () {
    markCurrentRow();
    scrollThreadToEnd();
    document.body.addEventListener("toast", function (e) { toast(e.detail); });
    document.body.addEventListener("sse:conversation-changed", function (e) {
      if (e.target.id === "conv-list") followChange(e.detail);
    });
    document.body.addEventListener("htmx:sseOpen", function () {
      var dot = document.getElementById("live-dot"); if (dot) dot.classList.add("connected");
    });
    document.body.addEventListener("htmx:sseError", function () {
      var dot = document.getElementById("live-dot"); if (dot) dot.classList.remove("connected");
    });
    document.body.addEventListener("htmx:afterSwap", function (e) {
      dedupeRows();
      markCurrentRow();
      if (e.detail.target && (e.detail.target.id === "messages" || e.detail.target.id === "thread")) {
        dedupeMessages();
        scrollThreadToEnd();
      }
    });
    document.body.addEventListener("htmx:afterSettle", function (e) {
      if (e.detail.target && e.detail.target.id === "thread") scrollThreadToEnd();
    });
    document.body.addEventListener("htmx:responseError", function (e) {
      if (!e.detail.xhr.getResponseHeader("HX-Trigger")) {
        toast({ level: "error", message: document.documentElement.lang === "fr"
          ? "L'action a échoué (" + e.detail.xhr.status + ")." : "The action failed (" + e.detail.xhr.status + ")." });
      }
    });
    document.body.addEventListener("htmx:sendError", function () {
      toast({ level: "error", message: document.documentElement.lang === "fr"
        ? "Serveur injoignable." : "The server cannot be reached." });
    });
  });

  // Ctrl/Cmd + Enter sends the composer.
  document.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target.closest && e.target.closest("#composer")) {
      e.preventDefault();
      htmx.trigger(e.target.closest("#composer"), "submit");
    }
  });

  // Single-key shortcuts, outside text fields.
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey || (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)))) return;
    var rows = Array.prototype.slice.call(document.querySelectorAll(".row"));
    var active = document.activeElement && document.activeElement.closest && document.activeElement.closest(".row");
    var focused = active || document.querySelector(".row.kbd-focus") || document.querySelector(".row[aria-current]");
    var index = rows.indexOf(focused);
    function focusRow(i) {
      if (!rows.length) return;
      i = Math.max(0, Math.min(rows.length - 1, i));
      rows.forEach(function (r) { r.classList.remove("kbd-focus"); });
      rows[i].classList.add("kbd-focus");
      rows[i].focus({ preventScroll: true });  // screen readers and the focus ring follow
      rows[i].scrollIntoView({ block: "nearest" });
    }
    var composer = document.getElementById("composer");
    switch (e.key) {
      case "j": focusRow(index + 1); break;
      case "k": focusRow(index - 1); break;
      // Enter opens the row, unless it is meant for the button or link that has the focus.
      case "Enter": if (focused && (active || !t || !t.closest || !t.closest("a, button, summary"))) { focused.click(); } else return; break;
      case "/": document.getElementById("search") && document.getElementById("search").focus(); break;
      case "r": if (composer) { composer.querySelector("input[name=internal]").checked = false; composer.querySelector("textarea").focus(); } break;
      case "n": if (composer) { composer.querySelector("input[name=internal]").checked = true; composer.querySelector("textarea").focus(); } break;
      case "a": var a = document.querySelector("[data-shortcut=a]"); if (a) a.click(); break;
      case "e": var r = document.querySelector("[data-shortcut=e]"); if (r) r.click(); break;
      case "?": var d = document.getElementById("shortcuts"); if (d) d.showModal(); break;
      default: return;
    }
    e.preventDefault();
  });
})();
