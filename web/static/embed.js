// Inside the hub's iframe on a customer's site: wait for the host page's visitor token
// (postMessage, from an allowed origin only), then send it as a header on every request.
(function () {
  "use strict";
  var root = document.getElementById("chat-embed");
  var allowed = JSON.parse(root.dataset.origins || "[]");
  var token = null;

  document.body.addEventListener("htmx:configRequest", function (e) {
    if (token) e.detail.headers["X-Hub-Visitor"] = token;
  });
  window.addEventListener("message", function (e) {
    if (e.source !== window.parent || allowed.indexOf(e.origin) < 0) return;
    var data = e.data || {};
    if (data.type !== "contacthub:visitor" || typeof data.token !== "string" || token) return;
    token = data.token;
    htmx.ajax("GET", root.dataset.base + "/panel", { target: "#chat", swap: "outerHTML" });
  });
  // Nothing secret in it: the parent answers only to the hub's own origin.
  window.parent.postMessage({ type: "contacthub:ready" }, "*");
})();
