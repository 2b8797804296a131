"""The explorer page's HTML, style and script (plain JavaScript, no library, nothing loaded from anywhere).

The script reads the node table from a ``<script type="application/json">``
element and shows every name and value with ``textContent`` only, so a
name such as ``<script>`` appears as text. The norm bars ``‖`` are set in
``BARS_FONTS`` (fonts that have U+2016): in Helvetica's stand-ins
(Liberation Sans, Arial) the glyph is two bars that read as the letters "ll".
"""
from __future__ import annotations

import html
import json

#: the fonts the page sets "‖" in, first found wins: DejaVu Sans (Linux), Cambria Math (Windows),
#: STIX Two Math (macOS): each draws it as a tall double bar reaching below the baseline
BARS_FONTS = '"DejaVu Sans","Cambria Math","STIX Two Math","Segoe UI Symbol",sans-serif'

STYLE = """
body{font-family:Helvetica,Arial,sans-serif;margin:0;color:#212529}
#tgx-bar{padding:6px 10px;border-bottom:1px solid #ced4da;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
#tgx-main{display:flex;height:calc(100vh - 48px);min-height:420px}
#tgx-graphs{flex:1;overflow:hidden;position:relative;cursor:grab;background:#fff}
.tgx-view svg{width:100%;height:100%}
.tgx-view{position:absolute;inset:0}
#tgx-side{width:330px;overflow:auto;border-left:1px solid #ced4da;padding:8px;font-size:13px}
#tgx-side table{border-collapse:collapse}#tgx-side td{padding:1px 6px 1px 0;vertical-align:top}
#tgx-note{background:#fff3cd;border:1px solid #8a6d00;color:#8a6d00;padding:6px;margin:6px 0}
g.node{cursor:pointer}
g.node.tgx-lit polygon,g.node.tgx-lit ellipse,g.node.tgx-lit path{stroke:#c92a2a;stroke-width:2.5}
g.node.tgx-current polygon,g.node.tgx-current ellipse,g.node.tgx-current path{stroke:#1c7ed6;stroke-width:4}
g.node.tgx-selected polygon,g.node.tgx-selected ellipse{stroke-dasharray:4 2}
#tgx-chart{border:1px solid #dee2e6;background:#fff}
.tgx-bars{font-family:""" + BARS_FONTS + """}
.tgx-about{color:#495057;font-style:italic}
"""

