"""`intercept run` of a stream holding the poison lines of issue 14, on the embedded default and
on Redis + PostgreSQL with two workers: each is kept aside with its line, field and reason,
every other line is applied, the healthy merchants' refunds are issued, and the run settles."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from adapters.db import schema as t
from tests.helpers import event, intercept, read_outcomes

AT = "2026-11-21T10:30:00+08:00"


def _placed(n: int, merchant: str) -> str:
    return json.dumps(event(f"p{n}", "order.placed", f"o{n}", merchant_id=merchant, paid_fen=5_000, category="standard",
                            instant_refund_tag=True))


def _refund(n: int, **changes) -> dict:
    ev = event(f"r{n}", "refund.requested", f"o{n}", at=AT, refund_id=f"rf{n}", amount_fen=5_000, reason="not_wanted")
    ev.update(changes)
    return ev


POISON = {
    # line number (1-based) -> (the line, what its reason must name)
    4: (json.dumps(_refund(2, occurred_at="9999-12-31T23:00:00-05:00")), "occurred_at"),
    5: (json.dumps(_refund(3, data={"refund_id": "rf3", "amount_fen": 2**63, "reason": "x"})), "data.amount_fen"),
    6: (json.dumps(_refund(4)).replace('"r4"', '"r4\\ud800"'), "event_id"),
    7: (json.dumps(_refund(5)).replace('"r5"', '"r5\\u0000"'), "event_id"),
    8: ("[" * 10_000 + "]" * 10_000, "nested"),
}


def _stream(tmp_path):
    lines = [_placed(1, "m-ok"), _placed(2, "m-poison"), json.dumps(_refund(1))]
    lines += [POISON[n][0] for n in sorted(POISON)]
    lines += [_placed(9, "m-later"), json.dumps(_refund(9))]
    path = tmp_path / "poison.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, len(lines)


@pytest.mark.parametrize("where", ["embedded", "redis+postgres"])
def test_poison_lines_are_kept_aside_and_the_run_settles_with_the_healthy_refunds_issued(tmp_path, where, request):
    stream, n_lines = _stream(tmp_path)
    env = {"INTERCEPT_HOME": str(tmp_path / "home")}
    args = ["run", str(stream), "--out", str(tmp_path / "out.jsonl"), "--timeout", "60", "--batch", "4"]
    if where == "embedded":
        url = f"sqlite:///{tmp_path / 'home' / 'intercept.sqlite'}"
    else:
        url = request.getfixturevalue("pg_url")
        env |= {"INTERCEPT_DATABASE_URL": url, "INTERCEPT_BROKER_URL": request.getfixturevalue("redis_url")}
        args += ["--workers", "2"]
    result = intercept(*args, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "settled" in result.stdout

    issued = {e["refund_id"] for e in read_outcomes(tmp_path / "out.jsonl") if e["type"] == "refund.issued"}
    assert issued == {"rf1", "rf9"}
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = {r.source_offset + 1: r for r in conn.execute(sa.select(t.input_states).where(t.input_states.c.source.like("run:%")))}
    engine.dispose()
    assert len(rows) == n_lines
    for line, (_, field) in POISON.items():
        assert rows[line].state == "aside", (line, rows[line].state)
        assert rows[line].reason.startswith(f"line {line}: ") and field in rows[line].reason, rows[line].reason
    assert {rows[n].state for n in rows if n not in POISON} == {"applied"}
