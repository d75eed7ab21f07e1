"""The house rules (issue 12), checked on the source itself.

The import graph is read with `ast`, not by importing: every `import` and `from … import`
counts wherever it stands — at the top, inside a function (a lazy import), or under
`if TYPE_CHECKING:`. Typing-only imports count for both rules: an arrow that runs the wrong
way is wrong even if only mypy follows it, and a circle closed by a typing import still
means two modules that cannot be understood (or moved) one without the other.

An import names one module: `from a.b import c` is an arrow to `a.b.c` when that is a
module, else to `a.b`. The parent packages' `__init__` run too, but are not arrows (a
package that re-exports its own submodules is not a circle).

The rules, over the project's modules (`bot`, `handlers`, `dispatch`, `storage`; Alembic's
migrations are exempt from the size rules):

- no import circles;
- arrows run `bot → handlers → dispatch → storage`: a module imports its own layer and the
  layers to its right, never one to its left;
- no module over 600 lines; no folder with more than 15 modules side by side;
- nothing reads the environment (`os.environ`, `os.getenv`, …) except `bot/settings.py`:
  every knob goes through the settings.
"""

from __future__ import annotations

import ast
import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("bot", "handlers", "dispatch", "storage")
"""Left to right: a layer may import itself and the layers after it."""
MIGRATIONS = Path("storage", "migrations")
MAX_MODULE_LINES = 600
MAX_MODULES_PER_FOLDER = 15
SETTINGS_MODULE = Path("bot", "settings.py")
ENVIRONMENT_NAMES = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"})


@dataclass(frozen=True, slots=True)
class Arrow:
    source: str
    target: str
    path: Path
    line: int
    how: str
    """"top level", "lazy (inside a function)" or "TYPE_CHECKING"."""

    def __str__(self) -> str:
        return f"{self.source} → {self.target}  ({self.path}:{self.line}, {self.how})"


