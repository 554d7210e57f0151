"""Cursor pages."""

from __future__ import annotations

import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.storage.pages import decode_cursor, encode_cursor, page


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    assert decode_cursor(encode_cursor(41)) == 41
    assert decode_cursor(None) == -1
    with pytest.raises(MixpeekError, match="cursor"):
        decode_cursor("not-a-cursor")
    result = page([{"seq": i} for i in range(4)], 3)
    assert [r["seq"] for r in result["results"]] == [0, 1, 2]
    assert decode_cursor(result["pagination"]["next_cursor"]) == 2
    assert page([{"seq": 1}], 3)["pagination"]["next_cursor"] is None
