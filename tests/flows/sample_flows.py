"""Tiny flows that exercise the taskbot worker before the real bot-session flow exists."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from uuid import uuid4

from prefect import flow


@flow(name="worker-test-noop")
async def noop(value: int = 0) -> int:
    """Return at once: measures the worker's own per-run cost."""
    return value


@flow(name="worker-test-sleepy")
async def sleepy(seconds: float = 2.0) -> float:
    """Wait, as a bot session waits on its model."""
    await asyncio.sleep(seconds)
    return seconds


@flow(name="worker-test-failing")
async def failing(message: str = "boom") -> None:
    """Fail inside the flow function."""
    raise RuntimeError(message)


@flow(name="worker-test-whoami")
async def whoami(path: str) -> None:
    """Write the process id and thread name the run executed in, for the test to check."""
    where = f"{os.getpid()} {threading.current_thread().name}"
    await asyncio.to_thread(Path(path).write_text, where)


@flow(name="worker-test-rendezvous")
async def rendezvous(directory: str, expected: int, within: float = 60.0) -> int:
    """Check in, then wait until `expected` runs have: completes only if they ran together."""
    folder = Path(directory)
    await asyncio.to_thread((folder / uuid4().hex).touch)
    deadline = time.monotonic() + within
    while len(await asyncio.to_thread(os.listdir, folder)) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {expected} runs checked in within {within} s")
        await asyncio.sleep(0.1)
    return expected


@flow(name="worker-test-sync")
def sync_flow() -> None:
    """A sync flow, which the in-process worker refuses to run."""
