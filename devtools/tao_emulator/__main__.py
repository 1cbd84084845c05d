"""``python -m tao_emulator``: serve the emulator until SIGTERM/SIGINT (``--help`` for the options).

The options are the listening address (defaults: :class:`TaoEmulator`'s) and the settings in
:data:`~tao_emulator.settings.CLI_SETTINGS` (type and default: :class:`Settings`'s fields); every
other knob is set through the admin API once the emulator runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import signal
import sys
import textwrap
import threading
from typing import Any

import tao_emulator
from tao_emulator.admin import ADMIN_METHODS, ADMIN_PREFIX
from tao_emulator.server import TaoEmulator
from tao_emulator.settings import CLI_SETTINGS, Settings, cli_flag

_ADDRESS_OPTIONS = {
    "host": ("ADDRESS", "the loopback address to listen on, IPv4 or IPv6 (any other is refused)"),
    "port": ("PORT", "the TCP port to listen on; 0: any free port (the ready line gives it)"),
}


def _help(text: str, default: object) -> str:
    shown = repr(default) if default == "" else str(default)
    return f"{text} (default: {shown})".replace("%", "%%")  # argparse %-formats help


def _listing(title: str, names: list[str]) -> str:
    return textwrap.fill(
        f"{title}: {', '.join(names)}", width=100, initial_indent="  ", subsequent_indent="    "
    )


def _epilog() -> str:
    settings = [field.name for field in dataclasses.fields(Settings)]
    return "\n".join(
        [
            'Once listening, it prints one JSON line on stdout, {"base_url": "http://127.0.0.1:PORT"}',
            "(https:// with --tls-cert-file), then serves until SIGTERM or SIGINT and exits with 0.",
            "",
            "Every other knob is set at run time through the admin API on that base URL:",
            f"POST {{base_url}}{ADMIN_PREFIX}{{method}} with the method's keyword arguments as a JSON",
            'object; the answer is {"result": ...} (200) or {"error": ...} (400: bad arguments, 404: no',
            "such method).",
            "In Python, tao_emulator.EmulatorAdmin(base_url) is its client, with the same methods. The",
            "docstrings of tao_emulator.admin and tao_emulator.settings document the methods and settings.",
            _listing("methods", sorted(ADMIN_METHODS)),
            _listing("settings (configure; the TLS files are read at start only)", settings),
            "",
            "Example:",
            f"""  curl -s BASE_URL{ADMIN_PREFIX}add_result -d '{{"reference_id": "ref-1", "size": 65536}}'""",
            f"""  curl -s BASE_URL{ADMIN_PREFIX}configure -d '{{"random_fault_rate": 0.1}}'""",
        ]
    )


def build_parser() -> argparse.ArgumentParser:
    """The CLI's parser; each option's destination is the :class:`TaoEmulator` argument it sets."""
    parser = argparse.ArgumentParser(
        prog="python -m tao_emulator",
        description=(tao_emulator.__doc__ or "").split("\n")[0],
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    address = inspect.signature(TaoEmulator).parameters
    fields = {field.name: field for field in dataclasses.fields(Settings)}
    defaults = {name: address[name].default for name in _ADDRESS_OPTIONS}
    defaults.update((name, fields[name].default) for name in CLI_SETTINGS)
    for name, (metavar, text) in {**_ADDRESS_OPTIONS, **CLI_SETTINGS}.items():
        default = defaults[name]
        parser.add_argument(
            cli_flag(name), type=type(default), default=default, metavar=metavar, help=_help(text, default)
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments: dict[str, Any] = vars(build_parser().parse_args(argv))
    emulator = TaoEmulator(**arguments).start()
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    sys.stdout.write(json.dumps({"base_url": emulator.base_url}) + "\n")
    sys.stdout.flush()
    while not stop.wait(0.2):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
