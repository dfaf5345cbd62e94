"""The bench's no-op task exists only on the workers the bench starts."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

LIST_TASKS = (
    "from workers.app import app; app.loader.import_default_modules(); "  # what a worker imports at start
    "print(sorted(t for t in app.tasks if t.startswith('intercept.')))"
)


def _registered(*extra_imports: str) -> str:
    code = "".join(f"import {m}; " for m in extra_imports) + LIST_TASKS
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def test_a_production_worker_registers_no_bench_task():
    assert _registered() == "['intercept.actions', 'intercept.apply', 'intercept.ingest', 'intercept.sweep']"


def test_the_bench_module_adds_the_no_op_task():
    from loadtest.bench import NOOP_MODULE, NOOP_TASK

    assert NOOP_TASK in _registered(NOOP_MODULE)
