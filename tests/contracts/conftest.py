"""Fixtures every port contract uses."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def key() -> str:
    """An idempotency key no other test uses."""
    return f"contract-{uuid.uuid4().hex[:10]}"
