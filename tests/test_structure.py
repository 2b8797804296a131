"""Structural rules of the code base, checked from the source tree.

1. No import circle among the modules of ``tinygrad_rnn`` nor among those of ``benchmarks``.
2. Every module of both imports on its own, in a fresh interpreter.
3. No file of the package is longer than ``MAX_LINES`` lines.
4. Every ``autograd.Function`` subclass with its own ``backward`` lives under ``tinygrad_rnn/ops/``.
5. ``examples/`` and ``tinygrad_rnn/nn/`` touch no underscore attribute of Tensor or of a
   backend, nor a backend's raw array module ``xp``.

Rules 1, 3 and 4 read the files with ``ast`` (they do not need the code to import); the checkers
are plain functions, each tested at the end of this file on a small synthetic tree.
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "tinygrad_rnn"
TREES = (PACKAGE, "benchmarks")  # top-level packages whose modules rules 1 and 2 check
OPS_DIR = REPO / PACKAGE / "ops"
MAX_LINES = 600
IMPORT_TIMEOUT_S = 120


# ---------------------------------------------------------------------------------------------- files


def python_files(directory: Path) -> list[Path]:
    """All ``.py`` files under ``directory``, sorted, without ``__pycache__``."""
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)


def module_files(root: Path, top: str) -> dict[str, Path]:
    """Map each module name of the tree ``root/top`` (e.g. ``tinygrad_rnn.nn.rnn``) to its file;
    a package's name maps to its ``__init__.py``."""
    modules = {}
    for path in python_files(root / top):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if all(part.isidentifier() for part in parts):
            modules[".".join(parts)] = path
    return modules


def fail_listing(header: str, lines) -> None:
    """Fail with ``header`` and one line per offender (no traceback or repr noise: it is a to-do list)."""
    lines = list(lines)
    if lines:
        pytest.fail(f"{header}:\n" + "\n".join(f"  {line}" for line in lines), pytrace=False)


def rel(path: Path, root: Path = REPO) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def parse(path: Path) -> tuple[ast.Module, str]:
    source = path.read_text(encoding="utf-8")
    return ast.parse(source, filename=str(path)), source


# --------------------------------------------------------------------------------- rule 1: import graph


