"""``RESULTS_KEY_TEMPLATE``: where a result lands.

For example ``{prefix}dt={year}-{month}-{day}/{referenceId}/{filename}`` (Athena/Glue partitions).

Placeholders are ``{prefix}`` (``RESULTS_PREFIX``), ``{referenceId}``, ``{filename}`` (made safe by
:mod:`tao_results.naming`) and ``{year}``/``{month}``/``{day}`` (zero-padded, UTC) of the date the
message was first sent (SQS ``SentTimestamp``), so a redelivery lands on the same key. ``{{`` and
``}}`` are literal braces.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

DEFAULT_KEY_TEMPLATE = "{prefix}{referenceId}/{filename}"
PLACEHOLDERS = ("prefix", "referenceId", "filename", "year", "month", "day")


def check_key_template(template: str) -> str:
    """``template`` if usable; else ValueError saying why (unknown placeholder, no ``{referenceId}``)."""
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError as error:
        raise ValueError(f"is not a valid template ({error}): {template!r}") from None
    for name, spec, conversion in fields:
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise ValueError(f"has an unknown placeholder {{{name}}} (known: {known}): {template!r}")
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} takes no format spec or conversion: {template!r}")
    if "referenceId" not in {name for name, _, _ in fields}:
        raise ValueError(f"must contain {{referenceId}}, or results would overwrite each other: {template!r}")
    if template.startswith("/"):
        raise ValueError(f"must be a relative key: {template!r}")
    return template


def render_key(template: str, prefix: str, reference_id: str, filename: str, sent_at: datetime) -> str:
    """The object key for one result; ``sent_at`` is converted to UTC."""
    day = sent_at.astimezone(UTC)
    values: Mapping[str, Any] = {
        "prefix": prefix,
        "referenceId": reference_id,
        "filename": filename,
        "year": f"{day.year:04d}",
        "month": f"{day.month:02d}",
        "day": f"{day.day:02d}",
    }
    return template.format_map(values)
