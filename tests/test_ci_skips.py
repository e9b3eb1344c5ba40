"""Under CI=true a skipped test fails the run (tests/conftest.py), unless the allowlist
names it with a reason; outside CI a skip stays a skip."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import refused_skip

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import pytest

def test_passes():
    assert True

@pytest.mark.skip(reason="marked skip")
def test_marked_skip():
    raise AssertionError("never runs")

@pytest.mark.skipif(True, reason="a condition")
def test_conditional_skip():
    raise AssertionError("never runs")

def test_skip_from_inside():
    pytest.skip("decided at run time")

@pytest.mark.xfail(reason="a known failure", strict=True)
def test_expected_failure():
    raise AssertionError("expected")
"""

MODULE_SKIP = """
import pytest

pytest.skip("the whole module", allow_module_level=True)

def test_never_collected():
    raise AssertionError("never runs")
"""


def run_probe(tmp_path: Path, ci: str | None) -> dict[str, int]:
    """Run the probe tests in a child pytest with our conftest as a plugin, and count
    each outcome from its summary line."""
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "tests.conftest",
        "-p",
        "no:cacheprovider",
    ]
    command += ["--continue-on-collection-errors", "--rootdir", str(tmp_path), "-c", os.devnull]
    done = subprocess.run(
        [*command, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = done.stdout.strip().splitlines()[-1]
    counts = {
        kind: int(n)
        for n, kind in re.findall(r"(\d+) (\w+)", summary)
        if kind not in ("warning", "warnings")  # library deprecations vary by version
    }
    counts["exit"] = done.returncode
    return counts


def test_outside_ci_a_skip_is_a_skip(tmp_path):
    counts = run_probe(tmp_path, ci="false")
    assert counts == {"passed": 1, "skipped": 4, "xfailed": 1, "exit": 0}


def test_under_ci_every_skip_fails_the_run_but_an_expected_failure_does_not(tmp_path):
    counts = run_probe(tmp_path, "true")
    # A skip decided at run time fails the test; one decided before it (a mark) fails its
    # setup and a skipped module fails collection, both counted as errors.
    assert counts == {"failed": 1, "errors": 3, "passed": 1, "xfailed": 1, "exit": 1}


def test_the_refusal_names_the_reason_and_the_way_out():
    refusal = refused_skip("tests/integration/test_x.py::test_y", "needs RabbitMQ", {})
    assert refusal is not None
    assert "needs RabbitMQ" in refusal
    assert "CI_SKIP_ALLOWLIST" in refusal


def test_an_allowlisted_test_may_skip_and_only_it():
    allowlist = {"tests/browser/*": "no Chromium on the CI image"}
    assert refused_skip("tests/browser/test_portal.py::test_home", "no Chromium", allowlist) is None
    assert refused_skip("tests/integration/test_x.py::test_y", "no Chromium", allowlist)
