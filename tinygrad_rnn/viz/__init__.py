"""Graphs you can see: the autodiff graph of a computation, drawn with graphviz.

``draw_graph(output)`` draws every op clustered by module and time step;
``mode="folded"`` draws each recurrent layer once with its recurrence;
``show_grads=True`` shades the graph by gradient norm after ``backward()``;
``build_lecture_graph(kind)`` draws the lecture's architectures from tiny real models.
"""
from .draw import draw_graph
from .lecture_graphs import build_lecture_graph

__all__ = ["draw_graph", "build_lecture_graph"]
