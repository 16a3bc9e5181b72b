"""The worker's Prefect API client: one per event loop, shared, with quick retries on 503.

Key contracts:
- A Prefect server on SQLite answers 503 ("database is locked") whenever two write
  transactions collide, which a worker starting many runs does all the time. Prefect's
  client retries a 503 only after 2, 4, 8… s, so a burst of runs crawls. The transport
  here retries 502/503 after 50 ms, doubling up to 0.8 s, with jitter; Prefect's own
  retries stay behind it for real outages. A 503 carrying `Retry-After` (maintenance)
  is left to Prefect, which honours the header.
- PrefectClient ignores its TLS and pool settings when given a transport, so the
  transport is built here with the same TLS rules as Prefect's client.
- `get_client()` hands out the current `AsyncClientContext`'s client only when that
  context was made without httpx settings and on the same event loop, so the context
  is built around our client directly. Everything Prefect does on that loop (the
  worker base class, the flow engine) then reuses it instead of building new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from collections.abc import AsyncIterator

import certifi
import httpx
from prefect.client.orchestration import PrefectClient
from prefect.context import AsyncClientContext
from prefect.logging import get_logger
from prefect.settings import (
    PREFECT_API_AUTH_STRING,
    PREFECT_API_ENABLE_HTTP2,
    PREFECT_API_KEY,
    PREFECT_API_SSL_CERT_FILE,
    PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
    PREFECT_API_URL,
)

RETRY_STATUSES = frozenset({502, 503})
logger = get_logger("taskbot.worker")


class RetryingTransport(httpx.AsyncBaseTransport):
    """Re-sends a request that got 502/503 a few times, quickly, before giving up the answer."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        attempts: int = 6,
        first_delay: float = 0.05,
        max_delay: float = 0.8,
    ) -> None:
        self._inner = inner
        self._attempts = attempts
        self._first_delay = first_delay
        self._max_delay = max_delay

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`; on a retryable answer wait (with jitter) and send it again."""
        delay = self._first_delay
        for _ in range(self._attempts - 1):
            response = await self._inner.handle_async_request(request)
            if response.status_code not in RETRY_STATUSES or "retry-after" in response.headers:
                return response
            # Prefect answers 503 only for failed transactions, so sending again is safe.
            logger.debug(
                "%s %s: %d, retrying", request.method, request.url.path, response.status_code
            )
            await response.aclose()
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, self._max_delay)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()


def create_worker_client(api_url: str | None = None, *, max_connections: int = 32) -> PrefectClient:
    """A PrefectClient for `api_url` (default: the current settings) with quick 503 retries."""
    url = api_url or PREFECT_API_URL.value()
    if not url:
        # Never let Prefect fall back to starting an ephemeral server inside the worker.
        raise ValueError("no Prefect API URL: set PREFECT_API_URL or pass api_url")
    transport = httpx.AsyncHTTPTransport(
        verify=tls_context(),
        http2=PREFECT_API_ENABLE_HTTP2.value(),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections // 2,
            keepalive_expiry=25,
        ),
        retries=3,
    )
    return PrefectClient(
        url,
        api_key=PREFECT_API_KEY.value(),
        auth_string=PREFECT_API_AUTH_STRING.value(),
        httpx_settings={"transport": RetryingTransport(transport)},
    )


def tls_context() -> ssl.SSLContext:
    """The TLS context Prefect's own client would use, per the current settings."""
    if PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value():
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=PREFECT_API_SSL_CERT_FILE.value() or certifi.where())


@contextlib.asynccontextmanager
async def shared_client(api_url: str | None = None) -> AsyncIterator[PrefectClient]:
    """Open a worker client and make it the one `get_client()` returns on this event loop."""
    client = create_worker_client(api_url)
    async with client:
        # model_construct: AsyncClientContext's own __init__ would build another client.
        with AsyncClientContext.model_construct(client=client):
            yield client
