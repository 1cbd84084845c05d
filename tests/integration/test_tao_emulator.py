"""The TAO emulator itself, exercised over real loopback sockets with ``requests``."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import inspect
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from tao_emulator import (
    DEFAULT,
    EmulatorAdmin,
    Fault,
    ResultOptions,
    Settings,
    TaoEmulator,
    running_emulator_process,
)
from tao_emulator.__main__ import build_parser
from tao_emulator.admin import ADMIN_METHODS
from tao_emulator.settings import CLI_SETTINGS

TOKEN_PATH = "/api/v1/upload/v1/oauth2/tokens"
CREDENTIALS = {"grant_type": "client_credentials", "client_id": "demo-client", "client_secret": "demo-secret"}


@pytest.fixture
def emu() -> Iterator[TaoEmulator]:
    with TaoEmulator() as emulator:
        yield emulator


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


def token(http: requests.Session, base_url: str, **form: str) -> str:
    response = http.post(base_url + TOKEN_PATH, data={**CREDENTIALS, **form}, timeout=5)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def signed_url(http: requests.Session, base_url: str, reference_id: str, access_token: str) -> str:
    response = http.get(f"{base_url}/api/v1/download/{reference_id}", headers=bearer(access_token), timeout=5)
    assert response.status_code == 200, response.text
    return str(response.json()["signedUrl"])


def s3_code(response: requests.Response) -> str:
    assert response.headers["Content-Type"] == "application/xml"
    return response.text.split("<Code>")[1].split("</Code>")[0]


# ---- token endpoint -------------------------------------------------------------------------------


def test_token_urlencoded_form(emu: TaoEmulator, session: requests.Session) -> None:
    response = session.post(emu.base_url + TOKEN_PATH, data=CREDENTIALS, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    document = response.json()
    assert document["token_type"] == "Bearer"
    assert document["expires_in"] == 3600
    assert document["scope"] == "rostering"
    assert len(document["access_token"]) >= 32
    assert emu.issued_tokens() == [document["access_token"]]


def test_token_multipart_form_like_curl(emu: TaoEmulator, session: requests.Session) -> None:
    files = {name: (None, value) for name, value in CREDENTIALS.items()}
    response = session.post(emu.base_url + TOKEN_PATH, files=files, timeout=5)
    assert response.request.headers["Content-Type"].startswith("multipart/form-data")
    assert response.status_code == 200, response.text
    assert response.json()["access_token"] in emu.issued_tokens()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_token_with_the_documented_curl_command(emu: TaoEmulator) -> None:
    command = ["curl", "-s", "--location", emu.base_url + TOKEN_PATH]
    for field in (
        'grant_type="client_credentials"',
        'client_id="demo-client"',
        'client_secret="demo-secret"',
    ):
        command += ["--form", field]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True)
    assert json.loads(completed.stdout)["access_token"] in emu.issued_tokens()


def test_token_http_basic_client_auth(emu: TaoEmulator, session: requests.Session) -> None:
    ok = session.post(
        emu.base_url + TOKEN_PATH,
        data={"grant_type": "client_credentials"},
        auth=("demo-client", "demo-secret"),
        timeout=5,
    )
    assert ok.status_code == 200
    bad = session.post(
        emu.base_url + TOKEN_PATH,
        data={"grant_type": "client_credentials"},
        auth=("demo-client", "x"),
        timeout=5,
    )
    assert bad.status_code == 401
    assert bad.json() == {"error": "invalid_client"}
    assert "WWW-Authenticate" in bad.headers


def test_token_errors(emu: TaoEmulator, session: requests.Session) -> None:
    wrong = session.post(emu.base_url + TOKEN_PATH, data={**CREDENTIALS, "client_secret": "nope"}, timeout=5)
    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid_client"})
    grant = session.post(emu.base_url + TOKEN_PATH, data={**CREDENTIALS, "grant_type": "password"}, timeout=5)
    assert (grant.status_code, grant.json()) == (400, {"error": "unsupported_grant_type"})
    missing = session.post(emu.base_url + TOKEN_PATH, data={"client_id": "demo-client"}, timeout=5)
    assert missing.status_code == 401


def test_scope_request_is_narrowed_to_what_the_client_has(
    emu: TaoEmulator, session: requests.Session
) -> None:
    response = session.post(
        emu.base_url + TOKEN_PATH, data={**CREDENTIALS, "scope": "rostering admin"}, timeout=5
    )
    assert response.json()["scope"] == "rostering"
    emu.set_scopes(["reporting"])
    limited = session.post(emu.base_url + TOKEN_PATH, data=CREDENTIALS, timeout=5).json()
    assert limited["scope"] == "reporting"
    emu.add_result("R1", size=10)
    denied = session.get(
        f"{emu.base_url}/api/v1/download/R1", headers=bearer(limited["access_token"]), timeout=5
    )
    assert (denied.status_code, denied.json()) == (403, {"message": "Insufficient scope"})


# ---- download API ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/v1/download", "/api/v1/upload/api/v1/download"])
def test_download_both_paths_then_storage(emu: TaoEmulator, session: requests.Session, prefix: str) -> None:
    info = emu.add_result("REF-1", size=3 * 1024 * 1024 + 17, filename="import result.csv")
    access = token(session, emu.base_url)
    response = session.get(f"{emu.base_url}{prefix}/REF-1", headers=bearer(access), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    url = response.json()["signedUrl"]
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == emu.base_url
    assert parts.path == "/storage/results/REF-1/import%20result.csv"
    query = parse_qs(parts.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["300"]
    assert query["X-Amz-SignedHeaders"] == ["host"]
    assert len(query["X-Amz-Date"][0]) == 16 and query["X-Amz-Date"][0].endswith("Z")
    assert len(query["X-Amz-Signature"][0]) == 64
    assert query["X-Amz-Signature"][0] in emu.issued_signatures()

    body = session.get(url, timeout=5)
    assert body.status_code == 200
    assert body.headers["Content-Length"] == str(info.size)
    assert body.headers["Content-Type"] == "text/csv"
    assert body.headers["Content-Disposition"] == 'attachment; filename="import result.csv"'
    assert body.headers["ETag"] == info.etag
    assert hashlib.sha256(body.content).hexdigest() == info.sha256


def test_download_documented_errors(emu: TaoEmulator, session: requests.Session) -> None:
    url = f"{emu.base_url}/api/v1/download/UNKNOWN"
    for headers in ({}, bearer("not-a-token"), {"Authorization": "Basic Zm9vOmJhcg=="}):
        denied = session.get(url, headers=headers, timeout=5)
        assert denied.status_code == 401
        assert denied.headers["Content-Type"] == "text/plain"
        assert denied.text == "Access Denied"
    missing = session.get(url, headers=bearer(token(session, emu.base_url)), timeout=5)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/json"
    assert missing.json() == {"message": "Reference ID not found. File not found in pending bucket."}


def test_token_expires_server_side(emu: TaoEmulator, session: requests.Session) -> None:
    emu.configure(token_expires_in=60)
    emu.add_result("R", size=1)
    access = token(session, emu.base_url)
    assert (
        session.get(f"{emu.base_url}/api/v1/download/R", headers=bearer(access), timeout=5).status_code == 200
    )
    emu.advance_clock(61)
    expired = session.get(f"{emu.base_url}/api/v1/download/R", headers=bearer(access), timeout=5)
    assert (expired.status_code, expired.text) == (401, "Access Denied")


def test_ready_after_calls(emu: TaoEmulator, session: requests.Session) -> None:
    emu.add_result("PENDING", size=5, ready_after_calls=2)
    access = token(session, emu.base_url)
    url = f"{emu.base_url}/api/v1/download/PENDING"
    statuses = [session.get(url, headers=bearer(access), timeout=5).status_code for _ in range(3)]
    assert statuses == [404, 404, 200]
    assert emu.stats()["download_calls"] == {"PENDING": 3}


def test_rotate_secret_and_revoke_tokens(emu: TaoEmulator, session: requests.Session) -> None:
    emu.add_result("R", size=1)
    old_token = token(session, emu.base_url)
    emu.rotate_secret("new-secret")
    old = session.post(emu.base_url + TOKEN_PATH, data=CREDENTIALS, timeout=5)
    assert old.status_code == 401
    new_token = token(session, emu.base_url, client_secret="new-secret")
    url = f"{emu.base_url}/api/v1/download/R"
    assert session.get(url, headers=bearer(old_token), timeout=5).status_code == 200
    emu.revoke_tokens()
    for access in (old_token, new_token):
        assert session.get(url, headers=bearer(access), timeout=5).status_code == 401


# ---- storage --------------------------------------------------------------------------------------


def test_storage_validates_the_signed_url(emu: TaoEmulator, session: requests.Session) -> None:
    emu.add_result("A", size=100)
    emu.add_result("B", size=100)
    access = token(session, emu.base_url)
    url = signed_url(session, emu.base_url, "A", access)

    both = session.get(url, headers=bearer(access), timeout=5)
    assert both.status_code == 400
    assert s3_code(both) == "InvalidArgument"
    assert "Only one auth mechanism allowed" in both.text

    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert s3_code(session.get(tampered, timeout=5)) == "SignatureDoesNotMatch"
    other_path = url.replace("/results/A/", "/results/B/")
    forged = session.get(other_path, timeout=5)
    assert (forged.status_code, s3_code(forged)) == (403, "SignatureDoesNotMatch")
    longer = session.get(url.replace("X-Amz-Expires=300", "X-Amz-Expires=9999"), timeout=5)
    assert s3_code(longer) == "SignatureDoesNotMatch"
    unsigned = session.get(url.split("?")[0], timeout=5)
    assert (unsigned.status_code, s3_code(unsigned)) == (403, "AccessDenied")

    emu.advance_clock(301)
    expired = session.get(url, timeout=5)
    assert (expired.status_code, s3_code(expired)) == (403, "AccessDenied")
    assert "Request has expired" in expired.text


def test_storage_range_and_disposition_overrides(emu: TaoEmulator, session: requests.Session) -> None:
    info = emu.add_result(
        "R", content=b"0123456789", content_type="application/zip", content_disposition=None
    )
    raw = emu.add_result("S", size=10, content_disposition="inline")
    access = token(session, emu.base_url)
    response = session.get(
        signed_url(session, emu.base_url, "R", access), headers={"Range": "bytes=2-5"}, timeout=5
    )
    assert response.status_code == 206
    assert response.content == b"2345"
    assert response.headers["Content-Range"] == "bytes 2-5/10"
    assert response.headers["Content-Type"] == "application/zip"
    assert "Content-Disposition" not in response.headers
    assert info.sha256 == hashlib.sha256(b"0123456789").hexdigest()
    inline = session.get(signed_url(session, emu.base_url, "S", access), timeout=5)
    assert inline.headers["Content-Disposition"] == "inline"
    assert hashlib.sha256(inline.content).hexdigest() == raw.sha256


def test_generated_content_is_deterministic_and_varies_along_the_file(session: requests.Session) -> None:
    size = 4 * 1024 * 1024
    with TaoEmulator() as first, TaoEmulator() as second:
        a1 = first.add_result("REF", size=size)
        a2 = second.add_result("REF", size=size)
        assert a1.sha256 == a2.sha256
        assert first.add_result("OTHER", size=size).sha256 != a1.sha256
        assert (
            first.add_result("REF2", size=size, seed=7).sha256 != first.add_result("REF2", size=size).sha256
        )
        access = token(session, first.base_url)
        body = session.get(signed_url(session, first.base_url, "REF", access), timeout=10).content
    mib = 1024 * 1024
    blocks = [body[i : i + mib] for i in range(0, size, mib)]
    assert len(set(blocks)) == 4
    swapped = blocks[1] + blocks[0] + blocks[2] + blocks[3]
    assert hashlib.sha256(swapped).hexdigest() != a1.sha256


@pytest.mark.slow
def test_64_mib_body_streams_with_matching_sha256(emu: TaoEmulator, session: requests.Session) -> None:
    info = emu.add_result("BIG", size=64 * 1024 * 1024 + 3)
    access = token(session, emu.base_url)
    digest = hashlib.sha256()
    received = 0
    started = time.monotonic()
    with session.get(signed_url(session, emu.base_url, "BIG", access), stream=True, timeout=30) as response:
        assert int(response.headers["Content-Length"]) == info.size
        for chunk in response.iter_content(1024 * 1024):
            digest.update(chunk)
            received += len(chunk)
    elapsed = time.monotonic() - started
    assert received == info.size
    assert digest.hexdigest() == info.sha256
    assert elapsed < 10
    assert emu.stats()["bytes_served"] == info.size


# ---- faults ---------------------------------------------------------------------------------------


def test_status_faults_fire_as_configured(emu: TaoEmulator, session: requests.Session) -> None:
    emu.add_result("R", size=1)
    emu.add_result("OTHER", size=1)
    access = token(session, emu.base_url)
    emu.add_fault(
        Fault("download", "status", reference_id="R", status=429, headers={"Retry-After": "1"}, times=2)
    )
    emu.add_fault(
        Fault(
            "download",
            "status",
            reference_id="R",
            status=200,
            body="<html>maintenance</html>",
            content_type="text/html",
        )
    )
    emu.add_fault(Fault("download", "status", reference_id="R", status=200, body='{"status": "ok"}'))
    emu.add_fault(
        Fault("download", "status", reference_id="R", status=500, body='{"message": "Error checking status"}')
    )
    emu.add_fault(Fault("download", "status", reference_id="R", status=503, probability=0.0, times=None))
    url = f"{emu.base_url}/api/v1/download/R"

    other = session.get(f"{emu.base_url}/api/v1/download/OTHER", headers=bearer(access), timeout=5)
    assert other.status_code == 200  # reference filter
    first, second = (session.get(url, headers=bearer(access), timeout=5) for _ in range(2))
    assert [first.status_code, second.status_code] == [429, 429]
    assert first.headers["Retry-After"] == "1"
    html = session.get(url, headers=bearer(access), timeout=5)
    assert (html.status_code, html.headers["Content-Type"], html.text) == (
        200,
        "text/html",
        "<html>maintenance</html>",
    )
    no_url = session.get(url, headers=bearer(access), timeout=5)
    assert no_url.status_code == 200 and "signedUrl" not in no_url.json()
    error = session.get(url, headers=bearer(access), timeout=5)
    assert (error.status_code, error.json()) == (500, {"message": "Error checking status"})
    assert session.get(url, headers=bearer(access), timeout=5).status_code == 200  # probability 0 never fires
    assert emu.stats()["faults_injected"] == {"status": 5}
    assert len(emu.faults()) == 1

    emu.add_fault(Fault("token", "status", status=503, body="<html>503</html>", content_type="text/html"))
    assert session.post(emu.base_url + TOKEN_PATH, data=CREDENTIALS, timeout=5).status_code == 503
    emu.add_fault(Fault("storage", "status", status=403))
    storage = session.get(signed_url(session, emu.base_url, "R", access), timeout=5)
    assert (storage.status_code, s3_code(storage)) == (403, "AccessDenied")


def test_reset_fault_drops_the_connection(emu: TaoEmulator, session: requests.Session) -> None:
    emu.add_result("R", size=1)
    access = token(session, emu.base_url)
    emu.add_fault(Fault("download", "reset"))
    with pytest.raises(requests.ConnectionError):
        session.get(f"{emu.base_url}/api/v1/download/R", headers=bearer(access), timeout=5)
    assert (
        session.get(f"{emu.base_url}/api/v1/download/R", headers=bearer(access), timeout=5).status_code == 200
    )
    log = emu.requests_log()
    assert [entry["status"] for entry in log if entry["stage"] == "download"] == [None, 200]


def test_delay_fault_and_latency(emu: TaoEmulator, session: requests.Session) -> None:
    emu.add_result("R", size=1)
    access = token(session, emu.base_url)
    emu.add_fault(Fault("download", "delay", delay_ms=600))
    with pytest.raises(requests.Timeout):
        session.get(f"{emu.base_url}/api/v1/download/R", headers=bearer(access), timeout=0.2)
    emu.configure(latency_ms=150)
    started = time.monotonic()
    assert (
        session.get(f"{emu.base_url}/api/v1/download/R", headers=bearer(access), timeout=5).status_code == 200
    )
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    emu.stats()
    session.post(f"{emu.base_url}/_emulator/stats", json={}, timeout=5)
    assert time.monotonic() - started < 0.15  # admin calls are not delayed


def test_truncate_fault(emu: TaoEmulator, session: requests.Session) -> None:
    emu.add_result("R", size=1_000_000)
    access = token(session, emu.base_url)
    emu.add_fault(Fault("storage", "truncate", truncate_at=1000))
    with session.get(signed_url(session, emu.base_url, "R", access), stream=True, timeout=5) as response:
        assert response.headers["Content-Length"] == "1000000"
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            b"".join(response.iter_content(65536))
    assert emu.stats()["faults_injected"] == {"truncate": 1}


def test_overlong_fault(emu: TaoEmulator, session: requests.Session) -> None:
    info = emu.add_result("R", size=200_000)
    access = token(session, emu.base_url)
    emu.add_fault(Fault("storage", "overlong", extra=10))
    with session.get(signed_url(session, emu.base_url, "R", access), stream=True, timeout=5) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        declared = int(response.headers["Content-Length"])
        body = b"".join(response.raw.stream(65536, decode_content=False))
    assert declared == info.size - 10
    assert len(body) == info.size > declared


def test_expired_url_fault(emu: TaoEmulator, session: requests.Session) -> None:
    emu.add_result("R", size=1)
    access = token(session, emu.base_url)
    emu.add_fault(Fault("download", "expired_url"))
    response = session.get(signed_url(session, emu.base_url, "R", access), timeout=5)
    assert (response.status_code, s3_code(response)) == (403, "AccessDenied")
    assert "Request has expired" in response.text


def test_signed_url_fault_placeholders(emu: TaoEmulator, session: requests.Session) -> None:
    emu.add_result("R", size=10)
    access = token(session, emu.base_url)
    emu.add_fault(Fault("download", "signed_url", url="http://169.254.169.254{signed_path}"))
    emu.add_fault(Fault("download", "signed_url", url="{base_url}{signed_path}"))
    evil = signed_url(session, emu.base_url, "R", access)
    assert evil.startswith("http://169.254.169.254/storage/results/R/result.csv?X-Amz-Algorithm=")
    same = signed_url(session, emu.base_url, "R", access)
    assert same.startswith(emu.base_url + "/storage/results/R/")
    assert session.get(same, timeout=5).status_code == 200


def test_redirect_fault(emu: TaoEmulator, session: requests.Session) -> None:
    emu.add_result("R", size=10)
    access = token(session, emu.base_url)
    emu.add_fault(Fault("storage", "redirect", status=307, location="http://10.0.0.1{signed_path}"))
    response = session.get(signed_url(session, emu.base_url, "R", access), allow_redirects=False, timeout=5)
    assert response.status_code == 307
    assert response.headers["Location"].startswith("http://10.0.0.1/storage/results/R/result.csv?")


def test_revoke_fault(emu: TaoEmulator, session: requests.Session) -> None:
    emu.add_result("R", size=1)
    access = token(session, emu.base_url)
    emu.add_fault(Fault("download", "revoke"))
    url = f"{emu.base_url}/api/v1/download/R"
    first = session.get(url, headers=bearer(access), timeout=5)
    assert (first.status_code, first.text) == (401, "Access Denied")
    assert session.get(url, headers=bearer(access), timeout=5).status_code == 401
    assert session.get(url, headers=bearer(token(session, emu.base_url)), timeout=5).status_code == 200


def _random_run(emu: TaoEmulator, seed: int) -> list[str]:
    emu.reset()
    emu.add_result("R", size=2000)
    emu.configure(random_fault_rate=0.5, random_fault_seed=seed, slow_delay_ms=5)
    outcomes: list[str] = []
    with requests.Session() as http:
        for _ in range(40):
            try:
                response = http.post(emu.base_url + TOKEN_PATH, data=CREDENTIALS, timeout=5)
                if response.status_code != 200:
                    outcomes.append(f"token:{response.status_code}")
                    continue
                access = response.json()["access_token"]
                download = http.get(f"{emu.base_url}/api/v1/download/R", headers=bearer(access), timeout=5)
                if download.status_code != 200:
                    outcomes.append(f"download:{download.status_code}:{download.headers.get('Retry-After')}")
                    continue
                body = http.get(download.json()["signedUrl"], timeout=5)
                outcomes.append(f"storage:{body.status_code}:{len(body.content)}")
            except requests.RequestException as error:
                outcomes.append(type(error).__name__)
    return outcomes


def test_random_faults_are_reproducible_by_seed(emu: TaoEmulator) -> None:
    first = _random_run(emu, seed=42)
    stats = emu.stats()
    assert _random_run(emu, seed=42) == first
    assert _random_run(emu, seed=43) != first
    kinds = stats["random_faults_injected"]
    assert sum(kinds.values()) >= 10
    assert len(kinds) >= 5
    assert set(kinds) <= {
        "download_500",
        "download_429",
        "download_reset",
        "storage_truncate",
        "download_expired_url",
        "download_revoke",
        "token_503",
        "storage_500",
        "slow",
    }


# ---- connections, logs, secrets -------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(emu: TaoEmulator, session: requests.Session) -> None:
    for index in range(3):
        emu.add_result(f"R{index}", size=300_000)
    access = token(session, emu.base_url)
    for index in range(3):
        for _ in range(2):
            assert (
                len(session.get(signed_url(session, emu.base_url, f"R{index}", access), timeout=5).content)
                == 300_000
            )
    assert emu.stats()["connections_accepted"] == 1
    with requests.Session() as other:
        token(other, emu.base_url)
    assert emu.stats()["connections_accepted"] == 2


def test_request_log_never_holds_secrets(emu: TaoEmulator, session: requests.Session) -> None:
    emu.add_result("R", size=10)
    access = token(session, emu.base_url)
    url = signed_url(session, emu.base_url, "R", access)
    session.get(url, timeout=5)
    session.get(url, headers=bearer(access), timeout=5)
    log = emu.requests_log()
    assert [entry["stage"] for entry in log] == ["token", "download", "storage", "storage"]
    assert [entry["status"] for entry in log] == [200, 200, 200, 400]
    assert [entry["authorization_present"] for entry in log] == [False, True, False, True]
    assert all("?" not in entry["path"] for entry in log)
    assert log[2]["reference_id"] == "R"
    assert log[0]["client"].startswith("127.0.0.1:")
    dumped = json.dumps(log)
    for secret in [*emu.issued_tokens(), *emu.issued_signatures(), "demo-secret"]:
        assert secret not in dumped
    stats = emu.stats()
    assert stats["token_requests"] == 1
    assert stats["storage_gets"] == {"R": 2}


def test_signed_urls_carry_a_security_token_and_their_credentials_are_listed(
    emu: TaoEmulator, session: requests.Session
) -> None:
    emu.add_result("R", size=10)
    url = signed_url(session, emu.base_url, "R", token(session, emu.base_url))
    query = parse_qs(urlsplit(url).query)
    credential, security_token = query["X-Amz-Credential"][0], query["X-Amz-Security-Token"][0]
    assert emu.issued_url_credentials() == [credential, security_token]
    assert "+" in security_token or "/" in security_token  # percent-encoded in the URL
    assert session.get(url, timeout=5).status_code == 200


def test_echo_credentials_quotes_each_request_in_its_error_answer(
    emu: TaoEmulator, session: requests.Session
) -> None:
    secret = 'se"cr\\et+%2F value'
    emu.configure(client_secret=secret, echo_credentials=True)
    emu.add_result("R", size=10)
    form = {**CREDENTIALS, "client_secret": secret}
    access = token(session, emu.base_url, client_secret=secret)
    url = signed_url(session, emu.base_url, "R", access)
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    emu.add_fault(Fault("token", "status", status=503, times=7))
    answers = [session.post(emu.base_url + TOKEN_PATH, data=form, timeout=5) for _ in range(7)]
    expected = [
        secret,  # raw
        json.dumps(secret)[1:-1],  # JSON-escaped
        quote(secret, safe=""),  # percent-encoded
        json.dumps(json.dumps(secret)[1:-1])[1:-1],  # JSON-escaped twice
        json.dumps(secret)[1:-1].replace("/", "\\/"),  # PHP's json_encode
        "".join(ch if ch.isalnum() else f"\\u{ord(ch):04x}" for ch in secret),  # \u00XX everywhere
        "".join(ch if ch.isalnum() else f"&#{ord(ch)};" for ch in secret),  # XML numeric references
    ]
    # The echo counter started at 0; the 7 answers took forms 1, 2, ..., 6, 0. Each form travels
    # inside the JSON ``message``, so it is compared with what JSON decoding gives back.
    for answer, form_index in zip(answers, (1, 2, 3, 4, 5, 6, 0), strict=True):
        assert answer.status_code == 503
        assert expected[form_index] in answer.json()["message"], (form_index, answer.text)
    emu.add_fault(Fault("download", "status", status=500))
    answer = session.get(f"{emu.base_url}/api/v1/download/R", headers=bearer(access), timeout=5)
    assert access in answer.json()["message"]  # Bearer <token>, in whichever form: all the same
    emu.add_fault(Fault("storage", "status", status=503))
    answer = session.get(url, timeout=5)
    assert s3_code(answer) == "SlowDown" and signature in answer.text
    unauthorised = session.get(f"{emu.base_url}/api/v1/download/R", headers=bearer("nope"), timeout=5)
    assert unauthorised.status_code == 401 and "Bearer nope" in unauthorised.text
    assert emu.stats()["echoed_errors"] == 10
    emu.configure(echo_credentials=False)
    assert session.get(url, headers=bearer(access), timeout=5).text.count(access) == 1  # S3's own echo


def test_reset_clears_everything(emu: TaoEmulator, session: requests.Session) -> None:
    emu.add_result("R", size=1)
    emu.add_fault(Fault("download", "status", times=None))
    access = token(session, emu.base_url)
    emu.reset()
    assert emu.result_info("R") is None
    assert emu.faults() == []
    assert emu.issued_tokens() == []
    assert emu.requests_log() == []
    assert emu.stats()["token_requests"] == 0
    assert (
        session.get(f"{emu.base_url}/api/v1/download/R", headers=bearer(access), timeout=5).status_code == 401
    )


def test_stop_closes_idle_keep_alive_connections(session: requests.Session) -> None:
    emulator = TaoEmulator().start()
    base_url = emulator.base_url
    token(session, base_url)
    emulator.stop()
    with pytest.raises(requests.ConnectionError):
        session.post(base_url + TOKEN_PATH, data=CREDENTIALS, timeout=2)


def test_only_loopback_binding_is_allowed() -> None:
    with pytest.raises(ValueError, match="loopback"):
        TaoEmulator(host="0.0.0.0")


# ---- subprocess + HTTP admin ----------------------------------------------------------------------


def test_admin_client_against_subprocess_emulator(session: requests.Session) -> None:
    with running_emulator_process(
        client_id="proc-client", client_secret="proc-secret", signed_url_ttl=60
    ) as admin:
        assert isinstance(admin, EmulatorAdmin)
        assert admin.settings()["signed_url_ttl"] == 60
        generated = admin.add_result("GEN", size=2 * 1024 * 1024 + 1, ready_after_calls=1)
        exact = admin.add_result("EXACT", content=b"a,b\n1,2\n", filename="x.csv", content_disposition=None)
        assert exact.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
        assert admin.result_info("EXACT") == exact
        assert admin.result_info("NOPE") is None

        form = {
            "grant_type": "client_credentials",
            "client_id": "proc-client",
            "client_secret": "proc-secret",
        }
        access = session.post(admin.base_url + TOKEN_PATH, data=form, timeout=5).json()["access_token"]
        download = f"{admin.base_url}/api/v1/upload/api/v1/download/GEN"
        assert session.get(download, headers=bearer(access), timeout=5).status_code == 404
        url = session.get(download, headers=bearer(access), timeout=5).json()["signedUrl"]
        assert "X-Amz-Expires=60" in url
        assert hashlib.sha256(session.get(url, timeout=10).content).hexdigest() == generated.sha256

        admin.add_fault(Fault("download", "status", status=500, body=b'{"message": "boom"}', times=None))
        assert [f.body for f in admin.faults()] == [b'{"message": "boom"}']
        assert session.get(download, headers=bearer(access), timeout=5).json() == {"message": "boom"}
        admin.clear_faults()
        admin.revoke_tokens()
        assert session.get(download, headers=bearer(access), timeout=5).status_code == 401
        admin.rotate_secret("rotated")
        assert session.post(admin.base_url + TOKEN_PATH, data=form, timeout=5).status_code == 401
        admin.set_scopes(["other"])
        access = session.post(
            admin.base_url + TOKEN_PATH, data={**form, "client_secret": "rotated"}, timeout=5
        ).json()["access_token"]
        assert session.get(download, headers=bearer(access), timeout=5).status_code == 403
        admin.advance_clock(7200)
        assert session.get(download, headers=bearer(access), timeout=5).status_code == 401

        stats = admin.stats()
        assert stats["download_calls"] == {"GEN": 6}
        assert stats["faults_injected"] == {"status": 1}
        assert len(admin.issued_tokens()) == 2
        assert len(admin.issued_signatures()) == 1
        assert {entry["stage"] for entry in admin.requests_log()} >= {"token", "download", "storage", "admin"}
        admin.reset()
        assert admin.stats()["token_requests"] == 0
        process = admin.process
        assert process is not None
    assert process.returncode == 0


def test_cli_prints_base_url_and_exits_cleanly_on_sigint() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tao_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--client-id",
            "cli",
            "--client-secret",
            "cli-secret",
            "--latency-ms",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = json.loads(line)["base_url"]
        assert base_url.startswith("http://127.0.0.1:")
        basic = base64.b64encode(b"cli:cli-secret").decode()
        response = requests.post(
            base_url + TOKEN_PATH,
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
            timeout=5,
        )
        assert response.status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert process.stdout.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_tls_setting_serves_every_endpoint_over_https(tmp_path):
    from tests.bench.tls import make_tls  # noqa: PLC0415 - cryptography (moto's) only here

    files = make_tls(tmp_path)
    with TaoEmulator(tls_cert_file=files.cert, tls_key_file=files.key) as emulator:
        assert emulator.base_url.startswith("https://127.0.0.1:")
        info = emulator.add_result("ref-tls", size=3 * 1024 * 1024 + 1)
        with requests.Session() as http:
            token = http.post(emulator.base_url + TOKEN_PATH, data=CREDENTIALS, verify=files.ca, timeout=5)
            assert token.status_code == 200
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            answer = http.get(
                f"{emulator.base_url}/api/v1/download/ref-tls", headers=headers, verify=files.ca, timeout=5
            )
            url = answer.json()["signedUrl"]
            assert url.startswith("https://")
            body = http.get(url, verify=files.ca, timeout=5).content
            assert hashlib.sha256(body).hexdigest() == info.sha256
            # A client that does not trust the local CA is refused at the handshake.
            with pytest.raises(requests.exceptions.SSLError):
                http.get(url, timeout=5)


def test_cli_help_gives_every_option_its_meaning_and_the_settings_default() -> None:
    parser = build_parser()
    address = inspect.signature(TaoEmulator).parameters
    settings = dataclasses.asdict(Settings())
    options = [action for action in parser._actions if action.dest != "help"]
    assert {action.dest for action in options} == {"host", "port", *CLI_SETTINGS}
    for action in options:
        assert action.option_strings == ["--" + action.dest.replace("_", "-")]
        expected = address[action.dest].default if action.dest in address else settings[action.dest]
        assert action.default == expected, action.dest
        assert type(action.default) is type(expected), action.dest
        assert action.help, action.dest
        shown = repr(expected) if expected == "" else str(expected)
        assert action.help.endswith(f"(default: {shown})"), action.help
    assert vars(parser.parse_args([])) == {
        "host": address["host"].default,
        "port": address["port"].default,
        **{name: settings[name] for name in CLI_SETTINGS},
    }
    completed = subprocess.run(
        [sys.executable, "-m", "tao_emulator", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert completed.stdout == parser.format_help()
    for needed in ("any free port", '{"base_url": ', "POST {base_url}/_emulator/{method}", "EmulatorAdmin"):
        assert needed in completed.stdout, needed
    for name in sorted(ADMIN_METHODS) + sorted(settings):
        assert name in completed.stdout, name


def test_admin_client_takes_the_same_arguments_as_the_emulator() -> None:
    client_methods = {
        name
        for name, member in vars(EmulatorAdmin).items()
        if callable(member) and not name.startswith("_") and name != "close"
    }
    assert client_methods == ADMIN_METHODS
    for name in sorted(ADMIN_METHODS):
        client = inspect.signature(getattr(EmulatorAdmin, name))
        server = inspect.signature(getattr(TaoEmulator, name))
        assert [(p.name, p.kind, p.default, p.annotation) for p in client.parameters.values()] == [
            (p.name, p.kind, p.default, p.annotation) for p in server.parameters.values()
        ], name
    keywords = inspect.signature(TaoEmulator.add_result).parameters
    assert {name: keywords[name].default for name in keywords if name not in ("self", "reference_id")} == {
        field.name: field.default for field in dataclasses.fields(ResultOptions)
    }


def test_admin_add_result_carries_every_option_as_the_emulator_takes_it(emu: TaoEmulator) -> None:
    generated: dict[str, Any] = {"size": 3000, "seed": 7, "ready_after_calls": 2, "content_encoding": "gzip"}
    exact: dict[str, Any] = {
        "content": b"\x00a,b\n\xff",
        "filename": "r\u00e9sultat.csv",
        "content_type": "text/csv; charset=utf-8",
        "content_disposition": "inline",
        "header_charset": "utf-8",
    }
    defaults = ResultOptions()
    assert {*generated, *exact} == {field.name for field in dataclasses.fields(ResultOptions)}
    assert all(getattr(defaults, name) != value for name, value in {**generated, **exact}.items())
    with EmulatorAdmin(emu.base_url) as admin:
        for options in (
            {"size": 10},
            {"content": b"x"},
            {"size": 10, "content_disposition": None},
            generated,
            exact,
        ):
            in_process = emu.add_result("ref-a", **options)
            assert emu.result_info("ref-a") == in_process
            assert admin.add_result("ref-a", **options) == in_process, options
            assert admin.result_info("ref-a") == in_process
    assert in_process.content_disposition == "inline"
    assert emu.add_result("ref-b", size=1).content_disposition == 'attachment; filename="result.csv"'
    assert DEFAULT is defaults.content_disposition


def test_readme_layout_names_every_emulator_module() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    layout = readme[
        readme.index("`tao_emulator/`, the TAO Advance emulator") : readme.index("`tao_results_demo/`")
    ]
    modules = {path.stem for path in (root / "devtools" / "tao_emulator").glob("*.py")} - {"__init__"}
    assert {module for module in modules if f"`{module}`" not in layout} == set()
