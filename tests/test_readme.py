"""The README contract: a Quick start block of exactly two commands, and CI runs the second."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^#+\s*Quick start.*?^```\w*\n(.*?)^```", text, re.S | re.M | re.I)
    assert match, "README.md needs a 'Quick start' section with a code block"
    return [line.strip() for line in match.group(1).splitlines() if line.strip()]


def test_quick_start_has_exactly_a_run_and_a_test_command():
    commands = quick_start()
    assert len(commands) == 2
    assert "serve --demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    assert quick_start()[1] in (ROOT / ".ci" / "run").read_text().splitlines()
