"""The house keeps the contracts docs/ARCHITECTURE.md states: only the build layer reads the
configuration."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "mbf"

# the build layer: the packages and modules that translate the config, and functions named so
BUILD_PACKAGES = ("config", "cli")
BUILD_MODULES = ("build.py",)
BUILD_FUNCTIONS = ("build", "_build", "from_config")
# builders by contract though not named so, each with the reason (none today)
OTHER_BUILDERS: dict[tuple[str, str], str] = {}


def _own_nodes(function: ast.AST):
    """The nodes of ``function``'s body, not descending into nested functions (checked on their own)."""
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _readers(node: ast.AST, rel: str, in_builder: bool, found: list[str]) -> None:
    """Report the functions under ``node`` whose own body reads ``cfg.``; a function nested in a
    builder (a closure it returns) is part of that builder."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, FUNCTIONS):
            name = getattr(child, "name", "<lambda>")
            builder = in_builder or name.startswith(BUILD_FUNCTIONS) or (rel, name) in OTHER_BUILDERS
            if not builder and any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                                   and n.value.id == "cfg" for n in _own_nodes(child)):
                found.append(f"{rel}:{child.lineno}:{name}")
            _readers(child, rel, builder, found)
        else:
            _readers(child, rel, in_builder, found)


def config_readers(src: Path = SRC) -> list[str]:
    """``module:line:function`` of every function outside the build layer whose own body reads ``cfg.``."""
    found: list[str] = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        if rel.split("/")[0] not in BUILD_PACKAGES and path.name not in BUILD_MODULES:
            _readers(ast.parse(path.read_text(encoding="utf-8")), rel, False, found)
    return found


def test_only_the_build_layer_reads_the_configuration():
    assert config_readers() == []


def test_the_walk_finds_a_function_that_reads_the_configuration(tmp_path):
    for rel, text in {
        "engine/loop.py": "def step(cfg):\n    return cfg.SOLVER.BASE_LR\n",  # reported
        "engine/build.py": "def anything(cfg):\n    return cfg.SOLVER.BASE_LR\n",  # a build module
        "data/x.py": "def build_x(cfg):\n    return lambda: cfg.INPUT.SIZE_TRAIN\n",  # a builder and its closure
        "config/y.py": "def read(cfg):\n    return cfg.OUTPUT_DIR\n",  # the config package
        "losses/z.py": "def helper(cfg):\n    def inner():\n        return cfg.MODEL.NAME\n    return inner\n",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert config_readers(tmp_path) == ["engine/loop.py:1:step", "losses/z.py:2:inner"]


# the rooms of the house from the bottom up; a room imports only rooms of lower floors, so rooms
# on one floor (engine/ and retrieval/) never import each other
FLOORS = [
    ["errors"],
    ["files", "geometry", "parts", "registry", "state_dicts", "runtime", "distributed", "precision", "normalisation",
     "config"],
    ["synthetic"],
    ["data"],
    ["parsing"],
    ["augmentation"],
    ["modeling"],
    ["losses"],
    ["evaluation"],
    ["engine", "retrieval"],
    ["integrations"],
    ["cli"],
    ["__init__", "__main__"],  # the package's front door: `import mbf`, `python -m mbf`
]


def _room(parts: tuple[str, ...]) -> str:
    """The room of a module path relative to src/mbf: its package, or the module itself."""
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def imports_between_rooms(src: Path = SRC) -> set[tuple[str, str]]:
    """``(room, imported room)`` for every import of one room of mbf by another (relative or absolute)."""
    edges = set()
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        room, package = _room(rel.parts), list(rel.parent.parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                target = package[:len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
                others = [target[0]] if target else [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mbf."):
                others = [node.module.split(".")[1]]
            elif isinstance(node, ast.Import):
                others = [a.name.split(".")[1] for a in node.names if a.name.startswith("mbf.")]
            else:
                continue
            edges |= {(room, other) for other in others if other != room}
    return edges


def test_every_import_goes_down_the_house():
    floor = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}
    edges = imports_between_rooms()
    unknown = {room for edge in edges for room in edge} - floor.keys()
    assert not unknown, f"rooms missing from FLOORS: {sorted(unknown)}"
    upward = sorted(f"{a} -> {b}" for a, b in edges if floor[b] >= floor[a])
    assert upward == []
    assert ("engine", "evaluation") in edges and ("retrieval", "modeling") in edges  # the walk sees imports
