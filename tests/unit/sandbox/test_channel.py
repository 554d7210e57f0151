"""The host channel: frames, batches as Arrow IPC, errors that keep their codes."""

from __future__ import annotations

import socket
import struct
import threading

import numpy as np
import pandas as pd
import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.sandbox import channel


def test_frames_round_trip_with_small_and_large_payloads() -> None:
    left, right = socket.socketpair()
    big = bytes(range(256)) * 4096  # 1 MiB: written in two parts
    threading.Thread(
        target=lambda: [channel.send(left, {"i": i}, p) for i, p in enumerate([b"", b"x", big])]
    ).start()
    assert channel.recv(right) == ({"i": 0}, b"")
    assert channel.recv(right) == ({"i": 1}, b"x")
    assert channel.recv(right) == ({"i": 2}, big)
    left.close()
    with pytest.raises(channel.ChannelClosed):
        channel.recv(right)


def test_an_oversized_or_malformed_frame_closes_the_channel() -> None:
    left, right = socket.socketpair()
    left.sendall(struct.pack(">II", channel.MAX_HEADER + 1, 0))
    with pytest.raises(channel.ChannelClosed, match="oversized"):
        channel.recv(right)
    left, right = socket.socketpair()
    left.sendall(struct.pack(">II", 2, 0) + b"[]")
    with pytest.raises(channel.ChannelClosed, match="not an object"):
        channel.recv(right)


def test_batches_travel_as_arrow_ipc() -> None:
    frame = pd.DataFrame(
        {"text": ["a", "b"], "n": [1, 2], "v": [[0.5, 1.0], None], "_error": [None, "x"]}
    )
    back = channel.ipc_to_frame(channel.frame_to_ipc(frame))
    assert back["text"].tolist() == ["a", "b"] and back["n"].tolist() == [1, 2]
    assert np.asarray(back["v"].iloc[0]).tolist() == [0.5, 1.0] and back["v"].iloc[1] is None
    assert pd.isna(back["_error"].iloc[0]) and back["_error"].iloc[1] == "x"


def test_errors_keep_their_code_and_fields() -> None:
    header = channel.error_header(MixpeekError(ErrorCode.BLOCKED_BY_GUARD, "no", action="write"))
    with pytest.raises(MixpeekError) as caught:
        channel.raise_error(header)
    assert caught.value.code is ErrorCode.BLOCKED_BY_GUARD and caught.value.fields == {
        "action": "write"
    }
    with pytest.raises(MixpeekError) as other:
        channel.raise_error(channel.error_header(ValueError("bad")))
    assert (
        other.value.code is ErrorCode.PLUGIN_RUNTIME_ERROR
        and "ValueError: bad" in other.value.detail
    )
