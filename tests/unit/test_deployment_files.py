"""The Dockerfile and docker-compose.yml hold together without a Docker engine: every command
they run is one `intercept` provides (with options it accepts), secrets come from the
environment, and only the ingress is published."""

from __future__ import annotations

import json
import re

import click
import yaml

from tests.helpers import ROOT
from workers.cli import main

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
OUR_IMAGE = "refund-intercept:latest"
PASS_THROUGH = {"worker", "beat"}  # their arguments go to Celery
SECRET_NAME = re.compile(r"(PASSWORD|PASS|SECRETS?|KEY|SALT|AUTH)$")
FROM_ENVIRONMENT = re.compile(r"^\$\{[A-Z_]+:\?[^}]+\}$")
# A user name may precede the secret (Flower's basic auth is user:password).
SECRET_PART = re.compile(r"^(?:[a-z]+:)?(\$\{[A-Z_]+:\?[^}]+\})$")


def _assert_intercept_command(argv: list[str]) -> None:
    assert argv[0] == "intercept", argv
    command = main.get_command(click.Context(main), argv[1])
    assert command is not None, f"intercept has no command {argv[1]!r}"
    if argv[1] not in PASS_THROUGH:
        command.make_context(argv[1], list(argv[2:]))  # raises on an option it does not take


def _ours() -> dict[str, dict]:
    return {name: s for name, s in COMPOSE["services"].items() if s.get("image") == OUR_IMAGE or "build" in s}


def test_every_service_of_our_image_runs_a_command_intercept_provides():
    services = _ours()
    assert set(services) == {"migrate", "worker", "beat", "ingress", "sim"}
    for service in services.values():
        _assert_intercept_command(service["command"])


def test_the_images_default_command_is_one_intercept_provides_and_it_is_probed():
    (cmd,) = re.findall(r"^CMD (\[.*\])$", DOCKERFILE, flags=re.M)
    _assert_intercept_command(json.loads(cmd))
    assert re.search(r"^EXPOSE 8080 9100$", DOCKERFILE, flags=re.M)  # the ingress, a worker's /metrics
    assert "HEALTHCHECK" in DOCKERFILE and "/healthz" in DOCKERFILE
    # Every package the CLI imports is in the image (the CLI imports the load tools' commands).
    for package in ("domain", "app", "adapters", "workers", "loadtest"):
        assert f"COPY {package} ./{package}" in DOCKERFILE, package


def test_the_unprivileged_user_can_write_intercept_home_where_beat_keeps_its_schedule():
    assert re.search(r"^USER nobody$", DOCKERFILE, flags=re.M)
    (home,) = re.findall(r"^ENV INTERCEPT_HOME=(\S+)$", DOCKERFILE, flags=re.M)
    assert f"chown nobody:nogroup {home}" in DOCKERFILE


def test_databases_and_brokers_are_not_published_on_the_host():
    published = {name: s["ports"] for name, s in COMPOSE["services"].items() if s.get("ports")}
    assert published.pop("ingress") == ["8080:8080"]
    # The operators' consoles, on the host's loopback only (an SSH tunnel or a proxy reaches them).
    assert published == {"flower": ["127.0.0.1:5555:5555"], "prometheus": ["127.0.0.1:9090:9090"],
                         "grafana": ["127.0.0.1:3000:3000"]}


def test_secrets_come_from_the_environment_and_compose_refuses_to_start_without_them():
    for name, service in COMPOSE["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert SECRET_PART.match(str(value)), f"{name}: {key} is written in the file"
            if key == "INTERCEPT_DATABASE_URL":
                password = re.match(r"^postgresql\+psycopg://intercept:(.*)@postgres:5432/intercept$", value).group(1)
                assert FROM_ENVIRONMENT.match(password), f"{name}: the database password is written in the file"
    assert "change-me" not in (ROOT / "docker-compose.yml").read_text()
