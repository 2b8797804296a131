"""Colours and shapes that mean something, the gradient colour scale, and the legend.

Every node has a *role*; the role decides its fill and border colour, so a
reader can tell parameters, inputs, outputs, the loss, recurrent state and
ops apart at a glance. With ``show_grads=True`` the fill instead encodes the
gradient norm on a log scale (pale = small, dark red = large) and the border
keeps the role's colour.
"""
from __future__ import annotations

import html

#: role -> (fill, border, what the legend says)
ROLES = {
    "parameter": ("#cfe2ff", "#3d6bb3", "parameter"),
    "input": ("#e9ecef", "#6c757d", "input / constant"),
    "output": ("#c7f0d2", "#2f8f4e", "output"),
    "loss": ("#f8c9c4", "#b3261e", "loss"),
    "hidden": ("#fff0b3", "#b38f00", "hidden state h"),
    "cell": ("#ffd8a8", "#c66a00", "cell state c"),
    "tensor": ("#ffffff", "#868e96", "named tensor"),
    "op": ("#f8f9fa", "#495057", "op"),
    "fused": ("#e5d4f7", "#6f42c1", "fused cell"),
    "gate": ("#f3ecfc", "#6f42c1", "gate (inside a fused cell)"),
    "block": ("#d3f9d8", "#2b8a3e", "module call (attention), one node"),
    "summary": ("#ffffff", "#868e96", "collapsed time steps"),
}
LEGEND_ORDER = ("parameter", "input", "output", "loss", "hidden", "cell", "tensor", "op", "fused", "gate", "block",
                "summary")

#: node kind -> graphviz shape and style
SHAPES = {
    "tensor": ("box", "filled"),
    "op": ("box", "rounded,filled"),
    "fused": ("box", "rounded,filled,bold"),
    "gate": ("box", "rounded,filled"),
    "block": ("box", "rounded,filled,bold"),
    "summary": ("box", "dashed,filled"),
}

EDGE_COLOR = "#495057"
PARAM_EDGE_COLOR = "#9aa7b8"
RECURRENT_EDGE_COLOR = "#d9480f"
MODULE_CLUSTER_COLOR = "#5c6bc0"
STEP_CLUSTER_COLOR = "#adb5bd"
FONT = "Helvetica"

#: ColorBrewer's sequential "OrRd" scale: pale for small gradients, dark red for large ones
GRAD_RAMP = ("#fff7ec", "#fee8c8", "#fdd49e", "#fdbb84", "#fc8d59", "#ef6548", "#d7301f", "#b30000", "#7f0000")
NOT_KEPT_FILL = "#f1f3f5"


def ramp_color(t: float) -> str:
    """The colour at position ``t`` in [0, 1] of the gradient scale (linear between its stops)."""
    t = min(max(t, 0.0), 1.0) * (len(GRAD_RAMP) - 1)
    i = min(int(t), len(GRAD_RAMP) - 2)
    frac = t - i
    a, b = _rgb(GRAD_RAMP[i]), _rgb(GRAD_RAMP[i + 1])
    return "#" + "".join(f"{round(x + (y - x) * frac):02x}" for x, y in zip(a, b))


def text_color_on(t: float) -> str:
    """Black text on pale fills, white on dark ones."""
    return "#ffffff" if t > 0.62 else "#000000"


def _rgb(color: str):
    return tuple(int(color[k : k + 2], 16) for k in (1, 3, 5))


def legend_label(roles, grad_range=None) -> str:
    """An HTML-like table: one coloured row per role present, plus the gradient scale when shown."""
    rows = ['<tr><td colspan="2"><b>legend</b></td></tr>']
    for role in LEGEND_ORDER:
        if role not in roles:
            continue
        fill, border, text = ROLES[role]
        rows.append(
            f'<tr><td bgcolor="{fill}" color="{border}" width="18"> </td>'
            f'<td align="left">{html.escape(text)}</td></tr>'
        )
    if roles & {"hidden", "cell"}:
        rows.append(
            f'<tr><td><font color="{RECURRENT_EDGE_COLOR}">→</font></td>'
            '<td align="left">recurrent edge / state</td></tr>'
        )
    if grad_range is not None:
        low, high = grad_range
        cells = "".join(f'<td bgcolor="{ramp_color(k / 4)}" width="14"> </td>' for k in range(5))
        rows.append(
            f'<tr><td colspan="2"><table border="0" cellspacing="0" cellborder="1"><tr>{cells}</tr></table></td></tr>'
        )
        rows.append(f'<tr><td colspan="2">‖grad‖ {low:.1e} … {high:.1e} (log scale)</td></tr>')
    body = "".join(rows)
    return f'<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">{body}</table>>'
