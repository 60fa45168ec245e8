"""A dialog's flow as a diagram: every node, branch and exit, drawn by Graphviz (Debian's
``dot``), for the admin's editor.

``to_dot`` is pure (sans-IO): the main flow and each sub-dialog as a cluster; an edge per
way a node can go on (``ivr_dialogs.validator.edges``), labelled with the key or phrase
that takes it; retries' fallbacks dashed and lookup errors red; the exits (queue,
transfer, voicemail, callback, hangup) as filled end nodes. ``render_svg`` runs ``dot``
with a time limit. Labels are quoted for DOT here, and Graphviz escapes them for SVG.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from typing import Any

from ivr_dialogs.loader import Dialog
from ivr_dialogs.schema import TERMINAL_TYPES, MenuNode
from ivr_dialogs.validator import edges

DOT_SECONDS = 10.0
_SHAPES = {
    "menu": "box",
    "ask": "parallelogram",
    "survey": "parallelogram",
    "lookup": "cylinder",
    "branch": "diamond",
    "say": "note",
    "subdialog": "component",
    "return": "invhouse",
}


class DiagramUnavailable(RuntimeError):
    """Graphviz is not installed, or could not draw this dialog."""


def _q(text: str) -> str:
    """A DOT quoted string (the label's own quotes and backslashes escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _q_lines(*lines: str) -> str:
    """A DOT quoted label of several lines (each line quoted as ``_q`` does)."""
    return '"' + "\\n".join(_q(line)[1:-1] for line in lines if line) + '"'


def _edge_label(node: Any, path: tuple[str, ...], target: str) -> str:
    if isinstance(node, MenuNode) and path[0] == "options":
        option = node.options[int(path[1])]
        phrases = option.phrases if isinstance(option.phrases, list) else []
        words = phrases[0] if phrases else ""
        return " ".join(part for part in (option.digit or "", words) if part)
    if path[0] in ("no_input", "no_match", "on_error", "else"):
        return path[0].replace("_", " ")
    if path[0] == "cases":
        return f"case {int(path[1]) + 1}"
    return ""


def to_dot(dialog: Dialog, notes: Mapping[str, str] | None = None) -> str:
    """The DOT text; ``notes`` adds a line under a node's name, keyed ``flow.node``
    (e.g. its self-service figures, ``hub.dialog_figures``)."""
    notes = notes or {}
    lines = [
        "digraph dialog {",
        '  graph [rankdir=TB, fontname="sans-serif", fontsize=10];',
        '  node [fontname="sans-serif", fontsize=10];',
        '  edge [fontname="sans-serif", fontsize=9];',
    ]
    for flow_name, flow in dialog.flows.items():
        indent = "  "
        if flow_name != "main":
            lines.append(f"  subgraph {_q('cluster_' + flow_name)} {{")
            lines.append(f"    label={_q('sub-dialog ' + flow_name)}; style=dashed;")
            indent = "    "
        for node_id, node in flow.nodes.items():
            name = _q(f"{flow_name}.{node_id}")
            title = f"{node_id} ({node.type})"
            if node.type in TERMINAL_TYPES:
                extra = 'shape=oval, style=filled, fillcolor="#e3f2e1"'
                if node.type == "queue":
                    title = f"{node_id}: queue {getattr(node, 'queue', '')}"
            else:
                extra = f"shape={_SHAPES.get(node.type, 'box')}"
            label = _q_lines(title, notes.get(f"{flow_name}.{node_id}", ""))
            if node_id == flow.start:
                extra += ", penwidth=2"
            lines.append(f"{indent}{name} [label={label}, {extra}];")
        if flow_name != "main":
            lines.append("  }")
    for flow_name, flow in dialog.flows.items():
        for node_id, node in flow.nodes.items():
            for path, target, _sets in edges(node, node_id):
                if target not in flow.nodes:
                    continue  # the validator reports it; the diagram draws what exists
                style = []
                label = _edge_label(node, path, target)
                if label:
                    style.append(f"label={_q(label)}")
                if path[0] in ("no_input", "no_match"):
                    style.append("style=dashed")
                if path[0] == "on_error":
                    style.append('color="#b42318"')
                attrs = f" [{', '.join(style)}]" if style else ""
                lines.append(
                    f"  {_q(f'{flow_name}.{node_id}')} -> {_q(f'{flow_name}.{target}')}{attrs};"
                )
            if node.type == "subdialog" and getattr(node, "dialog", "") in dialog.flows:
                sub = dialog.flows[node.dialog]
                lines.append(
                    f"  {_q(f'{flow_name}.{node_id}')} -> {_q(f'{sub.name}.{sub.start}')}"
                    ' [style=dotted, label="calls"];'
                )
    lines.append(f"  start [shape=point]; start -> {_q('main.' + dialog.main.start)};")
    lines.append("}")
    return "\n".join(lines)


async def render_svg(dialog: Dialog, notes: Mapping[str, str] | None = None) -> str:
    """The diagram as inline SVG (the ``<svg>`` element only)."""
    dot = shutil.which("dot")
    if dot is None:
        raise DiagramUnavailable("Graphviz is not installed (Debian package graphviz).")
    process = await asyncio.create_subprocess_exec(
        dot,
        "-Tsvg",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            process.communicate(to_dot(dialog, notes).encode()), DOT_SECONDS
        )
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise DiagramUnavailable("Graphviz took too long to draw this dialog.") from exc
    if process.returncode != 0:
        raise DiagramUnavailable(
            f"Graphviz could not draw it: {err.decode(errors='replace')[:200]}"
        )
    svg = out.decode()
    return svg[svg.find("<svg") :]
