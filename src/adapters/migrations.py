"""Versioned SQL migrations for everything the eventsourcing library does not create."""

from pathlib import Path

import psycopg
import structlog

from adapters.task_queue import create_schema as create_task_queue_schema

log = structlog.get_logger(__name__)
LOCK_KEY = 7_300_201  # an arbitrary advisory-lock number for "migrations running"


def migrations_dir(configured: Path | None = None) -> Path:
    """``MIGRATIONS_DIR`` when set, else the checkout's ``migrations/``."""
    return configured or Path(__file__).resolve().parents[2] / "migrations"


def apply_migrations(url: str, directory: Path | None = None) -> list[str]:
    """Apply every ``NNNN_name.sql`` not yet applied, in order, each in its own
    transaction, then create the task queue's tables if missing (dramatiq-postgres's own
    schema); concurrent callers wait for each other. Returns what was applied."""
    directory = directory or migrations_dir()
    applied: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            # Under the lock too: two sessions creating it at once would both try to.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
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
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            if create_task_queue_schema(conn):
                applied.append("task-queue")
                log.info("migration_applied", version="task-queue")
    return applied
