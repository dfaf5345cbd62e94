"""Kuaidi100 (快递100) subscription push, subscribed with `resultv2` (formats.md §1).

Request: `application/x-www-form-urlencoded`, fields `param` (a JSON *string*) and `sign`
= MD5(param + salt), upper-case hex by Kuaidi100's SDK, compared case-insensitively over the
exact `param` string received (formats.md §1.2).

Every push carries the whole history (`lastResult.data`, newest first), so each entry becomes
one `logistics.scanned` whose id is a digest of (carrier, waybill, time, statusCode): a
re-push yields the same ids (the inbox reports them as duplicates) and a push with three new
entries yields three new scans. Kuaidi100 gives no idempotency key of its own (§1.4).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from adapters.webhooks import CST, Ignored, Malformed, Problem, Translation, digest_id, label, read_payload
from adapters.webhooks.signing import SignatureError, equal_hex

SOURCE = "kuaidi100"

# Kuaidi100 requires exactly this body to count a push as delivered (formats.md §1.4).
SUCCESS_REPLY = {"result": True, "returnCode": "200", "message": "成功"}


def failure_reply(message: str) -> dict[str, Any]:
    # returnCode 500 = "our server error" in Kuaidi100's terms (§1.4); the push is retried or
    # recovered by the next cumulative push.
    return {"result": False, "returnCode": "500", "message": message}


# ---- the one mapping table ----------------------------------------------------------------
# Carrier codes: docs/domain.md §3 ("Kuaidi100 writes zhongtong, yuantong, yunda, shunfeng, jd").
# A code not listed is kept as given (docs/domain.md §3: a carrier without an intercept API).
CARRIER_CODES = {
    "zhongtong": "zto",
    "yuantong": "yto",
    "yunda": "yunda",
    "shunfeng": "sf",
    "jd": "jd",
}

# statusCode of a history entry (resultv2) -> docs/domain.md §3 scan status; None = not a scan.
# Source: formats.md §1.3 (primary states and the advanced sub-state table, official
# api-8562559; 201-210 from the [3p] enum that matches it) and §9 (normalisation table).
STATUS_CODES: dict[str, str | None] = {
    # 1 揽收 picked up
    "1": "picked_up",
    "101": None,  # 已下单: order placed with the carrier, nothing scanned yet (§9 "not scanned")
    "102": None,  # 待揽收: waiting for pickup (§9 "not scanned")
    "103": "picked_up",  # 已揽收
    # 0 在途 in transit
    "0": "in_transit",
    "1001": "arrived_destination_city",  # 到达派件城市
    "1002": "in_transit",  # 干线 line-haul
    "1003": "in_transit",  # 转递 forwarded to a new address
    "7": "in_transit",  # 转投: handed to another carrier, still moving (§9)
    "8": "in_transit",  # 清关 customs (§9)
    "10": "in_transit",  # 待清关
    "11": "in_transit",  # 清关中
    "12": "in_transit",  # 已清关
    "13": "exception",  # 清关异常
    # 5 派件 out for delivery
    "5": "out_for_delivery",
    "501": "out_for_delivery",  # 投柜或驿站: at a locker/station, only the buyer's refusal stops it
    # 3 签收 delivered
    "3": "delivered",
    "301": "delivered",
    "302": "delivered",
    "303": "delivered",
    "304": "delivered",
    # back to the sender
    "6": "returning",  # 退回 on the way back
    "4": "returned",  # 退签 returned and signed by the sender
    "14": "rejected",  # 拒签 recipient refused
    # 2 疑难 problem
    "2": "exception",
    "201": "exception",  # 超时未签收
    "202": "exception",  # 超时未更新
    "203": "rejected",  # 拒收: recipient rejects (§9 puts 203 with 14 under "refused")
    "204": "exception",  # 派件异常
    "205": "exception",  # 柜或驿站超时未取
    "206": "exception",  # 无法联系
    "207": "exception",  # 超区
    "208": "exception",  # 滞留
    "209": "damaged",  # 破损
    # 401 已销单 and 210 销单 (waybill cancelled) have no scan status of ours: recorded as ignored.
}


# ---- verification ---------------------------------------------------------------------------


def parse_form(body: bytes) -> tuple[str, str | None]:
    """(param, sign) from the form body; Malformed when `param` is missing."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("body", "is not UTF-8 form data") from None
    fields = parse_qs(text, keep_blank_values=True)
    params = fields.get("param")
    if not params or not params[0]:
        raise Malformed("param", "form field is required")
    signs = fields.get("sign")
    return params[0], (signs[0] if signs else None)


