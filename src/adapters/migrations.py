"""Versioned SQL migrations for everything the eventsourcing library does not create."""

from pathlib import Path

import psycopg
import structlog

log = structlog.get_logger(__name__)
LOCK_KEY = 7_300_201  # an arbitrary advisory-lock number for "migrations running"


def migrations_dir(configured: Path | None = None) -> Path:
    """``MIGRATIONS_DIR`` when set, else the checkout's ``migrations/``."""
    return configured or Path(__file__).resolve().parents[2] / "migrations"


def apply_migrations(url: str, directory: Path | None = None) -> list[str]:
    """Apply every ``NNNN_name.sql`` not yet applied, in order, each in its own
    transaction; concurrent callers wait for each other. Returns what was applied."""
    directory = directory or migrations_dir()
    applied: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for path in sorted(directory.glob("*.sql")):
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = %s", (path.stem,)
                ).fetchone()
                if done:
                    continue
                conn.execute(path.read_text())
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (path.stem,))
                applied.append(path.stem)
                log.info("migration_applied", version=path.stem)
    return applied
