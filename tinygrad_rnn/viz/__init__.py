"""Graphs you can see: the autodiff graph of a computation, drawn with graphviz.

``draw_graph(output)`` draws every op clustered by module and time step;
``mode="folded"`` draws each recurrent layer once with its recurrence;
``show_grads=True`` shades the graph by gradient norm after ``backward()``.
The lecture's architectures, built from tiny real models and drawn with it,
are in ``tinygrad_rnn.lecture_graphs`` (``tinygrad-rnn graph KIND``).
``text_activations(text, values)`` colours each character of a text by a
hidden unit's activation (HTML and PNG), the lectures' interpretable cells.
``explore(output, record=...)`` is the graph as an interactive page (pan, zoom,
inspect, a backward stepper fed by ``record_backward()``).
"""
from .draw import draw_graph
from .explore import Explorer, explore, record_backward
from .text import TextActivations, text_activations

__all__ = ["draw_graph", "explore", "Explorer", "record_backward", "text_activations", "TextActivations"]