def module_files() -> dict[str, Path]:
    """Every module of the four layers: dotted name → path relative to the root."""
    modules: dict[str, Path] = {}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            relative = path.relative_to(ROOT)
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = relative
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement of `tree`, with where it stands."""

    def walk(node: ast.AST, how: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, how
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from walk(child, "lazy (inside a function)" if how == "top level" else how)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    yield from walk(ast.Module(body=[statement], type_ignores=[]), "TYPE_CHECKING")
                for statement in child.orelse:
                    yield from walk(ast.Module(body=[statement], type_ignores=[]), how)
            else:
                yield from walk(child, how)

    yield from walk(tree, "top level")


def _known(name: str, modules: Iterable[str]) -> str | None:
    """`name`, or its longest prefix that is a project module (None: not ours)."""
    known = set(modules)
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def arrows_of(module: str, path: Path, source: str, modules: Mapping[str, Path]) -> list[Arrow]:
    """The arrows from `module` (whose file is `path`) to other project modules."""
    tree = ast.parse(source, filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Arrow] = []
    for node, how in _imports(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.append(submodule if submodule in modules else base)
        for name in targets:
            target = _known(name, modules)
            if target is not None and target != module:
                found.append(Arrow(module, target, path, node.lineno, how))
    return found


def import_graph() -> list[Arrow]:
    modules = module_files()
    arrows: list[Arrow] = []
    for module, path in modules.items():
        source = (ROOT / path).read_text(encoding="utf-8")
        arrows.extend(arrows_of(module, path, source, modules))
    return arrows


def cycles(arrows: Iterable[Arrow]) -> list[tuple[list[str], list[Arrow]]]:
    """Each knot of mutually importing modules with one shortest circle through it (Tarjan's
    strongly connected components, then a breadth-first search inside each); breaking that
    circle may leave a smaller knot, which the next run reports."""
    edges: dict[str, dict[str, Arrow]] = {}
    for arrow in arrows:
        edges.setdefault(arrow.source, {}).setdefault(arrow.target, arrow)
        edges.setdefault(arrow.target, {})

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)

    found: list[tuple[list[str], list[Arrow]]] = []
    for component in components:
        members = set(component)
        start = component[0]
        previous: dict[str, str] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if node != start and start in edges[node]:
                path = [start]
                while node != start:
                    path.append(node)
                    node = previous[node]
                path.append(start)
                path.reverse()
                found.append((component, [edges[a][b] for a, b in itertools.pairwise(path)]))
                break
            for target in edges[node]:
                if target in members and target not in previous and target != start:
                    previous[target] = node
                    queue.append(target)
    return found


def layer_of(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


# --- the rules ---------------------------------------------------------------------------


def _describe(number: int, knot: list[str], circle: list[Arrow]) -> str:
    names = " → ".join([circle[0].source, *(arrow.target for arrow in circle)])
    lines = [f"circle {number}: {names}", *(f"    {arrow}" for arrow in circle)]
    if len(knot) > len(circle):
        lines.append(f"  within a knot of {len(knot)} modules: {', '.join(knot)}")
    return "\n".join(lines)


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    if found:
        report = "\n\n".join(_describe(i, *item) for i, item in enumerate(found, 1))
        pytest.fail(f"import circles among the project's modules:\n\n{report}", pytrace=False)


def test_imports_run_bot_handlers_dispatch_storage() -> None:
    backwards = [
        arrow for arrow in import_graph() if layer_of(arrow.target) < layer_of(arrow.source)
    ]
    report = "\n".join(
        f"  {arrow}: {arrow.source.split('.')[0]} may not import {arrow.target.split('.')[0]}"
        for arrow in backwards
    )
    assert not backwards, f"imports against {' → '.join(LAYERS)}:\n{report}"


def _outside_migrations(path: Path) -> bool:
    return MIGRATIONS not in (path, *path.parents)


def test_no_module_over_600_lines() -> None:
    too_long = {
        path: lines
        for path in module_files().values()
        if _outside_migrations(path)
        and (lines := len((ROOT / path).read_text(encoding="utf-8").splitlines()))
        > MAX_MODULE_LINES
    }
    report = "\n".join(f"  {path}: {lines} lines" for path, lines in sorted(too_long.items()))
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines:\n{report}"


def test_no_folder_over_15_modules() -> None:
    per_folder: dict[Path, int] = {}
    for path in module_files().values():
        if path.name != "__init__.py" and _outside_migrations(path):
            per_folder[path.parent] = per_folder.get(path.parent, 0) + 1
    crowded = {
        folder: count for folder, count in per_folder.items() if count > MAX_MODULES_PER_FOLDER
    }
    report = "\n".join(
        f"  {folder}/: {count} modules" for folder, count in sorted(crowded.items())
    )
    assert not crowded, f"folders with more than {MAX_MODULES_PER_FOLDER} modules:\n{report}"


def environment_reads(path: Path, source: str) -> list[str]:
    """Where `source` reaches the process environment: `os.environ`, `os.getenv(…)`,
    `from os import environ`, also through `__import__("os")`."""
    found = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_NAMES:
            found.append(f"{path}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found.extend(
                f"{path}:{node.lineno}: from os import {alias.name}"
                for alias in node.names
                if alias.name in ENVIRONMENT_NAMES
            )
    return found


def test_only_the_settings_module_reads_the_environment() -> None:
    reads = [
        read
        for path in module_files().values()
        if path != SETTINGS_MODULE
        for read in environment_reads(path, (ROOT / path).read_text(encoding="utf-8"))
    ]
    report = "\n".join(f"  {read}" for read in reads)
    assert not reads, f"environment read outside {SETTINGS_MODULE} (use the settings):\n{report}"


# --- the checker itself --------------------------------------------------------------------

_SAMPLE = {
    "bot.a": "from __future__ import annotations\nfrom bot import b\n",
    "bot.b": (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.c import C\n"
        "def f():\n    from handlers.x import y\n"
    ),
    "bot.c": "import bot.a as again\nfrom .b import f\n",
    "handlers.x": "def g():\n    from bot.a import z\n",
}


def _sample_arrows() -> list[Arrow]:
    modules = {name: Path(*name.split(".")).with_suffix(".py") for name in _SAMPLE}
    return [
        arrow
        for name, source in _SAMPLE.items()
        for arrow in arrows_of(name, modules[name], source, modules)
    ]


def test_the_graph_sees_lazy_relative_and_typing_imports() -> None:
    arrows = {(a.source, a.target, a.how) for a in _sample_arrows()}
    assert arrows == {
        ("bot.a", "bot.b", "top level"),
        ("bot.b", "bot.c", "TYPE_CHECKING"),
        ("bot.b", "handlers.x", "lazy (inside a function)"),
        ("bot.c", "bot.a", "top level"),
        ("bot.c", "bot.b", "top level"),
        ("handlers.x", "bot.a", "lazy (inside a function)"),
    }


def test_cycles_are_reported_with_their_arrows() -> None:
    found = cycles(_sample_arrows())
    assert len(found) == 1
    knot, circle = found[0]
    assert knot == ["bot.a", "bot.b", "bot.c", "handlers.x"]
    assert circle[0].source == circle[-1].target
    assert all(a.target == b.source for a, b in itertools.pairwise(circle))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('x = __import__("os").environ.get("FLUSHERS", "1")\n', ["m.py:1: .environ"]),
        ("import os\nos.getenv('A')\n", ["m.py:2: .getenv"]),
        ("from os import environ\n", ["m.py:1: from os import environ"]),
        ("from jinja2 import Environment\n", []),
    ],
)
def test_environment_reads_are_found(source: str, expected: list[str]) -> None:
    assert environment_reads(Path("m.py"), source) == expected
