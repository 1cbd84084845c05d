"""Faults: :class:`Fault`, the fault engine and the random mix.

``Fault(stage, kind, reference_id=None, times=1, probability=1.0, **params)``; ``stage`` is
``"token" | "download" | "storage"``; ``reference_id=None`` matches any; ``times=None`` = forever.
The first matching fault (in insertion order) that passes its probability roll fires. Kinds:

``status``      answer ``status`` (default 500) with ``body`` (None → a stage-typical body),
                ``content_type`` (default JSON, XML for storage) and extra ``headers``.
``reset``       close the TCP connection without answering (SO_LINGER 0 → RST).
``delay``       sleep ``delay_ms`` then answer normally (client timeouts).
``truncate``    storage: full ``Content-Length``, only ``truncate_at`` bytes (None → half), close.
``overlong``    storage: ``Transfer-Encoding: chunked`` plus a ``Content-Length`` ``extra`` bytes
                smaller than the body actually sent.
``expired_url`` download: a valid signature whose expiry has already passed.
``signed_url``  download: 200 ``{"signedUrl": url}``, ``{base_url}`` and ``{signed_path}`` (a valid
                signed path+query for the reference) substituted in ``url``.
``redirect``    storage: ``status`` (default 302) with ``Location: location`` (placeholders
                ``{base_url}``, ``{signed_path}``, ``{signed_query}``, ``{host_port}``), empty body.
``s3_redirect`` storage: S3's own redirects (User Guide, "Request routing"): ``status`` 301
                ``PermanentRedirect`` (no Location; XML ``<Endpoint>endpoint</Endpoint>`` and
                ``x-amz-bucket-region: region``) or 307 ``TemporaryRedirect`` (also
                ``Location: http://{endpoint}{the same path and query}``); ``endpoint`` defaults
                to ``{host_port}``.
``content_length`` storage: the body in full, but one ``Content-Length`` header line per item of
                ``length_values`` (raw: ``["+5"]``, ``["5", "7"]``, ``["²"]``...), then close.
``expired_session`` download: the URL carries an ``X-Amz-Security-Token`` whose session has
                ended: storage answers 400 ``ExpiredToken``.
``revoke``      download: revoke the presented token and answer 401 ``Access Denied``.

``status`` on storage takes ``code``/``message`` for its S3 XML error body (``ExpiredToken``,
``SignatureDoesNotMatch``...; default: a code typical of the status).

``expired_url``/``signed_url``/``truncate``/``overlong``/``content_length``/``expired_session``
only fire on a request that would otherwise succeed; the others fire before authentication. Random faults
(``configure(random_fault_rate=.., random_fault_seed=.., random_fault_kinds=[..])``): each TAO
and storage call rolls a seeded RNG and, with that probability, gets one kind of the realistic mix
in :data:`RANDOM_FAULT_KINDS` applicable to its stage (``slow`` applies everywhere). Explicit faults
win over random ones. Stats count fired faults by ``Fault.kind`` (``faults_injected``) and random
ones also by mix name (``random_faults_injected``). A single sequential client sees the same
sequence for the same seed.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from tao_emulator.s3_errors import _s3_error
from tao_emulator.state import _State

if TYPE_CHECKING:
    pass

Stage = Literal["token", "download", "storage"]
FaultKind = Literal[
    "status",
    "reset",
    "delay",
    "truncate",
    "overlong",
    "expired_url",
    "signed_url",
    "redirect",
    "revoke",
    "s3_redirect",
    "content_length",
    "expired_session",
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))
# Kinds that only replace an answer that would otherwise be a success; the rest fire up front.
_SUCCESS_PHASE_KINDS = frozenset(
    ["truncate", "overlong", "expired_url", "signed_url", "content_length", "expired_session"]
)
_STAGE_KINDS: dict[str, frozenset[str]] = {
    "token": frozenset(["status", "reset", "delay"]),
    "download": frozenset(
        ["status", "reset", "delay", "expired_url", "signed_url", "revoke", "expired_session"]
    ),
    "storage": frozenset(
        ["status", "reset", "delay", "truncate", "overlong", "redirect", "s3_redirect", "content_length"]
    ),
}

#: The realistic mix random faults draw from: name → (stage or None for any stage).
RANDOM_FAULT_KINDS: dict[str, str | None] = {
    "download_500": "download",
    "download_429": "download",
    "download_reset": "download",
    "storage_truncate": "storage",
    "download_expired_url": "download",
    "download_revoke": "download",
    "token_503": "token",
    "storage_500": "storage",
    "slow": None,
}


def _encode_bytes(value: str | bytes | None) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    return value


def _decode_bytes(value: Any) -> str | bytes | None:
    if isinstance(value, dict):
        return base64.b64decode(value["base64"])
    return cast("str | bytes | None", value)


@dataclasses.dataclass
class Fault:
    """One injected misbehaviour; see the module docstring for the kinds and their parameters."""

    stage: Stage
    kind: FaultKind
    reference_id: str | None = None
    times: int | None = 1
    probability: float = 1.0
    # kind parameters
    status: int | None = None
    body: str | bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay_ms: int = 0
    truncate_at: int | None = None
    extra: int = 1
    url: str = ""
    location: str = ""
    code: str | None = None
    message: str | None = None
    endpoint: str = "{host_port}"
    region: str = "eu-west-1"
    length_values: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.stage not in _STAGE_KINDS:
            raise ValueError(f"unknown fault stage {self.stage!r}")
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.kind not in _STAGE_KINDS[self.stage]:
            raise ValueError(f"fault kind {self.kind!r} does not apply to stage {self.stage!r}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["body"] = _encode_bytes(self.body)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown Fault fields: {sorted(unknown)}")
        values = dict(data)
        values["body"] = _decode_bytes(values.get("body"))
        return cls(**values)


class _FaultEngine(_State):
    """The emulator's fault engine: explicit faults first (insertion order), then random ones."""

    def _take_fault(self, stage: str, reference_id: str | None, phase_success: bool) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.stage != stage or (fault.kind in _SUCCESS_PHASE_KINDS) != phase_success:
                    continue
                if fault.reference_id is not None and fault.reference_id != reference_id:
                    continue
                if fault.times is not None and fault.times <= 0:
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                self._faults = [f for f in self._faults if f.times is None or f.times > 0]
                self._stats["faults_injected"][fault.kind] += 1
                return copy.deepcopy(fault)
        return None

    def _roll_random_fault(self, stage: str) -> tuple[str, Fault] | None:
        with self._lock:
            settings = self._settings
            if settings.random_fault_rate <= 0:
                return None
            if self._rng.random() >= settings.random_fault_rate:
                return None
            candidates = [
                name for name in settings.random_fault_kinds if RANDOM_FAULT_KINDS[name] in (None, stage)
            ]
            if not candidates:
                return None
            name = self._rng.choice(candidates)
            retry_after = self._rng.choice(["0", "1"])
        fault = _random_fault(name, stage, settings.slow_delay_ms, retry_after)
        return name, fault

    def _count_random(self, name: str, fault: Fault) -> None:
        with self._lock:
            self._stats["random_faults_injected"][name] += 1
            self._stats["faults_injected"][fault.kind] += 1


def _random_fault(name: str, stage: str, slow_delay_ms: int, retry_after: str) -> Fault:
    json_type = "application/json"
    if name == "download_500":
        body = json.dumps({"message": "Internal error while checking the status (emulated)"})
        return Fault("download", "status", status=500, body=body, content_type=json_type)
    if name == "download_429":
        body = json.dumps({"message": "Too Many Requests"})
        return Fault(
            "download",
            "status",
            status=429,
            body=body,
            content_type=json_type,
            headers={"Retry-After": retry_after},
        )
    if name == "download_reset":
        return Fault("download", "reset")
    if name == "storage_truncate":
        return Fault("storage", "truncate")
    if name == "download_expired_url":
        return Fault("download", "expired_url")
    if name == "download_revoke":
        return Fault("download", "revoke")
    if name == "token_503":
        html = "<html><head><title>503 Service Temporarily Unavailable</title></head></html>"
        return Fault("token", "status", status=503, body=html, content_type="text/html")
    if name == "storage_500":
        return Fault(
            "storage",
            "status",
            status=500,
            body=_s3_error("InternalError", "We encountered an internal error. Please try again."),
        )
    return Fault(cast("Stage", stage), "delay", delay_ms=slow_delay_ms)
