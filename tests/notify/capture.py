"""A capture server: a real HTTP server on 127.0.0.1 (free port) that records every request
and answers as the test scripted, including an answer that hangs until released."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


HANG = "hang"
BOUND_S = 5.0  # the longest any test waits for a condition
Answer = int | str | tuple[int, str]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Capture:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.answers: dict[str, list[Answer]] = {}
        self.changed = threading.Condition()
        self.received = threading.Event()  # set by the first request, before it is answered
        self.release = threading.Event()  # a hanging answer waits for it
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def script(self, path: str, *answers: Answer) -> None:
        """The next answers on ``path``: a status, (status, description), or HANG; then 200."""
        self.answers.setdefault(path, []).extend(answers)

    def wait_for(self, count: int) -> list[Seen]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.seen) >= count, BOUND_S), self.seen
            return list(self.seen)

    def _record(self, seen: Seen) -> Answer:
        with self.changed:
            self.seen.append(seen)
            self.changed.notify_all()
            script = self.answers.get(seen.path, [])
            answer = script.pop(0) if script else 200
        self.received.set()
        return answer


def _handler(capture: Capture) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            answer = capture._record(Seen("POST", self.path, dict(self.headers), body))
            if answer == HANG:
                capture.release.wait(BOUND_S)
                answer = 200
            status, description = (
                answer if isinstance(answer, tuple) else (int(answer), f"scripted {answer}")
            )
            payload = {"ok": True} if status < 300 else {"ok": False, "description": description}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:  # quiet: pytest shows stderr on failure
            pass

    return Handler


async def until_async(condition: Callable[[], bool], what: str) -> None:
    """Poll a condition from the event loop (other tasks keep running), bounded."""
    end = time.monotonic() + BOUND_S
    while not condition():
        assert time.monotonic() < end, f"not within {BOUND_S} s: {what}"
        await asyncio.sleep(0.005)
