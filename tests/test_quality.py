"""The code's own checks run with the tests: ruff, mypy, the import-layer contracts,
and the domain's purity (standard library, eventsourcing.domain and itself only)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOMAIN_MAY_IMPORT = {"domain", "eventsourcing.domain"}


def check(*command: str) -> None:
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"


def test_ruff_lint():
    check(sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks")


def test_ruff_format():
    check(sys.executable, "-m", "ruff", "format", "--check", "src", "tests", "benchmarks")


def test_mypy():
    check(sys.executable, "-m", "mypy")


def test_import_layers():
    check("lint-imports")


@pytest.mark.parametrize("path", sorted((ROOT / "src" / "domain").rglob("*.py")), ids=str)
def test_domain_imports_only_the_standard_library_and_eventsourcing_domain(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            allowed = top in sys.stdlib_module_names or any(
                name == ok or name.startswith(ok + ".") for ok in DOMAIN_MAY_IMPORT
            )
            assert allowed, f"{path.name} imports {name}"
