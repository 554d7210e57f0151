"""The two contracts plugin code implements: batch processors and realtime handlers.

Processors (``processors/*.py``) are classes ``Processor(config, progress_actor=None)`` called
with a ``pandas.DataFrame`` batch; they return the same rows, same order, with output columns
added. Realtime handlers (``realtime.py``) come in the two shapes of the hosted product:

* ``RealtimeHandler`` with ``predict(request: dict) -> dict`` (sync or async), where ``request``
  is the call's ``inputs`` (plus ``parameters`` under that key);
* any class with ``async run_inference(inputs: dict, parameters: dict) -> dict``.

:class:`RealtimeAdapter` gives both one async interface.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mixpeek_orchestration.errors import ErrorCode, MixpeekError

if TYPE_CHECKING:
    import pandas as pd

    from mixpeek_orchestration.sdk._context import PluginContext


@runtime_checkable
class Processor(Protocol):
    """A batch processor: load models once in ``__init__`` (or lazily), reuse across batches."""

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame: ...


class RealtimeHandler:
    """Base class for ``predict``-style handlers (subclassing it is optional)."""

    def predict(self, request: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class RealtimeAdapter:
    """One async interface over both realtime handler shapes.

    Args:
        handler: an instance with ``predict`` or ``run_inference``.
        call_in_thread: run synchronous ``predict`` in a worker thread (keeps an event loop free).
        context: plugin context made current around every call, whose host's guard is entered
            around every call (in whichever thread runs it).
    """

    def __init__(
        self,
        handler: Any,
        *,
        call_in_thread: bool = True,
        context: PluginContext | None = None,
    ) -> None:
        self.handler = handler
        self.call_in_thread = call_in_thread
        self.context = context
        if callable(getattr(handler, "run_inference", None)):
            self.shape = "run_inference"
        elif callable(getattr(handler, "predict", None)):
            self.shape = "predict"
        else:
            raise MixpeekError(
                ErrorCode.INVALID_PLUGIN,
                f"realtime handler {type(handler).__name__} has neither predict(request) nor "
                "async run_inference(inputs, parameters)",
            )

    async def __call__(
        self, inputs: Mapping[str, Any], parameters: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        parameters = dict(parameters or {})
        if self.shape == "run_inference":
            with self._scope():
                result = await self.handler.run_inference(dict(inputs), parameters)
        else:
            request = dict(inputs)
            if parameters:
                request.setdefault("parameters", parameters)
            predict: Callable[[dict[str, Any]], Any] = self.handler.predict
            if inspect.iscoroutinefunction(predict):
                with self._scope():
                    result = await predict(request)
            elif self.call_in_thread:
                result = await asyncio.to_thread(self._call_scoped, predict, request)
            else:
                result = self._call_scoped(predict, request)
            if isinstance(result, Awaitable):
                with self._scope():
                    result = await result
        if not isinstance(result, dict):
            raise MixpeekError(
                ErrorCode.OUTPUT_INVALID,
                f"realtime handler returned {type(result).__name__}, expected a dict",
            )
        return result

    @property
    def batch_capable(self) -> bool:
        """The handler accepts lists: ``predict_batch(requests: list[dict]) -> list[dict]``."""
        return callable(getattr(self.handler, "predict_batch", None))

    async def call_batch(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Answer several requests with one ``predict_batch`` call (same order)."""
        batch = [dict(r) for r in requests]
        predict_batch = self.handler.predict_batch
        if inspect.iscoroutinefunction(predict_batch):
            with self._scope():
                results = await predict_batch(batch)
        else:
            results = await asyncio.to_thread(self._call_scoped, predict_batch, batch)
        if not isinstance(results, list) or len(results) != len(batch):
            raise MixpeekError(
                ErrorCode.OUTPUT_INVALID,
                f"predict_batch returned {type(results).__name__} for {len(batch)} requests; expected a list of as many",
            )
        return results

    @contextmanager
    def _scope(self) -> Iterator[None]:
        from mixpeek_orchestration.sdk._context import use_context

        with ExitStack() as stack:
            if self.context is not None:
                stack.enter_context(use_context(self.context))
                stack.enter_context(self.context.host.guarded())
            yield

    def _call_scoped(self, function: Callable[[Any], Any], request: Any) -> Any:
        with self._scope():
            return function(request)

    def call_sync(
        self, inputs: Mapping[str, Any], parameters: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Call from synchronous code (CLI, tests)."""
        return asyncio.run(self(inputs, parameters))


def find_realtime_handler(namespace: Mapping[str, Any]) -> type[Any] | None:
    """The handler class a ``realtime.py`` defines: ``RealtimeHandler`` by name, else the one
    class defined there with ``run_inference`` or ``predict``."""
    explicit = namespace.get("RealtimeHandler")
    module_name = namespace.get("__name__")
    if isinstance(explicit, type) and explicit is not RealtimeHandler:
        return explicit
    candidates = [
        value
        for value in namespace.values()
        if isinstance(value, type)
        and value.__module__ == module_name
        and (
            callable(getattr(value, "run_inference", None))
            or callable(getattr(value, "predict", None))
        )
    ]
    if len(candidates) > 1:
        names = ", ".join(sorted(c.__name__ for c in candidates))
        raise MixpeekError(
            ErrorCode.INVALID_PLUGIN,
            f"realtime.py defines several handler classes ({names}); name the one to serve RealtimeHandler",
        )
    return candidates[0] if candidates else None
