"""EXPERIMENTS: library changes prototyped as monkeypatches, so the benchmark can measure them.

Nothing here is used by the function. Each experiment is a candidate change to the library,
applied in a worker (or a cold-start interpreter) before the handler module loads, and measured
side by side with the unpatched library in the same run. ``docs/benchmarks.md`` gives the diff
that each one stands for. Once the library carries the change, the experiment is a no-op.

``noop_tracer``  observability.create_telemetry: when tracing is disabled, give Powertools'
                 Tracer a no-op provider, so ``aws_xray_sdk.core`` (whose import builds a global
                 recorder with two botocore X-Ray clients, ~0.4 s) is never imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

_APPLIED: set[str] = set()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _noop_tracer() -> None:
    from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment  # noqa: PLC0415

    import tao_results.observability as observability  # noqa: PLC0415

    if getattr(observability, "NoTracing", None) is not None:
        return  # the library has the change already

    class NoSegment(BaseSegment):
        def close(self, end_time: int | None = None) -> None: ...
        def add_subsegment(self, subsegment: Any) -> None: ...
        def remove_subsegment(self, subsegment: Any) -> None: ...
        def put_annotation(self, key: str, value: Any) -> None: ...
        def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
        def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...

    class NoTracing(BaseProvider):
        @contextmanager
        def in_subsegment(self, name: Any = None, **kwargs: Any) -> Iterator[BaseSegment]:
            yield NoSegment()

        @asynccontextmanager
        async def in_subsegment_async(self, name: Any = None, **kwargs: Any) -> Any:
            yield NoSegment()

        def put_annotation(self, key: str, value: Any) -> None: ...
        def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
        def patch(self, modules: Any) -> None: ...
        def patch_all(self) -> None: ...

    original = observability.Tracer

    def tracer(service: str | None = None, **kwargs: Any) -> Any:
        if _truthy(os.environ.get("POWERTOOLS_TRACE_DISABLED")) or not os.environ.get("LAMBDA_TASK_ROOT"):
            kwargs.setdefault("provider", NoTracing())
            kwargs.setdefault("disabled", True)
        return original(service=service, **kwargs)

    observability.Tracer = tracer  # type: ignore[misc,assignment]


EXPERIMENTS: dict[str, Callable[[], None]] = {"noop_tracer": _noop_tracer}


def apply(names: list[str]) -> None:
    for name in names:
        if name not in _APPLIED:
            EXPERIMENTS[name]()
            _APPLIED.add(name)
