"""Sessions and single-use keys in PostgreSQL (tables in migrations/0005_sessions.sql)."""

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from application.ports import OneTimeUse, Session, SessionStore

SESSION_COLUMNS = (
    "id, account_id, amr, created_at, idle_expires_at, absolute_expires_at, revoked_at IS NOT NULL"
)


def _session(row: tuple[Any, ...] | None) -> Session | None:
    if row is None:
        return None
    return Session(row[0], row[1], tuple(row[2]), row[3], row[4], row[5], bool(row[6]))


class PostgresSessionStore(SessionStore):
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def create(self, session: Session) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO sessions (id, account_id, amr, created_at, idle_expires_at,"
                " absolute_expires_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    session.id,
                    session.account_id,
                    list(session.amr),
                    session.created_at,
                    session.idle_expires_at,
                    session.absolute_expires_at,
                ),
            )

    def get(self, session_id: str) -> Session | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = %s",  # noqa: S608
                (session_id,),
            ).fetchone()
        return _session(row)

    def touch(self, session_id: str, idle_expires_at: datetime) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE sessions SET idle_expires_at = %s WHERE id = %s",
                (idle_expires_at, session_id),
            )

    def revoke(self, session_id: str, reason: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE sessions SET revoked_at = now(), revoked_reason = %s"
                " WHERE id = %s AND revoked_at IS NULL",
                (reason, session_id),
            )

    def revoke_account(self, account_id: UUID, reason: str) -> int:
        with self._pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE sessions SET revoked_at = now(), revoked_reason = %s"
                " WHERE account_id = %s AND revoked_at IS NULL",
                (reason, account_id),
            )
            return int(cursor.rowcount)

    def bind_browser(self, session_id: str, token_hash: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE sessions SET browser_token_hash = %s WHERE id = %s",
                (token_hash, session_id),
            )

    def by_browser_token(self, token_hash: str) -> Session | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE browser_token_hash = %s",  # noqa: S608
                (token_hash,),
            ).fetchone()
        return _session(row)


class PostgresOneTimeUse(OneTimeUse):
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def claim(self, key: str, expires_at: datetime) -> bool:
        with self._pool.connection() as conn:
            cursor = conn.execute(
                "INSERT INTO used_once (key, expires_at) VALUES (%s, %s)"
                " ON CONFLICT (key) DO NOTHING",
                (key, expires_at),
            )
            return bool(cursor.rowcount == 1)
