"""The input gate's limits (docs/domain.md §3): what any input may hold, shared by the pydantic
models of domain/events.py and the msgspec structs of domain/event_structs.py."""

from __future__ import annotations

import re
from datetime import datetime, timezone

# docs/domain.md §2: identifiers are opaque strings of 1-128 printable characters.
MAX_ID_CHARS = 128
# Every *_fen amount: 10 billion CNY, some 10^4 times the largest single order a shop sells.
# A merchant's daily or monthly total would need over nine million such amounts to leave a
# PostgreSQL bigint (9.2 * 10^18), so no sum the domain or the database makes comes near it.
MAX_FEN = 1_000_000_000_000
# Counts (free_intercepts_per_month): a quota of a million a month already means "never pay".
MAX_COUNT = 1_000_000
# distance_to_destination_km: more than the Earth's circumference (40,075 km), so any real
# distance fits, and the value stays a plain finite float.
MAX_DISTANCE_KM = 50_000
# Free text (a refund's reason, a scan's location, a carrier's or merchant's reason): a label
# or a sentence, not a document.
MAX_TEXT_CHARS = 1_000
# package_ids of one refund: far more packages than one order ships.
MAX_PACKAGE_IDS = 100
# occurred_at and clock.tick's now: 2000-01-01 to 2199-12-31 UTC. The domain adds deadlines
# of a few weeks at most, and datetime ends at year 9999: a time near that end with a negative
# offset overflows as soon as it is converted to UTC.
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)
END_OF_TIME = datetime(2200, 1, 1, tzinfo=timezone.utc)  # exclusive
# JSON nesting: an event nests 3 levels (envelope, data, auto_refund), a batch of them 4, a
# sender's webhook about as many. 32 leaves room for what relays attach while staying far
# from the JSON libraries' recursion limits (orjson 1024, Python's about 1000): 10,000 levels
# is refused here instead of raising RecursionError further on.
MAX_JSON_DEPTH = 32
# Any integer in a JSON document: a PostgreSQL bigint (signed 64 bits), what orjson can write.
MIN_JSON_INTEGER = -(2**63)
MAX_JSON_INTEGER = 2**63 - 1
# Messages quote what they refuse only this far, so a 1 MB field cannot make a 1 MB reason.
MAX_SHOWN_CHARS = 200


# C0 and C1 control characters (NUL among them) and lone surrogates: PostgreSQL refuses NUL
# in text and UTF-8 cannot encode a surrogate, so neither may reach storage.
UNSTORABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


