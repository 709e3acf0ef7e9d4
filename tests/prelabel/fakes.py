"""A small local fake of remote labelers (Label Studio ML backend, OpenAI chat) for tests.

Runs ``http.server`` in a thread on 127.0.0.1 and never touches the internet. ``behaviour``
decides the answers: a callable taking (path, body) and returning (status, json-able body or
raw bytes). Every request is recorded in ``requests``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Behaviour = Callable[[str, Any], tuple[int, Any]]


def ls_entities(text: str, patterns: dict[str, str]) -> list[dict]:
    """Label Studio ``labels`` items for every match of each label's regex."""
    items = []
    for label, pattern in patterns.items():
        for m in re.finditer(pattern, text):
            items.append(
                {
                    "from_name": "entities",
                    "to_name": "text",
                    "type": "labels",
                    "value": {"start": m.start(), "end": m.end(), "labels": [label], "text": m.group()},
                }
            )
    return items


def ls_ok(path: str, body: Any) -> tuple[int, Any]:
    """A well-behaved backend: topic from a keyword, ORG spans from a gazetteer."""
    if path == "/health":
        return 200, {"status": "UP", "model_class": "Fake"}
    if path == "/setup":
        return 200, {"model_version": "fake-1"}
    results = []
    for task in body["tasks"]:
        text = task["data"]["text"]
        topic = "business" if "Quantix" in text else "politics"
        items = [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [topic]}}]
        items += ls_entities(text, {"ORG": r"Quantix|Helios Bank"})
        results.append({"model_version": "fake-1", "score": 0.9, "result": items})
    return 200, {"results": results}


class FakeServer:
    def __init__(self, behaviour: Behaviour = ls_ok, delay: float = 0.0) -> None:
        self.behaviour = behaviour
        self.delay = delay
        self.requests: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                with outer.lock:
                    outer.requests.append((method, self.path, body))
                if outer.delay:
                    time.sleep(outer.delay)
                status, answer = outer.behaviour(self.path, body)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.requests if method is None or m == method]

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
