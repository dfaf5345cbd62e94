"""The sequencer: accepting inputs, recording, deduplicating, routing and putting them in order.

Why the database and not the broker decides the order (docs/domain.md §8.3): Celery on Redis
redelivers a batch after a crash at the head or the tail of the queue, and two worker
processes finish in any order. So every input of a merchant gets a `position`, assigned under
its shard's counter lock and committed in that order; each merchant's partition applies its
rows strictly by ascending position.

One module per job: accepting.py (decode, validate, deduplicate), routing.py (the routing
table and parking), positions.py (a shard's counter, its ticks and partitions), run.py (one
sequencing transaction, which puts them together, and the store the unit of work holds).
"""

from adapters.db.sequencer.accepting import canonical_json, content_hash, parse_input
from adapters.db.sequencer.run import SqlSequencer, _Run

__all__ = ["SqlSequencer", "_Run", "canonical_json", "content_hash", "parse_input"]
