"""EXPERIMENTS: library changes prototyped as monkeypatches, so the benchmark can measure them.

Nothing here is used by the function. Each experiment is a candidate change to the library,
applied in a worker (or a cold-start interpreter) before the handler module loads, and measured
side by side with the unpatched library in the same run (`make bench BENCH_ARGS="--experiments
NAME"`): rows marked ``+exp`` in ``docs/benchmarks.md``. Once the library carries a change, delete
its experiment.

None is pending. The last one, ``noop_tracer`` (a no-op Powertools tracing provider when tracing
is off: importing the handler went from 2.7 to 0.98 times ``import boto3``), is now
``observability.NoTracing``.
"""

from __future__ import annotations

from collections.abc import Callable

_APPLIED: set[str] = set()

EXPERIMENTS: dict[str, Callable[[], None]] = {}


def apply(names: list[str]) -> None:
    for name in names:
        if name not in EXPERIMENTS:
            raise SystemExit(f"unknown experiment {name!r} (known: {', '.join(EXPERIMENTS) or 'none'})")
        if name not in _APPLIED:
            EXPERIMENTS[name]()
            _APPLIED.add(name)
