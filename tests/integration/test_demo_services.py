"""The demo's services (moto's server, the emulator process) run in their own sessions.

A terminal's Ctrl-C goes to its foreground process group; a child in a session of its own is out of
it, so the demo alone gets the SIGINT, finishes its batch and stops the services itself. Checked on
the real child processes with getsid(2): a session leader's session id is its own pid.
"""

from __future__ import annotations

import os
from contextlib import ExitStack

from local_aws import MotoServer
from tao_emulator import running_emulator_process
from tao_results_demo.demo import services


def _pids(moto: MotoServer, process_pid: int | None) -> list[int]:
    assert moto.pid is not None
    assert process_pid is not None
    return [moto.pid, process_pid]


def test_demo_services_each_lead_a_session_of_their_own() -> None:
    with ExitStack() as stack, services(stack) as (moto, admin):
        assert admin.process is not None
        emulator = admin.process
        for pid in _pids(moto, emulator.pid):
            assert os.getsid(pid) == pid
            assert os.getsid(pid) != os.getsid(0)
    assert moto.pid is None  # stopped on the way out
    assert emulator.poll() is not None


def test_spawners_keep_the_callers_session_by_default(moto_server: MotoServer) -> None:
    with running_emulator_process() as admin:
        assert admin.process is not None
        for pid in _pids(moto_server, admin.process.pid):
            assert os.getsid(pid) == os.getsid(0)
