"""Run the CuPy ElementwiseKernels of ``backends/rnn_kernels_cupy.py`` on the CPU, compiled as C++.

The fused RNN ops' CUDA kernels are plain C bodies handed to
``cupy.ElementwiseKernel``. Without a GPU they would never be compiled or run,
so a typo in a body, a swapped argument or a wrong index would only show on
the first GPU. :func:`emulated_cupy` returns a stand-in for the ``cupy`` module
whose ``ElementwiseKernel`` compiles the same body with the system C++
compiler (``T`` becomes ``double`` or ``float``, ``__device__`` is dropped)
and calls it from NumPy with CuPy's calling convention:

* arguments are the input parameters, then the output parameters, in order;
* non-``raw`` arrays are broadcast to one shape and seen element by element
  (the body reads and assigns them by name); ``i`` is the element index;
* ``raw`` arrays are passed whole and indexed by hand, in C order;
* ``T`` is the dtype of the first array argument declared ``T``; every other
  ``T`` array must have that dtype, as CuPy would refuse a mismatch.

Everything else on the module (``zeros``, ``empty`` ...) is the wrapped array
module's (NumPy, or the ``hostless`` test backend's). Tests use it to run
``CupyPointwise`` — and through it the whole fused sequence ops — on the CPU
against the NumPy reference and finite differences; the ``hostless`` test
backend runs every fused RNN op of the suite through it.
"""
from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CTYPES = {"int32": ctypes.c_int}
_C_TYPES = {"int32": "int"}
_VARIANTS = {np.dtype(np.float64): ("double", "f64"), np.dtype(np.float32): ("float", "f32")}


def compiler() -> str | None:
    """The C++ compiler the emulator uses, or None when there is none."""
    return shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


@dataclass(frozen=True)
class _Param:
    raw: bool
    type: str
    name: str
    output: bool


def _parse(params: str, output: bool) -> list[_Param]:
    parsed = []
    for item in params.split(","):
        words = item.split()
        raw = words[0] == "raw"
        type_, name = words[-2], words[-1]
        parsed.append(_Param(raw, type_, name, output))
    return parsed


def _cpp_source(name: str, params: list[_Param], body: str, preamble: str) -> str:
    def c_type(p):
        return "T" if p.type == "T" else _C_TYPES[p.type]

    signature = ["long n"]
    element_views = []
    for p in params:
        if p.type != "T" and not p.raw:
            signature.append(f"{c_type(p)} {p.name}")  # a scalar, the same for every element
        elif p.raw:
            signature.append(f"T* {p.name}")
        else:
            signature.append(f"T* {p.name}_ptr")
            ref = "T&" if p.output else "const T"
            element_views.append(f"{ref} {p.name} = {p.name}_ptr[i];")
    args = ", ".join(p.name if (p.raw or p.type != "T") else f"{p.name}_ptr" for p in params)
    wrappers = []
    for c_name, suffix in _VARIANTS.values():
        typed = ", ".join(s.replace("T*", f"{c_name}*") for s in signature)
        wrappers.append(f'extern "C" void {name}_{suffix}({typed}) {{ {name}_body<{c_name}>(n, {args}); }}')
    return "\n".join([
        f"template <typename T> static void {name}_body({', '.join(signature)}) {{",
        "  for (long i = 0; i < n; ++i) {",
        *("    " + line for line in element_views),
        "    {", body, "    }",
        "  }",
        "}",
        *wrappers,
    ])


class _Library:
    """All kernels created so far, compiled together into one shared library (rebuilt when one is added)."""

    def __init__(self):
        self.sources: dict[str, str] = {}
        self.preambles: list[str] = []
        self.handle = None
        self.directory = Path(tempfile.mkdtemp(prefix="tinygrad_rnn_kernels_"))

    def add(self, name, source, preamble):
        if preamble not in self.preambles:
            self.preambles.append(preamble)
        self.sources[name] = source
        self.handle = None

    def function(self, symbol):
        if self.handle is None:
            self.handle = ctypes.CDLL(str(self._compile()))
        return getattr(self.handle, symbol)

    def _compile(self) -> Path:
        text = "\n".join(["#include <cmath>", "using std::tanh;", "#define __device__", *self.preambles,
                          *self.sources.values()])
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        library = self.directory / f"kernels_{digest}.so"
        if not library.exists():
            source = self.directory / f"kernels_{digest}.cpp"
            source.write_text(text)
            cxx = compiler()
            if cxx is None:
                raise RuntimeError("no C++ compiler (c++, g++ or clang++) to emulate the CUDA kernels with")
            result = subprocess.run([cxx, "-O1", "-std=c++14", "-shared", "-fPIC", "-o", str(library), str(source)],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"the CUDA kernel bodies do not compile as C++:\n{result.stderr}")
        return library


class EmulatedElementwiseKernel:
    """``cupy.ElementwiseKernel(in_params, out_params, operation, name, preamble=...)`` on NumPy arrays."""

    def __init__(self, library, in_params, out_params, operation, name="kernel", preamble=""):
        self.library = library
        self.name = name
        self.params = _parse(in_params, False) + _parse(out_params, True)
        library.add(name, _cpp_source(name, self.params, operation, preamble), preamble)

    def __call__(self, *args):
        name = self.name
        if len(args) != len(self.params):
            raise TypeError(f"{name}: expected {len(self.params)} arguments (inputs then outputs), got {len(args)}")
        typed = [a for p, a in zip(self.params, args) if p.type == "T" and isinstance(a, np.ndarray)]
        dtype = typed[0].dtype
        if dtype not in _VARIANTS:
            raise TypeError(f"{name}: T must be float32 or float64, got {dtype}")
        for p, a in zip(self.params, args):
            if p.type == "T" and (not isinstance(a, np.ndarray) or a.dtype != dtype):
                raise TypeError(f"{name}: {p.name} must be a {dtype} array (T), got {getattr(a, 'dtype', type(a))}")
        shape = np.broadcast_shapes(*(a.shape for p, a in zip(self.params, args) if p.type == "T" and not p.raw))
        n = int(np.prod(shape))
        c_args, write_back = [ctypes.c_long(n)], []
        for p, a in zip(self.params, args):
            if p.type != "T":
                c_args.append(_CTYPES[p.type](int(a)))
                continue
            if p.raw:
                buffer = np.ascontiguousarray(a).copy()
            elif p.output:
                if a.shape != shape:
                    raise ValueError(f"{name}: output {p.name} has shape {a.shape}, the elements have shape {shape}")
                buffer = np.ascontiguousarray(a).copy()
            else:
                buffer = np.ascontiguousarray(np.broadcast_to(a, shape))
            if p.output:
                write_back.append((a, buffer))
            c_args.append(buffer.ctypes.data_as(ctypes.c_void_p))
        function = self.library.function(f"{name}_{_VARIANTS[dtype][1]}")
        function.restype = None
        function(*c_args)
        for target, buffer in write_back:
            target[...] = buffer.reshape(target.shape)


class _EmulatedCupy:
    """The array module ``xp`` (NumPy, or a test backend's), with CuPy's ``ElementwiseKernel`` added."""

    def __init__(self, xp):
        self._xp = xp
        self._library = _Library()

    def ElementwiseKernel(self, *args, **kwargs):  # noqa: N802 (CuPy's name)
        return EmulatedElementwiseKernel(self._library, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._xp, name)


def emulated_cupy(xp=np):
    """A stand-in ``cupy`` module: ``xp``'s functions, with ``ElementwiseKernel`` compiled for the CPU."""
    return _EmulatedCupy(xp)
