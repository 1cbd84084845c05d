"""Fixtures of the e2e tier: MiniStack, the TAO emulator, the S3 stall proxy and both deployments.

The tier runs only under ``make e2e`` (``pytest -m e2e``): a run whose ``-m`` does not name ``e2e``
(``make test`` runs ``-m "not soak"``) deselects it, as it needs ``.venv-e2e`` and ``sam build``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tao_emulator import TaoEmulator
from tests.e2e.stack import (
    RUNTIMES,
    Deployment,
    MiniStack,
    Settings,
    deploy,
    publish_layer,
    unpack_layer_from_ministack,
)
from tests.e2e.stall_proxy import StallingS3Proxy

MiB = 1024 * 1024
CLIENT_ID, CLIENT_SECRET = "e2e-client", "e2e-secret-value"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "e2e" in (config.option.markexpr or ""):
        return
    deselected = [item for item in items if item.get_closest_marker("e2e")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("e2e")]


@dataclass
class E2EWorld:
    stack: MiniStack
    emulator: TaoEmulator
    proxy: StallingS3Proxy
    settings: Settings
    deployments: dict[str, Deployment]


def _required_path(variable: str) -> Path:
    value = os.environ.get(variable)
    if not value or not Path(value).is_dir():
        pytest.fail(f"{variable} is not set to a directory: run the e2e tier with `make e2e`")
    return Path(value)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EWorld]:
    build_dir, venv = _required_path("E2E_BUILD_DIR"), _required_path("E2E_VENV")
    workdir = tmp_path_factory.mktemp("ministack")
    settings = Settings()
    stack = MiniStack(venv, workdir).start()
    try:
        with (
            TaoEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).start() as emulator,
            StallingS3Proxy(stack.endpoint_url) as proxy,
        ):
            secret_arn = stack.client("secretsmanager").create_secret(
                Name="tao-e2e/tao-credentials",
                SecretString=json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
            )["ARN"]
            environment = {
                # Globals and the function's Environment in template.yaml
                "POWERTOOLS_SERVICE_NAME": "tao-results-to-s3",
                "POWERTOOLS_METRICS_NAMESPACE": "TaoResultsToS3",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                "LOG_LEVEL": "INFO",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "TAO_BASE_URL": emulator.base_url,
                "TAO_CREDENTIALS_SECRET_ID": secret_arn,
                "RESULTS_PREFIX": settings.prefix,
                "SIGNED_URL_ALLOWED_HOSTS": "127.0.0.1",
                "NOT_FOUND_GRACE_SECONDS": "0",
                "RECORD_CONCURRENCY": "10",
                # the local stack: AWS through MiniStack, S3 through the stall proxy in front of it
                "AWS_ENDPOINT_URL": stack.endpoint_url,
                "AWS_ENDPOINT_URL_S3": proxy.endpoint_url,
                "ALLOW_INSECURE_HTTP": "true",  # the emulator's signed URLs are http on loopback
                # sized for an 8 s function timeout instead of the template's 60-900 s
                "DEADLINE_MARGIN_SECONDS": "2",
                "MAX_ATTEMPTS_PER_INVOCATION": "2",
                "RETRY_BACKOFF_BASE_SECONDS": "1",
                "RETRY_BACKOFF_MAX_SECONDS": "2",
                "HTTP_CONNECT_TIMEOUT_SECONDS": "1",
                "HTTP_READ_TIMEOUT_SECONDS": "3",
                "PART_SIZE_BYTES": str(5 * MiB),
            }
            layer_arn, _ = publish_layer(stack, build_dir)
            opt_dir = workdir / "opt"
            unpack_layer_from_ministack(stack, layer_arn, opt_dir)
            deployments = {
                runtime: deploy(
                    stack,
                    runtime,
                    build_dir,
                    layer_arn,
                    environment,
                    settings,
                    opt_dir,
                    venv / "bin" / "python",
                )
                for runtime in RUNTIMES
            }
            yield E2EWorld(stack, emulator, proxy, settings, deployments)
    finally:
        stack.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.e2e.test_ministack import TABLES  # noqa: PLC0415 - filled while the tests run

    if TABLES:
        terminalreporter.section("e2e on MiniStack: where every message ended")
        for table in TABLES:
            terminalreporter.write_line(table)
