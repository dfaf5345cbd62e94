"""Results on stdout, progress and logs on stderr, for the commands as a user runs them: a
script reads one stream while a person watches the other. (`run`, `replay`, `bench` and
`profile` are checked where their own tests run them: test_run_command, test_load_commands.)"""

from __future__ import annotations

import json
import os
import pty
import re
import socket
import subprocess
import sys
import time

import httpx

from tests.helpers import ROOT, intercept


def test_generate_to_stdout_writes_only_the_stream_there_and_its_count_to_stderr():
    result = intercept("generate", "--cases", "40", "--seed", "2", env={})
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events and all({"event_id", "type", "occurred_at"} <= e.keys() for e in events)
    assert result.stderr.splitlines() == [f"{len(events)} events for 40 orders (seed 2) -> -"]


def test_generate_draws_a_progress_bar_only_when_stderr_is_a_terminal(tmp_path):
    out = tmp_path / "stream.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCEPT_")} | {"TERM": "xterm", "COLUMNS": "100"}
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "workers", "generate", "--cases", "2000", "--out", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other end closed: the command is done
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    assert proc.wait(timeout=120) == 0
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))
    assert re.search(r"orders\s.*2000/2000", drawn), drawn[-500:]

    redirected = intercept("generate", "--cases", "2000", "--out", str(out), env={})
    assert redirected.stderr.splitlines() == [redirected.stderr.strip()]  # the count line, nothing drawn
    assert "2000/2000" not in redirected.stderr


def test_sample_announces_the_files_it_wrote_on_stderr(tmp_path):
    result = intercept("sample", "--out", str(tmp_path / "s.jsonl"), "--docs", str(tmp_path / "s.md"), env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert re.fullmatch(rf"wrote \d+ lines to {tmp_path / 's.jsonl'}\nwrote {tmp_path / 's.md'}\n", result.stderr)


def test_load_report_prints_its_figures_on_stdout(tmp_path):
    measurements = tmp_path / "m.jsonl"
    measurements.write_text("".join(json.dumps({"event_id": f"e{i}", "published_at": 100.0 + i / 10, "committed_at": 100.05 + i / 10}) + "\n"
                                    for i in range(50)))
    outcomes = tmp_path / "o.jsonl"
    outcomes.write_text(json.dumps({"event_id": "out-1", "type": "refund.issued", "data": {"route": "instant"}}) + "\n")
    result = intercept("load-report", "--measurements", str(measurements), "--outcomes", str(outcomes),
                       "--out", str(tmp_path / "r"), env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("50 events, ") and str(tmp_path / "r") in result.stdout
    assert result.stderr == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_logs_every_request_on_stderr_and_writes_nothing_to_stdout(tmp_path, pg_url, redis_url):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCEPT_")} | {
        "INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url,
        "INTERCEPT_WEBHOOK_SECRETS": "s"}
    proc = subprocess.Popen([sys.executable, "-m", "workers", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
    finally:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=30)
    assert stdout == ""
    assert '"GET /healthz HTTP/1.1" 200' in stderr
