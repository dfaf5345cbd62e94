"""The database schema: the source of truth. Broker messages are notifications only.

Tables by job:
- inbox, seen_events, sources, sequencer: every input recorded, deduplicated and put in order;
- partitions, orders, package_routes, ticks: state, routing and the stream clock;
- outbox: every outbound event, kept, with the policy version that decided it;
- sweeps: what each sweep re-drove;
- refund_actions, carrier_actions, action_attempts: actions in the world, one attempt a row;
- decisions: the rule and facts behind every outcome, with the policy version;
- ledger_intercepts, ledger_fees, ledger_claims: the ledger (docs/ledger.md);
- dead_letters, dead_letter_overflow: raw bodies the ingress refused, with the reason, and
  the count of unauthenticated refusals beyond a source's cap, counted but not kept;
- dead_letter_retries: who retried a dead letter, when, and what came of it.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa


class UtcDateTime(sa.types.TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on PostgreSQL and SQLite alike."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


# PostgreSQL `json`, not `jsonb`: these documents are written whole and read whole, never
# queried inside; converting to and from jsonb on every write and read was a fifth of
# PostgreSQL's time per event (migration 0003, docs/performance.md).
Json = sa.JSON()

metadata = sa.MetaData()

inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(200), nullable=False),
    # Position of the input in its source (a stream line); NULL for sources without order (HTTP).
    sa.Column("source_offset", sa.BigInteger, nullable=True),
    sa.Column("event_id", sa.String(128), nullable=True),
    sa.Column("event_type", sa.String(64), nullable=True),
    # received -> sequenced; or parked, duplicate, aside (a clock.tick: applied). A sequenced
    # input is applied once its partition's applied_position reaches its position: the view
    # input_states says `applied` for it (no write per input when it is applied).
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("payload", Json, nullable=True),
    sa.Column("raw", sa.Text, nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=True),
    # Global order assigned by the sequencer; a partition applies its rows by ascending position.
    sa.Column("position", sa.BigInteger, nullable=True),
    sa.Column("partition_key", sa.String(128), nullable=True),
    sa.Column("order_id", sa.String(128), nullable=True),
    sa.Column("waits_for", sa.String(300), nullable=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=True),
    # Tries to apply it one at a time, counted before each (a try that kills the worker counts
    # too): only inputs that failed in a batch are tried so, and a bounded number of times.
    sa.Column("attempts", sa.Integer, nullable=True),
    sa.UniqueConstraint("source", "source_offset", name="uq_inbox_source_offset"),
)
# Work queue of the appliers: sequenced rows by partition and position (partial, so it stays small).
sa.Index(
    "ix_inbox_sequenced",
    inbox.c.partition_key,
    inbox.c.position,
    postgresql_where=inbox.c.state == "sequenced",
    sqlite_where=inbox.c.state == "sequenced",
)
sa.Index(
    "ix_inbox_received",
    inbox.c.source,
    inbox.c.source_offset,
    postgresql_where=inbox.c.state == "received",
    sqlite_where=inbox.c.state == "received",
)
sa.Index(
    "ix_inbox_parked",
    inbox.c.waits_for,
    postgresql_where=inbox.c.state == "parked",
    sqlite_where=inbox.c.state == "parked",
)

seen_events = sa.Table(
    "seen_events",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
)

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    # Every offset below this one has been sequenced: the contiguous watermark of the source.
    sa.Column("next_offset", sa.BigInteger, nullable=False, default=0),
    # A stream file's source: where its lines can be read again, and how many inputs it holds,
    # so the sweep can re-drive a message the broker lost (a gap, or the stream's tail).
    sa.Column("locator", sa.Text, nullable=True),
    sa.Column("expected", sa.BigInteger, nullable=True),
    # When the watermark last moved (a gap older than the re-drive delay is re-driven).
    sa.Column("progressed_at", UtcDateTime, nullable=True),
)

# One row per shard (id = shard + 1): its position counter, locked while positions are
# assigned; with more than one shard, row 0 is the routing step's lock.
sequencer = sa.Table(
    "sequencer",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("next_position", sa.BigInteger, nullable=False),
    # The stream clock: `now` of the latest clock.tick sequenced (stream mode only).
    sa.Column("stream_now", UtcDateTime, nullable=True),
)

partitions = sa.Table(
    "partitions",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("applied_position", sa.BigInteger, nullable=False, default=0),
    # Highest tick position this partition must still process because it had due deadlines then.
    sa.Column("pending_through", sa.BigInteger, nullable=False, default=0),
    sa.Column("state", Json, nullable=True),
    sa.Column("policy_version", sa.String(32), nullable=True),
    # The sequencing shard of the merchant (domain.sharding): its positions and ticks (0013).
    sa.Column("shard", sa.Integer, nullable=False, server_default="0"),
)
sa.Index("ix_partitions_pending", partitions.c.pending_through)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.String(128), primary_key=True),
    sa.Column("merchant_id", sa.String(128), nullable=False),
    sa.Column("state", Json, nullable=True),
    # The earliest pending deadline of the order; the sweeper and ticks look here.
    sa.Column("next_due_at", UtcDateTime, nullable=True),
)
sa.Index("ix_orders_due", orders.c.next_due_at)
sa.Index("ix_orders_merchant_due", orders.c.merchant_id, orders.c.next_due_at)

package_routes = sa.Table(
    "package_routes",
    metadata,
    sa.Column("carrier", sa.String(128), primary_key=True),
    sa.Column("tracking_no", sa.String(128), primary_key=True),
    sa.Column("package_id", sa.String(128), nullable=False, unique=True),
    sa.Column("order_id", sa.String(128), nullable=False),
    sa.Column("merchant_id", sa.String(128), nullable=False),
)

order_routes = sa.Table(
    "order_routes",
    metadata,
    sa.Column("order_id", sa.String(128), primary_key=True),
    sa.Column("merchant_id", sa.String(128), nullable=False),
)

# A clock.tick takes a position in every shard: one row per shard (0013).
ticks = sa.Table(
    "ticks",
    metadata,
    sa.Column("shard", sa.Integer, primary_key=True, server_default="0"),
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("now", UtcDateTime, nullable=False),
    sa.Column("event_id", sa.String(128), nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("order_id", sa.String(128), nullable=True),
    sa.Column("refund_id", sa.String(128), nullable=True),
    sa.Column("merchant_id", sa.String(128), nullable=True),
    sa.Column("caused_by", sa.String(128), nullable=False),
    sa.Column("occurred_at", UtcDateTime, nullable=False),
    sa.Column("envelope", Json, nullable=False),
    sa.Column("policy_version", sa.String(32), nullable=False),
    # Where the deciding input stood in the global order, and the outcome's rank among its siblings:
    # a deterministic order for exports.
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("relayed_at", UtcDateTime, nullable=True),
)
sa.Index("ix_outbox_unrelayed", outbox.c.relayed_at)
sa.Index("ix_outbox_type", outbox.c.type)

refund_actions = sa.Table(
    "refund_actions",
    metadata,
    sa.Column("refund_id", sa.String(128), primary_key=True),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("order_id", sa.String(128), nullable=False),
    sa.Column("merchant_id", sa.String(128), nullable=False),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    # pending -> confirmed | refused | unknown (reconciled by query, never by a new key)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("issued_envelope", Json, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    # refund.issued's rank among the outcomes decided at `position`: after those of its decision.
    sa.Column("issued_ordinal", sa.Integer, nullable=True),
    sa.Column("policy_version", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # The lease of whoever is calling it (revision 0014): nobody else calls it before then; a
    # crashed caller's rows are free again after it. Null: nobody holds it.
    sa.Column("claimed_until", UtcDateTime, nullable=True),
)
sa.Index("ix_refund_actions_state", refund_actions.c.state)

carrier_actions = sa.Table(
    "carrier_actions",
    metadata,
    sa.Column("intercept_id", sa.String(128), primary_key=True),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("order_id", sa.String(128), nullable=False),
    sa.Column("merchant_id", sa.String(128), nullable=False),
    sa.Column("package_id", sa.String(128), nullable=False),
    sa.Column("carrier", sa.String(128), nullable=False),
    sa.Column("tracking_no", sa.String(128), nullable=False),
    sa.Column("deadline", UtcDateTime, nullable=False),
    # pending -> submitted | rejected | unknown | recorded (answer expected from the stream)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # The policy that decided to intercept (revision 0007; null on rows written before it).
    sa.Column("policy_version", sa.String(32), nullable=True),
    # As refund_actions.claimed_until (revision 0014).
    sa.Column("claimed_until", UtcDateTime, nullable=True),
)
sa.Index("ix_carrier_actions_state", carrier_actions.c.state)

action_attempts = sa.Table(
    "action_attempts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # refund | carrier
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("attempted_at", UtcDateTime, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
)
sa.Index("ix_action_attempts_key", action_attempts.c.idempotency_key)

# One row per apply transaction: when it committed, through which position, which partitions.
# An input is applied once its partition's applied_position reaches it (no write per input);
# this log is what tells when that was, for latency reports.
applies = sa.Table(
    "applies",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("through_position", sa.BigInteger, nullable=False),
    sa.Column("partitions", Json, nullable=False),
)

# What each sweep found left behind and re-drove (a lost message, a crash): `intercept run`
# reports it, and an operator reads it as the recovery's own log.
sweeps = sa.Table(
    "sweeps",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("relayed", sa.Integer, nullable=False),  # outbound events published again
    sa.Column("actions", sa.Integer, nullable=False),  # refunds and intercepts called again
    sa.Column("inputs", sa.Integer, nullable=False),  # sequenced inputs it applied
    sa.Column("deadlines", sa.Integer, nullable=False),  # outcomes of wall-clock deadlines it fired
    sa.Column("lines", sa.Integer, nullable=False),  # stream lines read again from their file
    sa.Column("problems", sa.Text, nullable=True),  # what it could not re-drive, and why
)
sa.Index("ix_sweeps_at", sweeps.c.at)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("endpoint", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("headers", Json, nullable=True),
    sa.Column("body", sa.LargeBinary, nullable=False),
    # open -> retried (accepted through the normal path) | open again with a new reason
    sa.Column("status", sa.String(16), nullable=False, default="open"),
    sa.Column("retried_at", UtcDateTime, nullable=True),
    # The size of the body received when only its first bytes were kept (an unauthenticated
    # body: anyone can send one); NULL when the body is kept whole.
    sa.Column("received_bytes", sa.BigInteger, nullable=True),
)

# Unauthenticated refusals per source (endpoint and client address) and minute: the first few
# are kept as dead letters, the rest only counted here, so nobody who can reach the port can
# fill the database, and an operator still sees that they came.
dead_letter_overflow = sa.Table(
    "dead_letter_overflow",
    metadata,
    sa.Column("endpoint", sa.String(200), primary_key=True),
    sa.Column("client", sa.String(200), primary_key=True),
    sa.Column("minute", UtcDateTime, primary_key=True),
    sa.Column("refused", sa.BigInteger, nullable=False),
    sa.Column("kept", sa.BigInteger, nullable=False),
    # Bytes of the refusals not kept, as received.
    sa.Column("bytes_not_kept", sa.BigInteger, nullable=False),
)
sa.Index("ix_dead_letter_overflow_minute", dead_letter_overflow.c.minute)

# Each retry of a dead letter, by whom (an operator's name from the console, `cli:<user>` from
# `intercept dlq retry`) and with what outcome: the letter's row keeps only its latest state.
dead_letter_retries = sa.Table(
    "dead_letter_retries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("letter_id", sa.BigInteger, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("retried_by", sa.String(200), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # retried | still_failing
    sa.Column("reason", sa.Text, nullable=True),
)
sa.Index("ix_dead_letter_retries_letter", dead_letter_retries.c.letter_id)

# Every decision (one input applied, or deadlines fired for one order) that emitted an outcome
# or asked for an action: the rule behind each outcome and the facts it read, and the policy
# version (migration 0008). Written in the apply's transaction, beside the outbox; read by
# `intercept explain` (adapters/db/read_models/cases.py).
decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("order_id", sa.String(128), nullable=False),
    sa.Column("merchant_id", sa.String(128), nullable=False),
    # The input applied (its event id), or NULL for deadlines a clock fired.
    sa.Column("input_event_id", sa.String(128), nullable=True),
    sa.Column("policy_version", sa.String(32), nullable=False),
    # [{event_id, type, rule, facts}] in the order the outcomes were emitted (domain/explain.py).
    sa.Column("rules", Json, nullable=False),
    sa.Column("decided_at", UtcDateTime, nullable=False),
)
sa.Index("ix_decisions_order", decisions.c.order_id)

# The ledger (docs/ledger.md): carrier intercepts, their fees and the claims they opened, as
# rows finance can sum per merchant, carrier and month (CST). Written in the apply's
# transaction from the outcomes it decided (app/ledger.py).
ledger_intercepts = sa.Table(
    "ledger_intercepts",
    metadata,
    sa.Column("intercept_id", sa.String(128), primary_key=True),
    sa.Column("package_id", sa.String(128), nullable=False),
    sa.Column("order_id", sa.String(128), nullable=False),
    sa.Column("merchant_id", sa.String(128), nullable=False),
    sa.Column("carrier", sa.String(128), nullable=False),
    sa.Column("tracking_no", sa.String(128), nullable=False),
    sa.Column("month", sa.String(7), nullable=False),  # CST month of the request
    # requested -> succeeded | failed; not_eligible: never asked (docs/domain.md §5)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(200), nullable=True),
    sa.Column("requested_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime, nullable=True),
)
sa.Index("ix_ledger_intercepts_month", ledger_intercepts.c.month, ledger_intercepts.c.carrier)

ledger_fees = sa.Table(
    "ledger_fees",
    metadata,
    sa.Column("intercept_id", sa.String(128), primary_key=True),
    sa.Column("package_id", sa.String(128), nullable=False),
    sa.Column("order_id", sa.String(128), nullable=False),
    sa.Column("merchant_id", sa.String(128), nullable=False),
    sa.Column("carrier", sa.String(128), nullable=False),
    sa.Column("tracking_no", sa.String(128), nullable=False),
    sa.Column("month", sa.String(7), nullable=False),  # CST month of the charge
    sa.Column("fee_fen", sa.BigInteger, nullable=False),  # the carrier's full fee
    # charged | waived (inside the free monthly quota) | refunded (the carrier reversed it)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("waived", sa.Boolean, nullable=False),
    sa.Column("charged_at", UtcDateTime, nullable=False),
    sa.Column("refunded_at", UtcDateTime, nullable=True),
)
sa.Index("ix_ledger_fees_month", ledger_fees.c.month, ledger_fees.c.carrier)

ledger_claims = sa.Table(
    "ledger_claims",
    metadata,
    sa.Column("claim_id", sa.String(128), primary_key=True),
    sa.Column("package_id", sa.String(128), nullable=False),
    sa.Column("order_id", sa.String(128), nullable=False),
    sa.Column("merchant_id", sa.String(128), nullable=False),
    sa.Column("carrier", sa.String(128), nullable=False),
    sa.Column("tracking_no", sa.String(128), nullable=False),
    sa.Column("month", sa.String(7), nullable=False),  # CST month it was opened
    sa.Column("reason", sa.String(32), nullable=False),  # lost | damaged | not_returned
    sa.Column("value_fen", sa.BigInteger, nullable=False),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),  # min(value, 1000 CNY)
    # opened -> submitted (finance filed it with the carrier) -> paid | rejected (paid nothing)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("paid_fen", sa.BigInteger, nullable=True),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("submitted_at", UtcDateTime, nullable=True),
    sa.Column("resolved_at", UtcDateTime, nullable=True),
)
sa.Index("ix_ledger_claims_month", ledger_claims.c.month, ledger_claims.c.carrier)

# Case lookups of `intercept explain` (migration 0008): an order's inputs. Its outbound events
# are found through its decisions (their event ids), by the outbox's key.
sa.Index("ix_inbox_order", inbox.c.order_id)

# Views (made by migration 0005, not by metadata.create_all): read-only shapes over the tables.
views = sa.MetaData()

# The inbox with each input's state as a person reads it: `applied` for a sequenced input its
# partition has applied.
input_states = sa.Table(
    "input_states",
    views,
    *(sa.Column(c.name, c.type) for c in inbox.columns),
)

# docs/policy.md: every policy.published input, in the global order; a publication takes effect
# for the inputs after its position (globally, or for its merchant). Revision 0007. Like a
# clock.tick it takes a position in every sequencing shard: one row per shard (0013).
policy_publications = sa.Table(
    "policy_publications",
    metadata,
    sa.Column("shard", sa.Integer, primary_key=True, server_default="0"),
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("merchant_id", sa.String(128), nullable=True),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("document", Json, nullable=False),
    sa.Column("occurred_at", UtcDateTime, nullable=False),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
)
sa.Index("ix_policy_publications_merchant", policy_publications.c.merchant_id, policy_publications.c.position)