SCRIPT = r"""
(function(){
"use strict";
var data = JSON.parse(document.getElementById("tgx-data").textContent);
var mode = data.mode, step = 0, selected = null;
var views = {unrolled: document.getElementById("tgx-unrolled"), folded: document.getElementById("tgx-folded")};
var nsteps = data.steps ? data.steps.length : 0;
function el(tag, text){ var e = document.createElement(tag); if(text !== undefined) e.textContent = String(text); return e; }
function bars(parent, s, tag){
  // "‖" in a font that draws it as a norm's double bar (the page's own font draws it as "ll")
  String(s).split("\u2016").forEach(function(part, i){
    if (i) { var b = tag === "tspan" ? document.createElementNS("http://www.w3.org/2000/svg", "tspan") : el("span");
      b.setAttribute("class", "tgx-bars"); b.textContent = "\u2016"; parent.appendChild(b); }
    if (part) parent.appendChild(document.createTextNode(part)); });
  return parent;
}
function fmt(x){ return x === null || x === undefined ? "n/a" : (typeof x === "number" && !Number.isInteger(x) ? x.toPrecision(4) : String(x)); }
function nodeGroups(view){ return views[view].querySelectorAll("g.node"); }
function nodeId(g){ var t = g.querySelector("title"); return t ? t.textContent : null; }
function info(view, id){ return data.views[view].nodes[id] || null; }
function show(view){
  mode = view;
  for (var v in views) views[v].style.display = (v === view) ? "block" : "none";
  document.getElementById("tgx-mode").value = view;
  document.body.setAttribute("data-mode", view);
  render();
}
function statsRows(table, label, s){
  var tr = el("tr"); tr.appendChild(el("td", label));
  var td = el("td");
  if (!s) td.textContent = "not kept";
  else {
    td.textContent = "min " + fmt(s.min) + ", max " + fmt(s.max) + ", mean " + fmt(s.mean) + ", norm " + fmt(s.norm);
    if (s.values) { var v = el("div", "[" + s.values.map(fmt).join(", ") + "]"); v.className = "tgx-values"; td.appendChild(v); }
  }
  tr.appendChild(td); table.appendChild(tr);
}
function inspect(id){
  selected = id;
  var side = document.getElementById("tgx-inspect"); side.textContent = "";
  var n = info(mode, id);
  if (!n) { side.appendChild(el("p", "no details for this node")); return; }
  side.appendChild(el("h3", n.title));
  var table = el("table"); table.id = "tgx-fields";
  var rows = [["kind", n.kind + " (" + n.role + ")"], ["op", n.op], ["shape", n.shape === null ? null : JSON.stringify(n.shape)],
              ["dtype", n.dtype], ["device", n.device], ["module", n.module || "(top level)"], ["time step", n.step],
              ["‖grad‖ (recorded)", n.norm], ["backward step", n.lit === null ? null : n.lit + 1]];
  rows.forEach(function(r){ var tr = el("tr"); tr.appendChild(bars(el("td"), r[0])); var td = el("td", fmt(r[1]));
    td.className = "tgx-" + r[0].replace(/[^a-z]/g, ""); tr.appendChild(td); table.appendChild(tr); });
  statsRows(table, "value", n.value); statsRows(table, "gradient", n.grad);
  side.appendChild(table);
  if (n.about) { var about = el("p", n.about); about.className = "tgx-about"; side.appendChild(about); }
  render();
}
function render(){
  var groups = nodeGroups(mode), norms = [];
  var lit = [], current = nsteps && step > 0 ? step - 1 : -1;
  groups.forEach(function(g){ var n = info(mode, nodeId(g)); if (n && n.lit !== null && n.lit < step && n.norm) norms.push(Math.log10(n.norm)); });
  var lo = Math.min.apply(null, norms.concat([0])), hi = Math.max.apply(null, norms.concat([0]));
  groups.forEach(function(g){
    var id = nodeId(g), n = info(mode, id);
    g.classList.remove("tgx-lit", "tgx-current", "tgx-selected");
    var shape = g.querySelector("polygon,ellipse");
    if (shape && !shape.hasAttribute("data-fill")) shape.setAttribute("data-fill", shape.getAttribute("fill") || "none");
    if (shape) shape.setAttribute("fill", shape.getAttribute("data-fill"));
    if (id === selected) g.classList.add("tgx-selected");
    if (!n || n.lit === null || n.lit >= step) return;
    if (n.current) { if (n.lit === current) g.classList.add("tgx-current"); return; }
    g.classList.add("tgx-lit"); lit.push(id);
    if (shape && n.norm) { var f = hi > lo ? (Math.log10(n.norm) - lo) / (hi - lo) : 1;
      shape.setAttribute("fill", "rgb(255," + Math.round(235 - 150 * f) + "," + Math.round(235 - 200 * f) + ")"); }
  });
  document.body.setAttribute("data-lit", lit.join(" "));
  var label = document.getElementById("tgx-steplabel");
  if (!nsteps) label.textContent = "";
  else label.textContent = "step " + step + " / " + nsteps + (step > 0 ? ": " + data.steps[step - 1].op + ".backward" : ": before backward");
  document.getElementById("tgx-slider").value = step;
  chart();
}
function chart(){
  var svg = document.getElementById("tgx-chart"); while (svg.firstChild) svg.removeChild(svg.firstChild);
  var ns = "http://www.w3.org/2000/svg", pts = {}, any = false;
  var all = data.views.unrolled.nodes;
  for (var id in all) { var n = all[id]; if (n.role === "hidden" && n.step !== null && n.norm && n.lit !== null) {
    any = true; if (n.lit < step) pts[n.step] = Math.sqrt((pts[n.step] || 0) * (pts[n.step] || 0) + n.norm * n.norm); } }
  function text(x, y, s){ var t = document.createElementNS(ns, "text"); t.setAttribute("x", x); t.setAttribute("y", y);
    t.setAttribute("font-size", "10"); svg.appendChild(bars(t, s, "tspan")); return t; }
  text(4, 12, any ? "‖∂L/∂h_t‖ against t (log)" : "no hidden states h_t with a recorded gradient").id = "tgx-charttitle";
  var ts = Object.keys(pts).map(Number).sort(function(a, b){ return a - b; });
  var maxT = 0; for (var id2 in all) { var m = all[id2]; if (m.role === "hidden" && m.step !== null) maxT = Math.max(maxT, m.step); }
  var vals = ts.map(function(t){ return Math.log10(pts[t]); });
  var lo = Math.min.apply(null, vals.concat([0])), hi = Math.max.apply(null, vals.concat([lo + 1]));
  var W = 300, H = 150, x0 = 30, y0 = 130;
  ts.forEach(function(t, i){ var c = document.createElementNS(ns, "circle");
    c.setAttribute("cx", x0 + (maxT ? t / maxT : 0.5) * (W - x0 - 10)); c.setAttribute("cy", y0 - (vals[i] - lo) / (hi - lo) * 100);
    c.setAttribute("r", 3); c.setAttribute("fill", "#c92a2a"); c.setAttribute("class", "tgx-point");
    c.setAttribute("data-t", t); svg.appendChild(c); });
  text(x0, 146, "t=0"); text(W - 40, 146, "t=" + maxT);
}
function go(k){ step = Math.max(0, Math.min(nsteps, k)); render(); }
document.getElementById("tgx-mode").addEventListener("change", function(e){ show(e.target.value); });
document.getElementById("tgx-prev").addEventListener("click", function(){ go(step - 1); });
document.getElementById("tgx-next").addEventListener("click", function(){ go(step + 1); });
document.getElementById("tgx-slider").addEventListener("input", function(e){ go(parseInt(e.target.value, 10)); });
document.addEventListener("keydown", function(e){
  if (e.key === "ArrowRight") { go(step + 1); e.preventDefault(); } else if (e.key === "ArrowLeft") { go(step - 1); e.preventDefault(); } });
var slider = document.getElementById("tgx-slider"); slider.max = nsteps;
if (!nsteps) { document.getElementById("tgx-stepper").style.display = "none";
  var note = document.getElementById("tgx-note"); note.textContent = data.note; note.style.display = "block"; }
for (var v in views) (function(view){
  var svg = views[view].querySelector("svg"); if (!svg) return;
  svg.removeAttribute("width"); svg.removeAttribute("height");
  var box = svg.viewBox.baseVal, drag = null;
  nodeGroups(view).forEach(function(g){ g.addEventListener("click", function(e){ inspect(nodeId(g)); e.stopPropagation(); }); });
  svg.addEventListener("wheel", function(e){ e.preventDefault(); var r = svg.getBoundingClientRect();
    var s = e.deltaY < 0 ? 0.85 : 1 / 0.85, px = box.x + (e.clientX - r.left) / r.width * box.width, py = box.y + (e.clientY - r.top) / r.height * box.height;
    box.x = px - (px - box.x) * s; box.y = py - (py - box.y) * s; box.width *= s; box.height *= s; });
  svg.addEventListener("mousedown", function(e){ drag = [e.clientX, e.clientY]; });
  window.addEventListener("mouseup", function(){ drag = null; });
  svg.addEventListener("mousemove", function(e){ if (!drag) return; var r = svg.getBoundingClientRect();
    box.x -= (e.clientX - drag[0]) / r.width * box.width; box.y -= (e.clientY - drag[1]) / r.height * box.height; drag = [e.clientX, e.clientY]; });
})(v);
show(mode);
})();
"""


