"""Policy documents as TOML files (docs/policy.md): read with tomllib, written by hand.

The document's shape is fixed and shallow (top-level name, tables of scalars and lists of
codes, one nested table of fees), so writing it needs no library: strings are written as
TOML basic strings with JSON's escapes, which TOML shares for everything a code or a name
may hold.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from domain.policy import Policy
from domain.policy_document import PolicyError, parse_policy, policy_document


def read_policy_text(text: str, where: str = "policy") -> Policy:
    """The policy a TOML text describes; PolicyError naming the key (or the TOML line) otherwise."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError("", f"{where} is not valid TOML: {exc}") from None
    return parse_policy(doc)


def read_policy_file(path: str | Path) -> Policy:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError("", f"cannot read {p}: {exc}") from None
    return read_policy_text(text, str(p))


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} in a policy file")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else json.dumps(k)


def document_toml(doc: dict[str, Any], header: str = "") -> str:
    """A policy document as TOML text: scalars first, then each table, nested tables after."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []

    def table(prefix: str, values: dict[str, Any]) -> None:
        nested = []
        for k, v in values.items():
            if isinstance(v, dict):
                nested.append((k, v))
            else:
                lines.append(f"{_key(k)} = {_value(v)}")
        for k, v in nested:
            name = f"{prefix}.{_key(k)}" if prefix else _key(k)
            lines.append("")
            lines.append(f"[{name}]")
            table(name, v)

    table("", doc)
    return "\n".join(lines).lstrip("\n") + "\n"


def policy_toml(policy: Policy, header: str = "") -> str:
    return document_toml(policy_document(policy), header)
