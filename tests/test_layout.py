"""The package's shape: imports flow one way, modules stay small.

The import graph counts imports inside functions too (Python tolerates a
cycle hidden in a function; a reader does not). The only imports allowed
inside functions are optional dependencies and `PopulationFit`'s convenience
methods (``network``, ``plot``, ``save``, ``to_dict``, ``from_dict``: the
result reaching the modules that export, draw and store it, as lmfit's
``ModelResult.plot`` and ``dumps`` do).
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "popfit"
MAX_LINES = 500
#: (module, function) pairs allowed to import popfit modules inside a function.
CONVENIENCE = {("popfit.result", name) for name in
               ("network", "plot", "save", "to_dict", "from_dict")}


def _modules():
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


MODULES = _modules()


def _targets(module, node):
    """popfit modules an import statement in ``module`` names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in MODULES]
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    if node.level:
        base = package.split(".")[:len(package.split(".")) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    found = []
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        found.append(sub if sub in MODULES else source)
    return [t for t in found if t in MODULES]


def _imports():
    """{module: [(popfit module imported, enclosing function or None)]}."""
    out = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        edges = []

        def visit(node, function):
            for child in ast.iter_child_nodes(node):
                inner = child.name if isinstance(
                    child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    edges.extend((target, function) for target in _targets(module, child))
                visit(child, inner)

        visit(tree, None)
        out[module] = edges
    return out


IMPORTS = _imports()


def test_no_import_cycle():
    graph = {m: {t for t, function in edges if t != m and m != "popfit" and t != "popfit"
                 and (m, function) not in CONVENIENCE}
             for m, edges in IMPORTS.items()}
    # a module importing its own package's __init__ is a parent reference, not a cycle
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    seen, stack, on_stack, cycles = {}, [], set(), []

    def strongconnect(v, counter=[0]):
        seen[v] = low = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        lows = {v: low}
        for w in graph.get(v, ()):
            if w not in seen:
                strongconnect(w)
                lows[v] = min(lows[v], LOW[w])
            elif w in on_stack:
                lows[v] = min(lows[v], seen[w])
        LOW[v] = lows[v]
        if LOW[v] == seen[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    LOW = {}
    for v in sorted(graph):
        if v not in seen:
            strongconnect(v)
    assert not cycles, f"import cycles (counting imports inside functions): {cycles}"


def test_function_level_imports_are_optional_dependencies():
    bad = []
    for module, edges in IMPORTS.items():
        for target, function in edges:
            if function is not None and (module, function) not in CONVENIENCE:
                bad.append(f"{module}.{function} imports {target}")
    assert not bad, "popfit modules imported inside functions:\n" + "\n".join(sorted(set(bad)))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES}): split it by concept"
