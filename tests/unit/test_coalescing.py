"""app.coalescing: which waiting messages read as one, and that no input is lost or moved."""

from __future__ import annotations

from app.coalescing import InputMessage, joined


def test_messages_that_continue_one_another_become_one_up_to_the_limit():
    messages = [InputMessage("s", 0, ["a", "b"], 0), InputMessage("s", 2, ["c"], 2), InputMessage("s", 3, ["d", "e"], 3)]
    assert joined(messages, 100) == [InputMessage("s", 0, ["a", "b", "c", "d", "e"], 0)]
    assert joined(messages, 3) == [InputMessage("s", 0, ["a", "b", "c"], 0), InputMessage("s", 3, ["d", "e"], 3)]


def test_a_gap_in_offsets_or_lines_or_another_source_keeps_messages_apart():
    gap_in_offsets = [InputMessage("s", 0, ["a"], 0), InputMessage("s", 2, ["b"], 1)]
    blank_line_between = [InputMessage("s", 0, ["a"], 0), InputMessage("s", 1, ["b"], 2)]
    other_source = [InputMessage("s", 0, ["a"], 0), InputMessage("t", 1, ["b"], 1)]
    for messages in (gap_in_offsets, blank_line_between, other_source):
        assert joined(messages, 100) == messages


def test_out_of_order_messages_of_a_source_are_joined_in_offset_order():
    messages = [InputMessage("s", 2, ["c"], 2), InputMessage("t", None, [{"x": 1}]), InputMessage("s", 0, ["a", "b"], 0)]
    assert joined(messages, 100) == [InputMessage("s", 0, ["a", "b", "c"], 0), InputMessage("t", None, [{"x": 1}])]


def test_messages_without_offsets_of_one_source_are_joined_in_the_order_they_came():
    messages = [InputMessage("http", None, [{"n": 1}]), InputMessage("http", None, [{"n": 2}]), InputMessage("http", 0, ["x"])]
    assert joined(messages, 100) == [InputMessage("http", None, [{"n": 1}, {"n": 2}]), InputMessage("http", 0, ["x"])]
