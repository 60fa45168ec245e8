// The dialog editor's code view: CodeMirror 6 over the YAML, with the hub's validator as its
// linter. Bundled by esbuild at set-up (./dev.sh), never committed. The <textarea> stays the
// form field: every change is copied back and announced with an "input" event, so the
// page's checks (problems list, diagram) and the save form work as without this script.
import { basicSetup, EditorView } from "codemirror";
import { yaml } from "@codemirror/lang-yaml";
import { linter, lintGutter } from "@codemirror/lint";

const views = new WeakMap();

// One editor per #source textarea, also when htmx swaps a new editor page in (after a
// save, a publish or a rollback).
function attach(area) {
  if (!area || area.dataset.codeEditor) return;
  area.dataset.codeEditor = "1";
  const problemsUrl = area.dataset.problemsUrl;
  const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]*)/) || [])[1] || "";

  const hubLinter = linter(
    async (view) => {
      const body = new URLSearchParams({ source: view.state.doc.toString() });
      const response = await fetch(problemsUrl, {
        method: "POST",
        body,
        headers: { "x-csrftoken": decodeURIComponent(csrf) },
        credentials: "same-origin",
      });
      if (!response.ok) return [];
      const problems = await response.json();
      return problems.map((p) => {
        const line = view.state.doc.line(Math.min(Math.max(p.line, 1), view.state.doc.lines));
        return {
          from: line.from,
          to: line.to,
          severity: p.severity === "error" ? "error" : "warning",
          message: p.message,
          source: p.code,
        };
      });
    },
    { delay: 500 },
  );

  const view = new EditorView({
    doc: area.value,
    extensions: [
      basicSetup,
      yaml(),
      lintGutter(),
      hubLinter,
      EditorView.updateListener.of((update) => {
        if (!update.docChanged) return;
        area.value = update.state.doc.toString();
        area.dispatchEvent(new Event("input", { bubbles: true }));
      }),
    ],
  });
  area.hidden = true;
  area.after(view.dom);
  view.dom.classList.add("code-editor");
  views.set(area, view);
}

function currentView() {
  const area = document.getElementById("source");
  return area ? views.get(area) : undefined;
}

// A click on a problem's line number in the list moves the cursor there.
document.addEventListener(
  "click",
  (e) => {
    const link = e.target.closest("[data-goto-line]");
    const view = currentView();
    if (!link || !view) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    const n = Math.min(parseInt(link.dataset.gotoLine, 10), view.state.doc.lines);
    const line = view.state.doc.line(n);
    view.dispatch({ selection: { anchor: line.from, head: line.to }, scrollIntoView: true });
    view.focus();
  },
  true,
);

attach(document.getElementById("source"));
document.addEventListener("htmx:load", (e) => {
  const root = e.detail && e.detail.elt;
  if (root && root.querySelector) attach(root.id === "source" ? root : root.querySelector("#source"));
});
