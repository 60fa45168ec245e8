// QA player: the transcript follows the audio, and a click on a segment (or the timeline)
// seeks there. No framework: one <audio>, segments carrying data-start-ms / data-end-ms.
(function () {
  "use strict";
  function setUp() {
    var audio = document.querySelector("audio[data-qa-player]");
    if (!audio) return;
    var box = document.querySelector(".qa-player");
    var duration = Number(box.dataset.durationMs) || 1;
    var spans = Array.prototype.slice.call(document.querySelectorAll("[data-start-ms]"));
    var cursor = document.querySelector(".qa-cursor");

    function seek(ms) {
      audio.currentTime = ms / 1000;
      var played = audio.play();
      if (played && played.catch) played.catch(function () {});
      follow();
    }
    function follow() {
      var now = audio.currentTime * 1000;
      spans.forEach(function (el) {
        var on = now >= Number(el.dataset.startMs) && now < Number(el.dataset.endMs);
        el.classList.toggle("playing", on);
        if (on && el.classList.contains("qa-seg") && !el.dataset.shown) {
          el.scrollIntoView({ block: "nearest" });
        }
        el.dataset.shown = on ? "1" : "";
      });
      if (cursor) cursor.style.left = Math.min(100, (100 * now) / duration) + "%";
    }
    spans.forEach(function (el) {
      if (!el.classList.contains("qa-seg")) return;
      el.addEventListener("click", function () { seek(Number(el.dataset.startMs)); });
      el.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); seek(Number(el.dataset.startMs)); }
      });
    });
    var timeline = document.querySelector(".qa-timeline");
    if (timeline) {
      timeline.addEventListener("click", function (e) {
        var rect = timeline.getBoundingClientRect();
        seek(((e.clientX - rect.left) / rect.width) * duration);
      });
    }
    audio.addEventListener("timeupdate", follow);
    audio.addEventListener("seeked", follow);
    if (box.dataset.seekMs) {
      var start = Number(box.dataset.seekMs);
      var go = function () { audio.currentTime = start / 1000; follow(); };
      if (audio.readyState >= 1) go(); else audio.addEventListener("loadedmetadata", go, { once: true });
    }
    var focus = document.querySelector(".qa-transcript .focus");
    if (focus) focus.scrollIntoView({ block: "center" });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
