"""Every import in ese/ and tasks.py points down, none runs in a circle, and no private name
crosses a module boundary.

The layers, top to bottom; a module may import from its own layer (when that forms no cycle)
or from any layer below it:

    tasks.py
    ese.flows                      what each task does
    ese.swarm, ese.cluster, ese.engine, ese.render, ese.grafana, ese.checks, ese.task_defaults
    ese.kit, ese.host, ese.topology (with ese.topology_model, ese.topology_rules)
    ese.errors, ese.paths, ese.validate, ese (the package: its version)

The loose modules: `ese.task_defaults` (the `ese` config namespace) is read by tasks.py and the
flows; its table names the image modes (ese.engine.images) and the build tail length (ese.kit),
so it sits beside the tools, under the flows. `ese.validate` (URL and JSON-file checks of
user input) imports only ese.errors and is used by the flows and tasks.py; it sits at the bottom
beside ese.errors, so that any layer may check its input with it.

Imports are read with `ast` from the source, including those inside functions, `if` blocks and
`importlib.import_module("ese....")` calls, so a lazy import cannot hide an edge. Services
(services/) are separate images that never import ese; only the private-name rule applies there.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tasks", ("tasks",)),
    ("flows", ("ese.flows",)),
    (
        "tools",
        (
            "ese.swarm",
            "ese.cluster",
            "ese.engine",
            "ese.render",
            "ese.grafana",
            "ese.checks",
            "ese.task_defaults",
        ),
    ),
    (
        "foundations",
        ("ese.kit", "ese.host", "ese.topology", "ese.topology_model", "ese.topology_rules"),
    ),
    ("base", ("ese", "ese.errors", "ese.paths", "ese.validate")),
)
LAYER_OF = {group: depth for depth, (_, groups) in enumerate(LAYERS) for group in groups}


@dataclass(frozen=True)
class Import:
    """One module taken from another; `private` holds the private names it reaches for."""

    path: str  # the importing file, relative to the repository
    line: int
    text: str  # the statement (or expression) as written
    source: str  # the importing module
    target: str  # the imported module
    private: tuple[str, ...] = ()

    def where(self) -> str:
        return f"{self.path}:{self.line}: `{self.text}`"


def module_name(rel: str) -> str:
    """`ese/flows/backend.py` -> `ese.flows.backend`; `ese/__init__.py` -> `ese`."""
    parts = list(Path(rel).with_suffix("").parts)
    if parts[0] == "services":
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _absolute(module: str | None, level: int, source: str, is_package: bool) -> str:
    """The absolute module a (possibly relative) `from ... import` names."""
    if not level:
        return module or ""
    package = source.split(".") if is_package else source.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imports_of(rel: str, code: str, known: set[str], prefixes: tuple[str, ...]) -> list[Import]:
    """Every import of a module in `known` (whose names start with one of `prefixes`) in the
    file `rel`, wherever it stands in the file."""
    source = module_name(rel)
    is_package = rel.endswith("__init__.py")
    tree = ast.parse(code, filename=rel)
    found: list[Import] = []
    bound: dict[str, str] = {}  # local name -> the module it is bound to

    def ours(module: str) -> bool:
        return module in known and module.split(".")[0] in prefixes

    def add(node: ast.AST, target: str, private: tuple[str, ...] = ()) -> None:
        text = ast.get_source_segment(code, node) or ast.unparse(node)
        line = getattr(node, "lineno", 0)
        found.append(Import(rel, line, " ".join(text.split()), source, target, private))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if ours(alias.name):
                    add(node, alias.name, tuple(p for p in alias.name.split(".") if _is_private(p)))
                    top = alias.name if alias.asname else alias.name.split(".")[0]
                    bound[alias.asname or top] = top
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node.module, node.level, source, is_package)
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                if ours(sub):  # `from ese.render import compose_files`: the submodule
                    add(node, sub, (alias.name,) if _is_private(alias.name) else ())
                    bound[alias.asname or alias.name] = sub
                elif ours(module):
                    add(node, module, (alias.name,) if _is_private(alias.name) else ())
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0] if node.args else None
            value = arg.value if isinstance(arg, ast.Constant) else None
            if name == "import_module" and isinstance(value, str) and ours(value):
                add(node, value)
    # `module._name`: a private name reached through a module bound above.
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            chain: list[str] = []
            base = node.value
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in bound:
                module = ".".join([bound[base.id], *reversed(chain)])
                if ours(module) and module != source:
                    add(node, module, (node.attr,))
    return sorted(found, key=lambda imp: imp.line)


def read_tree(root: Path, patterns: Iterable[str]) -> dict[str, str]:
    """{path relative to root: source} for the files matching `patterns`."""
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for pattern in patterns
        for p in sorted(root.glob(pattern))
    }


def all_imports(sources: Mapping[str, str], prefixes: tuple[str, ...]) -> list[Import]:
    known = {module_name(rel) for rel in sources}
    return [imp for rel, code in sources.items() for imp in imports_of(rel, code, known, prefixes)]


def layer_group(module: str) -> str:
    """The name LAYERS files a module under: `ese.flows.backend` -> `ese.flows`."""
    return ".".join(module.split(".")[:2])


def unplaced(modules: Iterable[str]) -> list[str]:
    return sorted(
        f"{m}: in no layer; add {layer_group(m)!r} to LAYERS in tests/test_layers.py"
        for m in modules
        if layer_group(m) not in LAYER_OF
    )


def upward(imports: Iterable[Import]) -> list[str]:
    """Imports from a layer above the importer's."""
    failures = []
    for imp in imports:
        here, there = LAYER_OF.get(layer_group(imp.source)), LAYER_OF.get(layer_group(imp.target))
        if here is not None and there is not None and there < here:
            failures.append(
                f"{imp.where()} imports {imp.target} (layer {LAYERS[there][0]}) upward "
                f"from layer {LAYERS[here][0]}"
            )
    return failures


