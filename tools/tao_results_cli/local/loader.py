"""Import a handler from an ``module:function`` spec, after putting its configuration in place.

The function reads its configuration from the environment once, at import time, so the
environment overrides are applied to ``os.environ`` BEFORE the module is imported.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


class HandlerLoadError(Exception):
    """The handler spec is wrong or its module failed to import."""


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``package.module:function`` into its two halves."""
    module, sep, attribute = spec.partition(":")
    if not sep or not module or not attribute:
        raise HandlerLoadError(f"handler spec {spec!r} is not of the form module:function")
    return module, attribute


def apply_environment(overrides: Mapping[str, str]) -> None:
    """Set (and overwrite) environment variables for the function."""
    os.environ.update(overrides)


def add_paths(paths: Sequence[str | Path]) -> None:
    """Put directories at the front of ``sys.path`` (in the given order), once each."""
    for directory in reversed([str(Path(path).resolve()) for path in paths]):
        if not Path(directory).is_dir():
            raise HandlerLoadError(f"not a directory: {directory}")
        if directory in sys.path:
            sys.path.remove(directory)
        sys.path.insert(0, directory)


def load_handler(
    spec: str,
    paths: Sequence[str | Path] = (),
    environment: Mapping[str, str] | None = None,
    *,
    reload: bool = False,
) -> Handler:
    """Return the callable named by ``spec``, imported after ``environment`` and ``paths`` are set.

    ``reload=True`` re-executes an already imported module so it reads the new environment.
    """
    module_name, attribute = parse_spec(spec)
    apply_environment(environment or {})
    add_paths(paths)
    try:
        if reload and module_name in sys.modules:
            module = importlib.reload(sys.modules[module_name])
        else:
            module = importlib.import_module(module_name)
    except Exception as error:
        raise HandlerLoadError(f"cannot import {module_name}: {type(error).__name__}: {error}") from error
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise HandlerLoadError(f"{module_name} has no callable {attribute!r}")
    loaded: Handler = handler
    return loaded
