"""A tiny keyword sentiment HTTP service: the external API the `api_tagger` example calls.

Run: python examples/services/sentiment_service.py --port 8765
POST /classify {"text": "..."} -> {"label": "positive" | "negative" | "neutral", "score": float}
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POSITIVE = {"good", "great", "love", "excellent", "happy", "wonderful", "best", "sunny", "strong"}
NEGATIVE = {"bad", "terrible", "hate", "awful", "sad", "worst", "poor", "broken", "weak"}


def classify(text: str) -> dict[str, object]:
    words = {w.strip(".,!?;:").lower() for w in text.split()}
    score = len(words & POSITIVE) - len(words & NEGATIVE)
    label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    return {"label": label, "score": float(score)}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        if self.path != "/classify":
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length", "0"))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            answer = json.dumps(classify(str(body.get("text", "")))).encode()
        except json.JSONDecodeError:
            self.send_error(400, "body must be JSON")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        return


def serve(port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), Handler)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    print(f"sentiment service on http://127.0.0.1:{args.port}/classify")
    serve(args.port).serve_forever()
