"""``einsum``: Einstein summation, with the backward of each operand written as one more einsum.

:func:`parse_einsum` turns an equation such as ``"bij,bjk->bik"``, ``"ij,jk"``
(implicit output) or ``"...ij->...ji"`` into one string of letters per
operand and one for the output, with each ``...`` replaced by letters the
equation does not use, so the op itself never sees an ellipsis.
"""
from __future__ import annotations

import string

from ..autograd import Function

_LETTERS = string.ascii_letters
_ELLIPSIS = "\0"  # a one-character stand-in for "..." while parsing


def _tokens(term, equation, where):
    """``term`` with "..." as one token; letters only, and at most one "..."."""
    chars = term.replace("...", _ELLIPSIS)
    for c in chars:
        if c != _ELLIPSIS and c not in _LETTERS:
            raise ValueError(
                f"einsum: invalid subscript {c!r} in {where} of {equation!r}: expected letters a-z, A-Z and "
                "at most one '...'"
            )
    if chars.count(_ELLIPSIS) > 1:
        raise ValueError(f"einsum: {where} of {equation!r} has more than one '...'")
    return chars


def parse_einsum(equation, shapes):
    """Check ``equation`` against the operands' ``shapes``; return ``(terms, output, sizes)``: the
    subscripts of each operand and of the output as letter strings ("..." expanded), and each letter's
    size (a dim of size 1 broadcasts against a larger one, as in PyTorch)."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a string such as 'ij,jk->ik', got {type(equation).__name__}")
    text = equation.replace(" ", "")
    lhs, arrow, rhs = text.partition("->")
    if "->" in rhs:
        raise ValueError(f"einsum: {equation!r} has more than one '->'")
    terms = [_tokens(t, equation, f"operand {i}") for i, t in enumerate(lhs.split(","))]
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum: {equation!r} gives subscripts for {len(terms)} operand(s), but {len(shapes)} tensor(s) were given"
        )
    extra = []  # how many dims each operand's "..." stands for
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        named = len(term) - term.count(_ELLIPSIS)
        if len(shape) < named or (_ELLIPSIS not in term and len(shape) != named):
            raise ValueError(
                f"einsum: operand {i} has {len(shape)} dimension(s) but its subscripts {lhs.split(',')[i]!r} "
                f"name {named}" + (" and '...'" if _ELLIPSIS in term else "")
            )
        extra.append(len(shape) - named)
    width = max(extra, default=0)
    free = [c for c in _LETTERS if c not in text]
    if len(free) < width:
        raise ValueError(f"einsum: {equation!r} needs more than the 52 available subscript letters")
    dots = "".join(free[:width])
    terms = [t.replace(_ELLIPSIS, dots[width - e :]) for t, e in zip(terms, extra)]
    if arrow:
        output = _tokens(rhs, equation, "the output")
        for c in output.replace(_ELLIPSIS, ""):
            if output.count(c) > 1:
                raise ValueError(f"einsum: output subscript {c!r} appears more than once in {equation!r}")
            if not any(c in t for t in terms):
                raise ValueError(f"einsum: output subscript {c!r} of {equation!r} appears in no operand")
        output = output.replace(_ELLIPSIS, dots)
    else:
        named = "".join(terms).translate({ord(c): None for c in dots})
        output = dots + "".join(sorted(c for c in set(named) if named.count(c) == 1))
    sizes = {}
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        own = {}
        for c, n in zip(term, shape):
            label = "'...'" if c in dots else repr(c)
            if own.setdefault(c, n) != n:
                raise ValueError(
                    f"einsum: subscript {label} is repeated in operand {i} with different sizes {own[c]} and {n}"
                )
            known = sizes.get(c, 1)
            if n != known and 1 not in (n, known):
                raise ValueError(
                    f"einsum: subscript {label} has size {known} in an earlier operand but {n} in operand {i} "
                    "(sizes must match, or one be 1 to broadcast)"
                )
            sizes[c] = max(known, n)
    return terms, output, sizes


class Einsum(Function):
    """Einstein summation over letter subscripts (``...`` already expanded by :func:`parse_einsum`).

    The gradient of operand i is an einsum of the output gradient with the other operands, out to
    operand i's letters; letters only operand i has (summed in the forward) are broadcast back, and a
    letter repeated in operand i (a diagonal) is written back on that diagonal.
    """

    def forward(self, *arrays, terms, output, sizes):
        self.terms, self.output, self.sizes = terms, output, sizes
        self.save_for_backward(*arrays)  # as given: a create_graph backward finds each one's tensor
        return self.xp.einsum(",".join(terms) + "->" + output, *self._broadcast(arrays), optimize=len(arrays) > 1)

    def _broadcast(self, arrays):
        """Each operand with its size-1 dims broadcast to the sizes of their letters (a view)."""
        sizes = self.sizes
        return tuple(
            a if all(n == sizes[c] for c, n in zip(t, a.shape)) else self.xp.broadcast_to(a, tuple(sizes[c] for c in t))
            for a, t in zip(arrays, self.terms)
        )

    def backward(self, g):
        operands = self._broadcast(self.saved)
        return tuple(
            self._operand_grad(g, i, operands) if link is not None else None for i, link in enumerate(self.next)
        )

    def _operand_grad(self, g, i, operands):
        xp = self.xp
        term, sizes = self.terms[i], self.sizes
        others = [(t, a) for j, (t, a) in enumerate(zip(self.terms, operands)) if j != i]
        letters = "".join(dict.fromkeys(term))  # each letter once, in order
        reachable = set(self.output).union(*(t for t, _ in others))
        target = "".join(c for c in letters if c in reachable)
        subscripts = ",".join([self.output] + [t for t, _ in others]) + "->" + target
        grad = xp.einsum(subscripts, g, *(a for _, a in others), optimize=len(others) > 0)
        if len(target) < len(letters):
            grad = grad.reshape([sizes[c] if c in target else 1 for c in letters])
            grad = xp.broadcast_to(grad, tuple(sizes[c] for c in letters))
        if len(letters) == len(term):
            return grad
        full = xp.zeros(tuple(sizes[c] for c in term), dtype=grad.dtype)
        position = {c: k for k, c in enumerate(letters)}
        diagonal = tuple(
            xp.arange(sizes[c]).reshape([-1 if k == position[c] else 1 for k in range(len(letters))]) for c in term
        )
        full[diagonal] = grad
        return full
