"""The API served over real HTTP on loopback by uvicorn, in a thread of the test process."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable

import uvicorn
from litestar import Litestar


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiServer:
    """Runs an app built by ``factory`` (inside the server's own event loop) on a free port."""

    def __init__(self, factory: Callable[[], Litestar]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._factory = factory
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app: Litestar | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Start serving and wait until the socket accepts requests."""

        def run() -> None:
            self.app = self._factory()
            config = uvicorn.Config(
                self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
            )
            self._server = uvicorn.Server(config)
            asyncio.run(self._server.serve())

        self._thread = threading.Thread(target=run, name=f"api-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not (self._server is not None and self._server.started):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("API server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