def _resolve(dotted: str, modules: dict) -> str | None:
    """The module of the tree that ``import dotted`` names: the longest prefix that is a module."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in modules:
            return name
    return None


def imported_modules(name: str, path: Path, modules: dict) -> list[tuple[str, int]]:
    """``(target module, line)`` for every import in the file (at any depth: top level, functions,
    classes) whose target is a module of the tree. ``from PKG import NAME`` goes to ``PKG.NAME`` when
    that is a submodule, else to ``PKG`` (its ``__init__``). The implicit import of a submodule's
    parent packages is not an edge."""
    tree, _ = parse(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            edges += [(_resolve(alias.name, modules), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                if node.level - 1 > len(base_parts):
                    continue  # beyond the top-level package: not ours
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in modules else _resolve(base, modules)
                edges.append((target, node.lineno))
    return [(target, line) for target, line in edges if target is not None and target != name]


def import_graph(root: Path, top: str) -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    """The tree's import graph (module -> modules it imports) and where each edge is written."""
    modules = module_files(root, top)
    graph = {name: set() for name in modules}
    sites = {}
    for name, path in modules.items():
        for target, line in imported_modules(name, path, modules):
            graph[name].add(target)
            sites.setdefault((name, target), f"{rel(path, root)}:{line}")
    return graph, sites


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm with an explicit stack (no recursion, so any depth of graph works)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        work.append((node, iter(sorted(graph.get(node, ())))))

    for root in sorted(graph):
        if root in index:
            continue
        work = []
        visit(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    visit(child)
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:  # all children done
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def _shortest_path(graph, start, goal, allowed) -> list[str]:
    """Breadth-first shortest path ``start .. goal`` through the nodes in ``allowed``."""
    previous = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = []
            while node is not None:
                path.append(node)
                node = previous[node]
            return path[::-1]
        for child in sorted(graph.get(node, ())):
            if child in allowed and child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError(f"no path {start} -> {goal} inside its component")  # cannot happen in an SCC


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import circles, each as ``[a, b, ..., a]``, starting at its smallest name. Every edge that lies
    on some circle is on at least one listed circle (the shortest one through it), so breaking all the
    listed circles breaks every circle."""
    cycles, covered = [], set()
    for component in strongly_connected_components(graph):
        members = set(component)
        for source in component:
            for target in sorted(graph.get(source, ())):
                if target not in members or (source, target) in covered:
                    continue
                ring = [source] + _shortest_path(graph, target, source, members)[:-1]
                start = ring.index(min(ring))
                ring = ring[start:] + ring[:start]
                covered.update(zip(ring, ring[1:] + ring[:1]))
                cycles.append(ring + ring[:1])
    return sorted(cycles)


def describe_cycles(cycles, sites) -> list[str]:
    """``a -> b -> a`` per circle, each followed by where its imports are written."""
    lines = []
    for cycle in cycles:
        lines.append(" -> ".join(cycle))
        lines += [f"    {a} imports {b} at {sites[a, b]}" for a, b in zip(cycle, cycle[1:])]
    return lines


@pytest.mark.parametrize("top", TREES)
def test_no_import_cycles(top):
    graph, sites = import_graph(REPO, top)
    cycles = find_cycles(graph)
    fail_listing(f"{len(cycles)} import circle(s) among the modules of {top}/", describe_cycles(cycles, sites))


# ------------------------------------------------------------------------ rule 2: each module imports alone

MISSING_MODULE = re.compile(r"^ModuleNotFoundError: No module named '([^']+)'")


def import_alone(module: str, root: Path = REPO) -> subprocess.CompletedProcess:
    """``python -c "import MODULE"`` in a fresh interpreter, from ``root``, with ``root`` on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=root, env=env, capture_output=True, text=True, timeout=IMPORT_TIMEOUT_S,
    )


def missing_optional_dependency(stderr: str, own_tops=TREES) -> str | None:
    """The name of the missing module when the import ended in ``ModuleNotFoundError`` for a module
    outside our own trees (an optional dependency such as ``cupy``), else None."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    match = MISSING_MODULE.match(lines[-1]) if lines else None
    if match and match.group(1).split(".")[0] not in own_tops:
        return match.group(1)
    return None


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


ALL_MODULES = sorted(name for top in TREES for name in module_files(REPO, top))


@pytest.fixture(scope="module")
def import_runs(request):
    """One future per module selected in this session, run two at a time (the CI machine has 2 cores);
    each parametrized case waits only for its own module."""
    selected = [
        item.callspec.params["module"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_module_imports_alone" and hasattr(item, "callspec")
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {module: pool.submit(import_alone, module) for module in selected or ALL_MODULES}


@pytest.mark.parametrize("module", ALL_MODULES)
def test_module_imports_alone(module, import_runs):
    result = import_runs[module].result() if module in import_runs else import_alone(module)
    if result.returncode == 0:
        return
    missing = missing_optional_dependency(result.stderr)
    if missing:
        pytest.skip(f"{module} needs the optional dependency {missing!r}, which is not installed")
    pytest.fail(f"`import {module}` fails in a fresh interpreter:\n{tail(result.stderr)}", pytrace=False)


# --------------------------------------------------------------------------------- rule 3: file length


def long_files(files, max_lines: int = MAX_LINES) -> list[tuple[Path, int]]:
    counts = ((path, len(path.read_text(encoding="utf-8").splitlines())) for path in files)
    return [(path, count) for path, count in counts if count > max_lines]


def test_no_package_file_is_too_long():
    offenders = long_files(python_files(REPO / PACKAGE))
    fail_listing(
        f"{len(offenders)} file(s) of {PACKAGE}/ over {MAX_LINES} lines",
        (f"{rel(path)}: {count} lines" for path, count in offenders),
    )


# ----------------------------------------------------------------- rule 4: differentiable ops live in ops/


def dotted_name(expr) -> str | None:
    """``a.b.C`` for a base written as a name or an attribute chain; None otherwise."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        prefix = dotted_name(expr.value)
        return f"{prefix}.{expr.attr}" if prefix else None
    return None


