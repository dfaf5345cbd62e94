"""The operator console: a small read-only web page over the read models (cases and their
timelines, dead letters, the ledger, live counters), behind a login. Its one write is a dead
letter's retry, which needs a logged-in operator and a CSRF token, and is recorded under the
operator's name (docs/console.md)."""
