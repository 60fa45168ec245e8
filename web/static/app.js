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
// A conversation drawn by a response that was on its way while the conversation changed
// (a "state" event came in meanwhile) may show it as it was before, and nothing would
// correct it: the event was already spent on the page the response replaced. So the newest
// such event is applied again on top (a consult turned into a transfer while the consulted
// agent's click on it was in flight once left them without a reply box). It redraws only
// the header and actions, as the event does, never a player or the messages.
(function () {
  "use strict";
  var changes = {};  // interaction id -> "state" events seen for it
  var newest = {};  // interaction id -> the newest of them, as sent
  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    if (!evt.detail || evt.detail.type !== "state") { return; }
    var m = /id="actions-(\d+)"/.exec(evt.detail.data || "");
    if (m) {
      changes[m[1]] = (changes[m[1]] || 0) + 1;
      newest[m[1]] = evt.detail.data;
    }
  });
  document.addEventListener("htmx:beforeRequest", function (evt) {
    if (evt.detail.xhr) { evt.detail.xhr.hubChanges = Object.assign({}, changes); }
  });
  function shownConversation() {
    var conv = document.querySelector("#workspace .conv[data-iid]");
    return conv && conv.getAttribute("data-iid");
  }
  document.addEventListener("htmx:afterSwap", function (evt) {
    var target = evt.detail.target, seen = evt.detail.xhr && evt.detail.xhr.hubChanges;
    if (!seen || !target || target.id !== "workspace") { return; }
    var iid = shownConversation();
    if (iid && (changes[iid] || 0) > (seen[iid] || 0)) {
      htmx.swap(document.body, newest[iid], {swapStyle: "none"});
    }
  });
  // After the stream dropped and came back (a network blip, a hub restart), the open
  // conversation is fetched again: the stream's first sync redraws offers, the list and
  // presence (in that order), but what happened to the open conversation meanwhile
  // (messages, a state change) was never sent to this tab.
  // (A stream that comes back to an expired session sends no presence, only the banner.)
  var streamLost = false;
  document.addEventListener("htmx:sseError", function () { streamLost = true; });
  document.addEventListener("htmx:sseMessage", function (evt) {
    if (!streamLost || !evt.detail || evt.detail.type !== "presence") { return; }
    streamLost = false;
    var iid = shownConversation();
    if (iid) { htmx.ajax("GET", "/console/interactions/" + iid, {target: "#workspace"}); }
  });
})();
// The console's first sync ends with its presence partial: from then on the tab is live.
document.addEventListener("htmx:sseMessage", function (evt) {
  if (evt.detail && evt.detail.type === "presence") { document.body.setAttribute("data-live", "1"); }
});

