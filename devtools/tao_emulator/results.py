"""What the emulator serves: :class:`ResultInfo` and the generated bodies.

Result bodies
-------------
``add_result(ref, size=N)`` generates N deterministic bytes: one 1 MiB pseudo-random block per
``seed`` (``shake_256``), and chunk *i* of a result is that block rotated by an offset derived from
the reference and *i*, so every MiB of a file differs (a part-reordering bug changes the sha256)
and two references differ. Memory stays bounded (2 MiB per seed) whatever the size; streaming is a
single ``sendall`` of a memoryview per MiB. ``add_result(ref, content=b"...")`` serves exact bytes.
The returned :class:`ResultInfo` carries ``size`` and ``sha256`` (of exactly the bytes served).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import threading
from collections.abc import Iterator
from typing import Any

BLOCK_SIZE = 1 << 20  # one generated block; also the streaming chunk size
_ROTATION_STEP = 0x9E3779B1  # odd: chunk rotations are all distinct for 2**20 chunks (1 TiB)


class _Default(enum.Enum):
    TOKEN = "default"


#: Sentinel for ``add_result(content_disposition=...)``: the default ``attachment; filename=".."``.
DEFAULT = _Default.TOKEN


@dataclasses.dataclass(frozen=True)
class ResultInfo:
    """What the emulator serves for one reference (``sha256`` is of exactly the bytes served)."""

    reference_id: str
    size: int
    sha256: str
    etag: str
    filename: str
    content_type: str
    content_disposition: str | None
    ready_after_calls: int
    seed: int | None
    content_encoding: str | None = None
    header_charset: str = "latin-1"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultInfo:
        return cls(**data)


_BLOCK_CACHE: dict[int, memoryview] = {}
_BLOCK_LOCK = threading.Lock()


def _doubled_block(seed: int) -> memoryview:
    """A pseudo-random 1 MiB block for ``seed``, stored twice so any rotation is one slice."""
    with _BLOCK_LOCK:
        view = _BLOCK_CACHE.get(seed)
        if view is None:
            block = hashlib.shake_256(f"tao-emulator-block:{seed}".encode()).digest(BLOCK_SIZE)
            view = memoryview(block + block)
            _BLOCK_CACHE[seed] = view
        return view


class _Body:
    """The bytes of one result, produced as memoryview slices of at most ``BLOCK_SIZE``."""

    def __init__(self, reference_id: str, size: int | None, content: bytes | None, seed: int) -> None:
        self.content = content
        if content is not None:
            self.size = len(content)
        else:
            if size is None or size < 0:
                raise ValueError("add_result needs size >= 0 or content")
            self.size = size
        digest = hashlib.sha256(f"{seed}:{reference_id}".encode()).digest()
        self.base = int.from_bytes(digest[:8], "big") % BLOCK_SIZE
        self.block = _doubled_block(seed) if content is None else memoryview(b"")

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[memoryview]:
        end = self.size if end is None else end
        if self.content is not None:
            view = memoryview(self.content)
            for pos in range(start, end, BLOCK_SIZE):
                yield view[pos : min(pos + BLOCK_SIZE, end)]
            return
        pos = start
        while pos < end:
            index, within = divmod(pos, BLOCK_SIZE)
            rotation = (self.base + index * _ROTATION_STEP) % BLOCK_SIZE + within
            length = min(BLOCK_SIZE - within, end - pos)
            yield self.block[rotation : rotation + length]
            pos += length

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for chunk in self.chunks():
            digest.update(chunk)
        return digest.hexdigest()


@dataclasses.dataclass
class _Result:
    info: ResultInfo
    body: _Body
    authorised_calls: int = 0
