"""`intercept simulate` under the default policy gives the outcomes pinned for `intercept run`
(tests/pinned.py): the same outbound events, id for id, and the same accounting of inputs."""

from __future__ import annotations

from domain.policy import DEFAULT_POLICY
from loadtest.generate import dump_line, generate_stream
from loadtest.report import outcome_digest
from loadtest.simulate import order_stream, replay
from tests.helpers import ROOT
from tests.pinned import GENERATED_DIGEST, GENERATED_INPUTS, SAMPLE_DIGEST, SAMPLE_INPUTS


def _simulated(lines: list[str]) -> tuple[str, dict[str, int]]:
    stream = order_stream(lines)
    run = replay(stream, DEFAULT_POLICY)
    domain_asides = sum(run.asides.values())
    counts = {"applied": len(stream.inputs) - domain_asides, "aside": len(stream.refused) + domain_asides,
              "duplicate": stream.duplicates}
    assert stream.parked == 0
    return outcome_digest(run.envelopes()), counts


def test_simulate_reproduces_the_pinned_sample_outcomes():
    lines = (ROOT / "workers" / "samples" / "sample.jsonl").read_text(encoding="utf-8").splitlines()
    assert _simulated(lines) == (SAMPLE_DIGEST, SAMPLE_INPUTS)


def test_simulate_reproduces_the_pinned_generated_outcomes():
    lines = [dump_line(e) for e in generate_stream(400, 3)]
    assert _simulated(lines) == (GENERATED_DIGEST, GENERATED_INPUTS)
