"""Load-test tooling: the shipped sample stream, a synthetic stream generator and reports."""
