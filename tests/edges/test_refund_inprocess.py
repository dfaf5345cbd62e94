from adapters.simulators.refund_inprocess import InProcessRefundSimulator


def test_same_key_pays_once_and_returns_the_same_answer():
    sim = InProcessRefundSimulator()
    first = sim.issue("r-1-refund", "r-1", 1200)
    second = sim.issue("r-1-refund", "r-1", 1200)
    assert first.status == "confirmed"
    assert second == first
    assert sim.effects("r-1-refund") == 1
    assert sim.calls("r-1-refund") == 2
    assert sim.total_paid_fen() == 1200


def test_refused_refund_moves_no_money():
    sim = InProcessRefundSimulator(refuse_refund_ids=frozenset({"r-bad"}))
    result = sim.issue("r-bad-refund", "r-bad", 500)
    assert result.status == "refused" and result.reason
    assert sim.effects("r-bad-refund") == 0
    assert sim.query("r-bad-refund").status == "refused"


def test_unknown_answer_was_applied_and_query_reconciles_it():
    sim = InProcessRefundSimulator(unknown_rate=1.0)
    assert sim.issue("k", "r", 100).status == "unknown"
    assert sim.effects("k") == 1
    assert sim.query("k").status == "confirmed"
    assert sim.query("never-seen").status == "unknown"


def test_outcomes_depend_on_seed_and_key_not_on_call_order():
    keys = [f"k{i}" for i in range(50)]
    a = InProcessRefundSimulator(seed=7, refuse_rate=0.3)
    b = InProcessRefundSimulator(seed=7, refuse_rate=0.3)
    ra = {k: a.issue(k, k, 100).status for k in keys}
    rb = {k: b.issue(k, k, 100).status for k in reversed(keys)}
    assert ra == rb
    assert {"confirmed", "refused"} <= set(ra.values())
