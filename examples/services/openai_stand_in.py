"""An OpenAI-compatible stand-in for the tests and the demo: ``/v1/chat/completions`` and
``/v1/embeddings`` with deterministic answers and token usage, on loopback. Not a model: it
labels text by keyword and embeds it by hash, so the LLM accessor's path can be shown and
tested without a provider.

Run: python examples/services/openai_stand_in.py PORT [--key KEY] (with ``--key`` every call
must carry ``Authorization: Bearer KEY``, 401 otherwise). ``GET /v1/_calls`` lists the calls it
answered and the sha256 of each one's key, so a test sees what reached the provider.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CALLS: list[dict[str, Any]] = []
LOCK = threading.Lock()


def tokens(text: str) -> int:
    return len(text.split())


def chat_answer(body: dict[str, Any]) -> dict[str, Any]:
    """Labels the last user message: ``positive`` when it says "good" or "great", else
    ``negative``; usage counts words."""
    prompt = " ".join(str(m.get("content", "")) for m in body["messages"])
    last = str(body["messages"][-1].get("content", "")).lower()
    label = "positive" if ("good" in last or "great" in last) else "negative"
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": label}}],
        "usage": {"prompt_tokens": tokens(prompt), "completion_tokens": 1,
                  "total_tokens": tokens(prompt) + 1},
    }  # fmt: skip


def embedding_answer(body: dict[str, Any]) -> dict[str, Any]:
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = []
    for i, text in enumerate(texts):
        digest = hashlib.sha256(text.encode()).digest()
        data.append({"object": "embedding", "index": i,
                     "embedding": [b / 255 for b in digest[:8]]})  # fmt: skip
    used = sum(tokens(t) for t in texts)
    return {"object": "list", "model": body["model"], "data": data,
            "usage": {"prompt_tokens": used, "total_tokens": used}}  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    key: str | None = None

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/_calls":
            with LOCK:
                self._send(200, {"calls": list(CALLS)})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        auth = self.headers.get("Authorization", "")
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with LOCK:
            CALLS.append({"path": self.path, "model": body.get("model"),
                          "key_sha256": hashlib.sha256(auth.encode()).hexdigest()})  # fmt: skip
        if self.key is not None and auth != f"Bearer {self.key}":
            self._send(401, {"error": {"message": "invalid api key", "type": "auth"}})
        elif self.path == "/v1/chat/completions":
            self._send(200, chat_answer(body))
        elif self.path == "/v1/embeddings":
            self._send(200, embedding_answer(body))
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})


def serve(port: int, key: str | None = None) -> ThreadingHTTPServer:
    Handler.key = key
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--key")
    args = parser.parse_args()
    serve(args.port, args.key).serve_forever()