def dumps_for_script(data) -> str:
    """``data`` as JSON that is safe inside a ``<script>`` element (no ``</``, ``<!--`` or ``&`` can end it)."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_html(title, svg_unrolled, svg_folded, data) -> str:
    """The whole page: both drawings inline, the node table as escaped JSON, the style and the script."""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html.escape(title) + "</title>"
        "<style>" + STYLE + "</style></head><body>"
        "<div id=\"tgx-bar\"><label>view <select id=\"tgx-mode\"><option value=\"unrolled\">unrolled</option>"
        "<option value=\"folded\">folded</option></select></label>"
        "<span id=\"tgx-stepper\">backward: <button id=\"tgx-prev\">&#9664;</button>"
        "<input type=\"range\" id=\"tgx-slider\" min=\"0\" max=\"0\" value=\"0\">"
        "<button id=\"tgx-next\">&#9654;</button> <span id=\"tgx-steplabel\"></span></span></div>"
        "<div id=\"tgx-main\"><div id=\"tgx-graphs\">"
        "<div class=\"tgx-view\" id=\"tgx-unrolled\">" + svg_unrolled + "</div>"
        "<div class=\"tgx-view\" id=\"tgx-folded\" style=\"display:none\">" + svg_folded + "</div></div>"
        "<div id=\"tgx-side\"><div id=\"tgx-note\" style=\"display:none\"></div>"
        "<svg id=\"tgx-chart\" width=\"300\" height=\"150\"></svg>"
        "<div id=\"tgx-inspect\"><p>Click a node to inspect it. Drag to pan, wheel to zoom; "
        "arrow keys step the backward pass.</p></div></div></div>"
        "<script type=\"application/json\" id=\"tgx-data\">" + dumps_for_script(data) + "</script>"
        "<script>" + SCRIPT + "</script></body></html>\n"
    )


__all__ = ["page_html", "dumps_for_script", "STYLE", "SCRIPT", "BARS_FONTS"]
