"""The package's layering, read from its imports: the tree is the architecture, and holds."""

from __future__ import annotations

import pytest

from tests.conftest import PROJECT_ROOT
from tests.import_graph import imported_modules, module_name

# The rooms of the package, lowest level first. A module may import its own room and the levels
# below it: never a higher level, never another room of its own level. Modules directly in
# sentiment/ are the shared bottom (errors, params, console, files, tools, tensorflow_start).
LEVELS = (
    ("sentiment",),
    ("sentiment.classifier.data",),
    ("sentiment.classifier.model",),
    (
        "sentiment.classifier.training",
        "sentiment.classifier.evaluation",
        "sentiment.classifier.serving",
    ),
    ("sentiment.proof",),
    ("sentiment.measurement", "sentiment.tuning"),
    ("sentiment.cli",),
    ("sentiment.__main__",),  # `python -m sentiment`: the command line again
)
PRODUCT = "sentiment.classifier"
NOT_PRODUCT = ("sentiment.proof", "sentiment.measurement", "sentiment.tuning", "sentiment.cli")
ROOMS = {room: level for level, rooms in enumerate(LEVELS) for room in rooms}


def room_of(module: str) -> str:
    """The deepest room that holds the module."""
    holders = [room for room in ROOMS if module == room or module.startswith(f"{room}.")]
    return max(holders, key=len)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def import_edges(folder: str = "sentiment") -> dict[str, set[str]]:
    """{module: the package's modules it imports} for every module under `folder`."""
    edges = {}
    for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
        module = module_name(path)
        edges[module] = {
            imported
            for imported in imported_modules(path)
            if _within(imported, "sentiment") and imported != module
        }
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles, each as the path that closes it (depth-first search)."""
    found, state = [], {}  # state: 1 on the current path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(edges.get(module, ())):
            if state.get(imported) == 1:
                found.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    return found


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Every import against the rules, as a line a reader can act on."""
    problems = []
    for module, imports in sorted(edges.items()):
        room = room_of(module)
        for imported in sorted(imports):
            target = room_of(imported)
            if _within(module, PRODUCT) and any(_within(imported, p) for p in NOT_PRODUCT):
                problems.append(f"{module} (the product) imports {imported}")
            elif target != room and ROOMS[target] >= ROOMS[room]:
                relation = "a room of its own level" if ROOMS[target] == ROOMS[room] else "higher"
                problems.append(f"{module} ({room}) imports {imported} ({target}: {relation})")
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(edges)]
    return problems


def test_every_module_lies_in_a_room():
    for module in import_edges():
        assert room_of(module) in ROOMS, module
    # every subpackage is a room, so a new one must be placed in LEVELS on purpose
    packages = {module_name(init) for init in (PROJECT_ROOT / "sentiment").rglob("__init__.py")}
    assert packages - {"sentiment", PRODUCT} <= set(ROOMS)


def test_the_package_keeps_its_layering_and_has_no_import_cycle():
    assert violations(import_edges()) == []


def test_the_stages_run_the_product_and_the_proof_never_measurements_or_the_cli():
    for module, imports in import_edges("stages").items():
        assert not [i for i in imports if _within(i, "sentiment.measurement")], module
        assert not [i for i in imports if _within(i, "sentiment.cli")], module


def test_the_served_model_needs_only_the_classifier_and_the_shared_bottom():
    from tests.import_graph import import_closure, relative

    needed = relative(import_closure(PROJECT_ROOT / "sentiment/classifier/serving/predict.py"))
    outside = {
        path
        for path in needed
        if not path.startswith("sentiment/classifier/") and path.count("/") > 1
    }
    assert outside == set()  # beyond the classifier, only modules directly in sentiment/


@pytest.mark.parametrize(
    ("edges", "problem"),
    [
        (
            {"sentiment.classifier.model.network": {"sentiment.proof.figures"}},
            "sentiment.classifier.model.network (the product) imports sentiment.proof.figures",
        ),
        (
            {"sentiment.classifier.data.text": {"sentiment.classifier.model.layers"}},
            "(sentiment.classifier.data) imports sentiment.classifier.model.layers "
            "(sentiment.classifier.model: higher)",
        ),
        (
            {"sentiment.classifier.serving.export": {"sentiment.classifier.training.fit"}},
            "(sentiment.classifier.training: a room of its own level)",
        ),
        (
            {"sentiment.errors": {"sentiment.params"}, "sentiment.params": {"sentiment.errors"}},
            "import cycle: sentiment.errors -> sentiment.params -> sentiment.errors",
        ),
        (
            {"sentiment.proof.comparison": {"sentiment.measurement.flops"}},
            "(sentiment.proof) imports sentiment.measurement.flops (sentiment.measurement: higher)",
        ),
    ],
)
def test_each_kind_of_violation_is_caught_and_named(edges, problem):
    assert any(problem in line for line in violations(edges)), violations(edges)
