"""`intercept ledger` and `intercept ledger reconcile` as a person or a spreadsheet reads them."""

from __future__ import annotations

import csv
from dataclasses import fields
from typing import TextIO

from rich.table import Table

from adapters.carrier_bill import DIFFERENCES, Reconciliation, fen_to_cny
from adapters.db.read_models.ledger import LedgerLine
from workers.cli.explain_view import console


def render_csv(lines: list[LedgerLine], out: TextIO) -> None:
    names = [f.name for f in fields(LedgerLine)]
    w = csv.writer(out)
    w.writerow(names)
    for ln in lines:
        w.writerow([getattr(ln, n) for n in names])


def render_table(lines: list[LedgerLine], month: str | None, merchant: str | None, carrier: str | None) -> None:
    scope = ", ".join(x for x in (month, merchant, carrier) if x) or "every month, merchant and carrier"
    out = console()
    if not lines:
        out.print(f"no intercepts, fees or claims in the ledger for {scope}")
        return
    t = Table(title=f"ledger: {scope} (CNY)")
    for col in ("month", "merchant", "carrier", "asked", "ok", "failed", "charged", "waived", "refunded", "quota left",
                "claims", "paid", "outstanding"):
        t.add_column(col, justify="left" if col in ("month", "merchant", "carrier") else "right")
    for ln in lines:
        t.add_row(ln.month, ln.merchant_id, ln.carrier, str(ln.intercepts_attempted), str(ln.intercepts_succeeded), str(ln.intercepts_failed),
                  f"{ln.fees_charged} / {fen_to_cny(ln.fees_charged_fen)}", f"{ln.fees_waived} / {fen_to_cny(ln.fees_waived_fen)}",
                  f"{ln.fees_refunded} / {fen_to_cny(ln.fees_refunded_fen)}", f"{ln.quota_left} of {ln.free_quota}",
                  f"{ln.claims_opened} / {fen_to_cny(ln.claims_opened_fen)}", f"{ln.claims_paid} / {fen_to_cny(ln.claims_paid_fen)}",
                  f"{ln.claims_outstanding} / {fen_to_cny(ln.claims_outstanding_fen)}")
    t.add_row("total", "", "", *(str(sum(getattr(ln, n) for ln in lines)) for n in ("intercepts_attempted", "intercepts_succeeded", "intercepts_failed")),
              *(f"{sum(getattr(ln, n) for ln in lines)} / {fen_to_cny(sum(getattr(ln, n + '_fen') for ln in lines))}"
                for n in ("fees_charged", "fees_waived", "fees_refunded")), "",
              *(f"{sum(getattr(ln, n) for ln in lines)} / {fen_to_cny(sum(getattr(ln, n + '_fen') for ln in lines))}"
                for n in ("claims_opened", "claims_paid", "claims_outstanding")), style="bold")
    out.print(t)


def render_reconciliation(r: Reconciliation) -> None:
    out = console()
    out.print(f"bill of {r.carrier} for {r.month}: {r.bill_lines} lines, billed {fen_to_cny(r.billed_fen)} CNY, "
              f"the ledger expects {fen_to_cny(r.expected_fen)} CNY (difference {fen_to_cny(r.billed_fen - r.expected_fen)})")
    if r.clean:
        out.print("no differences: every charge and reversal on the bill is in the ledger, and nothing is missing")
        return
    t = Table(title="differences")
    for col in ("difference", "waybill", "kind", "line", "billed", "expected", "detail"):
        t.add_column(col, justify="right" if col in ("line", "billed", "expected") else "left", overflow="fold")
    for d in r.differences:
        t.add_row(DIFFERENCES[d.kind], d.waybill, d.line_kind, "-" if d.bill_line is None else str(d.bill_line),
                  "-" if d.billed_fen is None else fen_to_cny(d.billed_fen), "-" if d.expected_fen is None else fen_to_cny(d.expected_fen),
                  d.detail)
    out.print(t)
    for kind, total in r.totals().items():
        out.print(f"{DIFFERENCES[kind]}: {total['count']} ({fen_to_cny(total['fen'])} CNY)")
