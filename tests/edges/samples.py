"""The senders' documented example payloads (formats.md §1.5, §2.4, §5), and builders."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlencode

# formats.md §1.5, verbatim (decoded form body).
KUAIDI100_PARAM = (
    '{"status":"polling","billstatus":"","message":"","autoCheck":"0","comOld":"","comNew":"",'
    '"lastResult":{"message":"ok","state":"5","status":"200","condition":"F00","ischeck":"0",'
    '"com":"yuantong","nu":"YT0000000000001",'
    '"data":[{"context":"[深圳市] 快递员正在派件","time":"2024-05-02 09:10:11","ftime":"2024-05-02 09:10:11",'
    '"status":"派件","statusCode":"5","areaCode":"CN440300000000","areaName":"广东,深圳市"},'
    '{"context":"[杭州市] 已揽收","time":"2024-04-30 18:00:00","ftime":"2024-04-30 18:00:00",'
    '"status":"揽收","statusCode":"103","areaCode":"CN330100000000","areaName":"浙江,杭州市"}]}}'
)

# formats.md §2.4, verbatim.
DOUYIN_BODY = (
    '[{"tag":"200","msg_id":"4288000000009348874::200:1714630000:6837000000009128",'
    '"data":"{\\"p_id\\":6900000000000000001,\\"s_id\\":6900000000000000002,\\"shop_id\\":95250,'
    '\\"aftersale_id\\":7300000000000000001,\\"aftersale_status\\":6,\\"aftersale_type\\":2,'
    '\\"refund_amount\\":5990,\\"refund_post_amount\\":0,\\"refund_voucher_num\\":0,\\"reason_code\\":1,'
    '\\"apply_time\\":1714630000}"}]'
).encode()

# formats.md §5, verbatim.
AFTERSHIP_BODY = (
    '{"event":"tracking_update","event_id":"1f0c7c1a-6b7e-4c51-9a0b-3b2d7f1e9a10",'
    '"is_tracking_first_tag":true,"ts":1714640000,'
    '"msg":{"id":"a1b2c3","tracking_number":"1Z999AA10123456784","slug":"ups",'
    '"tag":"Exception","subtag":"Exception_003","subtag_message":"Customer refused delivery",'
    '"order_number":"#1001","checkpoints":[{"checkpoint_time":"2024-05-02T10:00:00-04:00",'
    '"message":"Receiver refused the delivery","tag":"Exception","subtag":"Exception_003"}]}}'
).encode()


def kuaidi100_entry(ftime: str, code: str, area: str = "浙江,杭州市") -> dict:
    return {"context": f"scan {code}", "time": ftime, "ftime": ftime, "status": "", "statusCode": code, "areaName": area}


def kuaidi100_param(entries: list[dict], com: str = "zhongtong", nu: str = "ZT1", com_new: str = "", status: str = "polling") -> str:
    return json.dumps(
        {
            "status": status,
            "message": "",
            "autoCheck": "1" if com_new else "0",
            "comOld": com if com_new else "",
            "comNew": com_new,
            "lastResult": {"message": "ok", "state": "0", "status": "200", "com": com, "nu": nu, "data": entries},
        },
        ensure_ascii=False,
    )


def kuaidi100_form(param: str, salt: str, upper: bool = True) -> bytes:
    sign = hashlib.md5((param + salt).encode()).hexdigest()
    return urlencode({"param": param, "sign": sign.upper() if upper else sign}).encode()


def douyin_headers(body: bytes, app_key: str, app_secret: str) -> dict[str, str]:
    sign = hashlib.md5(app_key.encode() + body + app_secret.encode()).hexdigest()
    return {"app-id": app_key, "event-sign": sign, "content-type": "application/json"}
