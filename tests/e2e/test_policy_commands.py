"""`intercept policy show|check|publish` as a user runs them, on the embedded default database."""

from __future__ import annotations

import json

from adapters.policy_file import read_policy_text
from domain.policy import DEFAULT_POLICY
from tests.helpers import ROOT, intercept


def test_show_prints_the_default_as_a_policy_file_that_check_accepts(tmp_path):
    env = {"INTERCEPT_HOME": str(tmp_path)}
    shown = intercept("policy", "show", env=env)
    assert shown.returncode == 0, shown.stderr
    assert read_policy_text(shown.stdout) == DEFAULT_POLICY
    assert f"Policy {DEFAULT_POLICY.version} in force" in shown.stdout
    path = tmp_path / "shown.toml"
    path.write_text(shown.stdout)
    checked = intercept("policy", "check", str(path), env=env)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"{path}: valid policy {DEFAULT_POLICY.version} (cost-aware intercepts off)"


def test_check_refuses_an_invalid_policy_naming_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[claims]\ncap_fen = -5\n')
    result = intercept("policy", "check", str(bad), env={"INTERCEPT_HOME": str(tmp_path)})
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == f"Error: {bad}: refused: claims.cap_fen: must be between 0 and 1000000000000 fen, not -5"
    assert "Traceback" not in result.stderr


def test_publish_for_a_merchant_changes_what_show_prints_for_it_only(tmp_path):
    env = {"INTERCEPT_HOME": str(tmp_path)}
    quick = ROOT / "docs" / "policies" / "quick-refunds.toml"
    version = read_policy_text(quick.read_text()).version
    published = intercept("policy", "publish", str(quick), "--merchant", "m-alpha", "--json", env=env)
    assert published.returncode == 0, published.stderr
    answer = json.loads(published.stdout)
    assert answer["version"] == version and answer["merchant_id"] == "m-alpha" and answer["status"] == "published"

    for_alpha = json.loads(intercept("policy", "show", "--merchant", "m-alpha", "--json", env=env).stdout)
    assert for_alpha["version"] == version
    assert for_alpha["source"] == "published for merchant m-alpha"
    assert for_alpha["document"]["unshipped"]["instant_refund_limit_fen"] == 50_000
    for_beta = json.loads(intercept("policy", "show", "--merchant", "m-beta", "--json", env=env).stdout)
    assert for_beta["version"] == DEFAULT_POLICY.version
    assert for_beta["source"] == "the built-in default (nothing published globally nor for merchant m-beta)"
    assert json.loads(intercept("policy", "show", "--json", env=env).stdout)["version"] == DEFAULT_POLICY.version

    # A global publication is what a merchant without its own policy gets from then on.
    cost_aware = ROOT / "docs" / "policies" / "cost-aware.toml"
    assert intercept("policy", "publish", str(cost_aware), env=env).returncode == 0
    assert json.loads(intercept("policy", "show", "--merchant", "m-beta", "--json", env=env).stdout)["version"].startswith("cost-aware@")
    assert json.loads(intercept("policy", "show", "--merchant", "m-alpha", "--json", env=env).stdout)["version"] == version


def test_publish_refuses_an_invalid_file_and_records_nothing(tmp_path):
    env = {"INTERCEPT_HOME": str(tmp_path)}
    bad = tmp_path / "bad.toml"
    bad.write_text('[stall]\nafter = "soon"\n')
    result = intercept("policy", "publish", str(bad), env=env)
    assert result.returncode == 1 and "stall.after: must be a duration" in result.stderr
    assert json.loads(intercept("policy", "show", "--json", env=env).stdout)["source"] == "the built-in default (nothing published globally)"


def test_publish_with_shards_takes_a_position_in_every_shard_and_refuses_another_number(tmp_path):
    import sqlalchemy as sa  # noqa: PLC0415

    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_SHARDS": "2"}
    quick = ROOT / "docs" / "policies" / "quick-refunds.toml"
    version = read_policy_text(quick.read_text()).version
    published = intercept("policy", "publish", str(quick), env=env)
    assert published.returncode == 0, published.stderr
    assert json.loads(intercept("policy", "show", "--json", env=env).stdout)["version"] == version
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'intercept.sqlite'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT shard, position, version FROM policy_publications ORDER BY shard")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [(0, 1, version), (1, 1, version)]

    # The database is sequenced with 2 shards now: publishing with one would put it in one shard only.
    again = intercept("policy", "publish", str(quick), env={"INTERCEPT_HOME": str(tmp_path)})
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr.strip() == ("Error: INTERCEPT_SHARDS=1, but this database's inputs were sequenced with 2 shard(s); "
                                    "set INTERCEPT_SHARDS=2, or start on an empty database")