def _is_function_base(base: str, local: dict, imported: dict, found: set, known: set) -> bool:
    """Whether a base written as ``base`` in a file names ``Function`` or a known subclass of it.
    A bare name is looked up in its own file first: a class defined there, else what an import
    brought in under that name; an attribute chain ``mod.Name`` is matched by its last name."""
    if base in ("Function", "autograd.Function") or base.endswith(".autograd.Function"):
        return True
    if "." in base:
        return base.rpartition(".")[2] in known
    if base in local:
        return any(id(node) in found for node in local[base])
    original = imported.get(base, base)
    return original == "Function" or original in known


def function_subclasses(files) -> list[tuple[Path, ast.ClassDef]]:
    """Classes (at any depth) whose bases name ``Function``, ``autograd.Function`` or a class already
    found to subclass it, iterated to a fixed point (so ``class Add(_Binary)`` counts, and so does a
    subclass written above its base). A local ``class LogSoftmax(Softmax)`` over a Module ``Softmax``
    does not count just because an op elsewhere is also called ``Softmax``."""
    classes = []  # (path, class node, the file's classes by name, the file's imported names)
    for path in files:
        tree, _ = parse(path)
        nodes = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
        local = {}
        for node in nodes:
            local.setdefault(node.name, []).append(node)
        imported = {
            alias.asname or alias.name: alias.name
            for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names
        }
        classes += [(path, node, local, imported) for node in nodes]
    found, known = set(), set()  # ids of the subclasses' nodes, and their names
    changed = True
    while changed:
        changed = False
        for _, node, local, imported in classes:
            if id(node) in found:
                continue
            bases = [name for name in map(dotted_name, node.bases) if name]
            if any(_is_function_base(base, local, imported, found, known) for base in bases):
                found.add(id(node))
                known.add(node.name)
                changed = True
    return [(path, node) for path, node, _, _ in classes if id(node) in found]


def defines_backward(node: ast.ClassDef) -> bool:
    return any(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == "backward" for s in node.body)


def misplaced_functions(files, ops_dir: Path = OPS_DIR) -> list[tuple[Path, ast.ClassDef]]:
    """Function subclasses with their own ``backward`` whose file is not under ``ops_dir``."""
    return [
        (path, node)
        for path, node in function_subclasses(files)
        if defines_backward(node) and not path.resolve().is_relative_to(ops_dir.resolve())
    ]


def test_differentiable_functions_live_in_ops():
    files = [f for d in (PACKAGE, "examples", "benchmarks") for f in python_files(REPO / d)]
    offenders = misplaced_functions(files)
    fail_listing(
        f"{len(offenders)} Function subclass(es) with a backward outside {rel(OPS_DIR)}/",
        (f"{rel(path)}:{node.lineno}: {node.name}" for path, node in offenders),
    )


# ------------------------------------------------------------- rule 5: no private Tensor/backend attributes


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_names(*classes, instances=()) -> set[str]:
    """Single-underscore names of the classes (``dir`` and ``__slots__`` along the MRO), of the
    instances' ``__dict__``, plus ``xp``, the raw array module of a backend."""
    names = {"xp"}
    for cls in classes:
        names.update(n for n in dir(cls) if _is_private(n))
        for klass in cls.__mro__:
            slots = klass.__dict__.get("__slots__", ())
            names.update(n for n in ([slots] if isinstance(slots, str) else slots) if _is_private(n))
    for obj in instances:
        names.update(n for n in getattr(obj, "__dict__", {}) if _is_private(n))
    return names


def tensor_and_backend_private_names() -> set[str]:
    import tinygrad_rnn
    from tinygrad_rnn.backends import Backend, NumpyBackend

    return private_names(tinygrad_rnn.Tensor, Backend, NumpyBackend, instances=[NumpyBackend()])


