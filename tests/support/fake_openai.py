"""A scriptable OpenAI-compatible chat-completions server on loopback, for tests and benchmarks.

Key contracts:
- Real HTTP (uvicorn + Litestar in a thread with its own event loop): the model runtime is
  exercised through the official ``openai`` client, never a monkeypatched one.
- Replies come from, in order: the scripted queue (``script``), the ``handler`` function,
  the ``default`` reply. A reply's ``delay`` is an ``asyncio.sleep`` in the server's loop,
  so slow answers never block concurrent requests (``max_in_flight`` proves it).
- Every request is recorded (path, headers, JSON body) before it is answered.
- State is shared between the test's thread and the server's: every access holds a lock.

Standalone, for benchmarks: ``python -m tests.support.fake_openai --port 8900 --delay 30``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from litestar import Litestar, Request, Response, post

_HOST = "127.0.0.1"


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call the fake model makes; string ``arguments`` are sent verbatim (bad JSON)."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class FakeReply:
    """One HTTP answer: status, JSON body, headers, and how long to wait before sending it."""

    status: int = 200
    body: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def text(cls, content: str, *, delay: float = 0.0) -> FakeReply:
        """A plain assistant answer, ``finish_reason`` ``stop``."""
        return cls(body=_completion({"role": "assistant", "content": content}, "stop"), delay=delay)

    @classmethod
    def tool_calls(
        cls,
        *calls: FakeToolCall | tuple[str, Mapping[str, Any] | str],
        content: str | None = None,
        delay: float = 0.0,
    ) -> FakeReply:
        """An answer calling tools (OpenAI wire format), ``finish_reason`` ``tool_calls``."""
        wire = []
        for index, call in enumerate(calls, start=1):
            spec = call if isinstance(call, FakeToolCall) else FakeToolCall(*call)
            arguments = spec.arguments
            wire.append(
                {
                    "id": spec.id or f"call_{index}_{spec.name}",
                    "type": "function",
                    "function": {
                        "name": spec.name,
                        "arguments": arguments
                        if isinstance(arguments, str)
                        else json.dumps(dict(arguments)),
                    },
                }
            )
        message = {"role": "assistant", "content": content, "tool_calls": wire}
        return cls(body=_completion(message, "tool_calls"), delay=delay)

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "fake error",
        *,
        retry_after: float | None = None,
        delay: float = 0.0,
    ) -> FakeReply:
        """An OpenAI-style error body; ``retry_after`` (seconds) sets ``Retry-After``."""
        headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
        body = {"error": {"message": message, "type": "fake_error", "code": str(status)}}
        return cls(status=status, body=body, headers=headers, delay=delay)


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake received; header names are lower-case."""

    path: str
    headers: Mapping[str, str]
    body: dict[str, Any]


Handler = Callable[[dict[str, Any]], FakeReply]


class FakeOpenAI:
    """The fake server and its script; start once per test session, ``reset`` per test."""

    def __init__(self, *, port: int = 0, default: FakeReply | None = None) -> None:
        self._port = port
        self.default = default or FakeReply.text("fake reply")
        self.handler: Handler | None = None
        self._lock = threading.Lock()
        self._script: deque[FakeReply] = deque()
        self._requests: list[RecordedRequest] = []
        # In-flight counts belong to a generation, so answers still sleeping from an
        # earlier test (a timed-out request) do not count towards this test's figures.
        self._generation = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's root URL (known once started)."""
        return f"http://{_HOST}:{self._port}"

    @property
    def base_url(self) -> str:
        """What to configure as a provider's ``base_url``."""
        return f"{self.url}/v1"

    def script(self, *replies: FakeReply) -> None:
        """Queue replies; each request takes the next one."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        """Forget the script, the handler, the records and the concurrency high-water mark."""
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self.handler = None
            self._generation += 1
            self._in_flight = 0
            self._max_in_flight = 0

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received since the last reset, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of ``requests``."""
        return [request.body for request in self.requests]

    @property
    def max_in_flight(self) -> int:
        """The most requests being answered at once since the last reset."""
        with self._lock:
            return self._max_in_flight

    def build_app(self) -> Litestar:
        """The ASGI app: chat completions with and without the ``/v1`` prefix."""

        @post(["/v1/chat/completions", "/chat/completions"], status_code=200)
        async def chat_completions(request: Request[Any, Any, Any]) -> Response[bytes]:
            try:
                body = json.loads(await request.body())
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return _json_response(FakeReply.error(400, "request body is not a JSON object"))
            generation = self._record(
                RecordedRequest(request.url.path, dict(request.headers), body)
            )
            try:
                reply = self._next_reply(body)
                if reply.delay > 0:
                    await asyncio.sleep(reply.delay)
                return _json_response(reply, model=str(body.get("model") or "fake-model"))
            finally:
                with self._lock:
                    if generation == self._generation:
                        self._in_flight -= 1

        return Litestar([chat_completions], debug=False)

    def _record(self, request: RecordedRequest) -> int:
        """Record a request, count it as in flight until answered; return its generation."""
        with self._lock:
            self._requests.append(request)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return self._generation

    def _next_reply(self, body: dict[str, Any]) -> FakeReply:
        """The script's next reply, else the handler's, else the default."""
        with self._lock:
            if self._script:
                return self._script.popleft()
            handler = self.handler
        # The handler runs outside the lock: it may call script() or read requests.
        return handler(body) if handler is not None else self.default

    def start(self, timeout: float = 30.0) -> None:
        """Serve in a background thread and wait until the socket accepts requests."""
        config = uvicorn.Config(
            self.build_app(),
            host=_HOST,
            port=self._port,
            log_level="warning",
            lifespan="off",
            # Slow scripted answers still sleeping at shutdown are cut short, not awaited.
            timeout_graceful_shutdown=1,
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve()), name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        # Port 0 asks the kernel for a free port: read back the one it chose.
        self._port = server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)


_completion_ids = itertools.count(1)


def _completion(message: Mapping[str, Any], finish_reason: str) -> dict[str, Any]:
    """A ``chat.completion`` object with one choice and fixed token counts."""
    return {
        "id": f"chatcmpl-fake-{next(_completion_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "choices": [
            {"index": 0, "message": dict(message), "finish_reason": finish_reason, "logprobs": None}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _json_response(reply: FakeReply, model: str = "fake-model") -> Response[bytes]:
    """Serialise a reply; successful completions echo the requested model."""
    body = dict(reply.body)
    if reply.status == 200 and "model" not in body:
        body["model"] = model
    return Response(
        json.dumps(body).encode(),
        status_code=reply.status,
        headers=dict(reply.headers),
        media_type="application/json",
    )


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    """One fake OpenAI server for the whole test session."""
    server = FakeOpenAI()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The session's fake server with a fresh script and empty records for this test."""
    fake_openai_server.reset()
    yield fake_openai_server
    fake_openai_server.reset()


def main() -> None:
    """Serve in the foreground with a fixed (optionally slow) text answer, for benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--text", default="fake reply", help="the answer's text")
    args = parser.parse_args()
    fake = FakeOpenAI(port=args.port, default=FakeReply.text(args.text, delay=args.delay))
    uvicorn.run(fake.build_app(), host=_HOST, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
