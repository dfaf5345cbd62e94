"""Read models: the queries behind `intercept explain`, `intercept ledger`, the report and the
operator console, one set for all of them. `cases` reads one case's timeline, `ledger` the
fees, claims and intercepts per merchant, carrier and month, `analytics` the report's figures,
`counters` the console's live counts. Read-only; each function takes an open SQLAlchemy
connection (or, for `analytics` and `counters`, the engine)."""
