// Contact Hub: small glue around htmx. No user content is ever inserted as HTML here.
(function () {
  "use strict";

  function toast(text, kind) {
    var box = document.getElementById("toasts");
    if (!box) { return; }
    var item = document.createElement("div");
    item.className = "toast " + (kind || "error");
    item.textContent = text;  // textContent: the server's reason is shown, never parsed
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "\u00d7";
    close.addEventListener("click", function () { item.remove(); });
    item.appendChild(close);
    box.appendChild(item);
    window.setTimeout(function () { item.remove(); }, 8000);
  }
  window.hubToast = toast;

  function reasonOf(xhr) {
    var text = (xhr && xhr.responseText) || "";
    try {
      var data = JSON.parse(text);
      if (data && data.detail) { return String(data.detail); }
    } catch (e) { /* not JSON */ }
    if (text && text.length < 400 && text.indexOf("<") === -1) { return text; }
    return (xhr && xhr.status ? xhr.status + " " : "") + ((xhr && xhr.statusText) || "Request failed");
  }

  document.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail.xhr;
    if (xhr && xhr.status === 401) { return; }  // HX-Redirect to the login page follows
    toast(reasonOf(xhr), "error");
  });
  document.addEventListener("htmx:sendError", function () {
    toast("The hub cannot be reached. Check your connection.", "error");
  });

  // A form that posted successfully is cleared (reply box, note box, chat box).
  document.addEventListener("htmx:afterRequest", function (evt) {
    var elt = evt.detail.elt;
    if (evt.detail.successful && elt && elt.tagName === "FORM" && elt.hasAttribute("data-reset")) {
      elt.reset();
      var sid = elt.querySelector("input[name=source_id]");
      if (sid) { sid.value = newId(); }
    }
  });

  function newId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  window.hubNewId = newId;

  // A stable client id per composed message, so a double submit is stored once.
  document.addEventListener("htmx:load", function (evt) {
    var fields = evt.detail.elt.querySelectorAll ? evt.detail.elt.querySelectorAll("input[name=source_id]") : [];
    fields.forEach(function (f) { if (!f.value) { f.value = newId(); } });
  });

  // Named SSE events that act on the page rather than swap a partial.
  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    var type = evt.detail && evt.detail.type;
    if (type === "force-logout") {
      evt.preventDefault();
      window.location.href = "/login?reason=forced";
    } else if (type === "session-expired") {
      evt.preventDefault();
      document.body.classList.add("session-expired");
      toast("Your session has expired. Log in again to keep working.", "error");
    } else if (type === "reload") {
      evt.preventDefault();
      window.location.reload();
    }
  });
  document.addEventListener("htmx:sseOpen", function () {
    document.body.classList.remove("sse-down");
  });
  document.addEventListener("htmx:sseError", function () {
    document.body.classList.add("sse-down");
  });

  // Live clocks: time in state, waiting time, offer countdowns.
  function fmt(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m));
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-since"));
      if (!isNaN(t)) { el.textContent = fmt((now - t) / 1000); }
    });
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-expires"));
      if (isNaN(t)) { return; }
      var left = (t - now) / 1000;
      el.textContent = left > 0 ? Math.ceil(left) + " s" : "expired";
      el.classList.toggle("urgent", left < 6);
    });
  }
  window.setInterval(tick, 1000);
  document.addEventListener("htmx:afterSettle", tick);
  document.addEventListener("DOMContentLoaded", tick);

  // Keep the newest message in view.
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll("[data-autoscroll]").forEach(function (el) {
      el.scrollTop = el.scrollHeight;
    });
  });
  document.addEventListener("htmx:oobAfterSwap", function () {
    document.querySelectorAll("[data-autoscroll]").forEach(function (el) {
      el.scrollTop = el.scrollHeight;
    });
  });
})();

// Buttons that close their container (supervisor pop-ups), and Enter-to-send in the chat.
document.addEventListener("click", function (evt) {
  var btn = evt.target.closest && evt.target.closest("[data-dismiss]");
  if (btn) {
    var box = btn.closest(btn.getAttribute("data-dismiss"));
    if (box) { box.remove(); }
  }
});
document.addEventListener("keydown", function (evt) {
  var el = evt.target;
  if (evt.key === "Enter" && !evt.shiftKey && el && el.hasAttribute && el.hasAttribute("data-enter-send")) {
    evt.preventDefault();
    if (el.form && el.form.requestSubmit) { el.form.requestSubmit(); }
  }
});
// An element that arrives twice (page load raced a live event) is shown once.
document.addEventListener("htmx:oobAfterSwap", function () {
  var seen = {};
  document.querySelectorAll("[id^='m-'], [id^='c-']").forEach(function (el) {
    if (seen[el.id]) { el.remove(); } else { seen[el.id] = true; }
  });
});
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input[name=source_id]").forEach(function (f) {
    if (!f.value) { f.value = window.hubNewId(); }
  });
});
// The console's first sync ends with its presence partial: from then on the tab is live.
document.addEventListener("htmx:sseMessage", function (evt) {
  if (evt.detail && evt.detail.type === "presence") { document.body.setAttribute("data-live", "1"); }
});
