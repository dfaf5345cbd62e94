"""Whether the database and the broker can be reached, said in one line a person can act on.

A command that cannot reach a service it needs must say which one (its URL, password hidden)
and how to get it running, not print the driver's traceback. `check` is the quick look a
command takes before it starts workers or creates anything; `unreachable` recognises the same
failures when they surface later, wherever they come from (the CLI's group maps them).
"""

from __future__ import annotations

import re

# SQLSTATE classes of a refused connection: 08 connection exception, 28 authorization, 3D no
# such database, 57P03 cannot connect now (starting up). psycopg gives none when the socket
# itself fails (refused, unknown host, time-out).
_CONNECT_SQLSTATES = ("08", "28", "3D", "57P03")


class Unreachable(Exception):
    """A service a command needs could not be reached."""

    def __init__(self, service: str, url: str, detail: str):
        super().__init__(service, url, detail)
        self.service, self.url, self.detail = service, url, detail

    def __str__(self) -> str:
        return f"cannot reach the {self.service} at {safe_url(self.url)} ({self.detail}): {how_to_start(self.service, self.url)}"


def safe_url(url: str) -> str:
    """The URL with its password hidden (and a namespace's search_path option left out)."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    rest = rest.split("?", 1)[0]
    userinfo, at, hostpart = rest.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    return f"{scheme}://{userinfo}{at}{hostpart}"


def how_to_start(service: str, url: str) -> str:
    if service == "database":
        if url.startswith("sqlite"):
            return "check that its directory exists and is writable (INTERCEPT_HOME)"
        return "start PostgreSQL there (e.g. `service postgresql start`), or set INTERCEPT_DATABASE_URL (unset: the embedded SQLite file)"
    if service == "Redis":
        return "start Redis there (e.g. `redis-server --daemonize yes`), or set INTERCEPT_REDIS_URL"
    if url.startswith(("amqp", "pyamqp")):
        return "start RabbitMQ there (e.g. `service rabbitmq-server start`), or set INTERCEPT_BROKER_URL (unset: the in-process broker)"
    return "start Redis there (e.g. `redis-server --daemonize yes`), or set INTERCEPT_BROKER_URL (unset: the in-process broker)"


def _short(error: BaseException) -> str:
    """The driver's reason without its decoration: 'Connection refused', 'database "x" does not exist'."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = text.rsplit(": ", 1)[-1].strip()
    text = re.sub(r"^Error \d+ connecting to \S+\.\s*", "", text)  # redis-py's prefix
    return text.rstrip(".") or type(error).__name__


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _database_failure(error: BaseException) -> BaseException | None:
    """The driver error of a database that refused or lost the connection, if this is one."""
    import sqlalchemy as sa  # noqa: PLC0415

    orig = error.orig if isinstance(error, sa.exc.DBAPIError) else error
    module = type(orig).__module__
    if module.startswith("psycopg") and type(orig).__name__ == "OperationalError":
        state = getattr(orig, "sqlstate", None)
        return orig if state is None or state.startswith(_CONNECT_SQLSTATES) else None
    if module.startswith("sqlite3") and "unable to open database file" in str(orig):
        return orig
    return None


def unreachable(error: BaseException, database_url: str, broker_url: str, redis_url: str | None = None) -> Unreachable | None:
    """The service `error` says could not be reached, or None when it is another failure."""
    import kombu.exceptions  # noqa: PLC0415
    import redis  # noqa: PLC0415

    if isinstance(error, Unreachable):
        return error
    for e in _chain(error):
        failure = _database_failure(e)
        if failure is not None:
            return Unreachable("database", database_url, _short(failure))
        if isinstance(e, kombu.exceptions.OperationalError):
            return Unreachable("broker", broker_url, _short(e))
        if isinstance(e, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            # The token buckets' Redis when one is set apart and the error names its address.
            if redis_url and redis_url != broker_url and _host_port(redis_url) in str(e):
                return Unreachable("Redis", redis_url, _short(e))
            return Unreachable("broker", broker_url, _short(e))
    return None


def _host_port(url: str) -> str:
    host = safe_url(url).split("://", 1)[-1].rpartition("@")[2].split("/", 1)[0]
    return host if ":" in host else f"{host}:6379"


def check_database(url: str, timeout_s: float = 5.0) -> None:
    """Connect once; raise Unreachable when the database refuses. SQLite is a file: always there."""
    if url.startswith("sqlite"):
        return
    import sqlalchemy as sa  # noqa: PLC0415

    engine = sa.create_engine(url, connect_args={"connect_timeout": max(1, int(timeout_s))}, poolclass=sa.pool.NullPool)
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        failure = _database_failure(exc)
        if failure is None:
            raise
        raise Unreachable("database", url, _short(failure)) from None
    finally:
        engine.dispose()


def check_broker(url: str, timeout_s: float = 5.0) -> None:
    """Connect once; raise Unreachable when the broker refuses. The in-process broker is always there."""
    if url.startswith("memory://"):
        return
    import kombu  # noqa: PLC0415
    import kombu.exceptions  # noqa: PLC0415

    conn = kombu.Connection(url, connect_timeout=timeout_s)
    try:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, interval_max=0.2)
    except kombu.exceptions.OperationalError as exc:
        raise Unreachable("broker", url, _short(exc)) from None
    finally:
        conn.release()


def check(settings, *, database: bool = True, broker: bool = True) -> None:
    """What a command that starts work looks at first: the database (every shard database,
    with INTERCEPT_SHARD_URLS), then the broker."""
    if database:
        for url in dict.fromkeys(getattr(settings, "shard_database_urls", None) or [settings.database_url]):
            check_database(url)
    if broker:
        check_broker(settings.broker_url)
