// The dialog editor: a click on a problem's line number selects that line in the text.
(function () {
  "use strict";
  document.addEventListener("click", function (e) {
    var link = e.target.closest("[data-goto-line]");
    if (!link) return;
    e.preventDefault();
    var area = document.getElementById("source");
    var line = parseInt(link.dataset.gotoLine, 10);
    var lines = area.value.split("\n");
    var start = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    var end = start + (lines[line - 1] || "").length;
    area.focus();
    area.setSelectionRange(start, end);
    var height = area.scrollHeight / Math.max(lines.length, 1);
    area.scrollTop = Math.max(0, (line - 5) * height);
  });
})();
