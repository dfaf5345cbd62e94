"""Which failures mean "a service is out of reach", and the one line that says so."""

from __future__ import annotations

import click
import kombu.exceptions
import psycopg
import redis
import sqlalchemy as sa
from click.testing import CliRunner

from workers.cli import InterceptGroup
from workers.reachability import Unreachable, safe_url, unreachable

DB = "postgresql+psycopg://intercept:s3cret@db.example:5432/intercept?options=-csearch_path%3Dreplay_0123456789"
BROKER = "redis://:s3cret@redis.example:6379/0"


def _wrapped(orig: Exception) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, orig)


def test_urls_are_shown_without_their_password_or_a_namespaces_options():
    assert safe_url(DB) == "postgresql+psycopg://intercept:***@db.example:5432/intercept"
    assert safe_url(BROKER) == "redis://:***@redis.example:6379/0"
    assert safe_url("sqlite:////tmp/x.sqlite") == "sqlite:////tmp/x.sqlite"


def test_a_refused_database_connection_names_the_database_and_how_to_start_it():
    refused = psycopg.OperationalError(
        'connection failed: connection to server at "10.0.0.5", port 5432 failed: Connection refused\n'
        "\tIs the server running on that host and accepting TCP/IP connections?")
    problem = unreachable(_wrapped(refused), DB, BROKER)
    assert str(problem) == (
        "cannot reach the database at postgresql+psycopg://intercept:***@db.example:5432/intercept (Connection refused): "
        "start PostgreSQL there (e.g. `service postgresql start`), or set INTERCEPT_DATABASE_URL (unset: the embedded SQLite file)")


def test_a_missing_database_counts_as_out_of_reach_with_the_servers_reason():
    missing = psycopg.OperationalError('connection failed: ... port 5432 failed: FATAL:  database "intercept" does not exist')
    assert unreachable(_wrapped(missing), DB, BROKER).detail == 'database "intercept" does not exist'


def test_a_refused_broker_is_the_broker_whether_kombu_or_redis_py_says_it():
    by_kombu = unreachable(kombu.exceptions.OperationalError("Error 111 connecting to redis.example:6379. Connection refused."), DB, BROKER)
    by_redis = unreachable(redis.exceptions.ConnectionError("Error 111 connecting to redis.example:6379. Connection refused."), DB, BROKER)
    for problem in (by_kombu, by_redis):
        assert (problem.service, problem.detail) == ("broker", "Connection refused")
        assert str(problem).startswith("cannot reach the broker at redis://:***@redis.example:6379/0 (Connection refused): start Redis")


def test_the_token_buckets_redis_is_named_when_it_is_the_one_refusing():
    buckets = "redis://buckets.example:6380/1"
    problem = unreachable(redis.exceptions.ConnectionError("Error 111 connecting to buckets.example:6380. Connection refused."),
                          DB, BROKER, buckets)
    assert (problem.service, problem.url) == ("Redis", buckets)


def test_a_cause_further_down_the_chain_is_found():
    try:
        try:
            raise kombu.exceptions.OperationalError("Error 111 connecting to redis.example:6379. Connection refused.")
        except kombu.exceptions.OperationalError as exc:
            raise RuntimeError("publishing failed") from exc
    except RuntimeError as outer:
        assert unreachable(outer, DB, BROKER).service == "broker"


def test_failures_of_a_reachable_database_are_not_mistaken_for_it():
    serialization = psycopg.errors.SerializationFailure("could not serialize access")
    assert unreachable(_wrapped(serialization), DB, BROKER) is None
    import sqlite3

    syntax = sa.exc.OperationalError("SELEC 1", {}, sqlite3.OperationalError('near "SELEC": syntax error'))
    assert unreachable(syntax, "sqlite:///x.sqlite", "memory://") is None
    assert unreachable(ValueError("no"), DB, BROKER) is None


def _group_running(error: Exception) -> click.Group:
    @click.group(cls=InterceptGroup)
    def group() -> None:
        pass

    @group.command()
    def work() -> None:
        raise error

    return group


def test_the_group_turns_an_unreachable_service_into_one_line_and_status_1(monkeypatch):
    monkeypatch.setenv("INTERCEPT_DATABASE_URL", DB)
    monkeypatch.setenv("INTERCEPT_BROKER_URL", BROKER)
    from workers import settings as settings_mod

    monkeypatch.setattr(settings_mod, "_current", None)
    refused = _wrapped(psycopg.OperationalError("connection failed: ... failed: Connection refused"))
    result = CliRunner().invoke(_group_running(refused), ["work"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"Error: {Unreachable('database', DB, 'Connection refused')}"]


def test_the_group_lets_any_other_failure_through():
    result = CliRunner().invoke(_group_running(ValueError("a defect")), ["work"])
    assert isinstance(result.exception, ValueError)
