"""The narrow channel between a plugin host (inside the sandbox) and its supervisor.

One stream socket carries frames: an 8-byte length prefix (``>II``: header length, then payload
length), a JSON header and an optional binary payload. Nothing on it is ever unpickled: headers
are JSON, batches are Arrow IPC streams, which a reader parses without running code.

Frames are of four kinds (``header["kind"]``):

* ``request`` (supervisor -> host) and its ``response`` (same ``id``), ``ok`` or an ``error``
  ``{code, detail, fields}``;
* ``call`` (host -> supervisor): a service the host asks for (a namespace model, a blob), and
  its ``reply``.

Example:
    >>> left, right = socket.socketpair()
    >>> send(left, {"kind": "request", "id": 1, "op": "ping"})
    >>> recv(right)
    ({'kind': 'request', 'id': 1, 'op': 'ping'}, b'')
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_PREFIX = struct.Struct(">II")
MAX_HEADER = 64 << 20  # a realtime answer with large vectors still fits
MAX_PAYLOAD = 2 << 30


class ChannelClosed(ConnectionError):
    """The other side went away (a host that exited, crashed or was killed)."""


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    view = memoryview(bytearray(size))
    got = 0
    while got < size:
        n = sock.recv_into(view[got:], size - got)
        if n == 0:
            raise ChannelClosed("the plugin host closed its channel")
        got += n
    return view.tobytes()


def send(
    sock: socket.socket,
    header: dict[str, Any],
    payload: bytes = b"",
    *,
    lock: threading.Lock | None = None,
) -> None:
    """Write one frame (under ``lock`` when several threads share the socket)."""
    data = json.dumps(header, separators=(",", ":"), default=str).encode()
    frame = _PREFIX.pack(len(data), len(payload)) + data
    small = len(payload) < 65536  # one write; a large payload is not copied
    with lock or nullcontext():
        sock.sendall(frame + payload if small else frame)
        if not small:
            sock.sendall(payload)


def recv(sock: socket.socket) -> tuple[dict[str, Any], bytes]:
    """Read one frame: its header and payload."""
    try:
        head, size = _PREFIX.unpack(_read_exactly(sock, _PREFIX.size))
    except OSError as exc:
        if isinstance(exc, ChannelClosed):
            raise
        raise ChannelClosed(f"the plugin host's channel broke: {exc}") from exc
    if head > MAX_HEADER or size > MAX_PAYLOAD:
        raise ChannelClosed(f"oversized frame ({head} + {size} bytes): the host is not trusted")
    header = json.loads(_read_exactly(sock, head))
    if not isinstance(header, dict):
        raise ChannelClosed("a frame header is not an object")
    return header, _read_exactly(sock, size) if size else b""


def error_header(exc: BaseException) -> dict[str, Any]:
    """An exception as a response's ``error``: a ``MixpeekError`` keeps its code and fields."""
    if isinstance(exc, MixpeekError):
        return {"code": exc.code.value, "detail": exc.detail, "fields": _jsonable(exc.fields)}
    return {
        "code": ErrorCode.PLUGIN_RUNTIME_ERROR.value,
        "detail": f"{type(exc).__name__}: {exc}",
        "fields": {},
    }


def raise_error(error: dict[str, Any]) -> None:
    """Raise a response's ``error`` as the ``MixpeekError`` it stands for."""
    code = next(
        (c for c in ErrorCode if c.value == error.get("code")), ErrorCode.PLUGIN_RUNTIME_ERROR
    )
    fields = error.get("fields")
    raise MixpeekError(
        code,
        str(error.get("detail", "plugin host error")),
        **(fields if isinstance(fields, dict) else {}),
    )


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


def frame_to_ipc(frame: pd.DataFrame) -> bytes:
    """A pandas batch as an Arrow IPC stream."""
    import pyarrow as pa

    return table_to_ipc(pa.Table.from_pandas(frame, preserve_index=False))


def table_to_ipc(table: pa.Table) -> bytes:
    """An Arrow table as an IPC stream (a slice costs only its own rows)."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]


def ipc_to_table(data: bytes) -> pa.Table:
    import pyarrow as pa

    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def ipc_to_frame(data: bytes) -> pd.DataFrame:
    """An Arrow IPC stream back as a pandas batch."""
    return ipc_to_table(data).replace_schema_metadata(None).to_pandas()  # type: ignore[no-any-return]
