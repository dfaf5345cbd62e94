"""`intercept chaos` as CI runs it: a small generated stream through the production processes,
clean and then under every fault kind, on Redis and on RabbitMQ (each a server the command
starts itself), and its verdict read from the `--json` line (issue 9; docs/reliability.md).

The full run (20,000 events) is in docs/reliability.md with its command; this one is the same
code on fewer events, so each fault falls among fewer messages.
"""

from __future__ import annotations

import json
import shutil

import pytest

from loadtest.chaos.faults import PLAN
from tests.helpers import PG_ADMIN_DSN, intercept

EVENTS = 1500


# Two runs of real processes and servers, faults and settling included: longer than the suite's
# 300 s per test (a bound against a hung run, not a timing assertion).
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_chaos_loses_nothing_and_duplicates_nothing_under_every_fault(tmp_path, broker, pg_url):
    # pg_url: the PostgreSQL server is there (or the test says how to start it); the command
    # creates a database of its own for each of its two runs and drops them.
    server = "rabbitmq-server" if broker == "rabbitmq" else "redis-server"
    assert shutil.which(server), f"{server} is needed (.ci/run installs it)"
    run = intercept("chaos", "--events", str(EVENTS), "--seed", "5", "--broker", broker, "--postgres", PG_ADMIN_DSN, "--json",
                    env={"INTERCEPT_HOME": str(tmp_path)}, timeout=1500)
    assert run.stdout.strip(), run.stderr[-4000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]

    assert figures["events"] >= EVENTS
    assert figures["faults_injected"] == PLAN, "every fault kind, as many as planned"
    assert figures["faults_missed"] == {}
    for name in ("lost", "duplicate_refunds", "duplicate_intercepts", "outcome_diffs", "unaccounted_inputs",
                 "refunds_unmatched", "intercepts_unmatched"):
        assert figures[name] == 0, name
    # The run did real work: refunds paid at the provider, each under one key, equal to the events.
    assert figures["refunds_issued"] == figures["refunds_effected"] > 50
    assert figures["intercepts_effected"] > 0
    assert figures["fees_fen"]["clean"] == figures["fees_fen"]["faulted"]
    # The aimed kills made the provider be asked again under the same key, and it paid once.
    assert figures["refunds_called_again"] >= 1
    assert figures["relay_acked"]["clean"] == figures["relay_acked"]["faulted"]
    assert "verdict: PASS" in run.stdout
