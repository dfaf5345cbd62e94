"""Our own signature scheme for POST /events, and constant-time helpers for the senders' schemes.

    X-Intercept-Timestamp: <unix seconds>
    X-Intercept-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>

The timestamp is inside the signed text, so a captured request cannot be replayed outside
the window (±5 min by default, the Stripe/Slack convention). Several secrets are accepted at
once so a secret can be rotated without downtime: add the new one, move the senders, drop
the old one. The header may carry several comma-separated signatures (one per secret the
sender knows) for the same reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

TIMESTAMP_HEADER = "X-Intercept-Timestamp"
SIGNATURE_HEADER = "X-Intercept-Signature"
DEFAULT_TOLERANCE_S = 300
_SCHEME = "sha256="


class SignatureError(Exception):
    """Why a request is not authentic. `field` names the header (or form field) at fault."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def compute(secret: str, timestamp: str | int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return _SCHEME + mac.hexdigest()


def sign_headers(secret: str, body: bytes, now: float) -> dict[str, str]:
    """Headers a sender (a relay, a simulator's callback, a test) attaches to a body."""
    ts = str(int(now))
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: compute(secret, ts, body)}


def verify(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    secrets: Sequence[str],
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise SignatureError unless one of `secrets` signed (timestamp, body) within the window."""
    if not secrets:
        raise SignatureError(SIGNATURE_HEADER, "no webhook secret is configured (INTERCEPT_WEBHOOK_SECRETS)")
    if not timestamp:
        raise SignatureError(TIMESTAMP_HEADER, "is required")
    if not signature:
        raise SignatureError(SIGNATURE_HEADER, "is required")
    ts = timestamp.strip()
    # ASCII digits, and few of them: str.isdigit() also takes "²", which int() refuses, and
    # int() refuses more than 4,300 digits.
    if not (ts.isascii() and ts.isdigit() and len(ts) <= 12):
        raise SignatureError(TIMESTAMP_HEADER, "must be unix seconds")
    if abs(now - int(ts)) > tolerance_s:
        raise SignatureError(TIMESTAMP_HEADER, f"is outside the ±{tolerance_s} s window")
    offered = [part.strip() for part in signature.split(",") if part.strip()]
    if not all(part.startswith(_SCHEME) for part in offered):
        raise SignatureError(SIGNATURE_HEADER, "must be sha256=<hex>")
    expected = [compute(secret, ts, body) for secret in secrets]
    # Every pair is compared (no early exit) so timing says nothing about which secret matched.
    matched = False
    for candidate in offered:
        for good in expected:
            matched |= hmac.compare_digest(candidate.lower().encode(), good.encode())
    if not matched:
        raise SignatureError(SIGNATURE_HEADER, "does not match the body")


def equal_hex(a: str, b: str) -> bool:
    """Constant-time, case-insensitive comparison of two hex digests (Kuaidi100, Douyin)."""
    return hmac.compare_digest(a.strip().lower().encode(), b.strip().lower().encode())


def equal_b64(a: str, b: str) -> bool:
    """Constant-time comparison of two base64 MACs, tolerant of padding (AfterShip)."""
    try:
        raw_a = base64.b64decode(a.strip() + "=" * (-len(a.strip()) % 4), validate=True)
        raw_b = base64.b64decode(b.strip() + "=" * (-len(b.strip()) % 4), validate=True)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(raw_a, raw_b)
