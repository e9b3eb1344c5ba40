"""The embedded PostgreSQL starts with room for ``serve --workers N``: initdb's 100
connections ran out at ``--workers 2`` under booking load (bookings stalled, then ``too
many clients``). A new data folder gets ``EMBEDDED_SETTINGS``; one made before them gets
them at its server's next start."""

import subprocess
import sys
from pathlib import Path

import pytest

from adapters.database import EMBEDDED_CONFIG, EMBEDDED_SETTINGS

pytestmark = pytest.mark.e2e

SHOW = (
    "import sys; from pathlib import Path; import psycopg;"
    " from adapters.database import start_embedded, with_dbname;"
    " url = with_dbname(start_embedded(Path(sys.argv[1])), 'postgres');"
    " print(psycopg.connect(url).execute('SHOW max_connections').fetchone()[0])"
)


def max_connections(data_dir: Path) -> str:
    """The setting as a process that starts the server (and stops it at exit) reads it."""
    result = subprocess.run(
        [sys.executable, "-c", SHOW, str(data_dir)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_new_data_folder_allows_the_connections_serve_needs(tmp_path):
    assert max_connections(tmp_path / "data") == EMBEDDED_SETTINGS["max_connections"]


def test_a_folder_made_before_the_settings_gets_them_once(tmp_path):
    data = tmp_path / "data"
    max_connections(data)
    conf = data / "pgdata" / "postgresql.conf"
    include = f"include_if_exists = '{EMBEDDED_CONFIG}'\n"
    conf.write_text(conf.read_text().replace(include, ""))  # as initdb left it
    (data / "pgdata" / EMBEDDED_CONFIG).unlink()
    assert max_connections(data) == EMBEDDED_SETTINGS["max_connections"]
    assert max_connections(data) == EMBEDDED_SETTINGS["max_connections"]
    assert conf.read_text().count(include) == 1
