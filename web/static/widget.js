// Contact Hub web chat widget. Copy the snippet from the hub's admin pages:
//   <script src="https://HUB/static/widget.js" data-inbox="ID" async></script>
// Optional, for a logged-in user, signed by your backend (see the admin page):
//   data-user-id="…" data-user-email="…" data-user-name="…" data-user-signature="…"
(function () {
  "use strict";
  var script = document.currentScript;
  var hub = new URL(script.src).origin;
  var inbox = script.dataset.inbox;
  var key = "contacthub-visitor-" + hub + "-" + inbox;
  var base = hub + "/chat/w/" + encodeURIComponent(inbox);
  var panel, frame, token;

  function session() {
    var body = new URLSearchParams();
    var saved = null;
    try { saved = window.localStorage.getItem(key); } catch (e) { /* storage off */ }
    if (saved) body.set("token", saved);
    var d = script.dataset;
    if (d.userId) {
      body.set("user_id", d.userId);
      body.set("email", d.userEmail || "");
      body.set("name", d.userName || "");
      body.set("signature", d.userSignature || "");
    }
    return fetch(base + "/session", { method: "POST", body: body, credentials: "omit" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (!r.ok) throw new Error(j.detail || "The chat is not available on this site.");
          return j.token;
        });
      })
      .then(function (t) {
        try { window.localStorage.setItem(key, t); } catch (e) { /* storage off */ }
        return t;
      });
  }

  function show(message) {
    var p = document.createElement("p");
    p.id = "contacthub-error";
    p.textContent = message;
    p.style.cssText = "margin:12px;font:14px sans-serif;color:#8a1c1c";
    panel.appendChild(p);
  }

  function open() {
    if (panel) { panel.hidden = !panel.hidden; return; }
    panel = document.createElement("div");
    panel.id = "contacthub-panel";
    panel.style.cssText = "position:fixed;right:16px;bottom:72px;width:360px;height:520px;" +
      "max-height:80vh;background:#fff;border:1px solid #ccc;border-radius:8px;" +
      "box-shadow:0 4px 16px rgba(0,0,0,.2);z-index:2147483647;overflow:hidden";
    document.body.appendChild(panel);
    session().then(function (t) {
      token = t;
      frame = document.createElement("iframe");
      frame.id = "contacthub-frame";
      frame.title = "Chat";
      frame.src = base;
      frame.style.cssText = "border:0;width:100%;height:100%";
      frame.setAttribute("allow", "clipboard-write");
      panel.appendChild(frame);
    }, function (err) { show(err.message); });
  }

  window.addEventListener("message", function (e) {
    if (e.origin !== hub || !frame || e.source !== frame.contentWindow) return;
    if (e.data && e.data.type === "contacthub:ready") {
      frame.contentWindow.postMessage({ type: "contacthub:visitor", token: token }, hub);
    }
  });

  function launcher() {
    var b = document.createElement("button");
    b.id = "contacthub-launcher";
    b.type = "button";
    b.textContent = script.dataset.label || "Chat with us";
    b.style.cssText = "position:fixed;right:16px;bottom:16px;z-index:2147483647;" +
      "padding:10px 16px;border-radius:20px;border:0;background:#1f5fbf;color:#fff;" +
      "font:15px sans-serif;cursor:pointer";
    b.addEventListener("click", open);
    document.body.appendChild(b);
  }
  if (document.body) launcher(); else document.addEventListener("DOMContentLoaded", launcher);
})();
