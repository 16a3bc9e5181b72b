"""Load a deployment's flow once per entrypoint, prepared for many in-process runs.

Key contracts:
- An entrypoint `flows/bot_session.py:bot_session` is imported as the module
  `flows.bot_session` when that module is importable (and is that file), so a flow
  module is imported once and shares state with the rest of the package. Prefect's own
  loader would execute the file again under a made-up module name; it is only the
  fallback for scripts outside any package.
- Prefect resolves result storage on every run of a flow that has none configured: a
  blocking HTTP call for the server's default storage block, made on the event loop,
  plus a new API client each time. The loader pins results off and local unless the
  flow chose otherwise, which skips all of that.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from pathlib import Path
from typing import Any

from prefect.flows import Flow, load_flow_from_entrypoint


class UnsupportedFlowError(Exception):
    """The entrypoint does not name an async flow, so it cannot run in-process."""


class FlowLoader:
    """Imports each entrypoint's flow once and caches it, prepared for in-process runs."""

    def __init__(self, project_root: Path, result_storage: Path) -> None:
        self.project_root = project_root
        self.result_storage = result_storage
        self._flows: dict[str, Flow[..., Any]] = {}
        self._lock = asyncio.Lock()

    async def load(self, entrypoint: str) -> Flow[..., Any]:
        """The prepared flow for `entrypoint`; the first call imports it off the event loop."""
        cached = self._flows.get(entrypoint)
        if cached is not None:
            return cached
        async with self._lock:
            cached = self._flows.get(entrypoint)
            if cached is None:
                loaded = await asyncio.to_thread(import_flow, entrypoint, self.project_root)
                cached = prepare_flow(loaded, self.result_storage)
                self._flows[entrypoint] = cached
            return cached


def import_flow(entrypoint: str, project_root: Path) -> Flow[..., Any]:
    """Import the async flow an entrypoint names (`path/to/file.py:name` or `module:name`)."""
    target, separator, attribute = entrypoint.rpartition(":")
    if not separator or not target or not attribute:
        raise UnsupportedFlowError(f"invalid entrypoint {entrypoint!r}: expected 'target:name'")
    module_name = target if not target.endswith(".py") else module_for_path(target, project_root)
    if module_name is None:
        script = Path(target) if Path(target).is_absolute() else project_root / target
        found: Any = load_flow_from_entrypoint(f"{script}:{attribute}", use_placeholder_flow=False)
    else:
        found = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    if not isinstance(found, Flow):
        raise UnsupportedFlowError(f"{entrypoint!r} is not a Prefect flow")
    if not found.isasync or found.isgenerator:
        raise UnsupportedFlowError(
            f"{entrypoint!r} is not an async flow; the taskbot worker runs async flows only"
        )
    return found


def module_for_path(path: str, project_root: Path) -> str | None:
    """The dotted module name for a relative `.py` path, if importing it loads that file."""
    relative = Path(path)
    if relative.is_absolute():
        return None
    parts = relative.with_suffix("").parts
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    module_name = ".".join(parts)
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    local = project_root / relative
    # An installed package is fine when the project tree does not have the file; when it
    # does, the module must be that very file, or runs would use stale code.
    if local.exists() and Path(spec.origin).resolve() != local.resolve():
        return None
    return module_name


def prepare_flow(flow: Flow[..., Any], result_storage: Path) -> Flow[..., Any]:
    """The flow with explicit result settings, so runs never look up default storage."""
    if flow.result_storage is not None and flow.persist_result is not None:
        return flow
    return flow.with_options(
        persist_result=False if flow.persist_result is None else flow.persist_result,
        # A Path is the one storage form Prefect resolves without an API call.
        result_storage=flow.result_storage or result_storage,
    )
