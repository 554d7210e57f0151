"""The adversarial corpus against a real sandboxed plugin host (bwrap; gVisor where installed).

Every attack passes the scanner and runs inside the host; each effect is looked for from
outside: files created where the host could not write, a planted secret (a file in a data dir,
a variable in the supervisor's environment) in any output, a connection to a listener this test
runs. Each blocked attack fails its row with ``blocked_by_sandbox`` or ``blocked_by_guard``.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mixpeek_orchestration.batch.steps import ERROR_COLUMN, error_code
from mixpeek_orchestration.plugins.session import PluginSession
from mixpeek_orchestration.sandbox.config import SandboxConfig
from tests.sandbox_corpus import (
    ATTACKER,
    BENIGN,
    BLOCKED,
    READABLE,
    Outside,
    cases,
    row_text,
)

BACKENDS = [
    pytest.param("bwrap", marks=pytest.mark.skipif(not shutil.which("bwrap"), reason="no bwrap")),
    pytest.param("gvisor", marks=pytest.mark.skipif(not shutil.which("runsc"), reason="no runsc")),
]


def batch_of(texts: list[str]) -> pd.DataFrame:
    n = len(texts)
    return pd.DataFrame(
        {
            "data": texts,
            "document_id": [f"doc_{i}" for i in range(n)],
            "object_id": [f"obj_{i}" for i in range(n)],
            "blob_id": [f"blob_{i}" for i in range(n)],
            "blob_property": ["content"] * n,
            "blob_type": ["text"] * n,
            "collection_id": ["col_1"] * n,
            "feature_extractor_id": ["attacker_1_0_0"] * n,
            "mime_type": ["text/plain"] * n,
            "size_bytes": [0] * n,
            "text": texts,
        }
    )


@pytest.fixture(scope="module", params=BACKENDS)
def attacked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Outside, dict[str, Any], PluginSession]]:
    """The whole corpus through one host: its outputs by case, what is left outside."""
    outside = Outside(tmp_path_factory.mktemp(f"outside-{request.param}"))
    plugin = tmp_path_factory.mktemp("plugin") / "attacker"
    shutil.copytree(ATTACKER, plugin)
    session = PluginSession.start(
        plugin,
        sandbox=SandboxConfig(backend=request.param),
        allowed_hosts=("localhost",),  # the egress proxy is on, and must still refuse loopback
    )
    session.open(org_id="org_1", namespace_id="ns_1", allowed_hosts=["localhost"])
    stage = session.stage({}, index=0, steps=1)
    corpus = cases(outside)
    out = session.process(stage, batch_of([row_text(spec) for _, spec in corpus]))
    rows = {case: out.iloc[i].to_dict() for i, (case, _) in enumerate(corpus)}
    yield request.param, outside, rows, session
    session.close()
    outside.close()
    assert not list(plugin.glob("pwned*"))


def test_nothing_the_attacks_wanted_happened_outside(attacked: Any) -> None:
    backend, outside, rows, session = attacked
    assert outside.written() == []  # no file outside the scratch
    assert outside.listener.accepted == 0  # no connection out of the sandbox
    for case, row in rows.items():
        assert outside.token not in str(row), f"{backend}: {case} leaked the planted secret"
    assert not list(session.host.spec.plugin_dir.glob("pwned*"))
    assert not list(Path("/tmp").glob("pwned-tmp*"))


def test_every_write_read_and_connection_fails_its_row_as_blocked(attacked: Any) -> None:
    """A refused file access fails its row with a blocked code; a refused HTTP request is
    answered by the egress proxy with a 403 that says ``blocked_by_sandbox`` (what an HTTP
    client shows its caller), or fails the row when the client raises."""
    backend, _, rows, _ = attacked
    for case, row in rows.items():
        error = row[ERROR_COLUMN]
        if case in READABLE:
            continue
        if not isinstance(error, str):
            assert "blocked_by_sandbox" in str(row["result"]), f"{backend}: {case} was not stopped"
            continue
        code = error_code(error)
        if case.startswith("arrow_s3"):  # Arrow's S3 client reports a transport failure
            assert "connect" in error.lower() or code in BLOCKED, (case, error)
            continue
        assert code in BLOCKED, f"{backend}: {case} failed as {code}: {error}"


def test_what_the_host_may_read_holds_no_secret(attacked: Any) -> None:
    """Its environment is cleared (no platform variable reaches it), and the egress proxy
    refused a name that resolves to loopback, saying so."""
    _, _outside, rows, _ = attacked
    for case in READABLE:
        environ = rows[case]
        if isinstance(environ[ERROR_COLUMN], str):
            assert error_code(environ[ERROR_COLUMN]) in BLOCKED, case
            continue
        assert "PLANTED" not in environ["result"] and "MIXPEEK_DATA_DIR" not in environ["result"]
    own = rows["arrow_read-/proc/self/environ"]["result"]
    assert "MIXPEEK_HOST_PLUGIN=/plugin" in own  # the host's own variables, and nothing else
    proxied = rows["proxy-to-loopback"]
    assert "internal address" in str(proxied["result"]) + str(proxied[ERROR_COLUMN])


def test_a_realtime_request_is_stopped_the_same_way(attacked: Any) -> None:
    _backend, outside, _, session = attacked
    session.realtime()
    spec = {"attack": "arrow_osfile", "target": outside.target("realtime")}
    with pytest.raises(Exception) as caught:
        asyncio.run(session.infer({"text": row_text(spec)}, {}))
    assert getattr(caught.value, "code", None) is not None
    assert caught.value.code.value in BLOCKED, caught.value  # type: ignore[attr-defined]
    assert outside.written() == []
    ok = asyncio.run(session.infer({"text": row_text({"attack": "benign"})}, {}))
    assert ok["result"] == "ok"


@pytest.mark.parametrize("backend", BACKENDS)
def test_benign_standard_library_plugins_work_and_give_correct_vectors(
    backend: str, tmp_path: Path
) -> None:
    with PluginSession.start(BENIGN, sandbox=SandboxConfig(backend=backend)) as session:
        session.open(org_id="org_1", namespace_id="ns_1")
        stage = session.stage({}, index=0, steps=1)
        texts = [
            "\uff33\uff55\uff4e\uff4e\uff59 day",
            "na\u00efve caf\u00e9",
        ]  # full-width, accented
        out = session.process(stage, batch_of(texts))
        assert out[ERROR_COLUMN].isna().all(), out[ERROR_COLUMN].tolist()
        for text, vector, normalized in zip(
            texts, out["benign_embedding"], out["normalized"], strict=True
        ):
            expected = unicodedata.normalize("NFKC", text).casefold()
            digest = hashlib.sha256(expected.encode()).digest()
            assert normalized == expected
            assert list(vector) == pytest.approx([b / 255.0 for b in digest[:8]])
        assert (out["png_bytes"] > 0).all()
        session.realtime()
        answer = asyncio.run(session.infer({"text": texts[0]}, {}))
        assert answer["embedding"] == pytest.approx(list(out["benign_embedding"].iloc[0]))
