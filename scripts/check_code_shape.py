"""Check the source's shape (the project's rules; tests/scripts/test_check_code_shape.py enforces them).

    .venv/bin/python scripts/check_code_shape.py [SRC_DIR]      # default: src/cosmic

* no function over 60 lines (``def`` line to last line, docstring included), in ``src/cosmic`` and
  in ``scripts/`` and ``benchmarks/`` too; in the command line (the ``cli`` package, or a
  ``cli.py``) none whose body is over 25 lines (the body: after the signature, which lists a
  command's options, and the docstring), since the CLI only parses and prints;
* the scene coding functions (tiling + codec + container: :data:`PIPELINE_ONLY`) are called only
  in the modules that implement them and in ``pipelines/``, so every entry point (CLI, demo,
  Python API, evaluation, scripts, benchmarks) encodes and decodes through the pipelines;
* the tree under ``tests/`` mirrors ``src/cosmic/`` (:func:`unmirrored_tests`);
* the packages of ``cosmic`` (its sub-packages and top-level modules) import each other without a
  circle (:func:`import_cycles`), and no private name (``_x``) is imported from another package
  (:func:`private_imports`); imports inside functions count too.

Prints one line per finding and exits 1 if there is any.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LIMIT, CLI_LIMIT = 60, 25
#: called only by the pipelines and the modules that define them
PIPELINE_ONLY = {"encode_tiles", "decode_scene", "decode_rows"}
#: where those may be called (relative to the package root)
PIPELINE_HOMES = ("pipelines/", "onboard/scene.py", "ground/scene.py", "io/container.py")


def _functions(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _in_cli(path: Path, root: Path) -> bool:
    """Whether ``path`` is part of the command line: ``cli.py`` or a module of the ``cli`` package."""
    parts = path.relative_to(root).parts
    return path.name == "cli.py" or parts[0] == "cli"


def _body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function after its signature and docstring."""
    body = fn.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return body[-1].end_lineno - body[0].lineno + 1


def long_functions(root: Path) -> list[tuple[Path, str, int]]:
    """(file, function, lines) of every function over its limit (for the CLI: its body's lines)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        cli = _in_cli(path, root)
        for fn in _functions(ast.parse(path.read_text(), str(path))):
            lines = fn.end_lineno - fn.lineno + 1
            if lines > LIMIT or (cli and _body_lines(fn) > CLI_LIMIT):
                found.append((path, fn.name, _body_lines(fn) if cli and lines <= LIMIT else lines))
    return found


def _called_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def pipeline_bypasses(root: Path) -> list[tuple[Path, str, int]]:
    """(file, function called, line) of every call to :data:`PIPELINE_ONLY` outside its homes."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).as_posix().startswith(PIPELINE_HOMES):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _called_name(node) in PIPELINE_ONLY:
                found.append((path, _called_name(node), node.lineno))
    return found


def unmirrored_tests(tests: Path, package: Path) -> list[Path]:
    """Test files whose place does not name what they test: ``tests/X/test_*.py`` needs a package
    ``cosmic/X`` or a repository folder ``X`` (``benchmarks``, ``scripts``); a top-level
    ``tests/test_X.py`` needs a module ``cosmic/X.py`` (``test_api.py``: the package's
    ``__init__``)."""
    repo = package.parents[1]
    found = []
    for path in sorted(tests.rglob("test_*.py")):
        parts = path.relative_to(tests).parts
        if len(parts) == 1:
            ok = path.stem == "test_api" or (package / f"{path.stem[5:]}.py").is_file()
        else:
            ok = (package / parts[0] / "__init__.py").is_file() or (repo / parts[0]).is_dir()
            ok = ok and all((package.joinpath(*parts[:i]) / "__init__.py").is_file()
                            for i in range(2, len(parts)))
        if not ok:
            found.append(path)
    return found


def _package(module: str) -> str:
    """``cosmic.io.raster`` -> ``io``; ``cosmic`` itself -> ``cosmic``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _module_of(path: Path, root: Path) -> str:
    parts = (root.name, *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_edges(root: Path) -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """({package: packages it imports}, [(module, imported module, private name)]) of the
    package at ``root``, from every ``import`` / ``from ... import`` in it."""
    edges: dict[str, set[str]] = {}
    private = []
    for path in sorted(root.rglob("*.py")):
        module = _module_of(path, root)
        here = _package(module)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(root.name):
                targets = [(node.module, [a.name for a in node.names])]
            elif isinstance(node, ast.Import):
                targets = [(a.name, []) for a in node.names if a.name.startswith(root.name + ".")]
            else:
                continue
            for target, names in targets:
                if _package(target) == here:
                    continue
                edges.setdefault(here, set()).add(_package(target))
                private += [(module, target, n) for n in names if n.startswith("_") and not n.startswith("__")]
    return edges, private


def import_cycles(root: Path) -> list[list[str]]:
    """The circles among the packages' imports: each strongly connected group of two or more."""
    edges = import_edges(root)[0]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def private_imports(root: Path) -> list[tuple[str, str, str]]:
    return import_edges(root)[1]


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "src" / "cosmic"
    findings = [f"{p}: {name}() is {n} lines" for p, name, n in long_functions(root)]
    findings += [f"{p}:{line}: calls {name}() (use cosmic.pipelines)" for p, name, line in pipeline_bypasses(root)]
    findings += [f"{p}: not where the module it tests is" for p in unmirrored_tests(root.parents[1] / "tests", root)]
    for extra in (root.parents[1] / "scripts", root.parents[1] / "benchmarks"):  # the entry points beside src
        findings += [f"{p}: {name}() is {n} lines" for p, name, n in long_functions(extra)]
        findings += [f"{p}:{line}: calls {name}() (use cosmic.pipelines)" for p, name, line in pipeline_bypasses(extra)]
    findings += [f"import circle between packages: {' -> '.join(g)}" for g in import_cycles(root)]
    findings += [f"{m} imports the private {name} of {t}" for m, t, name in private_imports(root)]
    print("\n".join(findings) or "ok")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
