"""AfterShip Tracking webhook (formats.md §5).

Request: JSON body; header `aftership-hmac-sha256` = base64(HMAC-SHA256(webhook secret, raw
body)). No signed timestamp, so there is no replay window: a replay can only repeat scans
the inbox already holds (their ids are digests of the checkpoint), never invent new ones.

`msg.checkpoints` is the whole history, so each checkpoint becomes one `logistics.scanned`
with an id derived from (carrier, tracking number, checkpoint time, tag, subtag), the same
way as Kuaidi100: a re-sent tracking yields the same ids.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from adapters.webhooks import Ignored, Malformed, Problem, Translation, digest_id, label, read_payload
from adapters.webhooks.signing import SignatureError, equal_b64

SOURCE = "aftership"
SIGNATURE_HEADER = "aftership-hmac-sha256"

# AfterShip accepts any 2xx (formats.md §5).
SUCCESS_REPLY = {"ok": True}

# ---- the one mapping table ----------------------------------------------------------------
# Slugs: formats.md does not list AfterShip's slugs for Chinese carriers; these are the slugs
# AfterShip's courier list uses as far as we know [UNCONFIRMED — check the account's courier
# list]. A slug not listed is kept as given (docs/domain.md §3).
CARRIER_SLUGS = {
    "zto-express": "zto",
    "yto": "yto",
    "yto-express": "yto",
    "yunda": "yunda",
    "sf-express": "sf",
    "jd": "jd",
}

# Checkpoint tag -> docs/domain.md §3 status; None = not a carrier scan. Source: formats.md §5 (tag
# enum) and §9 (normalisation table: Pending/InfoReceived = not scanned; AvailableForPickup
# sits with Kuaidi100's 501 locker state; Expired = tracking ended without a result).
TAGS: dict[str, str | None] = {
    "Pending": None,
    "InfoReceived": None,
    "InTransit": "in_transit",
    "OutForDelivery": "out_for_delivery",
    "AvailableForPickup": "out_for_delivery",
    "AttemptFail": "exception",
    "Delivered": "delivered",
    "Exception": "exception",
    "Expired": None,
}
# Subtags that say more than their tag, formats.md §5 / §9: Exception_003 "customer refused
# delivery" is the buyer's refusal.
SUBTAGS: dict[str, str] = {
    "Exception_003": "rejected",
}


def expected_signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(body: bytes, signature: str | None, secret: str | None) -> None:
    if not secret:
        raise SignatureError(SIGNATURE_HEADER, "no AfterShip secret is configured (INTERCEPT_AFTERSHIP_SECRET)")
    if not signature:
        raise SignatureError(SIGNATURE_HEADER, "is required")
    if not equal_b64(signature, expected_signature(body, secret)):
        raise SignatureError(SIGNATURE_HEADER, "does not match the body")


def _carrier(slug: str) -> str:
    return CARRIER_SLUGS.get(slug.strip().lower(), slug.strip())


def _location(checkpoint: dict[str, Any]) -> str | None:
    loc = label(checkpoint.get("location"))
    if loc:
        return loc
    parts = [label(checkpoint.get(k)) for k in ("city", "state", "country_region_name", "country_name")]
    return label(", ".join(p for p in parts if p))


def translate(body: bytes) -> Translation:
    payload = read_payload(body, "body")
    if not isinstance(payload, dict):
        raise Malformed("body", "must be a JSON object")
    out = Translation()
    kind = str(payload.get("event") or "")
    if kind != "tracking_update":
        # edd_revise / tracking_pending_time say nothing about where the parcel is.
        out.ignored.append(Ignored(f"event:{kind or '?'}", "not a tracking update", str(payload.get("event_id") or "")))
        return out
    msg = payload.get("msg")
    if not isinstance(msg, dict):
        raise Malformed("msg", "is required")
    tracking_no = str(msg.get("tracking_number") or "").strip()
    slug = str(msg.get("slug") or "").strip()
    if not tracking_no:
        raise Malformed("msg.tracking_number", "is required")
    if not slug:
        raise Malformed("msg.slug", "is required")
    checkpoints = msg.get("checkpoints") or []
    if not isinstance(checkpoints, list):
        raise Malformed("msg.checkpoints", "must be a list")
    seen: set[str] = set()
    for index, cp in enumerate(checkpoints):
        ref = f"{tracking_no}#checkpoints[{index}]"
        field = f"msg.checkpoints[{index}]"
        if not isinstance(cp, dict):
            out.problems.append(Problem(ref, field, "must be an object"))
            continue
        tag = str(cp.get("tag") or "")
        subtag = str(cp.get("subtag") or "")
        if tag not in TAGS:
            out.ignored.append(Ignored(subtag or tag or "?", f"tag {tag!r} has no scan status of ours", ref))
            continue
        status = SUBTAGS.get(subtag) or TAGS[tag]
        if status is None:
            out.ignored.append(Ignored(subtag or tag, "not a carrier scan", ref))
            continue
        when = str(cp.get("checkpoint_time") or "")
        try:
            occurred = datetime.fromisoformat(when)
        except ValueError:
            out.problems.append(Problem(ref, f"{field}.checkpoint_time", f"{when!r} is not an ISO 8601 time"))
            continue
        if occurred.tzinfo is None:
            # Older API versions give the carrier's local time without an offset; guessing one
            # could reorder scans, so the checkpoint is kept aside for a person instead.
            out.problems.append(Problem(ref, f"{field}.checkpoint_time", f"{when!r} has no UTC offset"))
            continue
        carrier = _carrier(str(cp.get("slug") or slug))
        event_id = digest_id("aship", carrier, tracking_no, when, tag, subtag)
        if event_id in seen:
            continue
        seen.add(event_id)
        data: dict[str, Any] = {"carrier": carrier, "tracking_no": tracking_no, "status": status}
        location = _location(cp)
        if location:
            data["location"] = location
        out.events.append({"event_id": event_id, "type": "logistics.scanned", "occurred_at": occurred.isoformat(), "data": data})
    return out
