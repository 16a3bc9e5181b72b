"""One session: a flow run driven to a final state by Prefect's own async flow engine.

Key contracts (Prefect 3.9.1 behaviour this module relies on or works around):
- The engine starts, per run of a deployment, a thread with its own event loop, API
  client and event subscription to notice server-side suspension, and blocks the
  calling event loop until that thread is subscribed (and up to 2 s when it stops).
  Bot sessions never suspend, so `SessionEngine` keeps in-process pause support and
  skips that observer: it was the largest per-run cost when measured.
- A cancelled asyncio task inside the engine is reported as Crashed unless a runner
  process says otherwise. Cancellation that the worker asks for (a user's cancel, the
  end of the shutdown grace period) is recorded as Cancelled, with the worker's reason.
- The engine re-raises ordinary exceptions from its own API calls without recording a
  state. A run whose flow function never began is still Pending on the server:
  `SessionNotStarted` tells the worker it may put it back in the queue. A run that began
  is always proposed a final state, so nothing stays Running.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import anyio
from prefect._flow_run_suspension import (
    FlowRunSuspensionRequest,
    register_flow_run_suspension_request,
)
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, State
from prefect.exceptions import Pause
from prefect.flow_engine import AsyncFlowRunEngine
from prefect.flows import Flow
from prefect.states import Cancelled, Crashed
from prefect.utilities.callables import get_call_parameters, parameters_to_args_kwargs
from prefect.utilities.engine import propose_state

CANCELLED_ON_REQUEST = "Cancelled on request."


@dataclass
class SessionControl:
    """Cancellation of one session; used only on the session loop's thread."""

    reason: str | None = None
    scope: anyio.CancelScope | None = None

    def cancel(self, reason: str) -> None:
        """Stop the session: its run ends Cancelled with `reason` (the first reason wins)."""
        if self.reason is None:
            self.reason = reason
        if self.scope is not None:
            self.scope.cancel()


class SessionNotStarted(Exception):
    """The engine stopped before the flow function began; the run is still Pending."""

    def __init__(self, flow_run_id: UUID, cause: BaseException | None) -> None:
        super().__init__(f"flow run {flow_run_id} did not start: {cause!r}")
        self.cause = cause


@dataclass
class SessionEngine(AsyncFlowRunEngine[Any, Any]):
    """Prefect's async flow engine, without the suspension observer, cancelling cleanly."""

    control: SessionControl = field(default_factory=SessionControl)

    @contextmanager
    def setup_flow_run_suspension_request(self) -> Iterator[FlowRunSuspensionRequest]:
        """Register the run's in-process suspension request, without a remote observer."""
        if self.flow_run is None:
            raise ValueError("Flow run not set")
        request = self._get_flow_run_suspension_request()
        with register_flow_run_suspension_request(self.flow_run.id, request):
            request.raise_if_requested()
            yield request

    async def handle_crash(self, exc: BaseException) -> None:
        """Record a cancellation the worker asked for as Cancelled; anything else crashes."""
        if self.control.reason is None:
            await super().handle_crash(exc)
            return
        with anyio.CancelScope(shield=True):
            self.logger.info("Session cancelled: %s", self.control.reason)
            await self.set_state(Cancelled(message=self.control.reason), force=True)


async def run_session(
    flow: Flow[..., Any], flow_run: FlowRun, control: SessionControl
) -> State[Any]:
    """Run `flow_run` in this event loop until Prefect has recorded its outcome.

    Returns the run's final (or Paused) state. Raises SessionNotStarted when the flow
    function never began, Abort when Prefect refused the run, and the API error when no
    outcome could be recorded.
    """
    engine: SessionEngine | None = None
    error: BaseException | None = None
    try:
        with anyio.CancelScope() as scope:
            control.scope = scope
            if control.reason is not None:
                scope.cancel()
            engine = SessionEngine(
                flow=flow,
                flow_run=flow_run,
                parameters=flow_parameters(flow, flow_run),
                control=control,
            )
            async with engine.start():
                while engine.is_running():
                    async with engine.run_context():
                        # Prefect annotates the awaited value as a coroutine; it is the result.
                        _ = await engine.call_flow_fn()
    except Pause:
        pass  # the engine has recorded Paused/Suspended; Prefect reschedules the run
    except Exception as exc:
        error = exc
    finally:
        control.scope = None
    state = engine.flow_run.state if engine is not None and engine.flow_run else None
    if state is not None and (state.is_final() or state.is_paused()):
        return state
    if state is not None and state.is_scheduled() and error is None and control.reason is None:
        return state  # Prefect put the run back itself (e.g. a concurrency slot was busy)
    if control.reason is not None:
        return await record_state(flow_run.id, Cancelled(message=control.reason))
    if state is None or state.is_scheduled() or state.is_pending():
        raise SessionNotStarted(flow_run.id, error)
    if state.is_cancelling():
        return await record_state(flow_run.id, Cancelled(message=CANCELLED_ON_REQUEST))
    message = f"The session stopped without recording an outcome: {error!r}"
    return await record_state(flow_run.id, Crashed(message=message))


async def record_state(flow_run_id: UUID, state: State[Any]) -> State[Any]:
    """Force a final state onto a run, even while the session is being cancelled."""
    with anyio.CancelScope(shield=True):
        async with get_client() as client:
            recorded = await propose_state(client, state, flow_run_id=flow_run_id, force=True)
    return recorded


def flow_parameters(flow: Flow[..., Any], flow_run: FlowRun) -> dict[str, Any]:
    """The run's parameters bound to the flow's signature, defaults filled in."""
    args, kwargs = parameters_to_args_kwargs(flow.fn, flow_run.parameters)
    return get_call_parameters(flow.fn, args, kwargs)
