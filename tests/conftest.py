"""Shared fixtures: one moto server per session (reset per test), one TAO emulator per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tao_emulator import TaoEmulator
from tao_results.http_sessions import Resolver
from tests.support.aws_stack import MotoServer, StackResources, create_resources
from tests.support.harness import Harness, HarnessFactory

CLIENT_ID = "demo-client"
CLIENT_SECRET = "s3cr3t-Value-Never-Logged"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def aws(moto_server: MotoServer) -> StackResources:
    moto_server.reset()
    return create_resources(moto_server.endpoint_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture
def tao() -> Iterator[TaoEmulator]:
    with TaoEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as emulator:
        yield emulator


@pytest.fixture
def harness(aws: StackResources, tao: TaoEmulator) -> Iterator[HarnessFactory]:
    """``harness(**env_overrides)`` → a Harness with the real handler loaded (cold start)."""
    saved = dict(os.environ)

    def make(
        *, resolver: Resolver | None = None, storage_verify: bool | str = True, **overrides: str
    ) -> Harness:
        return Harness(aws, tao, overrides, resolver=resolver, storage_verify=storage_verify)

    yield make
    os.environ.clear()
    os.environ.update(saved)