def expected_sign(param: str, salt: str) -> str:
    return hashlib.md5((param + salt).encode("utf-8")).hexdigest().upper()


def verify(param: str, sign: str | None, salt: str | None) -> None:
    if not salt:
        # Without a salt anyone could push scans for any waybill; refuse rather than trust.
        raise SignatureError("sign", "no Kuaidi100 salt is configured (INTERCEPT_KUAIDI100_SALT)")
    if not sign:
        raise SignatureError("sign", "is required")
    if not equal_hex(sign, expected_sign(param, salt)):
        raise SignatureError("sign", "does not match MD5(param + salt)")


# ---- translation ----------------------------------------------------------------------------


def _carrier(code: str) -> str:
    return CARRIER_CODES.get(code.strip().lower(), code.strip())


def _cst_time(text: str) -> datetime:
    # ftime is "YYYY-MM-DD HH:MM:SS" in China Standard Time with no offset (§1.2).
    return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)


def translate(param: str) -> Translation:
    push = read_payload(param, "param")
    if not isinstance(push, dict):
        raise Malformed("param", "must be a JSON object")
    last = push.get("lastResult")
    if not isinstance(last, dict):
        raise Malformed("param.lastResult", "is required")
    out = Translation()

    monitor = str(push.get("status") or "")
    if monitor in ("abort", "shutdown"):
        # Monitor states are about the subscription, not the parcel (§1.2): `abort` needs a
        # person to check the waybill and resubscribe; `shutdown` follows a signature.
        out.ignored.append(Ignored(f"status:{monitor}", str(push.get("message") or "monitor status"), str(last.get("nu") or "")))

    # comNew is Kuaidi100's correction of a wrong carrier code (§1.2): follow it.
    com = str(push.get("comNew") or last.get("com") or "").strip()
    nu = str(last.get("nu") or "").strip()
    entries = last.get("data") or []
    if not isinstance(entries, list):
        raise Malformed("param.lastResult.data", "must be a list")
    if entries and (not com or not nu):
        raise Malformed("param.lastResult.com" if not com else "param.lastResult.nu", "is required")
    carrier = _carrier(com)

    seen: set[str] = set()
    for index, entry in enumerate(entries):
        ref = f"{nu}#data[{index}]"
        if not isinstance(entry, dict):
            out.problems.append(Problem(ref, f"lastResult.data[{index}]", "must be an object"))
            continue
        code = str(entry.get("statusCode") or "").strip()
        when = str(entry.get("ftime") or entry.get("time") or "")
        if not code:
            out.problems.append(Problem(ref, f"lastResult.data[{index}].statusCode", "is required (subscribe with resultv2)"))
            continue
        if code not in STATUS_CODES:
            out.ignored.append(Ignored(code, f"statusCode {code} ({entry.get('status', '')}) has no scan status of ours", ref))
            continue
        status = STATUS_CODES[code]
        if status is None:
            out.ignored.append(Ignored(code, "not a carrier scan (parcel not picked up yet)", ref))
            continue
        try:
            occurred = _cst_time(when)
        except ValueError:
            out.problems.append(Problem(ref, f"lastResult.data[{index}].ftime", f"{when!r} is not YYYY-MM-DD HH:MM:SS"))
            continue
        event_id = digest_id("kd100", carrier, nu, when.strip(), code)
        if event_id in seen:
            continue
        seen.add(event_id)
        data: dict[str, Any] = {"carrier": carrier, "tracking_no": nu, "status": status}
        location = label(entry.get("areaName"))
        if location:
            data["location"] = location
        out.events.append(
            {"event_id": event_id, "type": "logistics.scanned", "occurred_at": occurred.isoformat(), "data": data}
        )
    # Oldest first, so the inbox records them in the order they happened.
    out.events.reverse()
    return out
