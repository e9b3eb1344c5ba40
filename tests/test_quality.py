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


ENVIRONMENT_READERS = {"environ", "getenv", "getenvb", "environb"}
SETTINGS_MODULE = ROOT / "src" / "adapters" / "settings.py"


@pytest.mark.parametrize("path", sorted((ROOT / "src").rglob("*.py")), ids=str)
def test_only_the_settings_module_touches_the_environment(path):
    """Configuration comes from ``Settings`` alone: no other module of the code reads
    ``os.environ`` or ``os.getenv`` (or imports them)."""
    if path == SETTINGS_MODULE:
        return
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            name = next((a.name for a in node.names if a.name in ENVIRONMENT_READERS), "")
        else:
            continue
        assert name not in ENVIRONMENT_READERS, f"{path.name}:{node.lineno} reads the environment"


def test_the_environment_check_can_fail(tmp_path):
    """The check above sees each way of reading the environment."""
    for source in (
        "import os\nos.environ.get('X')",
        "import os\nos.getenv('X')",
        "from os import environ",
        "from os import getenv as g",
    ):
        sample = tmp_path / "sample.py"
        sample.write_text(source)
        with pytest.raises(AssertionError):
            test_only_the_settings_module_touches_the_environment(sample)
