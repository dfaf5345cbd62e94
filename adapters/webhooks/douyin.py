"""Douyin shop (抖店) message push: after-sale (refund) messages (formats.md §2).

Request: JSON **array** of `{tag, msg_id, data}` (`msgId` accepted too; `data` a JSON string
or an object; `tag` a string or a number). Headers `app-id` (our app_key) and `event-sign`
= lowercase hex MD5(app_key + raw body + app_secret), compared case-insensitively (§2.1).
Reply `{"code":0,"msg":"success"}` (§2.1); a tag we do not act on is still answered success,
otherwise Douyin would keep re-sending it.

Only what a message says for certain is mapped; everything else is recorded as ignored with
its tag.

Why tag 207 for the buyer's cancellation: formats.md §2.2 has no "buyer cancelled" tag.
200-206 are the application and its progress (206 = the refund was paid), 208 is a
modification, 215 cancels an *arbitration*, not the after-sale. 207 RefundClosed (售后关闭,
aftersale_status 28) is the only message saying an after-sale ended without a refund, which
is what the buyer's cancellation (撤销) produces. It also fires when the after-sale closes
for other reasons (e.g. a buyer who never returns the goods); for the refund case the effect
docs/domain.md §5 gives a withdrawal is the right one in every such case: before the decision the case
closes and its timers stop; after it the withdrawal is kept aside (`already_refunded`).
So 207 on a refund-type after-sale -> `refund.withdrawn`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from typing import Any

from adapters.webhooks import CST, Ignored, Malformed, Problem, Translation, digest_id, read_payload
from adapters.webhooks.signing import SignatureError, equal_hex

SOURCE = "douyin"
APP_ID_HEADER = "app-id"
SIGN_HEADER = "event-sign"
SIGN_METHOD_HEADER = "sign-method"

SUCCESS_REPLY = {"code": 0, "msg": "success"}
FAILURE_REPLY = {"code": 1, "msg": "fail"}

# ---- the one mapping table ----------------------------------------------------------------
# tag -> docs/domain.md §3 event type. Source: formats.md §2.2 (zsmhub/doudian-sdk, doc link per tag)
# and §2.3 (fields). Every other tag (trade 1xx, 201-206, 208+, the "0" verification
# message) is recorded as ignored.
TAGS: dict[str, str] = {
    "200": "refund.requested",  # RefundCreated 买家发起售后申请
    "207": "refund.withdrawn",  # RefundClosed 售后关闭 (see the module docstring)
}
# aftersale_type values that are refunds (§2.3: 0 退货退款, 1 仅退款(已发货), 2 发货前退款).
# 3 换货, 6 价保, 7 补寄, 8 维修 are not refunds of the order; 4/5 are cancellations.
REFUND_AFTERSALE_TYPES = {0, 1, 2}
# Which time field carries the event's time, per tag (§2.3).
TIME_FIELDS: dict[str, tuple[str, ...]] = {
    "200": ("apply_time",),
    "207": ("close_time", "update_time"),
}


def expected_sign(body: bytes, app_key: str, app_secret: str) -> str:
    return hashlib.md5(app_key.encode() + body + app_secret.encode()).hexdigest()


def verify(body: bytes, headers: dict[str, str], app_key: str | None, app_secret: str | None) -> None:
    if not app_key or not app_secret:
        raise SignatureError(SIGN_HEADER, "no Douyin app key/secret is configured (INTERCEPT_DOUYIN_APP_KEY/_SECRET)")
    method = headers.get(SIGN_METHOD_HEADER, "").strip().lower()
    if method and method != "md5":
        # An HMAC-SHA256 variant is hinted at by one SDK but its input is unconfirmed (§2.1).
        raise SignatureError(SIGN_METHOD_HEADER, f"sign method {method!r} is not supported")
    app_id = headers.get(APP_ID_HEADER)
    if not app_id:
        raise SignatureError(APP_ID_HEADER, "is required")
    if not hmac.compare_digest(app_id.strip().encode(), app_key.strip().encode()):
        raise SignatureError(APP_ID_HEADER, "is not our app key")
    sign = headers.get(SIGN_HEADER)
    if not sign:
        raise SignatureError(SIGN_HEADER, "is required")
    if not equal_hex(sign, expected_sign(body, app_key, app_secret)):
        raise SignatureError(SIGN_HEADER, "does not match MD5(app_key + body + app_secret)")


def _id(value: Any) -> str | None:
    # 64-bit ids arrive as numbers or strings (§2.3); keep them as decimal strings.
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # ASCII digits only, and no more than a 64-bit number has: str.isdigit() also takes "²",
    # which int() refuses.
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
        return int(value.strip())
    return None


def _event_id(msg_id: str) -> str:
    # msg_id is Douyin's dedupe key (§2.1); kept readable when it fits docs/domain.md §2's 128 chars.
    candidate = f"douyin-{msg_id}"
    return candidate if len(candidate) <= 128 and candidate.isprintable() else digest_id("douyin", msg_id)


def translate(body: bytes) -> Translation:
    messages = read_payload(body, "body")
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list):
        raise Malformed("body", "must be a JSON array of messages")
    out = Translation()
    for index, message in enumerate(messages):
        where = f"[{index}]"
        if not isinstance(message, dict):
            out.problems.append(Problem(where, where, "must be an object"))
            continue
        tag = str(message.get("tag", "")).strip()
        msg_id = _id(message.get("msg_id", message.get("msgId")))
        ref = msg_id or where
        kind = TAGS.get(tag)
        if kind is None:
            out.ignored.append(Ignored(tag or "?", "tag not acted on", ref))
            continue
        if msg_id is None:
            out.problems.append(Problem(ref, f"{where}.msg_id", "is required"))
            continue
        data = message.get("data")
        if isinstance(data, str):
            try:
                data = read_payload(data, f"{where}.data")
            except Malformed as exc:
                out.problems.append(Problem(ref, exc.field, exc.reason))
                continue
        if not isinstance(data, dict):
            out.problems.append(Problem(ref, f"{where}.data", "must be an object"))
            continue
        aftersale_type = _int(data.get("aftersale_type"))
        if aftersale_type not in REFUND_AFTERSALE_TYPES:
            out.ignored.append(Ignored(tag, f"aftersale_type {data.get('aftersale_type')!r} is not a refund", ref))
            continue
        order_id = _id(data.get("p_id"))
        refund_id = _id(data.get("aftersale_id"))
        if order_id is None:
            out.problems.append(Problem(ref, f"{where}.data.p_id", "is required"))
            continue
        if refund_id is None:
            out.problems.append(Problem(ref, f"{where}.data.aftersale_id", "is required"))
            continue
        seconds = next((_int(data.get(f)) for f in TIME_FIELDS[tag] if _int(data.get(f)) is not None), None)
        if seconds is None:
            out.problems.append(Problem(ref, f"{where}.data.{TIME_FIELDS[tag][0]}", "is required (unix seconds)"))
            continue
        try:
            occurred = datetime.fromtimestamp(seconds, CST)
        except (OverflowError, OSError, ValueError):
            out.problems.append(Problem(ref, f"{where}.data.{TIME_FIELDS[tag][0]}", f"{seconds} is not a unix time in the calendar"))
            continue
        event: dict[str, Any] = {
            "event_id": _event_id(msg_id),
            "type": kind,
            "occurred_at": occurred.isoformat(),
            "order_id": order_id,
        }
        if kind == "refund.requested":
            amount = _int(data.get("refund_amount"))
            if amount is None:
                out.problems.append(Problem(ref, f"{where}.data.refund_amount", "is required (fen)"))
                continue
            # refund_amount is taken as fen: doudian money is fen everywhere else; the message
            # doc excerpt does not state the unit (formats.md §2.3, "assume fen, verify").
            reason_code = data.get("reason_code")
            # reason_code is a large enum kept opaque (§2.3).
            event["data"] = {
                "refund_id": refund_id,
                "amount_fen": amount,
                "reason": f"douyin_reason_code:{reason_code}" if reason_code is not None else "douyin",
            }
        else:
            event["data"] = {"refund_id": refund_id}
        out.events.append(event)
    return out
