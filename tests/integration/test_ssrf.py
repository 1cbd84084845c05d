"""The allow-list checks names; the connection goes to an address: both are checked, over sockets.

Names "resolve" through a table handed to the real handler (``build_batch_handler(resolver=...)``), and
``socket.getaddrinfo`` refuses every name meanwhile, so nothing here can send a DNS query even when
the code under test ignores the table. The "internal services" are listeners on 127.0.0.1 and ::1
(the only addresses pytest-socket lets a wrong implementation reach, so a wrong implementation
is caught by their counters rather than hidden by the socket guard); 127.0.0.1 on some port stands
for the Lambda runtime API on 127.0.0.1:9001.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import time
from collections.abc import Iterator

import pytest
import requests

from tao_emulator import Fault
from tao_results.errors import PermanentError
from tao_results.http_sessions import new_storage_session, send
from tao_results.url_policy import SignedUrlPolicy
from tests.conftest import CLIENT_ID, CLIENT_SECRET
from tests.support.network import ConnectionCounter, LocalCA, TableResolver, numeric_only_getaddrinfo

NAME = "results-bucket.s3.eu-west-1.amazonaws.com"
OTHER_NAME = "other-bucket.s3.eu-west-1.amazonaws.com"


@pytest.fixture(autouse=True)
def no_dns() -> Iterator[None]:
    with numeric_only_getaddrinfo() as refused:
        yield
    assert refused == [], f"something tried real DNS for {refused}"


@pytest.fixture
def ca() -> Iterator[LocalCA]:
    authority = LocalCA()
    yield authority
    authority.close()


def only(items):
    assert len(items) == 1, items
    return items[0]


def storage_requests(tao):
    return [entry for entry in tao.requests_log() if entry["stage"] == "storage"]


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize(
    ("addresses", "listener_host", "refused", "why"),
    [
        (["127.0.0.1"], "127.0.0.1", "127.0.0.1", "loopback"),  # e.g. the runtime API, 127.0.0.1:9001
        (["::1"], "::1", "::1", "loopback"),
        (["::ffff:127.0.0.1"], "127.0.0.1", "::ffff:7f00:1", "IPv4-mapped loopback"),
        (["52.95.150.10", "127.0.0.1"], "127.0.0.1", "127.0.0.1", "loopback"),
    ],
    ids=["loopback-v4", "loopback-v6", "ipv4-mapped", "one-of-several"],
)
def test_an_allowed_name_resolving_to_an_internal_address_is_never_contacted(
    harness, tao, scheme, addresses, listener_host, refused, why
):
    with ConnectionCounter(listener_host) as internal:
        tao.add_result("ref-internal", size=100)
        url = f"{scheme}://{NAME}:{internal.port}{{signed_path}}"
        tao.add_fault(Fault("download", "signed_url", reference_id="ref-internal", url=url))
        resolver = TableResolver({NAME: addresses})
        # The name and its port are allowed; no address is listed, so only public ones may be used.
        h = harness(resolver=resolver, SIGNED_URL_ALLOWED_HOSTS=f"amazon-s3,{NAME}:{internal.port}")
        _, failed = h.run({"referenceId": "ref-internal"})
        assert failed == []
        letter = only(h.dead_letters())
        assert letter["reason"] == "signed_url_rejected"
        shown = str(ipaddress.ip_address(refused))
        assert letter["detail"] == f"host '{NAME}' resolved to {shown} ({why}), not allowed"
        assert "X-Amz-Signature" not in json.dumps(letter)
        assert h.keys() == []
        assert resolver.lookups == [NAME]
        time.sleep(0.3)
        # No TCP connection, hence no request and no TLS ClientHello either.
        assert (internal.accepted, internal.bytes_received) == (0, 0)


def test_an_allowed_name_reaches_a_private_address_only_when_it_is_listed_with_host_kept(harness, tao):
    info = tao.add_result("ref-named", size=300_000)
    url = f"http://{NAME}:{tao.port}{{signed_path}}"
    tao.add_fault(Fault("download", "signed_url", reference_id="ref-named", url=url))
    h = harness(resolver=TableResolver({NAME: ["127.0.0.1"]}), SIGNED_URL_ALLOWED_HOSTS="amazon-s3,127.0.0.1")
    _, failed = h.run({"referenceId": "ref-named"})
    assert failed == []
    assert hashlib.sha256(h.object_bytes("tao-results/ref-named/result.csv")).hexdigest() == info.sha256
    assert [entry["host"] for entry in storage_requests(tao)] == [f"{NAME}:{tao.port}"]


def test_https_keeps_the_name_for_sni_certificate_and_host(harness, tao, ca):
    certfile, keyfile = ca.issue([NAME])  # valid for the name only, not for 127.0.0.1
    tls_port = tao.serve_tls(certfile, keyfile)
    info = tao.add_result("ref-tls", size=200_000)
    url = f"https://{NAME}:{tls_port}{{signed_path}}"
    tao.add_fault(Fault("download", "signed_url", reference_id="ref-tls", url=url))
    h = harness(
        resolver=TableResolver({NAME: ["127.0.0.1"]}),
        storage_verify=ca.ca_file,
        SIGNED_URL_ALLOWED_HOSTS="amazon-s3,127.0.0.1",
    )
    _, failed = h.run({"referenceId": "ref-tls"})
    assert failed == []
    assert hashlib.sha256(h.object_bytes("tao-results/ref-tls/result.csv")).hexdigest() == info.sha256
    [entry] = storage_requests(tao)
    assert entry["tls"] is True
    assert entry["host"] == f"{NAME}:{tls_port}"


def test_https_with_an_untrusted_certificate_stores_nothing(harness, tao, ca):
    certfile, keyfile = ca.issue([NAME])
    tls_port = tao.serve_tls(certfile, keyfile)
    tao.add_result("ref-untrusted", size=100)
    url = f"https://{NAME}:{tls_port}{{signed_path}}"
    tao.add_fault(Fault("download", "signed_url", reference_id="ref-untrusted", times=None, url=url))
    h = harness(
        resolver=TableResolver({NAME: ["127.0.0.1"]}),  # the test CA is not trusted this time
        SIGNED_URL_ALLOWED_HOSTS="amazon-s3,127.0.0.1",
        MAX_ATTEMPTS_PER_INVOCATION="1",
    )
    _, failed = h.run({"referenceId": "ref-untrusted"})
    assert len(failed) == 1  # transient: left for a retry, never stored
    assert h.keys() == []
    assert storage_requests(tao) == []


def test_a_redirect_hop_is_checked_again(harness, tao):
    with ConnectionCounter("::1") as internal:
        tao.add_result("ref-hop", size=100)
        location = f"http://{OTHER_NAME}:{internal.port}/storage/results/ref-hop/result.csv"
        tao.add_fault(Fault("storage", "redirect", reference_id="ref-hop", status=302, location=location))
        resolver = TableResolver({OTHER_NAME: ["::1"]})
        h = harness(
            resolver=resolver, SIGNED_URL_ALLOWED_HOSTS=f"127.0.0.1,amazon-s3,{OTHER_NAME}:{internal.port}"
        )
        _, failed = h.run({"referenceId": "ref-hop"})
        assert failed == []
        letter = only(h.dead_letters())
        assert letter["reason"] == "signed_url_rejected"
        assert OTHER_NAME in letter["detail"]
        assert h.keys() == []
        time.sleep(0.3)
        assert internal.accepted == 0


def test_a_port_not_named_is_refused_before_resolving(harness, tao):
    tao.add_result("ref-port", size=100)
    tao.add_fault(
        Fault("download", "signed_url", reference_id="ref-port", url=f"https://{NAME}:8443{{signed_path}}")
    )
    resolver = TableResolver({NAME: ["52.95.150.10"]})
    h = harness(resolver=resolver, SIGNED_URL_ALLOWED_HOSTS="amazon-s3")
    _, failed = h.run({"referenceId": "ref-port"})
    assert failed == []
    letter = only(h.dead_letters())
    assert (letter["reason"], letter["detail"]) == (
        "signed_url_rejected",
        f"port 8443 not allowed for host '{NAME}'",
    )
    assert resolver.lookups == []


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("a" * 64 + ".s3.eu-west-1.amazonaws.com", "a label is longer than 63 octets"),
        (".".join(["b" * 63] * 4) + ".s3.amazonaws.com", "the name is longer than 253 characters"),
    ],
    ids=["64-octet-label", "long-name"],
)
def test_an_invalid_dns_name_is_a_classified_refusal(harness, tao, host, problem):
    tao.add_result("ref-label", size=100)
    tao.add_fault(
        Fault("download", "signed_url", reference_id="ref-label", url=f"https://{host}{{signed_path}}")
    )
    resolver = TableResolver()
    h = harness(resolver=resolver)
    _, failed = h.run({"referenceId": "ref-label"})
    assert failed == []
    letter = only(h.dead_letters())
    assert letter["reason"] == "signed_url_rejected"
    assert letter["detail"].endswith(f"is not a valid DNS name: {problem}")
    assert resolver.lookups == []


def test_no_cookie_set_by_the_api_or_the_storage_ever_comes_back(harness, tao):
    tao.configure(set_cookie="session=from-tao; Path=/")
    first, second = tao.add_result("ref-c1", size=100), tao.add_result("ref-c2", size=100)
    h = harness()
    assert h.run({"referenceId": "ref-c1"})[1] == []
    assert h.run({"referenceId": "ref-c2"})[1] == []  # same container: same sessions
    assert len(h.keys()) == 2 and first.size == second.size
    log = [entry for entry in tao.requests_log() if entry["stage"] in ("token", "download", "storage")]
    assert {entry["stage"] for entry in log} == {"token", "download", "storage"}
    assert len(log) >= 5
    assert not [entry for entry in log if entry["cookie_present"]]


# --- the storage session itself, over sockets -------------------------------------------------


def test_every_new_connection_resolves_and_is_checked_again(tao):
    """DNS rebinding: a name that answered a listed address, then an internal one."""
    info = tao.add_result("ref-rebind", size=1000)
    with ConnectionCounter("::1") as internal:
        policy = SignedUrlPolicy((NAME + f":{tao.port}", "127.0.0.1"), allow_plain_http=True)
        resolver = TableResolver({NAME: ["127.0.0.1"]})
        session = new_storage_session(2, policy, resolver)
        url = f"http://{NAME}:{tao.port}" + signed_path(tao, "ref-rebind")
        response = send(session, "GET", url, timeout=5)
        assert hashlib.sha256(response.content).hexdigest() == info.sha256
        session.close()  # the next request needs a new connection
        resolver.table[NAME] = ["::1"]
        with pytest.raises(PermanentError) as caught:
            send(session, "GET", url, timeout=5)
        assert caught.value.detail == f"host '{NAME}' resolved to ::1 (loopback), not allowed"
        assert resolver.lookups == [NAME, NAME]
        time.sleep(0.3)
        assert internal.accepted == 0


def signed_path(tao, reference_id):
    """The path and query of a signed URL from the emulator's own Download API."""
    with requests.Session() as plain:
        token = plain.post(
            f"{tao.base_url}/api/v1/upload/v1/oauth2/tokens",
            data={"grant_type": "client_credentials", "scope": "rostering"},
            auth=(CLIENT_ID, CLIENT_SECRET),
            timeout=5,
        ).json()["access_token"]
        url = plain.get(
            f"{tao.base_url}/api/v1/download/{reference_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        ).json()["signedUrl"]
    return url[url.index("/storage/") :]
