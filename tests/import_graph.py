"""The project's imports read from its source with `ast`: what each file makes Python execute."""

from __future__ import annotations

import ast
from pathlib import Path

from sentiment.proof.project_copy import PROJECT_ROOT

PACKAGES = ("sentiment", "stages")  # the project's own top-level packages


def module_file(module: str) -> Path | None:
    """The file Python runs for a module of the project (a package's __init__.py), if any."""
    base = PROJECT_ROOT / module.replace(".", "/")
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    """The dotted name of a project file (a package's __init__.py is the package)."""
    parts = path.resolve().relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The project modules a file imports anywhere in it (functions' lazy imports included).

    `from package import name` imports package.name when that is a module. An import of a
    project module that has no file raises: a dependency that cannot be followed is an error.
    """
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}:{node.lineno}: relative import; use absolute ones")
            names = [node.module] if node.module else []
            for alias in node.names:
                if node.module and module_file(f"{node.module}.{alias.name}"):
                    names.append(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in PACKAGES:
                continue
            if module_file(name) is None:
                raise AssertionError(f"{path}:{node.lineno}: {name} is not a file of the project")
            modules.add(name)
    return modules


def executed_files(module: str) -> set[Path]:
    """The files importing `module` runs: its own and every enclosing package's __init__.py."""
    parts = module.split(".")
    files = {module_file(".".join(parts[: end + 1])) for end in range(len(parts))}
    return {file for file in files if file is not None}


def import_closure(start: Path) -> set[Path]:
    """Every project file that running `start` executes, `start` included."""
    seen, queue = {start.resolve()}, [start.resolve()]
    while queue:
        for module in imported_modules(queue.pop()):
            for file in executed_files(module):
                if file not in seen:
                    seen.add(file)
                    queue.append(file)
    return seen


def relative(paths: set[Path]) -> set[str]:
    """Paths as dvc.yaml writes them: relative to the project root, with forward slashes."""
    return {path.relative_to(PROJECT_ROOT).as_posix() for path in paths}
