"""`intercept beat` keeps its schedule in INTERCEPT_HOME, not in the directory it was started
from (in the image, a directory its unprivileged user cannot write)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import ROOT, wait_for


def test_beat_writes_its_schedule_in_intercept_home(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCEPT_")}
    env.update(INTERCEPT_HOME=str(home), PYTHONPATH=str(ROOT))
    with open(tmp_path / "beat.log", "wb") as log:
        beat = subprocess.Popen([sys.executable, "-m", "workers", "beat", "-l", "INFO"], cwd=cwd, env=env, stdout=log, stderr=log)
        try:
            wait_for(lambda: list(home.glob("celerybeat-schedule*")) or list(cwd.iterdir()) or beat.poll() is not None,
                     timeout=60, what="beat's schedule")
        finally:
            beat.terminate()
            beat.wait(timeout=30)
    assert list(home.glob("celerybeat-schedule*")), (tmp_path / "beat.log").read_text()[-2000:]
    assert list(cwd.iterdir()) == []
