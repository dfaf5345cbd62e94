"""The deployment stack holds together without a Docker engine (none runs here): the compose
file's services, their order, health checks, restart policies and configuration; the files it
mounts for Prometheus and Grafana; the alert rules (promtool checks and unit-tests them); and
the dashboard and alerts use only metrics the project exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import Counter, Histogram

from adapters.metrics import instruments
from tests.helpers import cannot_run_here
from adapters.metrics.stored_state import StoredStateCollector
from tests.helpers import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DEPLOY = ROOT / "deploy"
PROMETHEUS = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
ALERTS = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
DASHBOARD = json.loads((DEPLOY / "grafana" / "dashboards" / "intercept.json").read_text())
LONG_RUNNING = set(SERVICES) - {"migrate"}


def _seconds(duration: str) -> float:
    value, unit = re.fullmatch(r"(\d+)(s|m)", duration).groups()
    return int(value) * (60 if unit == "m" else 1)


def test_redis_keeps_every_message_and_never_evicts():
    command = SERVICES["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_rabbitmq_and_the_simulators_start_only_with_their_profiles():
    profiled = {name: s["profiles"] for name, s in SERVICES.items() if "profiles" in s}
    assert profiled == {"rabbitmq": ["rabbitmq"], "sim": ["dev"]}


def test_the_migration_runs_once_before_the_processes_that_use_the_database():
    migrate = SERVICES["migrate"]
    assert migrate["command"] == ["intercept", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("worker", "beat", "ingress"):
        needs = SERVICES[name]["depends_on"]
        assert needs["migrate"] == {"condition": "service_completed_successfully"}, name
        assert needs["postgres"]["condition"] == needs["redis"]["condition"] == "service_healthy", name
        assert "rabbitmq" not in needs, name  # only there with its profile: the processes retry the broker instead


def test_every_long_running_service_restarts_and_is_probed():
    for name in LONG_RUNNING:
        service = SERVICES[name]
        assert service["restart"] == "unless-stopped", name
        check = service["healthcheck"]
        if name == "beat":
            assert check == {"disable": True}  # it serves nothing; a dead beat is a stopped, restarted container
        else:
            assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, name


def test_the_workers_grace_period_outlasts_their_soft_shutdown():
    from workers.app import app  # noqa: PLC0415

    worker = SERVICES["worker"]
    assert _seconds(worker["stop_grace_period"]) >= app.conf.worker_soft_shutdown_timeout + 5
    assert "REMAP_SIGTERM" not in worker["environment"]  # `intercept worker` remaps SIGTERM itself


def test_prometheus_scrapes_the_ports_the_processes_serve_metrics_on():
    jobs = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}
    ingress_port = SERVICES["ingress"]["command"][SERVICES["ingress"]["command"].index("--port") + 1]
    assert jobs["intercept-ingress"]["static_configs"] == [{"targets": [f"ingress:{ingress_port}"]}]
    (dns,) = jobs["intercept-worker"]["dns_sd_configs"]
    assert dns["names"] == ["worker"] and str(dns["port"]) == SERVICES["worker"]["environment"]["INTERCEPT_METRICS_PORT"]


def _mounts(service: str) -> dict[str, str]:
    """container path -> host path of a service's bind mounts (host paths relative to the repo)."""
    mounts = {}
    for volume in SERVICES[service]["volumes"]:
        host, container = volume.split(":")[:2]
        if host.startswith("./"):
            assert (ROOT / host).exists(), f"{service} mounts {host}, which is not in the repository"
            mounts[container] = host
    return mounts


