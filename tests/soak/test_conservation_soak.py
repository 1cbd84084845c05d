"""The long tier: conservation with a thousand messages and more under random faults (``make soak``).

Same run as tests/fault/test_conservation.py, scaled up: 1,035 messages (1,000 good, some of them
multipart), four pollers, the emulator faulting ~25% of TAO/storage calls with every kind of its
mix, the S3 proxy failing 20% of part uploads. Prints the figures (run with ``-s``).
"""

from __future__ import annotations

import uuid

import pytest

from tao_emulator import TaoEmulator
from tests.conftest import CLIENT_ID, CLIENT_SECRET
from tests.support.aws_stack import MotoServer
from tests.support.conservation import Plan, assert_conserved, every_fault_kind, run_conservation

SOAK = Plan(
    good=1000,
    multipart_every=25,
    malformed=10,
    unknown=10,
    forbidden=10,
    poisoned=5,
    fault_rate=0.25,
    part_failure_rate=0.2,
    pollers=4,
    max_receive_count=5,
    max_seconds=1500.0,
)


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_a_thousand_messages_under_faults_are_all_accounted_for(moto_server: MotoServer) -> None:
    moto_server.reset()
    with TaoEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as tao:
        result = run_conservation(
            SOAK,
            moto_server.endpoint_url,
            tao,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            name=f"soak{uuid.uuid4().hex[:6]}",
        )
    print(f"\n==== conservation soak ====\n{result.table()}\n")
    assert len(result.sent) >= 1000
    assert result.stop_reason == "until_empty"
    assert_conserved(result)
    assert result.fault_fraction >= 0.2
    assert set(result.random_faults) == every_fault_kind(), result.random_faults
    assert result.proxy_counts.get("injected_500", 0) + result.proxy_counts.get("injected_503", 0) > 0