// ---------------------------------------------------------------- the agent's console
// Canned responses (type "/" and a word), keyboard shortcuts ("?" lists them), and replies
// that outlive the session: each composer's text is kept in localStorage, per agent and
// conversation, as it is typed; it comes back into that conversation's composer (after a
// new login, too) and is dropped once sent. Only ever set as a value, never as HTML.
(function () {
  "use strict";
  var DRAFT_PREFIX = "hub-draft:";
  var DRAFT_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
  var TOKEN = /(^|\s)\/([A-Za-z0-9_-]{0,32})$/;
  var expired = false;
  var focusComposer = false;

  function consoleRoot() { return document.querySelector(".console[data-agent]"); }
  function typingIn(el) {
    return !!el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  // -- drafts
  function draftKey(iid) {
    var root = consoleRoot();
    return root && iid ? DRAFT_PREFIX + root.getAttribute("data-agent") + ":" + iid : null;
  }
  function readDraft(iid) {
    var key = draftKey(iid);
    if (!key) { return null; }
    try {
      var draft = JSON.parse(window.localStorage.getItem(key) || "null");
      if (draft && typeof draft.reply === "string" && Date.now() - (draft.at || 0) < DRAFT_MAX_AGE_MS) {
        return draft;
      }
    } catch (e) { /* unreadable: as if none */ }
    return null;
  }
  function saveDraft(form) {
    var key = draftKey(form.getAttribute("data-draft"));
    var reply = form.querySelector("textarea[name=reply]");
    if (!key || !reply) { return; }
    var subject = form.querySelector("input[name=subject]");
    try {
      if (reply.value.trim()) {
        window.localStorage.setItem(key, JSON.stringify({
          reply: reply.value, subject: subject ? subject.value : null, at: Date.now()
        }));
      } else {
        window.localStorage.removeItem(key);
      }
    } catch (e) { /* storage full or switched off: typing goes on regardless */ }
    markDrafts();
  }
  function clearDraft(iid) {
    var key = draftKey(iid);
    if (!key) { return; }
    try { window.localStorage.removeItem(key); } catch (e) { /* nothing kept */ }
    markDrafts();
  }
  function restoreDrafts(scope) {
    if (!scope || !scope.querySelectorAll) { return; }
    var forms = scope.matches && scope.matches("form[data-draft]") ? [scope] : scope.querySelectorAll("form[data-draft]");
    Array.prototype.forEach.call(forms, function (form) {
      var reply = form.querySelector("textarea[name=reply]");
      var draft = readDraft(form.getAttribute("data-draft"));
      if (!reply || !draft || reply.value.trim()) { return; }
      reply.value = draft.reply;
      var subject = form.querySelector("input[name=subject]");
      if (subject && draft.subject) { subject.value = draft.subject; }
      var note = form.querySelector(".draft-note");
      if (note) { note.hidden = false; }
      reply.dispatchEvent(new Event("input", { bubbles: true }));  // e.g. the SMS counter
    });
  }
  // A "draft" chip on each other conversation in the list that has an unsent reply here.
  function markDrafts() {
    var conv = document.querySelector("#workspace .conv[data-iid]");
    var shown = conv ? conv.getAttribute("data-iid") : null;
    document.querySelectorAll("#conversations a[data-iid]").forEach(function (link) {
      var iid = link.getAttribute("data-iid");
      var has = iid !== shown && !!readDraft(iid);
      var chip = link.querySelector(".draft-chip");
      if (has && !chip) {
        chip = document.createElement("span");
        chip.className = "chip warn draft-chip";
        chip.textContent = "draft";
        link.appendChild(chip);
      } else if (!has && chip) {
        chip.remove();
      }
    });
  }
  function pruneDrafts() {
    try {
      for (var i = window.localStorage.length - 1; i >= 0; i--) {
        var key = window.localStorage.key(i);
        if (key && key.indexOf(DRAFT_PREFIX) === 0) {
          var draft = null;
          try { draft = JSON.parse(window.localStorage.getItem(key) || "null"); } catch (e) { draft = null; }
          if (!draft || Date.now() - (draft.at || 0) >= DRAFT_MAX_AGE_MS) { window.localStorage.removeItem(key); }
        }
      }
    } catch (e) { /* storage unavailable */ }
  }

  // -- the session has ended: say so, keep the page (and the draft) as it is
  function showExpired() {
    if (expired || !consoleRoot()) { return; }
    expired = true;
    document.querySelectorAll("form[data-draft]").forEach(saveDraft);
    var box = document.getElementById("session-expired");
    if (!box) { return; }
    var conv = document.querySelector("#workspace .conv[data-iid]");
    var next = "/console" + (conv ? "?interaction=" + conv.getAttribute("data-iid") : "");
    var link = box.querySelector("a");
    if (link) { link.href = "/login?next=" + encodeURIComponent(next); }
    box.hidden = false;
    document.body.classList.add("session-expired-now");
  }
  function checkSession() {
    if (expired || !consoleRoot() || !window.fetch) { return; }
    window.fetch("/console/session", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { if (response.status === 401) { showExpired(); } })
      .catch(function () { /* the network, not the session: the stream retries */ });
  }
  // A 401 on the console would follow HX-Redirect to the login page and lose the page.
  document.addEventListener("htmx:beforeOnLoad", function (evt) {
    var xhr = evt.detail && evt.detail.xhr;
    if (xhr && xhr.status === 401 && consoleRoot()) {
      evt.preventDefault();
      showExpired();
    }
  });
  document.addEventListener("htmx:sseError", checkSession);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { checkSession(); } });

  // -- canned responses
  function composerParts(textarea) {
    var form = textarea && textarea.form;
    if (!form || !form.hasAttribute("data-draft") || textarea.name !== "reply") { return null; }
    var iid = form.getAttribute("data-draft");
    return {
      form: form,
      query: document.getElementById("canned-q-" + iid),
      box: document.getElementById("canned-" + iid)
    };
  }
  function cannedToken(textarea) {
    var before = textarea.value.slice(0, textarea.selectionStart);
    var match = TOKEN.exec(before);
    return match ? { word: match[2], start: before.length - match[2].length - 1 } : null;
  }
  function closeCanned(box) {
    if (box) { box.textContent = ""; }
  }
  function cannedItems(box) { return box ? box.querySelectorAll(".canned-item") : []; }
  function moveActive(box, step) {
    var items = cannedItems(box);
    if (!items.length) { return; }
    var index = 0;
    items.forEach(function (item, i) { if (item.classList.contains("active")) { index = i; } });
    index = (index + step + items.length) % items.length;
    items.forEach(function (item, i) {
      item.classList.toggle("active", i === index);
      item.setAttribute("aria-selected", i === index ? "true" : "false");
    });
    items[index].scrollIntoView({ block: "nearest" });
  }
  function insertCanned(textarea, item) {
    var parts = composerParts(textarea);
    var text = item.getAttribute("data-text") || "";
    var token = cannedToken(textarea);
    var end = textarea.selectionStart;
    var start = token ? token.start : end;
    textarea.setRangeText(text, start, end, "end");
    if (parts) { closeCanned(parts.box); }
    textarea.focus();
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function onComposerInput(textarea) {
    var parts = composerParts(textarea);
    if (!parts || !parts.query || !parts.box) { return; }
    var token = cannedToken(textarea);
    if (!token) { closeCanned(parts.box); return; }
    if (parts.query.value !== token.word || !parts.box.firstChild) {
      parts.query.value = token.word;
      window.htmx.trigger(parts.query, "canned-query");
    }
  }
  // A list that arrives after the "/word" was deleted is not shown.
  document.addEventListener("htmx:afterSwap", function (evt) {
    var box = evt.detail && evt.detail.target;
    if (!box || !box.classList || !box.classList.contains("canned")) { return; }
    var form = box.closest("form");
    var textarea = form && form.querySelector("textarea[name=reply]");
    if (!textarea || !cannedToken(textarea)) { closeCanned(box); }
  });
  document.addEventListener("mousedown", function (evt) {
    var item = evt.target.closest && evt.target.closest(".canned-item");
    if (!item) { return; }
    evt.preventDefault();  // keep the caret in the textarea
    var textarea = item.closest("form").querySelector("textarea[name=reply]");
    if (textarea) { insertCanned(textarea, item); }
  });

  document.addEventListener("input", function (evt) {
    var el = evt.target;
    if (!el || !el.form || !el.form.hasAttribute("data-draft")) { return; }
    if (el.name === "reply" || el.name === "subject") { saveDraft(el.form); }
    if (el.name === "reply") { onComposerInput(el); }
  });
  document.addEventListener("click", function (evt) {
    var el = evt.target;
    if (el && el.tagName === "TEXTAREA" && el.name === "reply") { onComposerInput(el); }
  });

  // -- keyboard shortcuts
  function help(show) {
    var box = document.getElementById("keys-help");
    if (!box) { return; }
    box.hidden = show === undefined ? !box.hidden : !show;
    if (!box.hidden) {
      var close = box.querySelector("[data-close-help]");
      if (close) { close.focus(); }
    }
  }
  // htmx wires swapped-in controls up only when they settle (some ms later); a key pressed
  // the moment an offer appears must not fall into that gap.
  function clickNow(el) {
    if (window.htmx) { window.htmx.process(el); }
    el.click();
  }
  function newestOffer(which) {
    var offers = document.querySelectorAll("#offers .offer");
    if (!offers.length) {
      if (window.hubToast) { window.hubToast("There is no offer right now.", "info"); }
      return;
    }
    var button = offers[offers.length - 1].querySelector("button[data-key=" + which + "]");
    if (button) {
      focusComposer = which === "accept";
      clickNow(button);
    }
  }
  function switchConversation(step) {
    var links = Array.prototype.slice.call(document.querySelectorAll("#conversations a[data-iid]"));
    if (!links.length) { return; }
    var conv = document.querySelector("#workspace .conv[data-iid]");
    var current = conv ? conv.getAttribute("data-iid") : null;
    var index = -1;
    links.forEach(function (link, i) { if (link.getAttribute("data-iid") === current) { index = i; } });
    var next = index === -1 ? (step > 0 ? 0 : links.length - 1) : index + step;
    if (next < 0 || next >= links.length) { return; }
    focusComposer = true;
    clickNow(links[next]);
  }
  document.addEventListener("keydown", function (evt) {
    if (!consoleRoot()) { return; }
    var el = evt.target;
    var parts = el && el.tagName === "TEXTAREA" ? composerParts(el) : null;
    var items = parts ? cannedItems(parts.box) : [];
    if (items.length && !evt.altKey && !evt.ctrlKey && !evt.metaKey) {
      if (evt.key === "ArrowDown" || evt.key === "ArrowUp") {
        evt.preventDefault();
        moveActive(parts.box, evt.key === "ArrowDown" ? 1 : -1);
        return;
      }
      if (evt.key === "Enter" || evt.key === "Tab") {
        evt.preventDefault();
        insertCanned(el, parts.box.querySelector(".canned-item.active") || items[0]);
        return;
      }
      if (evt.key === "Escape") {
        evt.preventDefault();
        closeCanned(parts.box);
        return;
      }
    }
    if ((evt.ctrlKey || evt.metaKey) && evt.key === "Enter" && el && el.tagName === "TEXTAREA" && el.form) {
      evt.preventDefault();
      if (parts) { closeCanned(parts.box); }
      if (el.form.requestSubmit) { el.form.requestSubmit(); }
      return;
    }
    if (evt.altKey && !evt.ctrlKey && !evt.metaKey) {
      if (evt.code === "KeyA") { evt.preventDefault(); newestOffer("accept"); return; }
      if (evt.code === "KeyR") { evt.preventDefault(); newestOffer("reject"); return; }
      if (evt.key === "ArrowUp") { evt.preventDefault(); switchConversation(-1); return; }
      if (evt.key === "ArrowDown") { evt.preventDefault(); switchConversation(1); return; }
    }
    if (evt.key === "?" && !typingIn(el) && !evt.ctrlKey && !evt.altKey && !evt.metaKey) {
      evt.preventDefault();
      help();
      return;
    }
    if (evt.key === "Escape") { help(false); }
  });
  document.addEventListener("click", function (evt) {
    var target = evt.target;
    if (!target.closest) { return; }
    if (target.closest("[data-open-help]")) { help(true); }
    else if (target.closest("[data-close-help]") || target.id === "keys-help") { help(false); }
  });

  // -- htmx life cycle
  document.addEventListener("htmx:afterRequest", function (evt) {
    var elt = evt.detail.elt;
    if (evt.detail.successful && elt && elt.tagName === "FORM" && elt.hasAttribute("data-draft")) {
      clearDraft(elt.getAttribute("data-draft"));
      var note = elt.querySelector(".draft-note");
      if (note) { note.hidden = true; }
      var box = document.getElementById("canned-" + elt.getAttribute("data-draft"));
      closeCanned(box);
    }
  });
  document.addEventListener("htmx:load", function (evt) {
    restoreDrafts(evt.detail.elt);
    markDrafts();
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!focusComposer) { return; }
    var textarea = document.querySelector("#workspace form[data-draft] textarea[name=reply]");
    if (textarea) {
      focusComposer = false;
      textarea.focus();
    }
  });
  // Logging out on purpose drops this agent's drafts (a shared computer keeps nothing).
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    var root = consoleRoot();
    if (!root || !form || form.getAttribute("action") !== "/logout") { return; }
    var prefix = DRAFT_PREFIX + root.getAttribute("data-agent") + ":";
    try {
      for (var i = window.localStorage.length - 1; i >= 0; i--) {
        var key = window.localStorage.key(i);
        if (key && key.indexOf(prefix) === 0) { window.localStorage.removeItem(key); }
      }
    } catch (e) { /* storage unavailable */ }
  });
  document.addEventListener("DOMContentLoaded", function () {
    pruneDrafts();
    restoreDrafts(document);
    markDrafts();
  });
})();
