"""A TAO Advance emulator: a real HTTP/1.1 server on loopback for tests, the demo and the benchmarks.

It serves the three things the function talks to, over real sockets, with the behaviour the TAO
"Download results via API" page documents plus what we know beyond it, and it injects faults.

Endpoints (all on one ``base_url`` such as ``http://127.0.0.1:40123``), one module per job
------------------------------------------------------------------------------------------
:mod:`tao_emulator.tokens` (``POST /api/v1/upload/v1/oauth2/tokens``, the token store),
:mod:`tao_emulator.download_api` (``GET /api/v1/download/{referenceId}``),
:mod:`tao_emulator.storage` (the presigned storage URLs: signing, checks, streaming),
:mod:`tao_emulator.admin` (``/_emulator/{method}`` and :class:`EmulatorAdmin`, its client);
:mod:`tao_emulator.results` (the result bodies, :class:`ResultInfo`, :class:`ResultOptions`),
:mod:`tao_emulator.faults` (the fault engine), :mod:`tao_emulator.settings` (the knobs,
:class:`Settings`), :mod:`tao_emulator.server` (:class:`TaoEmulator`, TLS, routing),
:mod:`tao_emulator.handler` (the HTTP plumbing every endpoint shares: reading, the request log,
sending, echoes), :mod:`tao_emulator.state` (the shared state: clock, stats, request log),
:mod:`tao_emulator.s3_errors` (S3's XML error bodies), :mod:`tao_emulator.process` (a
child-process emulator) and ``python -m tao_emulator`` (the CLI, ``--help`` for its options).
Each module's docstring documents its part.
"""

from tao_emulator.admin import EmulatorAdmin
from tao_emulator.download_api import DOWNLOAD_PATHS, NOT_FOUND_MESSAGE
from tao_emulator.faults import FAULT_KINDS, RANDOM_FAULT_KINDS, Fault
from tao_emulator.process import running_emulator_process, spawn_emulator
from tao_emulator.results import BLOCK_SIZE, DEFAULT, ResultInfo, ResultOptions
from tao_emulator.server import TaoEmulator
from tao_emulator.settings import Settings
from tao_emulator.storage import STORAGE_PREFIX
from tao_emulator.tokens import TOKEN_AUTH_METHODS, TOKEN_PATH, TOKEN_REJECTIONS

__all__ = [
    "BLOCK_SIZE",
    "DEFAULT",
    "DOWNLOAD_PATHS",
    "FAULT_KINDS",
    "NOT_FOUND_MESSAGE",
    "RANDOM_FAULT_KINDS",
    "STORAGE_PREFIX",
    "TOKEN_AUTH_METHODS",
    "TOKEN_PATH",
    "TOKEN_REJECTIONS",
    "EmulatorAdmin",
    "Fault",
    "ResultInfo",
    "ResultOptions",
    "Settings",
    "TaoEmulator",
    "running_emulator_process",
    "spawn_emulator",
]
