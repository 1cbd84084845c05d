"""The admin API and :class:`EmulatorAdmin`, its HTTP client.

``/_emulator/{method}``
    Admin API (JSON in/out, ``POST`` with the keyword arguments as a JSON object) mirroring the
    in-process methods below; used by :class:`EmulatorAdmin`.

In-process API (:class:`TaoEmulator`; :class:`EmulatorAdmin` has the same methods over HTTP)
---------------------------------------------------------------------------------------------
``TaoEmulator(host="127.0.0.1", port=0, **settings)``, ``start() -> self``, ``stop()``, context
manager, ``base_url``, ``host``, ``port``;
``add_result(reference_id, **options) -> ResultInfo`` (the keyword arguments, their defaults and
meaning: :class:`~tao_emulator.results.ResultOptions`); ``result_info(ref)``,
``remove_result(ref)``; ``add_fault(Fault)``, ``clear_faults()``, ``faults()`` (remaining);
``configure(**settings)``, ``settings()``; ``rotate_secret(new)`` (old secret stops working, issued
tokens stay valid); ``revoke_tokens()``; ``set_scopes([...])`` (for tokens issued afterwards);
``advance_clock(seconds)`` (moves the emulator's clock: token expiry and URL expiry);
``reset()`` (results, faults, stats, log, tokens, clock, fault RNG); ``stats()``,
``requests_log()`` (per request: stage, method, path, raw ``request_line``, lower-cased
``header_names``, status, fault...), ``issued_tokens()``, ``issued_signatures()`` (every token and
every X-Amz-Signature ever handed out, so tests can grep logs for leaks),
``issued_url_credentials()`` (every ``X-Amz-Credential`` and ``X-Amz-Security-Token`` value of the
signed URLs).

"""

from __future__ import annotations

import binascii
import dataclasses
import json
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import requests

from tao_emulator.faults import Fault, _decode_bytes, _encode_bytes
from tao_emulator.handler import _HandlerBase
from tao_emulator.results import DEFAULT, ResultInfo, ResultOptions, options_as_keywords

if TYPE_CHECKING:
    from tao_emulator.server import TaoEmulator

ADMIN_PREFIX = "/_emulator/"


_ADMIN_PLAIN_METHODS = frozenset(
    [
        "remove_result",
        "clear_faults",
        "configure",
        "settings",
        "rotate_secret",
        "revoke_tokens",
        "set_scopes",
        "advance_clock",
        "reset",
        "stats",
        "requests_log",
        "issued_tokens",
        "issued_signatures",
        "issued_url_credentials",
    ]
)
#: Every method of the admin API (``POST /_emulator/{method}``); :class:`EmulatorAdmin` has each.
ADMIN_METHODS = _ADMIN_PLAIN_METHODS | {"add_result", "add_fault", "faults", "result_info"}


def _options_json(options: ResultOptions) -> dict[str, Any]:
    """``options`` as the admin API takes them: ``content`` as ``{"base64": ..}``, :data:`DEFAULT`
    left out (the server's default)."""
    arguments = {field.name: getattr(options, field.name) for field in dataclasses.fields(options)}
    arguments["content"] = _encode_bytes(options.content)
    if options.content_disposition is DEFAULT:
        del arguments["content_disposition"]
    return arguments


def _admin_call(emulator: TaoEmulator, method: str, arguments: dict[str, Any]) -> Any:
    """Run one admin method from its JSON form (used by the ``/_emulator/`` endpoints)."""
    if method == "add_result":
        options = dict(arguments)
        if isinstance(options.get("content"), dict):
            options["content"] = _decode_bytes(options["content"])
        return emulator.add_result(options.pop("reference_id"), **options).to_dict()
    if method == "add_fault":
        emulator.add_fault(Fault.from_dict(arguments["fault"]))
        return None
    if method == "faults":
        return [fault.to_dict() for fault in emulator.faults()]
    if method == "result_info":
        info = emulator.result_info(**arguments)
        return None if info is None else info.to_dict()
    if method not in _ADMIN_PLAIN_METHODS:
        raise LookupError(f"unknown admin method {method!r}")
    function: Callable[..., Any] = getattr(emulator, method)
    return function(**arguments)


class _AdminEndpoint(_HandlerBase):
    """``/_emulator/{method}``: the admin API, JSON in and out."""

    def _admin(self, method: str, body: bytes) -> None:
        self.emulator._count("admin_requests")
        try:
            arguments = json.loads(body) if body.strip() else {}
            if not isinstance(arguments, dict):
                raise TypeError("admin arguments must be a JSON object")
            result = _admin_call(self.emulator, method.strip("/"), arguments)
        except LookupError as error:
            self._send_json(404, {"error": str(error)})
            return
        except (TypeError, ValueError, KeyError, binascii.Error) as error:
            self._send_json(400, {"error": f"{type(error).__name__}: {error}"})
            return
        self._send_json(200, {"result": result})


class EmulatorAdmin:
    """Drives an emulator (usually in another process) through ``/_emulator/``; same API."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.process: subprocess.Popen[str] | None = None
        self._session = requests.Session()

    def _call(self, method: str, **arguments: Any) -> Any:
        response = self._session.post(
            f"{self.base_url}{ADMIN_PREFIX}{method}", json=arguments, timeout=self.timeout
        )
        if response.status_code != 200:
            raise RuntimeError(f"emulator admin {method} failed: {response.status_code} {response.text}")
        return response.json()["result"]

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> EmulatorAdmin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @options_as_keywords(ResultOptions)
    def add_result(self, reference_id: str, options: ResultOptions) -> ResultInfo:
        """:meth:`TaoEmulator.add_result` over HTTP (same keyword arguments: :class:`ResultOptions`)."""
        return ResultInfo.from_dict(
            self._call("add_result", reference_id=reference_id, **_options_json(options))
        )

    def result_info(self, reference_id: str) -> ResultInfo | None:
        data = self._call("result_info", reference_id=reference_id)
        return None if data is None else ResultInfo.from_dict(data)

    def remove_result(self, reference_id: str) -> None:
        self._call("remove_result", reference_id=reference_id)

    def add_fault(self, fault: Fault) -> None:
        self._call("add_fault", fault=fault.to_dict())

    def clear_faults(self) -> None:
        self._call("clear_faults")

    def faults(self) -> list[Fault]:
        return [Fault.from_dict(data) for data in self._call("faults")]

    def configure(self, **settings: Any) -> None:
        self._call("configure", **settings)

    def settings(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self._call("settings"))

    def rotate_secret(self, new_secret: str) -> None:
        self._call("rotate_secret", new_secret=new_secret)

    def revoke_tokens(self) -> None:
        self._call("revoke_tokens")

    def set_scopes(self, scopes: list[str]) -> None:
        self._call("set_scopes", scopes=list(scopes))

    def advance_clock(self, seconds: float) -> None:
        self._call("advance_clock", seconds=seconds)

    def reset(self) -> None:
        self._call("reset")

    def stats(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self._call("stats"))

    def requests_log(self) -> list[dict[str, Any]]:
        return cast("list[dict[str, Any]]", self._call("requests_log"))

    def issued_tokens(self) -> list[str]:
        return cast("list[str]", self._call("issued_tokens"))

    def issued_signatures(self) -> list[str]:
        return cast("list[str]", self._call("issued_signatures"))

    def issued_url_credentials(self) -> list[str]:
        return cast("list[str]", self._call("issued_url_credentials"))
