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

  function scrollThreadToEnd() {
    var box = document.getElementById("messages");
    if (box) box.scrollTop = box.scrollHeight;
  }

  document.addEventListener("DOMContentLoaded", function () {
    markCurrentRow();
    scrollThreadToEnd();
    document.body.addEventListener("toast", function (e) { toast(e.detail); });
    document.body.addEventListener("htmx:sseOpen", function () {
      var dot = document.getElementById("live-dot"); if (dot) dot.classList.add("connected");
    });
    document.body.addEventListener("htmx:sseError", function () {
      var dot = document.getElementById("live-dot"); if (dot) dot.classList.remove("connected");
    });
    document.body.addEventListener("htmx:afterSwap", function (e) {
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
