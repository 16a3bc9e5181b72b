"""Unit tests for the worker's flow loading and helpers (no Prefect server needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun

from flows.worker import is_transient, wait_event
from flows.worker_client import RetryingTransport
from flows.worker_engine import flow_parameters
from flows.worker_flows import (
    FlowLoader,
    UnsupportedFlowError,
    import_flow,
    module_for_path,
    prepare_flow,
)
from tests.flows import sample_flows

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_entrypoint_path_is_imported_as_its_package_module() -> None:
    assert (
        module_for_path("tests/flows/sample_flows.py", PROJECT_ROOT) == "tests.flows.sample_flows"
    )
    flow = import_flow("tests/flows/sample_flows.py:sleepy", PROJECT_ROOT)
    assert flow is sample_flows.sleepy  # the same object, not a second copy of the module


def test_module_entrypoints_and_scripts_outside_packages_load(tmp_path: Path) -> None:
    assert import_flow("tests.flows.sample_flows:noop", PROJECT_ROOT) is sample_flows.noop
    script = tmp_path / "standalone.py"
    script.write_text(
        "from prefect import flow\n\n"
        "@flow(name='standalone')\nasync def main() -> None:\n    pass\n"
    )
    assert module_for_path("standalone.py", tmp_path) is None
    assert import_flow("standalone.py:main", tmp_path).name == "standalone"


def test_a_file_shadowed_by_another_module_is_not_imported_by_name(tmp_path: Path) -> None:
    shadow = tmp_path / "tests" / "flows" / "sample_flows.py"
    shadow.parent.mkdir(parents=True)
    shadow.write_text("")
    assert module_for_path("tests/flows/sample_flows.py", tmp_path) is None


@pytest.mark.parametrize(
    ("entrypoint", "message"),
    [
        ("tests/flows/sample_flows.py:sync_flow", "async flows only"),
        ("tests/flows/sample_flows.py:PROJECT_ROOT_IS_MISSING", ""),
        ("tests.flows.sample_flows:asyncio", "not a Prefect flow"),
        ("no-colon-here", "invalid entrypoint"),
    ],
)
def test_entrypoints_that_cannot_run_in_process_are_refused(entrypoint: str, message: str) -> None:
    with pytest.raises((UnsupportedFlowError, AttributeError)) as raised:
        import_flow(entrypoint, PROJECT_ROOT)
    assert message in str(raised.value)


def test_prepared_flow_never_looks_up_default_result_storage(tmp_path: Path) -> None:
    prepared = prepare_flow(sample_flows.noop, tmp_path)
    assert prepared.persist_result is False
    assert prepared.result_storage == tmp_path
    assert sample_flows.noop.persist_result is None  # the module's flow is untouched
    chosen = sample_flows.noop.with_options(result_storage=tmp_path / "x")
    assert prepare_flow(chosen, tmp_path).result_storage == tmp_path / "x"


async def test_loader_imports_each_entrypoint_once(tmp_path: Path) -> None:
    loader = FlowLoader(PROJECT_ROOT, tmp_path)
    first, second = await asyncio.gather(
        loader.load("tests/flows/sample_flows.py:noop"),
        loader.load("tests/flows/sample_flows.py:noop"),
    )
    assert first is second
    assert first.name == "worker-test-noop"


def test_flow_parameters_bind_defaults_and_refuse_unknown_ones() -> None:
    run = FlowRun(flow_id=uuid4(), parameters={})
    assert flow_parameters(sample_flows.sleepy, run) == {"seconds": 2.0}
    run = FlowRun(flow_id=uuid4(), parameters={"nope": 1})
    with pytest.raises(Exception, match="nope"):
        flow_parameters(sample_flows.sleepy, run)


def test_transient_errors_are_network_errors_and_retryable_statuses() -> None:
    request = httpx.Request("GET", "http://prefect/api")
    assert is_transient(httpx.ConnectError("down", request=request))
    for status, expected in [(503, True), (500, True), (429, True), (404, False), (409, False)]:
        response = httpx.Response(status, request=request)
        error = httpx.HTTPStatusError("x", request=request, response=response)
        assert is_transient(error) is expected
    assert not is_transient(ImportError("no module"))


async def test_wait_event_reports_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, None) is True


async def test_retrying_transport_retries_503_quickly_but_not_maintenance() -> None:
    answers = iter([503, 503, 200])
    seen: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        seen.append(status)
        return httpx.Response(status)

    transport = RetryingTransport(httpx.MockTransport(answer), first_delay=0.001)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post("http://prefect/api/flow_runs/", json={"a": 1})
    assert response.status_code == 200 and seen == [503, 503, 200]

    def maintenance(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "30"})

    transport = RetryingTransport(httpx.MockTransport(maintenance), first_delay=0.001)
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("http://prefect/api/health")).status_code == 503

    always: list[int] = []

    def unavailable(request: httpx.Request) -> httpx.Response:
        always.append(503)
        return httpx.Response(503)

    transport = RetryingTransport(httpx.MockTransport(unavailable), attempts=3, first_delay=0.001)
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("http://prefect/api/health")).status_code == 503
    assert len(always) == 3