def test_prometheus_and_grafana_mount_files_of_the_repository_that_fit_together():
    prometheus = _mounts("prometheus")
    assert prometheus["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    for rule_file in PROMETHEUS["rule_files"]:
        assert f"/etc/prometheus/{rule_file}" in prometheus
    grafana = _mounts("grafana")
    provisioning = ROOT / grafana["/etc/grafana/provisioning"]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "intercept.yml").read_text())["providers"]
    assert grafana[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
    used = {p["datasource"]["uid"] for p in DASHBOARD["panels"] if "datasource" in p}
    used |= {t["datasource"]["uid"] for p in DASHBOARD["panels"] for t in p.get("targets", [])}
    assert used == {source["uid"]}
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/intercept.json"


def test_every_intercept_variable_the_stack_sets_is_one_the_project_reads():
    source = "\n".join(p.read_text() for pkg in ("workers", "adapters", "app", "loadtest") for p in (ROOT / pkg).rglob("*.py"))
    for name, service in SERVICES.items():
        for key in service.get("environment") or {}:
            if key.startswith("INTERCEPT_"):
                assert f'"{key}"' in source, f"{name}: nothing reads {key}"


def _exported_names(tmp_path) -> set[str]:
    names = {"up"}
    for metric in vars(instruments).values():
        if isinstance(metric, Counter):
            names.add(metric._name + "_total")
        elif isinstance(metric, Histogram):
            names |= {metric._name + suffix for suffix in ("_bucket", "_count", "_sum")}
    # The stored-state gauges, as a scrape computes them from a real (SQLite) database.
    from adapters.db.engine import make_engine, migrate  # noqa: PLC0415

    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    families = list(StoredStateCollector(url, None).collect())
    assert next(f for f in families if f.name == "intercept_state_up").samples[0].value == 1
    names |= {f.name for f in families}  # a family without samples (no broker here) is still exported
    return names


def _used(expr: str) -> set[str]:
    return set(re.findall(r"\b(intercept_[a-z_]+|up)\b(?=[{\[\s)]|$)", expr))


def test_the_dashboard_and_the_alerts_use_only_metrics_the_project_exports(tmp_path):
    exported = _exported_names(tmp_path)
    exprs = [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", [])]
    exprs += [rule["expr"] for group in ALERTS["groups"] for rule in group["rules"]]
    used = set().union(*map(_used, exprs))
    assert used - exported == set()
    # Every family the project exports is on the dashboard (the scrape's own timing aside).
    families = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in exported}
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in used}
    assert families - shown == {"intercept_state_scrape_duration_seconds"}


def test_each_alert_has_a_severity_and_words_for_the_person_paged():
    rules = [rule for group in ALERTS["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    assert {"InterceptParkedInputsStuck", "InterceptTimerBacklog", "InterceptRefundFailures", "InterceptDeadLettersRising",
            "InterceptCarrierErrorRate"} <= names
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        cannot_run_here(f"{name} is not installed (Debian: apt-get install {package}; .ci/run installs it)")
    return found


def _promtool() -> str:
    return _tool("promtool", "prometheus")


def test_docker_compose_reads_the_file_with_every_profile():
    secrets = {name: "x" for name in re.findall(r"\$\{(INTERCEPT_[A-Z_]+):\?", (ROOT / "docker-compose.yml").read_text())}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("INTERCEPT_")}, **secrets, "COMPOSE_PROFILES": "dev,rabbitmq"}
    done = subprocess.run([_tool("docker-compose", "docker-compose"), "config"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert set(yaml.safe_load(done.stdout)["services"]) == set(SERVICES)
    # Without its secrets it refuses to start, naming the one missing.
    missing = subprocess.run([_tool("docker-compose", "docker-compose"), "config", "-q"], cwd=ROOT,
                             env={k: v for k, v in env.items() if k != "INTERCEPT_DB_PASSWORD"}, capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode != 0 and "INTERCEPT_DB_PASSWORD" in missing.stderr


@pytest.mark.parametrize("args", [["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"],
                                  ["test", "rules", "alerts_test.yml"]], ids=["config", "rules", "rule-tests"])
def test_promtool_accepts_the_config_and_the_rules_and_their_tests_pass(args):
    done = subprocess.run([_promtool(), *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
