"""Hostile HTTP requests for the ingress fuzz (tests/integration/test_ingress_fuzz.py): for every
endpoint, bodies a careless or hostile sender sends (garbage bytes, truncated and 10,000-level
nested JSON, huge numbers, wrong types, unicode edge cases, many items, oversized), signed
right, signed wrong or not at all, replayed, stale, with any content type.

A request is drawn as (method, path, body, headers, kind): `kind` says what the test meant,
so the test can hold the server to what a sender of that kind must get."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from hypothesis import strategies as st

from adapters.webhooks import aftership
from adapters.webhooks.signing import compute, sign_headers
from tests.hostile import AT, VALID, base, hostile_inputs

SECRET = "fuzz-webhook-secret-7f3a"
SALT = "fuzz-kuaidi100-salt-41c2"
AFTERSHIP_SECRET = "fuzz-aftership-secret-9b0e"
DOUYIN_KEY, DOUYIN_SECRET = "7000000000000000042", "fuzz-douyin-secret-c55d"
ENV = {
    "INTERCEPT_WEBHOOK_SECRETS": SECRET,
    "INTERCEPT_KUAIDI100_SALT": SALT,
    "INTERCEPT_AFTERSHIP_SECRET": AFTERSHIP_SECRET,
    "INTERCEPT_DOUYIN_APP_KEY": DOUYIN_KEY,
    "INTERCEPT_DOUYIN_APP_SECRET": DOUYIN_SECRET,
}
MIB = 1024 * 1024
DEEP = "[" * 10_000 + "]" * 10_000
POST_ENDPOINTS = ("/events", "/webhooks/kuaidi100", "/webhooks/aftership", "/webhooks/douyin")

# Unicode a parser or a database trips on: lone surrogates, NUL, right-to-left overrides,
# combining marks, BOM, zero-width and line separators, astral characters, CJK.
UNICODE_EDGES = ["\ud800", "\udfff", "a\udc80b", "\x00", "x\x00y", "\u202e", "abc\u202edef", "\u200f\u05d0",
                 "e\u0301", "\u0301", "a" + "\u0301" * 50, "\ufeff", "\u200b", "\u2028", "\u2029", "😀", "\U0010ffff",
                 "\uffff", "\x1b[31m", "\x7f", "浙江省\u3000杭州市", "\r\n", "\t"]
unicode_text = st.one_of(st.sampled_from(UNICODE_EDGES), st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=12))
# What a well-behaved sender may still write in free text (no lone surrogates: those are not text).
sound_text = unicode_text.filter(lambda text: not any("\ud800" <= c <= "\udfff" for c in text))
printable_suffix = st.text(st.characters(categories=("L", "M", "N", "P", "S")), max_size=8)
huge_numbers = st.sampled_from(["9" * 40, "-" + "9" * 40, "1e400", "-1e400", "1" + "0" * 5000, "2E308", "1.7976931348623157e309",
                                "9223372036854775808", "-9223372036854775809", "18446744073709551616", "NaN", "Infinity",
                                "-Infinity", "0x10", "1_000", "01", "-0", ".5", "5."])
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", "application/xml",
                                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=zz", "", "*/*",
                                 "application/json; charset=latin-1", "application/octet-stream", b"\xff/\xff"])


@dataclass
class Request:
    method: str
    path: str
    body: bytes
    headers: dict[str, str | bytes]
    kind: str  # what the test sent: "valid" (must be recorded), "replay", or a hostile kind
    then_again: bool = False  # send it twice: the second is a replay within the window
    raw: bytes | None = None  # sent over a bare socket as is (malformed HTTP)
    event_ids: list[str] = field(default_factory=list)  # of a valid /events batch


# ---- events --------------------------------------------------------------------------------

@st.composite
def valid_event(draw, tag: str) -> dict:
    """A §3 event that passes the gate, with an id of its own (or, rarely, from a small pool, so
    the same id comes back with other content: a conflict the inbox keeps aside)."""
    type_ = draw(st.sampled_from(sorted(set(VALID) - {"clock.tick"}) + ["clock.tick"]))
    event = base(type_)
    suffix = draw(printable_suffix)
    event["event_id"] = draw(st.one_of(st.just(f"fz-{tag}-{suffix}"), st.sampled_from([f"fz-pool-{n}" for n in range(5)])))[:128]
    if "order_id" in event:
        event["order_id"] = f"o-{draw(st.integers(0, 50))}"
    return event


def _events_items(draw, tag: str, n: int) -> list[str]:
    items = []
    for i in range(n):
        event = draw(valid_event(f"{tag}-{i}"))
        items.append(json.dumps(event, ensure_ascii=draw(st.booleans())))
    return items


def _signed(body: bytes, *, skew: int = 0) -> dict[str, str]:
    return sign_headers(SECRET, body, time.time() + skew)


@st.composite
def events_valid(draw, tag: str) -> Request:
    many = draw(st.integers(0, 99)) == 0
    n = draw(st.integers(200, 2000)) if many else draw(st.integers(1, 12))
    items = _events_items(draw, tag, 1 if many else n)
    if many:  # one drawn event, many ids: drawing 2,000 events would be slow and no more hostile
        first = json.loads(items[0])
        items = [json.dumps({**first, "event_id": f"fz-{tag}-many-{i}"}) for i in range(n)]
    body = (items[0] if n == 1 and draw(st.booleans()) else "[" + ",".join(items) + "]").encode()
    ids = [json.loads(i)["event_id"] for i in items]
    return Request("POST", "/events", body, {"content-type": draw(content_types), **_signed(body)}, "valid",
                   then_again=draw(st.integers(0, 9)) == 0, event_ids=ids)


@st.composite
def events_too_many(draw, tag: str) -> Request:
    n = draw(st.integers(2001, 2400))
    body = ("[" + ",".join(json.dumps({**base("refund.withdrawn"), "event_id": f"fz-{tag}-{i}"}) for i in range(n)) + "]").encode()
    return Request("POST", "/events", body, {"content-type": "application/json", **_signed(body)}, "too_many_items")


@st.composite
def events_hostile_items(draw, tag: str) -> Request:
    """A signed batch of valid events and hostile ones (tests/hostile.py: any field of any type)."""
    parts: list[bytes] = []
    for i in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            parts.append(json.dumps(draw(valid_event(f"{tag}-{i}"))).encode())
        else:
            # As text or bytes (the "value" form is for callers in-process: json cannot write all of it).
            _, raw = draw(hostile_inputs().filter(lambda case: not isinstance(case[1], dict)))
            parts.append(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass"))
    body = b"[" + b",".join(parts) + b"]"
    return Request("POST", "/events", body, {"content-type": "application/json", **_signed(body)}, "hostile_items")


@st.composite
def hostile_body(draw, tag: str) -> bytes:
    """A body that is not one §3 event or an array of them, as a whole."""
    event = json.dumps({**base("refund.requested"), "event_id": f"fz-{tag}"})
    choice = draw(st.integers(0, 11))
    if choice == 0:
        return draw(st.binary(max_size=2000))
    if choice == 1:  # truncated
        text = "[" + event + "," + event.replace(f"fz-{tag}", f"fz-{tag}-b") + "]"
        # A share, not a length: what is drawn must not depend on the tag's length (hypothesis replays draws).
        return text[: int(len(text) * draw(st.floats(0, 1, exclude_max=True)))].encode()
    if choice == 2:
        return DEEP.encode()
    if choice == 3:
        return ('{"event_id": "fz-' + tag + '", "data": ' + DEEP + "}").encode()
    if choice == 4:
        return ("[" * draw(st.integers(33, 5000))).encode()
    if choice == 5:
        return draw(huge_numbers).encode()
    if choice == 6:
        return draw(st.sampled_from(['"a string"', "null", "true", "42", "[]", "[[]]", "{}", "[null]", "[1,2,3]", '""', " ", ""])).encode()
    if choice == 7:
        return event.replace('"amount_fen": 12900', '"amount_fen": ' + draw(huge_numbers)).encode()
    if choice == 8:
        text = draw(unicode_text)
        return event.replace("not_wanted", json.dumps(text)[1:-1]).encode("utf-8", "surrogatepass")
    if choice == 9:  # raw (unescaped) unicode edges inside and outside strings
        text = draw(unicode_text)
        return (event.replace("not_wanted", text) if draw(st.booleans()) else text + event).encode("utf-8", "surrogatepass")
    if choice == 10:  # wrong types everywhere
        wrong = draw(st.sampled_from(["[]", "{}", "null", "true", "1", '"x"', "1.5"]))
        key = draw(st.sampled_from(["event_id", "type", "occurred_at", "order_id", "data"]))
        return json.dumps({**json.loads(event), key: json.loads(wrong)}).encode()
    return ("\ufeff" + event).encode()  # a BOM


@st.composite
def events_hostile_body(draw, tag: str) -> Request:
    body = draw(hostile_body(tag))
    return Request("POST", "/events", body, {"content-type": draw(content_types), **_signed(body)}, "hostile_body")


@st.composite
def events_bad_signature(draw, tag: str) -> Request:
    event = draw(valid_event(tag))
    body = json.dumps(event).encode()
    now = int(time.time())
    choice = draw(st.integers(0, 9))
    headers: dict[str, str | bytes] = {"content-type": "application/json"}
    if choice == 0:
        pass  # unsigned
    elif choice == 1:
        headers |= sign_headers("not-our-secret", body, now)
    elif choice == 2:  # a timestamp outside the window, signed right: a captured request replayed late
        ts = now - draw(st.integers(310, 10**9))
        headers |= {"X-Intercept-Timestamp": str(ts), "X-Intercept-Signature": compute(SECRET, ts, body)}
    elif choice == 3:
        ts = now + draw(st.integers(310, 10**6))
        headers |= {"X-Intercept-Timestamp": str(ts), "X-Intercept-Signature": compute(SECRET, ts, body)}
    elif choice == 4:  # signed over another body
        headers |= sign_headers(SECRET, body + b" ", now)
    elif choice == 5:
        headers |= {"X-Intercept-Timestamp": draw(st.sampled_from(["", "abc", "1e9", "-1", "²³", "9" * 40, "1 2", "1.5"])).encode("utf-8"),
                    "X-Intercept-Signature": compute(SECRET, now, body)}
    elif choice == 6:
        headers |= {"X-Intercept-Timestamp": str(now),
                    "X-Intercept-Signature": draw(st.sampled_from(["", "sha256=", "md5=abc", "sha256=zz", "sha256=" + "0" * 64,
                                                                   ",,,", "sha256=" + "a" * 5000])).encode()}
    elif choice == 7:
        headers |= {"X-Intercept-Signature": compute(SECRET, now, body)}  # no timestamp
    elif choice == 8:
        headers |= {"X-Intercept-Timestamp": str(now)}  # no signature
    else:  # several signatures, none ours
        headers |= {"X-Intercept-Timestamp": str(now),
                    "X-Intercept-Signature": ", ".join(compute(s, now, body) for s in ("a", "b", "c"))}
    return Request("POST", "/events", body, headers, "bad_signature")


# ---- the senders' webhooks -----------------------------------------------------------------

def kuaidi100_form(param: str, salt: str | None) -> bytes:
    sign = hashlib.md5((param + (salt or "")).encode("utf-8", "surrogatepass")).hexdigest().upper()
    fields = {"param": param, "sign": sign} if salt is not None else {"param": param}
    return urlencode(fields, errors="surrogatepass").encode()


@st.composite
def kuaidi100_param(draw, tag: str) -> tuple[str, bool]:
    """A `param` and whether it is a well-formed push."""
    def entry(i: int) -> dict:
        return {"context": draw(st.one_of(st.just("scan"), sound_text)), "ftime": f"2026-11-21 1{i % 10}:00:00", "time": "",
                "status": "", "statusCode": draw(st.sampled_from(["0", "1", "103", "5", "3", "4", "6", "14", "101", "999", ""])),
                "areaName": draw(st.one_of(st.just("浙江,杭州市"), sound_text))}
    good = draw(st.integers(0, 2)) > 0
    if good:
        entries = [entry(i) for i in range(draw(st.integers(1, 6)))]
        param = {"status": "polling", "message": "", "comNew": "", "lastResult": {
            "message": "ok", "state": "0", "status": "200", "com": draw(st.sampled_from(["zhongtong", "yuantong", "ups", "x" * 300])),
            "nu": f"ZT{tag}"[:60], "data": entries}}
        return json.dumps(param, ensure_ascii=draw(st.booleans())), True
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return draw(st.text(max_size=200)), False
    if choice == 1:
        return '{"lastResult": ' + DEEP + "}", False
    if choice == 2:
        return json.dumps({"lastResult": {"nu": f"ZT{tag}", "com": "zhongtong", "data": draw(st.sampled_from([None, 1, "x", {}, [1], [[]]]))}}), False
    if choice == 3:
        return '{"lastResult": {"nu": "ZT' + tag + '", "com": "zhongtong", "data": [{"ftime": ' + draw(huge_numbers) + "}]}}", False
    if choice == 4:
        return json.dumps({"lastResult": {"nu": draw(unicode_text), "com": draw(unicode_text),
                                          "data": [{"ftime": draw(st.sampled_from(["9999-12-31 23:59:59", "0000-00-00 00:00:00", "", "now"])),
                                                    "statusCode": "0"}]}}), False
    if choice == 5:
        return json.dumps({"lastResult": {"nu": f"ZT{tag}", "com": "zhongtong", "data": [
            {"ftime": "2026-11-21 10:00:00", "statusCode": "0", "areaName": "x"} for _ in range(draw(st.integers(2001, 2100)))]}}), False
    return draw(huge_numbers), False


@st.composite
def kuaidi100_request(draw, tag: str) -> Request:
    param, good = draw(kuaidi100_param(tag))
    choice = draw(st.integers(0, 7))
    headers: dict[str, str | bytes] = {"content-type": draw(st.one_of(st.just("application/x-www-form-urlencoded"), content_types))}
    if choice <= 3:
        body, kind = kuaidi100_form(param, SALT), "valid" if good else "hostile_body"
    elif choice == 4:
        body, kind = kuaidi100_form(param, "not-our-salt"), "bad_signature"
    elif choice == 5:
        body, kind = kuaidi100_form(param, None), "bad_signature"
    elif choice == 6:
        body, kind = draw(st.binary(max_size=3000)), "hostile_body"
    else:
        body, kind = draw(st.sampled_from([b"", b"param=", b"sign=x", b"param=%ff%fe&sign=1", b"&&&==&", b"param=" + DEEP.encode()])), "hostile_body"
    return Request("POST", "/webhooks/kuaidi100", body, headers, kind, then_again=good and draw(st.integers(0, 9)) == 0)


@st.composite
def aftership_request(draw, tag: str) -> Request:
    good = draw(st.integers(0, 2)) > 0
    if good:
        checkpoints = [{"checkpoint_time": f"2026-11-21T1{i}:00:00+08:00", "message": draw(st.one_of(st.just("m"), sound_text)),
                        "tag": draw(st.sampled_from(["InTransit", "Delivered", "Exception", "OutForDelivery", "Pending", "Bogus"])),
                        "subtag": "", "location": draw(st.one_of(st.none(), sound_text))} for i in range(draw(st.integers(0, 5)))]
        body = json.dumps({"event": draw(st.sampled_from(["tracking_update", "tracking_update", "other"])), "event_id": f"as-{tag}",
                           "ts": 1714640000, "msg": {"id": f"t-{tag}", "tracking_number": f"AS{tag}"[:60],
                                                     "slug": draw(st.sampled_from(["zto-express", "yto", "ups"])),
                                                     "tag": "InTransit", "checkpoints": checkpoints}},
                          ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    else:
        body = draw(hostile_body(tag))
    choice = draw(st.integers(0, 5))
    headers: dict[str, str | bytes] = {"content-type": draw(content_types)}
    kind = "valid" if good else "hostile_body"
    if choice <= 3:
        headers["aftership-hmac-sha256"] = aftership.expected_signature(body, AFTERSHIP_SECRET)
    elif choice == 4:
        headers["aftership-hmac-sha256"] = aftership.expected_signature(body, "not-ours")
        kind = "bad_signature"
    else:
        kind = "bad_signature"
    return Request("POST", "/webhooks/aftership", body, headers, kind, then_again=good and draw(st.integers(0, 9)) == 0)


def douyin_headers(body: bytes, key: str = DOUYIN_KEY, secret: str = DOUYIN_SECRET) -> dict[str, str]:
    sign = hashlib.md5(key.encode() + body + secret.encode()).hexdigest()
    return {"app-id": key, "event-sign": sign}


@st.composite
def douyin_request(draw, tag: str) -> Request:
    good = draw(st.integers(0, 2)) > 0
    if good:
        def message(i: int) -> dict:
            data = {"p_id": f"69{tag}{i}"[:60], "aftersale_id": f"73{tag}{i}"[:60], "aftersale_type": draw(st.sampled_from([0, 1, 2, 3])),
                    "refund_amount": draw(st.one_of(st.integers(1, 10**6), st.integers(-(2**70), 2**70), st.just("²"))),
                    "apply_time": draw(st.one_of(st.just(1714630000), st.integers(-(2**40), 2**62)))}
            return {"tag": draw(st.sampled_from(["200", "207", "999"])), "msg_id": f"{tag}-{i}", "data": json.dumps(data)}
        body = json.dumps([message(i) for i in range(draw(st.integers(1, 5)))]).encode()
    else:
        body = draw(hostile_body(tag))
    choice = draw(st.integers(0, 6))
    headers: dict[str, str | bytes] = {"content-type": draw(content_types)}
    kind = "valid" if good else "hostile_body"
    if choice <= 3:
        headers |= douyin_headers(body)
    elif choice == 4:
        headers |= douyin_headers(body, secret="not-ours")
        kind = "bad_signature"
    elif choice == 5:
        headers |= {**douyin_headers(body), "sign-method": draw(st.sampled_from(["hmac-sha256", "sha1", "md5x"]))}
        kind = "bad_signature"
    else:
        headers |= {"event-sign": douyin_headers(body)["event-sign"]}  # no app-id
        kind = "bad_signature"
    return Request("POST", "/webhooks/douyin", body, headers, kind, then_again=good and draw(st.integers(0, 9)) == 0)


# ---- the rest of the surface -----------------------------------------------------------------

@st.composite
def oversized(draw, tag: str) -> Request:
    """Over the 1 MiB body limit (a signed one too: a signature does not lift the limit)."""
    path = draw(st.sampled_from(POST_ENDPOINTS))
    body = f'{{"marker": "fz-{tag}", "pad": "'.encode() + b"x" * draw(st.integers(MIB, 2 * MIB)) + b'"}'
    return Request("POST", path, body, {"content-type": "application/json", **_signed(body)}, "oversized")


@st.composite
def other_surface(draw, tag: str) -> Request:
    """Probes, wrong methods and unknown paths: answered, never a 5xx, nothing kept."""
    method, path = draw(st.sampled_from([("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/healthz"), ("GET", "/events"),
                                         ("PUT", "/events"), ("DELETE", "/webhooks/douyin"), ("GET", "/webhooks/kuaidi100"),
                                         ("POST", "/admin"), ("GET", "/dlq"), ("POST", "/events/../admin"), ("GET", "/%ff"),
                                         ("POST", "/webhooks/unknown"), ("OPTIONS", "/events"), ("HEAD", "/healthz")]))
    query = draw(st.one_of(st.just(""), st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e, exclude_characters="#"), max_size=40)))
    return Request(method, path + ("?" + query if query else ""), draw(st.binary(max_size=200)), {}, "other")


@st.composite
def malformed_http(draw, tag: str) -> Request:
    """Bytes that are not a well-formed HTTP request, on a bare socket."""
    raw = draw(st.one_of(
        st.binary(min_size=1, max_size=300),
        st.sampled_from([
            b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n0123456789",
            b"POST /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST /events HTTP/1.1\r\nHost: x\r\nX-Intercept-Timestamp: 1\x00\r\n\r\n",
            b"POST /events HTTP/9.9\r\n\r\n",
            b"POST /events HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 100_000 + b"\r\n\r\n",
            b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on the plain port
        ]),
    ))
    return Request("RAW", "", b"", {}, "malformed_http", raw=raw)


def requests(tag: str):
    """One hostile (or valid) request to any endpoint, weighted so every kind is seen often."""
    return st.one_of(
        events_valid(tag), events_valid(tag), events_hostile_items(tag), events_hostile_items(tag),
        events_hostile_body(tag), events_hostile_body(tag), events_bad_signature(tag),
        kuaidi100_request(tag), kuaidi100_request(tag), aftership_request(tag), douyin_request(tag), douyin_request(tag),
        other_surface(tag), malformed_http(tag),
        st.integers(0, 9).flatmap(lambda n: oversized(tag) if n == 0 else (events_too_many(tag) if n == 1 else events_valid(tag))),
    )


__all__ = ["AT", "ENV", "POST_ENDPOINTS", "Request", "requests", "SECRET", "SALT"]