def own_attributes(cls: ast.ClassDef) -> set[str]:
    """Names the class itself defines: in its body, in ``__slots__``, or by assigning ``self.NAME``."""
    names = set()
    for stmt in cls.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(stmt.name)
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        else:
            targets = [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name):
                names.add(target.id)
                if target.id == "__slots__" and isinstance(stmt.value, (ast.Tuple, ast.List)):
                    names.update(e.value for e in stmt.value.elts if isinstance(e, ast.Constant))
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add(node.attr)
    return names


class _PrivateUses(ast.NodeVisitor):
    def __init__(self, private: set[str]):
        self.private, self.classes, self.uses = private, [], []

    def visit_ClassDef(self, node):
        self.classes.append(own_attributes(node))
        self.generic_visit(node)
        self.classes.pop()

    def visit_Attribute(self, node):
        if node.attr in self.private:
            on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not (on_self and self.classes and node.attr in self.classes[-1]):
                self.uses.append(node)
        self.generic_visit(node)


def private_attribute_uses(files, private: set[str]) -> list[tuple[Path, int, str]]:
    """``(file, line, expression)`` for every ``x.NAME`` with NAME in ``private``, except
    ``self.NAME`` in a class that defines or assigns NAME itself."""
    uses = []
    for path in files:
        tree, source = parse(path)
        visitor = _PrivateUses(private)
        visitor.visit(tree)
        for node in visitor.uses:
            text = " ".join((ast.get_source_segment(source, node) or ast.unparse(node)).split())
            uses.append((path, node.lineno, text if len(text) <= 100 else text[:97] + "..."))
    return uses


def test_examples_and_nn_use_no_private_tensor_or_backend_attributes():
    files = sorted((REPO / "examples").glob("*.py")) + python_files(REPO / PACKAGE / "nn")
    private = tensor_and_backend_private_names()
    uses = private_attribute_uses(files, private)
    fail_listing(
        f"{len(uses)} use(s) of private Tensor/backend attributes ({', '.join(sorted(private))})",
        (f"{rel(path)}:{line}: {text}" for path, line, text in uses),
    )


# ------------------------------------------------------------------------- the checkers themselves can fail


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_cycle_checker_finds_a_two_module_cycle_through_a_function_level_import(tmp_path):
    write_tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\n",
        "pkg/b.py": "def f():\n    from pkg.a import x\n",
        "pkg/c.py": "import pkg.a\n",
    })
    graph, sites = import_graph(tmp_path, "pkg")
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"]]
    assert sites["pkg.b", "pkg.a"] == "pkg/b.py:2"


def test_cycle_checker_resolves_from_package_imports_and_skips_the_implicit_parent_edge(tmp_path):
    write_tree(tmp_path, {
        "pkg/__init__.py": "from .a import x\n",
        "pkg/a.py": "x = 1\n",
        "pkg/sub/__init__.py": "from .. import a\nfrom ..a import x\n",
        "pkg/sub/leaf.py": "from . import other_name\n",  # names the package pkg.sub, not a submodule
    })
    graph, _ = import_graph(tmp_path, "pkg")
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": set(), "pkg.sub": {"pkg.a"}, "pkg.sub.leaf": {"pkg.sub"}}
    assert find_cycles(graph) == []
    write_tree(tmp_path, {"pkg/a.py": "from pkg import x\n"})  # pkg -> pkg.a -> pkg (its __init__)
    assert find_cycles(import_graph(tmp_path, "pkg")[0]) == [["pkg", "pkg.a", "pkg"]]


def test_cycle_finder_needs_no_recursion_and_covers_every_cyclic_edge():
    ring = {f"m{i:05d}": {f"m{(i + 1) % 5000:05d}"} for i in range(5000)}
    assert [len(c) for c in find_cycles(ring)] == [5001]
    graph = {"a": {"b", "c"}, "b": {"a"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "a"], ["a", "c", "a"]]


