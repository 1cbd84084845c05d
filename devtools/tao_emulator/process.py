"""An emulator in a child process, for the demo and the benchmarks.

CLI: ``python -m tao_emulator [--host 127.0.0.1] [--port 0] [--client-id ..] ...`` (``--help``
lists the options: :data:`~tao_emulator.settings.CLI_SETTINGS`) prints one JSON line
``{"base_url": ...}`` once listening and serves until SIGTERM/SIGINT. :func:`spawn_emulator` /
:func:`running_emulator_process` start that in a child process (the settings the CLI takes as
options, the others through ``configure``) and hand back an :class:`EmulatorAdmin`.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tao_emulator.admin import EmulatorAdmin
from tao_emulator.settings import CLI_SETTINGS, cli_flag

_REPO_ROOT = Path(__file__).resolve().parents[2]


def spawn_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 20.0,
    *,
    start_new_session: bool = False,
    **settings: Any,
) -> tuple[subprocess.Popen[str], EmulatorAdmin]:
    """Start ``python -m tao_emulator`` in a child process; caller stops it.

    ``start_new_session`` (as :class:`subprocess.Popen`'s) puts the child in its own session, out of
    the terminal's foreground process group: a Ctrl-C then reaches only the caller.
    """
    command = [sys.executable, "-m", "tao_emulator", "--host", host, "--port", str(port)]
    for name in CLI_SETTINGS:
        if name in settings:
            command += [cli_flag(name), str(settings.pop(name))]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT / "devtools"), env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        command,
        cwd=_REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=start_new_session,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=startup_timeout)
        base_url = str(json.loads(line)["base_url"])
    except (queue.Empty, ValueError, KeyError) as error:
        _terminate(process)
        raise RuntimeError(f"emulator process did not start (exit code {process.poll()})") from error
    admin = EmulatorAdmin(base_url)
    admin.process = process
    if settings:
        admin.configure(**settings)
    return process, admin


def _terminate(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
    return int(process.returncode)


@contextlib.contextmanager
def running_emulator_process(**settings: Any) -> Iterator[EmulatorAdmin]:
    """An emulator in a child process for the duration of the block (``admin.process`` is it)."""
    process, admin = spawn_emulator(**settings)
    try:
        yield admin
    finally:
        admin.close()
        _terminate(process)
