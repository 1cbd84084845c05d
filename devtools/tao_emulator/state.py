"""The emulator's shared state and its small helpers (clock, stats, request log)."""

from __future__ import annotations

import random
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tao_emulator.faults import Fault
    from tao_emulator.results import _Result
    from tao_emulator.settings import Settings
    from tao_emulator.tokens import _Token


class _State:
    """The state :class:`~tao_emulator.server.TaoEmulator` shares with its parts (fault engine,
    token store, URL signer), and the small helpers they all use."""

    _lock: threading.RLock
    _settings: Settings
    _stopping: threading.Event
    _signing_key: bytes
    _results: dict[str, _Result]
    _faults: list[Fault]
    _tokens: dict[str, _Token]
    _issued_tokens: list[str]
    _issued_signatures: list[str]
    _issued_url_credentials: list[str]
    _log: list[dict[str, Any]]
    _clock_offset: float
    _rng: random.Random
    _stats: dict[str, Any]

    def _now(self) -> float:
        return time.time() + self._clock_offset

    def _count_connection(self, tls: bool = False) -> None:
        with self._lock:
            self._stats["connections_accepted"] += 1
            if tls:
                self._stats["tls_connections_accepted"] += 1

    def _sleep(self, milliseconds: float) -> None:
        if milliseconds > 0:
            self._stopping.wait(milliseconds / 1000.0)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._log.append(entry)

    def _count(self, key: str, reference_id: str | None = None) -> None:
        with self._lock:
            if reference_id is None:
                self._stats[key] += 1
            else:
                self._stats[key][reference_id] += 1

    def _lookup(self, reference_id: str) -> _Result | None:
        with self._lock:
            return self._results.get(reference_id)
