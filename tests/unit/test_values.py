"""The domain's fast `replace` must behave like dataclasses.replace for our values."""

import dataclasses

import pytest

from domain.state import DayTotal
from domain.values import replace


def test_replace_builds_an_equal_value_to_the_standard_one():
    day = DayTotal(day="2026-11-11", fen=100)
    assert replace(day, fen=250) == dataclasses.replace(day, fen=250)
    assert day.fen == 100  # the original is untouched


def test_replace_refuses_a_field_the_value_does_not_have():
    with pytest.raises(TypeError, match="DayTotal has no field amount"):
        replace(DayTotal(day="2026-11-11", fen=100), amount=1)
