"""The policy document (docs/policy.md): the default round-trips, the shipped file is the SPEC's
defaults, and a bad document is refused naming the key and the reason."""

from __future__ import annotations

import pytest

from adapters.policy_file import policy_toml, read_policy_file, read_policy_text
from domain.events import InvalidEvent, decode_event
from domain.policy import DEFAULT_POLICY, Policy
from domain.policy_document import PolicyError, parse_policy, policy_document
from tests.helpers import ROOT


def test_default_policy_document_round_trips_through_toml():
    text = policy_toml(DEFAULT_POLICY)
    assert read_policy_text(text) == DEFAULT_POLICY
    assert parse_policy(policy_document(DEFAULT_POLICY)) == DEFAULT_POLICY


def test_shipped_default_file_holds_the_spec_values():
    p = read_policy_file(ROOT / "docs" / "policies" / "default.toml")
    assert p == DEFAULT_POLICY
    # The SPEC's figures, written out again here on purpose (docs/domain.md §5, §6).
    assert p.instant_refund_limit_fen == 30_000
    assert p.merchant_intercept_deadline.total_seconds() == 2 * 3600
    assert p.carrier_answer_deadline.total_seconds() == 48 * 3600
    assert p.stall_after.total_seconds() == 72 * 3600
    assert p.return_window.days == 7
    assert p.intercept_fee_fen == {"zto": 300, "yunda": 300, "yto": 400}
    assert p.claim_cap_fen == 100_000 and p.default_free_intercepts_per_month == 3
    assert not p.cost_aware.enabled


def test_an_empty_document_is_the_default_and_keys_left_out_take_spec_values():
    assert parse_policy({}) == DEFAULT_POLICY
    p = parse_policy({"name": "slow-stall", "stall": {"after": "96h"}})
    assert p.stall_after.total_seconds() == 96 * 3600
    assert p.return_window == DEFAULT_POLICY.return_window


def test_version_is_name_and_content_hash():
    renamed = parse_policy({"name": "other"})
    assert renamed.content_hash == DEFAULT_POLICY.content_hash
    assert renamed.version == f"other@{DEFAULT_POLICY.content_hash}" != DEFAULT_POLICY.version
    changed = parse_policy({"claims": {"cap_fen": 50_000}})
    assert changed.content_hash != DEFAULT_POLICY.content_hash
    assert len(parse_policy({"name": "a" * 17}).version) <= 32


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[fees.per_carrier_fen]\nzto = -1', "fees.per_carrier_fen.zto", "between 0 and"),
        ('[carrier_intercept]\nmin_distance_km = "far"', "carrier_intercept.min_distance_km", "must be a number, not a string"),
        ('[stall]\nafterr = "72h"', "stall.afterr", "unknown key"),
        ('[stall]\nafter = "3 days"', "stall.after", "must be a duration"),
        ('[returns]\nwindow = "0h"', "returns.window", "longer than 0"),
        ('[claims]\ncap_fen = true', "claims.cap_fen", "integer number of fen, not a boolean"),
        ('[claims]\ncap_fen = 10.5', "claims.cap_fen", "integer number of fen, not a number"),
        ('[carrier_intercept]\nnon_interceptable_categories = ["frozen"]', "carrier_intercept.non_interceptable_categories[0]",
         "must be one of standard, fresh, virtual, custom"),
        ('[carrier_intercept]\ncarriers_with_api = ["zto"]\ncarriers_with_distance_rule = ["zto", "yunda"]',
         "carrier_intercept.carriers_with_distance_rule", "without an intercept API: yunda"),
        ('[cost_aware]\nprior_success_rate = 1.5', "cost_aware.prior_success_rate", "between 0 and 1"),
        ('name = "a name with spaces"', "name", "letters, digits"),
        ('stall = 3', "stall", "must be a table"),
        ('colour = "blue"', "colour", "unknown key"),
    ],
)
def test_invalid_policy_is_refused_naming_the_key(text, key, reason):
    with pytest.raises(PolicyError) as caught:
        read_policy_text(text)
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{key}: ")


def test_a_file_that_is_not_toml_is_refused_saying_where():
    with pytest.raises(PolicyError, match="is not valid TOML"):
        read_policy_text("[fees\nzto = 3", "bad.toml")


def test_policy_published_event_passes_the_gate_or_names_the_key():
    event = {"event_id": "pol-1", "type": "policy.published", "occurred_at": "2026-11-01T08:00:00+08:00",
             "data": {"merchant_id": "m-1", "policy": policy_document(DEFAULT_POLICY)}}
    decoded = decode_event(event)
    assert decoded.order_id is None and decoded.data.merchant_id == "m-1"
    event["data"]["policy"] = {"claims": {"cap_fen": "lots"}}
    with pytest.raises(InvalidEvent) as caught:
        decode_event(event)
    assert caught.value.field == "data.policy.claims.cap_fen"
    assert caught.value.event_id == "pol-1"


def test_durations_are_written_as_spec_states_them():
    doc = policy_document(DEFAULT_POLICY)
    assert doc["stall"]["after"] == "72h"
    assert doc["carrier_intercept"]["answer_deadline"] == "48h"
    assert doc["returns"]["window"] == "7d"
    assert parse_policy({"merchant_intercept": {"deadline": "1h30m"}}).merchant_intercept_deadline.total_seconds() == 5400
    assert isinstance(parse_policy({"name": "x"}), Policy)