def test_import_checker_reports_errors_and_skips_only_missing_third_party_modules(tmp_path):
    write_tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ok.py": "",
        "pkg/broken.py": "raise RuntimeError('boom')\n",
        "pkg/optional.py": "import surely_not_installed_dependency_xyz\n",
        "pkg/internal.py": "import pkg.no_such_module\n",
    })
    results = {m: import_alone(m, tmp_path) for m in ("pkg.ok", "pkg.broken", "pkg.optional", "pkg.internal")}
    assert results["pkg.ok"].returncode == 0
    assert results["pkg.broken"].returncode != 0 and "boom" in tail(results["pkg.broken"].stderr)
    assert missing_optional_dependency(results["pkg.broken"].stderr, ("pkg",)) is None
    missing = missing_optional_dependency(results["pkg.optional"].stderr, ("pkg",))
    assert missing == "surely_not_installed_dependency_xyz"
    assert missing_optional_dependency(results["pkg.internal"].stderr, ("pkg",)) is None


def test_length_checker_flags_only_files_over_the_limit(tmp_path):
    write_tree(tmp_path, {"short.py": "x = 1\n" * MAX_LINES, "long.py": "x = 1\n" * (MAX_LINES + 1)})
    assert long_files(python_files(tmp_path)) == [(tmp_path / "long.py", MAX_LINES + 1)]


def test_function_checker_finds_direct_and_indirect_subclasses_outside_ops(tmp_path):
    write_tree(tmp_path, {
        "pkg/autograd.py": "class Function:\n    def backward(self): pass\n",
        "pkg/ops/good.py": "class Good(Function):\n    def backward(self): pass\n",
        "pkg/nn/bad.py": (
            "class Derived(_Base):\n    def backward(self): pass\n"  # before its base: needs the fixed point
            "class _Base(Function):\n    pass\n"
            "class NoBackward(Function):\n    def forward(self): pass\n"
            "class NotAFunction:\n    def backward(self): pass\n"
        ),
        "pkg/other.py": "def make():\n    class Inner(autograd.Function):\n        def backward(self): pass\n",
        "pkg/ops/reduce.py": (
            "from ..autograd import Function as Fn\nclass Softmax(Fn):\n    def backward(self): pass\n"
        ),
        "pkg/nn/layers.py": (  # a Module that shares its name with an op, and a subclass of it
            "class Softmax(Module):\n    pass\n"
            "class LogSoftmax(Softmax):\n    def backward(self): pass\n"
            "from ..ops.reduce import Softmax as SoftmaxFn\n"
            "def make():\n    class Renamed(SoftmaxFn):\n        def backward(self): pass\n"
        ),
    })
    found = misplaced_functions(python_files(tmp_path), ops_dir=tmp_path / "pkg" / "ops")
    assert sorted((rel(p, tmp_path), n.lineno, n.name) for p, n in found) == [
        ("pkg/nn/bad.py", 1, "Derived"),
        ("pkg/nn/layers.py", 7, "Renamed"),
        ("pkg/other.py", 2, "Inner"),
    ]


def test_private_attribute_checker(tmp_path):
    write_tree(tmp_path, {"ex.py": (
        "y = t._backend.xp.zeros(3)\n"
        "class Module:\n"
        "    def __init__(self):\n        self._name = 'm'\n"
        "    def name(self):\n        return self._name + other._name\n"
        "class Layer:\n"
        "    def f(self):\n        return self._backend\n"
    )})
    uses = private_attribute_uses([tmp_path / "ex.py"], {"_backend", "_name", "xp"})
    assert [(line, text) for _, line, text in uses] == [
        (1, "t._backend.xp"), (1, "t._backend"), (6, "other._name"), (9, "self._backend"),
    ]


def test_private_names_come_from_the_classes():
    class Base:
        __slots__ = ("_slot", "__weakref__")

        def _helper(self):
            pass

    class Child(Base):
        __slots__ = ()

        def __init__(self):
            pass

    names = private_names(Child)
    assert names == {"xp", "_slot", "_helper"}
    real = tensor_and_backend_private_names()
    assert "xp" in real and all(_is_private(n) for n in real - {"xp"}) and len(real) > 1
