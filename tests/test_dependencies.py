"""One PostgreSQL driver: psycopg 3. Neither the installed dependencies of imaging-bridge
(its own and its ``dev`` extra's, followed down to the bottom) nor any module of ours
bring another one."""

import ast
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "imaging-bridge"
DRIVER = "psycopg"
OTHER_DRIVERS = {"psycopg2", "psycopg2-binary", "asyncpg", "pg8000"}
OTHER_DRIVER_MODULES = {"psycopg2", "asyncpg", "pg8000"}


def dependency_closure(project: str, extras: set[str]) -> dict[str, list[str]]:
    """Every distribution ``project`` requires, directly or not, with the ``extras`` asked
    of it and of its requirements as they name them, on this interpreter: name -> the
    chain of requirements that brings it. A requirement whose marker does not hold here
    is left out; one that is not installed is listed but not followed."""
    chains: dict[str, list[str]] = {canonicalize_name(project): [project]}
    asked: dict[str, set[str]] = {canonicalize_name(project): set()}
    todo: list[tuple[str, set[str]]] = [(project, extras)]
    while todo:
        name, wanted = todo.pop()
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requirements:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker and not any(marker.evaluate({"extra": e}) for e in wanted | {""}):
                continue
            key = canonicalize_name(requirement.name)
            new_extras = set(requirement.extras) - asked.get(key, set())
            if key in asked and not new_extras:
                continue
            chains.setdefault(key, [*chains[canonicalize_name(name)], requirement.name])
            asked[key] = asked.get(key, set()) | set(requirement.extras)
            todo.append((requirement.name, asked[key]))
    return chains


def test_the_installed_dependencies_hold_one_postgresql_driver():
    # Given imaging-bridge as installed (its requirements and its dev extra's)
    assert metadata.distribution(PROJECT).metadata["Name"] == PROJECT

    # When its requirements are followed down to the bottom
    closure = dependency_closure(PROJECT, {"dev"})

    # Then psycopg (3) is among them and no other PostgreSQL driver is
    assert len(closure) > 20, sorted(closure)  # the walk went past the first level
    assert DRIVER in closure
    others = {name: " -> ".join(closure[name]) for name in OTHER_DRIVERS if name in closure}
    assert others == {}, (
        f"{others}: if pyproject.toml no longer lists it, the installed metadata is older"
        " than the checkout (pip install -e '.[dev]')"
    )


def test_the_walk_follows_extras_and_markers_down_the_levels():
    # Given eventsourcing, whose "postgres" extra requires psycopg[pool]
    # When its requirements are followed with and without that extra
    with_postgres = dependency_closure("eventsourcing", {"postgres"})
    without = dependency_closure("eventsourcing", set())

    # Then the driver comes with the extra only, and psycopg's own "pool" extra is followed
    assert with_postgres[DRIVER] == ["eventsourcing", "psycopg"]
    assert with_postgres["psycopg-pool"] == ["eventsourcing", "psycopg", "psycopg-pool"]
    assert DRIVER not in without


def test_no_module_of_ours_imports_another_driver():
    offenders = []
    for folder in ("src", "tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                offenders += [
                    f"{path.relative_to(ROOT)}: {name}"
                    for name in names
                    if name.split(".")[0] in OTHER_DRIVER_MODULES
                ]
    assert offenders == []


def test_running_the_outbound_side_loads_no_other_driver():
    # Given a fresh interpreter that imports the entry point and the task queue
    code = (
        "import sys, imaging_bridge.cli, adapters.task_queue, adapters.migrations;"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )

    # Then psycopg is loaded and no other driver is
    loaded = set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))
    assert DRIVER in loaded
    assert loaded & OTHER_DRIVER_MODULES == set()
