"""Read models: the queries behind `intercept explain`, `intercept ledger`, the report and the
operator console, one set for all of them. `cases` reads one case's timeline, `ledger` the
fees, claims and intercepts per merchant, carrier and month. Read-only; each function takes
an open SQLAlchemy connection."""
