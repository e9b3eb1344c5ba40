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


def configuration_table() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Configuration\n(.*?)^## ", text, re.S | re.M)
    assert match, "README.md needs a 'Configuration' section"
    return match.group(1)


def test_every_setting_has_a_row_in_the_configuration_table():
    from adapters.settings import Settings

    variables = [
        line.split("|")[1] for line in configuration_table().splitlines() if line.startswith("| `")
    ]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", "\n".join(variables)))
    expected = {name.upper() for name in Settings.model_fields}
    assert expected - documented == set(), "settings without a README row"
    assert documented - expected - {"TEST_DATABASE_URL"} == set(), "rows without a setting"