def _components(graph: Mapping[str, set[str]]) -> list[set[str]]:
    """Strongly connected components (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    result.append(component)
    return result


def cycles(imports: Iterable[Import]) -> dict[frozenset[str], str]:
    """{modules in a cycle: one cycle through them, each step with its file, line and import}."""
    first: dict[tuple[str, str], Import] = {}
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        if imp.source != imp.target:  # a module naming itself is odd, but no cycle
            graph[imp.source].add(imp.target)
            first.setdefault((imp.source, imp.target), imp)
    found = {}
    for component in _components(graph):
        start = min(component)
        # Shortest way round from `start` back to it, inside the component.
        paths = {start: [start]}
        queue = [start]
        loop: list[str] = []
        while queue and not loop:
            node = queue.pop(0)
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    loop = [*paths[node], start]
                    break
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    queue.append(nxt)
        steps = [first[(a, b)].where() for a, b in itertools.pairwise(loop)]
        found[frozenset(component)] = " -> ".join(loop) + "\n    " + "\n    ".join(steps)
    return found


def private(imports: Iterable[Import]) -> dict[tuple[str, str, str], str]:
    """{(importer, module, name): where} for each private name taken from another module."""
    return {
        (imp.source, imp.target, name): f"{imp.where()} takes the private {name} of {imp.target}"
        for imp in imports
        for name in imp.private
        if imp.target != imp.source
    }


# --- the repository ---------------------------------------------------------------------------

ESE_SOURCES = read_tree(ROOT, ["ese/**/*.py", "tasks.py"])
ESE_IMPORTS = all_imports(ESE_SOURCES, ("ese", "tasks"))


def test_every_module_is_in_a_layer() -> None:
    assert len(ESE_SOURCES) > 50, "the scan found too few files: is ROOT right?"
    failures = unplaced(module_name(rel) for rel in ESE_SOURCES)
    assert not failures, "\n".join(failures)


def test_imports_point_down() -> None:
    assert len(ESE_IMPORTS) > 100, "the scan found too few imports"
    failures = upward(ESE_IMPORTS)
    assert not failures, "imports that point up:\n" + "\n".join(failures)


def test_no_import_cycle() -> None:
    found = cycles(ESE_IMPORTS)
    assert not found, "import cycles:\n" + "\n".join(found.values())


def test_no_private_name_crosses_a_module() -> None:
    found = private(ESE_IMPORTS)
    assert not found, "private names imported from another module:\n" + "\n".join(found.values())


def test_no_private_name_crosses_a_module_in_the_services() -> None:
    sources = read_tree(ROOT, ["services/**/*.py"])
    prefixes = tuple(sorted({module_name(rel).split(".")[0] for rel in sources}))
    assert "ese_server" in prefixes
    failures = list(private(all_imports(sources, prefixes)).values())
    assert not failures, "private names imported from another module:\n" + "\n".join(failures)


# --- the checks themselves, on a made-up tree ---------------------------------------------------

BAD_TREE = {
    "tasks.py": "from ese.flows import up\n",
    "ese/__init__.py": "",
    "ese/errors.py": "",
    "ese/flows/__init__.py": "",
    "ese/flows/up.py": "from ese.engine import runner\nfrom ese.errors import *\n",
    "ese/engine/__init__.py": "",
    "ese/engine/runner.py": (
        "from ese.host.sdk import client\n"
        "def later():\n"
        "    from ese.flows.up import main  # lazy, and still upward\n"
    ),
    "ese/engine/waits.py": "from . import runner\nrunner._pace()\n",
    "ese/host/__init__.py": "",
    "ese/host/sdk.py": (
        "import importlib\ndef f():\n    importlib.import_module('ese.host.ports')\n"
    ),
    "ese/host/ports.py": "from ese.host.sdk import _client, f\n",
    "ese/render/__init__.py": "",
    "ese/render/odd.py": "import ese.render.odd as me\nfrom ese.nowhere import x\n",
    "ese/surprise.py": "",
}


def test_the_checks_catch_a_made_up_bad_tree() -> None:
    imports = all_imports(BAD_TREE, ("ese", "tasks"))

    up = upward(imports)
    assert up == [
        "ese/engine/runner.py:3: `from ese.flows.up import main` imports ese.flows.up "
        "(layer flows) upward from layer tools"
    ]

    found = cycles(imports)
    assert set(found) == {
        frozenset({"ese.flows.up", "ese.engine.runner"}),
        frozenset({"ese.host.sdk", "ese.host.ports"}),
    }
    text = found[frozenset({"ese.host.sdk", "ese.host.ports"})]
    assert "ese/host/ports.py:1: `from ese.host.sdk import _client, f`" in text
    assert "ese/host/sdk.py:3: `importlib.import_module('ese.host.ports')`" in text

    assert sorted(private(imports).values()) == [
        "ese/engine/waits.py:2: `runner._pace` takes the private _pace of ese.engine.runner",
        "ese/host/ports.py:1: `from ese.host.sdk import _client, f` takes the private _client "
        "of ese.host.sdk",
    ]

    assert unplaced(module_name(rel) for rel in BAD_TREE) == [
        "ese.surprise: in no layer; add 'ese.surprise' to LAYERS in tests/test_layers.py"
    ]


def test_the_checks_pass_a_clean_tree() -> None:
    clean = {
        "tasks.py": "from ese.flows import up\nimport ese.errors\n",
        "ese/__init__.py": "",
        "ese/errors.py": "",
        "ese/flows/__init__.py": "",
        "ese/flows/up.py": "from ese.engine import runner\nfrom ese import errors\n",
        "ese/engine/__init__.py": "",
        "ese/engine/runner.py": "from ese.render.files import write\nfrom ese.host import sdk\n",
        "ese/render/__init__.py": "",
        "ese/render/files.py": "def write(): ...\n",
        "ese/host/__init__.py": "",
        "ese/host/sdk.py": "from ese.errors import __doc__ as d\nimport os\nos._exit\n",
    }
    imports = all_imports(clean, ("ese", "tasks"))
    assert len(imports) == 7
    assert (upward(imports), cycles(imports), private(imports)) == ([], {}, {})


@pytest.mark.parametrize(
    ("rel", "module"),
    [
        ("ese/__init__.py", "ese"),
        ("ese/flows/backend.py", "ese.flows.backend"),
        ("tasks.py", "tasks"),
        ("services/ese_server/app.py", "ese_server.app"),
    ],
)
def test_module_names(rel: str, module: str) -> None:
    assert module_name(rel) == module
