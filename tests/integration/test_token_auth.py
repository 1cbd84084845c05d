"""Token endpoint client authentication (issue 9 §1): whatever form the endpoint takes, bounded cost.

Everything crosses a socket: the real handler (harness) against moto's server and the TAO emulator,
whose token endpoint is configured per test (accepted forms, how it refuses the others, the shape
of ``expires_in``, reject everything). Secret reads are counted by a relay in front of moto.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests

from tao_emulator import TOKEN_PATH, TOKEN_REJECTIONS, Fault, TaoEmulator
from tao_results.auth import AUTH_METHODS, TokenProvider
from tao_results.aws_clients import AwsClients
from tao_results.credentials import CredentialStore
from tao_results.errors import TransientError
from tests.support.aws_stack import StackResources, aws_client
from tests.support.faulty_s3_proxy import FaultyS3Proxy
from tests.support.harness import Harness, HarnessFactory

SETTLED_MESSAGE = "Token endpoint client authentication in use"
# RFC 6749 §2.3.1: these only survive Basic if they are form-urlencoded before base64.
AWKWARD_ID = "client:ü+1 %41"
AWKWARD_SECRET = "pa:ss+w%2Fo rd/é€~*=&"


# ---- helpers ----------------------------------------------------------------------------------------


def use_credentials(tao: TaoEmulator, aws: StackResources, client_id: str, client_secret: str) -> None:
    tao.configure(client_id=client_id, client_secret=client_secret)
    aws_client("secretsmanager", aws.endpoint_url).put_secret_value(
        SecretId=aws.secret_id,
        SecretString=json.dumps({"client_id": client_id, "client_secret": client_secret}),
    )


def put_secret(aws: StackResources, **value: Any) -> None:
    aws_client("secretsmanager", aws.endpoint_url).put_secret_value(SecretId=aws.secret_id, **value)


def capture_log(h: Harness) -> io.StringIO:
    """The function's own log (production handler and formatter) into a buffer."""
    stream = io.StringIO()
    h.app.logger.registered_handler.setStream(stream)
    return stream


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def token_log(tao: TaoEmulator) -> list[tuple[str | None, int | None]]:
    return [(e["client_auth"], e["status"]) for e in tao.requests_log() if e["stage"] == "token"]


def transient_reasons(stream: io.StringIO) -> list[str]:
    return [
        line["reason"]
        for line in log_lines(stream)
        if line["message"] == "Transient failure, the message will be retried"
    ]


def assert_copied_exactly(h: Harness, tao: TaoEmulator, refs: list[str]) -> None:
    for ref in refs:
        info = tao.result_info(ref)
        assert info is not None
        data = h.object_bytes(f"tao-results/{ref}/{info.filename}")
        assert (len(data), hashlib.sha256(data).hexdigest()) == (info.size, info.sha256)


@pytest.fixture
def secrets_relay(aws: StackResources) -> Iterator[FaultyS3Proxy]:
    """A plain relay (no faults) in front of moto: every request through it is a secret read."""
    with FaultyS3Proxy(aws.endpoint_url) as relay:
        yield relay


# ---- auto: each endpoint variant -------------------------------------------------------------------

# (the one form the endpoint takes, how it refuses the others): every refusal form appears at least once.
ENDPOINT_VARIANTS = [
    ("client_secret_post", "400_invalid_request"),
    ("client_secret_basic", "400_invalid_request"),
    ("client_secret_basic", "401_access_denied"),
    ("client_secret_basic", "400_unauthorized_client"),
    ("multipart", "400_invalid_client"),
    ("multipart", "401_basic_challenge"),
    ("multipart", "415"),
]


@pytest.mark.parametrize(("accepted", "rejection"), ENDPOINT_VARIANTS)
def test_auto_finds_the_form_the_endpoint_takes_and_keeps_it(
    harness: HarnessFactory, tao: TaoEmulator, aws: StackResources, accepted: str, rejection: str
) -> None:
    use_credentials(tao, aws, AWKWARD_ID, AWKWARD_SECRET)
    tao.configure(token_auth_methods=[accepted], token_rejection=rejection)
    refs = [f"{accepted}-{n}" for n in range(3)]
    for n, ref in enumerate(refs):
        tao.add_result(ref, size=1000 + n * 4099, seed=n)
    h = harness()
    log = capture_log(h)

    assert h.run(*({"referenceId": ref} for ref in refs))[1] == []

    assert_copied_exactly(h, tao, refs)
    tried = AUTH_METHODS[: AUTH_METHODS.index(accepted) + 1]
    refused_status = TOKEN_REJECTIONS[rejection][0]
    assert token_log(tao) == [(m, refused_status) for m in tried[:-1]] + [(accepted, 200)]
    settled = [line for line in log_lines(log) if line["message"] == SETTLED_MESSAGE]
    assert [(line["auth_method"], line["chosen_by"]) for line in settled] == [(accepted, "auto")]

    # Next batch, with a new token needed: one request, in the settled form, no probing, no new log.
    tao.revoke_tokens()
    tao.add_result("later", size=5000)
    assert h.run({"referenceId": "later"})[1] == []
    assert_copied_exactly(h, tao, ["later"])
    assert token_log(tao)[len(tried) :] == [(accepted, 200)]
    assert [line for line in log_lines(log) if line["message"] == SETTLED_MESSAGE] == settled


# ---- explicit TAO_TOKEN_AUTH_METHOD ------------------------------------------------------------------


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_an_explicit_method_is_used_as_is(
    harness: HarnessFactory, tao: TaoEmulator, aws: StackResources, method: str
) -> None:
    use_credentials(tao, aws, AWKWARD_ID, AWKWARD_SECRET)
    tao.configure(token_auth_methods=[method], token_rejection="401_access_denied")
    tao.add_result("one", size=12345)
    h = harness(TAO_TOKEN_AUTH_METHOD=method)
    log = capture_log(h)
    assert h.run({"referenceId": "one"})[1] == []
    assert_copied_exactly(h, tao, ["one"])
    assert token_log(tao) == [(method, 200)]
    settled = [line for line in log_lines(log) if line["message"] == SETTLED_MESSAGE]
    assert [(line["auth_method"], line["chosen_by"]) for line in settled] == [
        (method, "TAO_TOKEN_AUTH_METHOD")
    ]


@pytest.mark.parametrize(
    ("configured", "accepted", "rejection"),
    [
        ("client_secret_post", "multipart", "415"),
        ("multipart", "client_secret_post", "415"),
        ("client_secret_basic", "multipart", "401_access_denied"),
        ("client_secret_post", "client_secret_basic", "401_basic_challenge"),
        ("multipart", "client_secret_basic", "400_invalid_request"),
        ("client_secret_basic", "client_secret_post", "400_unauthorized_client"),
    ],
)
def test_a_wrong_explicit_method_is_transient_credentials_rejected(
    harness: HarnessFactory, tao: TaoEmulator, configured: str, accepted: str, rejection: str
) -> None:
    tao.configure(token_auth_methods=[accepted], token_rejection=rejection)
    tao.add_result("a", size=10)
    tao.add_result("b", size=10)
    h = harness(TAO_TOKEN_AUTH_METHOD=configured)
    log = capture_log(h)
    ids, failed = h.run({"referenceId": "a"}, {"referenceId": "b"})
    assert sorted(failed) == sorted(ids)
    assert h.dead_letters() == []
    assert h.keys() == []
    assert set(transient_reasons(log)) == {"credentials_rejected"}
    assert {method for method, _ in token_log(tao)} == {configured}  # never another form
    assert "Unexpected error, the message will be retried" not in log.getvalue()


# ---- the bound ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("rejection", [*TOKEN_REJECTIONS, "wrong_secret"])
def test_an_endpoint_that_rejects_everything_costs_a_bounded_number_of_calls(
    harness: HarnessFactory,
    tao: TaoEmulator,
    secrets_relay: FaultyS3Proxy,
    rejection: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if rejection == "wrong_secret":
        tao.rotate_secret("not-what-secrets-manager-holds")
    else:
        tao.configure(token_reject_all=True, token_rejection=rejection)
    refs = [f"r{n}" for n in range(10)]
    for ref in refs:
        tao.add_result(ref, size=10)
    h = harness(AWS_ENDPOINT_URL_SECRETS_MANAGER=secrets_relay.endpoint_url)  # 10 records, 3 attempts each
    log = capture_log(h)

    ids, failed = h.run(*({"referenceId": ref} for ref in refs))

    token_requests = tao.stats()["token_requests"]
    secret_reads = secrets_relay.counts().get("requests", 0)
    with capsys.disabled():
        print(f"\n[{rejection}] batch of 10: token requests {token_requests}, GetSecretValue {secret_reads}")
    assert sorted(failed) == sorted(ids)  # all 10 come back for a retry
    assert h.dead_letters() == []  # nothing dead-lettered
    visible, in_flight = h.queue_counts()
    assert visible + in_flight == 10  # nothing lost
    assert set(transient_reasons(log)) == {"credentials_rejected"}
    assert 1 <= token_requests <= 6
    assert 1 <= secret_reads <= 2


# ---- expires_in --------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["int", "string"])
def test_expires_in_as_number_or_numeric_string_is_honoured(
    harness: HarnessFactory, tao: TaoEmulator, form: str
) -> None:
    tao.configure(token_expires_in=1, token_expires_in_as=form)
    tao.add_result("a", size=10)
    tao.add_result("b", size=10)
    h = harness(TOKEN_REFRESH_MARGIN_SECONDS="60")
    assert h.run({"referenceId": "a"})[1] == []
    time.sleep(0.6)  # past half the 1 s lifetime: refreshed before the server says 401
    assert h.run({"referenceId": "b"})[1] == []
    assert tao.stats()["token_requests"] == 2
    assert all(e["status"] == 200 for e in tao.requests_log() if e["stage"] == "download")


def test_without_expires_in_the_token_is_used_until_a_401_then_refreshed_once(
    harness: HarnessFactory, tao: TaoEmulator
) -> None:
    tao.configure(token_expires_in=2, token_expires_in_as="absent")  # the server still expires it
    for ref in "abcd":
        tao.add_result(ref, size=10)
    h = harness(TOKEN_REFRESH_MARGIN_SECONDS="60")
    assert h.run({"referenceId": "a"})[1] == []
    assert h.run({"referenceId": "b"})[1] == []
    tao.advance_clock(10)
    assert h.run({"referenceId": "c"})[1] == []
    assert h.run({"referenceId": "d"})[1] == []
    assert tao.stats()["token_requests"] == 2
    assert [e["status"] for e in tao.requests_log() if e["stage"] == "download"] == [200, 200, 401, 200, 200]


# ---- the secret --------------------------------------------------------------------------------------

SNAKE = {"client_id": AWKWARD_ID, "client_secret": AWKWARD_SECRET}
CAMEL = {"clientId": AWKWARD_ID, "clientSecret": AWKWARD_SECRET}
GOOD_SECRETS = {
    "string": {"SecretString": json.dumps(SNAKE)},
    "string-camel": {"SecretString": json.dumps(CAMEL)},
    "string-bom-whitespace": {"SecretString": "\ufeff \n\t" + json.dumps(SNAKE, indent=2) + "\n\n "},
    "string-raw-utf8": {"SecretString": json.dumps(SNAKE, ensure_ascii=False)},
    "binary": {"SecretBinary": json.dumps(SNAKE).encode()},
    "binary-camel-bom-whitespace": {
        "SecretBinary": b"\xef\xbb\xbf\r\n  " + json.dumps(CAMEL, ensure_ascii=False).encode() + b"  \n"
    },
}


@pytest.mark.parametrize("variant", GOOD_SECRETS)
def test_every_accepted_secret_shape_works(
    harness: HarnessFactory, tao: TaoEmulator, aws: StackResources, variant: str
) -> None:
    tao.configure(client_id=AWKWARD_ID, client_secret=AWKWARD_SECRET)
    put_secret(aws, **GOOD_SECRETS[variant])
    tao.add_result("x", size=4096)
    h = harness(TAO_TOKEN_AUTH_METHOD="client_secret_basic")  # the encoding-sensitive form
    assert h.run({"referenceId": "x"})[1] == []
    assert_copied_exactly(h, tao, ["x"])


MARK = "Zq7-unusable-secret-VALUE"  # distinctive text inside each bad value: never in a detail or log
BAD_SECRETS: dict[str, tuple[dict[str, Any], str]] = {
    "not-json": ({"SecretString": f"client_id={MARK}&secret={MARK}"}, "not JSON"),
    "not-json-binary": ({"SecretBinary": f"{MARK}: {MARK}".encode()}, "not JSON"),
    "not-utf8-binary": ({"SecretBinary": b"\xff\xfe" + MARK.encode("utf-16-le")}, "not UTF-8"),
    "array": ({"SecretString": json.dumps([MARK, MARK])}, "JSON array, not an object"),
    "string": ({"SecretString": json.dumps(MARK)}, "JSON string, not an object"),
    "missing-secret": ({"SecretString": json.dumps({"client_id": MARK})}, "no client_secret"),
    "missing-id": ({"SecretString": json.dumps({"clientSecret": MARK})}, "no client_id"),
    "empty-secret": ({"SecretString": json.dumps({"client_id": MARK, "client_secret": ""})}, "is empty"),
    "number-secret": (
        {"SecretString": json.dumps({"client_id": MARK, "client_secret": 12345678901})},
        "client_secret must be a JSON string, not number",
    ),
    "object-id": (
        {"SecretString": json.dumps({"client_id": {"v": MARK}, "client_secret": MARK})},
        "client_id must be a JSON string, not object",
    ),
    "conflicting": (
        {"SecretString": json.dumps({"client_id": "a", "client_secret": MARK, "clientSecret": MARK + "2"})},
        "both client_secret and clientSecret",
    ),
    "whitespace-only": ({"SecretString": " \n\t "}, "is empty"),
}


@pytest.mark.parametrize("variant", BAD_SECRETS)
def test_an_unusable_secret_says_what_is_wrong_without_its_value(
    harness: HarnessFactory,
    tao: TaoEmulator,
    aws: StackResources,
    variant: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    value, expected = BAD_SECRETS[variant]
    put_secret(aws, **value)
    tao.add_result("a", size=10)
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="1")
    log = capture_log(h)
    ids, failed = h.run({"referenceId": "a"})
    assert failed == ids
    assert h.dead_letters() == []
    [line] = [entry for entry in log_lines(log) if entry.get("reason") == "credentials_invalid"]
    assert expected in line["detail"]
    text = log.getvalue() + capsys.readouterr().out
    assert MARK not in text
    assert tao.stats()["token_requests"] == 0


# ---- malformed token answers -------------------------------------------------------------------------

DEEP_ARRAY = "[" * 30000 + "]" * 30000  # within the 64 KiB answer limit, far past the parser's stack
DEEP_OBJECT = '{"a":' * 12000 + "1" + "}" * 12000
BAD_ANSWERS = {
    "deep-array": DEEP_ARRAY,
    "deep-object": DEEP_OBJECT,
    "deep-access-token": json.dumps({"token_type": "Bearer"})[:-1] + ', "access_token": ' + DEEP_ARRAY + "}",
    "not-json": "<html>OK</html>",
    "array": json.dumps(["access_token", "x"]),
    "no-token": json.dumps({"token_type": "Bearer", "expires_in": 3600}),
    "token-not-a-string": json.dumps({"access_token": 1234567, "token_type": "Bearer"}),
    "token-with-newline": json.dumps({"access_token": "abc\r\nX-Evil: 1", "token_type": "Bearer"}),
    "mac-token": json.dumps({"access_token": "abcdefgh", "token_type": "mac"}),
    "too-large": json.dumps({"access_token": "a" * 70000, "token_type": "Bearer"}),
}


@pytest.mark.parametrize("variant", BAD_ANSWERS)
def test_a_malformed_token_answer_is_token_response_invalid(
    harness: HarnessFactory, tao: TaoEmulator, variant: str
) -> None:
    tao.add_result("a", size=10)
    tao.add_fault(Fault("token", "status", status=200, body=BAD_ANSWERS[variant], times=None))
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="1")
    log = capture_log(h)
    ids, failed = h.run({"referenceId": "a"})
    assert failed == ids
    assert h.dead_letters() == []
    assert transient_reasons(log) == ["token_response_invalid"]
    assert "Unexpected error" not in log.getvalue()


@pytest.mark.parametrize("status", [400, 401, 503])
def test_a_deeply_nested_error_answer_is_still_classified(
    harness: HarnessFactory, tao: TaoEmulator, status: int
) -> None:
    tao.add_result("a", size=10)
    tao.add_fault(Fault("token", "status", status=status, body=DEEP_OBJECT, times=None))
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="1")
    log = capture_log(h)
    ids, failed = h.run({"referenceId": "a"})
    assert failed == ids
    assert h.dead_letters() == []
    expected = "server_error" if status == 503 else "credentials_rejected"
    assert transient_reasons(log) == [expected]
    assert "Unexpected error" not in log.getvalue()


# ---- TokenProvider itself, against the emulator and moto ---------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider_parts(aws: StackResources, tao: TaoEmulator) -> Iterator[tuple[requests.Session, AwsClients]]:
    session = requests.Session()
    session.trust_env = False
    clients = AwsClients(max_pool_connections=4, connect_timeout=1, read_timeout=2)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ENDPOINT_URL": aws.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }.items():
            patch.setenv(name, value)
        yield session, clients
    session.close()


def make_provider(
    tao: TaoEmulator,
    aws: StackResources,
    parts: tuple[requests.Session, AwsClients],
    clock: FakeClock,
    **options: Any,
) -> TokenProvider:
    session, clients = parts
    return TokenProvider(
        session=session,
        token_url=tao.base_url + TOKEN_PATH,
        scope="rostering",
        credentials=CredentialStore(lambda: clients.secrets_manager, aws.secret_id, 900.0, clock=clock),
        timeout=(1.0, 2.0),
        refresh_margin_seconds=60.0,
        clock=clock,
        **options,
    )


def test_auth_method_is_none_until_one_works_then_the_one_in_use(
    tao: TaoEmulator, aws: StackResources, provider_parts: tuple[requests.Session, AwsClients]
) -> None:
    clock = FakeClock()
    tao.configure(token_auth_methods=["multipart"], token_reject_all=True)
    provider = make_provider(tao, aws, provider_parts, clock)
    assert provider.auth_method is None
    with pytest.raises(TransientError) as rejected:
        provider.token()
    assert rejected.value.reason == "credentials_rejected"
    assert provider.auth_method is None
    tao.configure(token_reject_all=False)
    clock.now += 10  # past the remembered rejection
    assert provider.token() in tao.issued_tokens()
    assert provider.auth_method == "multipart"


def test_a_rejection_is_remembered_for_a_few_seconds_only(
    tao: TaoEmulator, aws: StackResources, provider_parts: tuple[requests.Session, AwsClients]
) -> None:
    clock = FakeClock()
    tao.configure(token_reject_all=True, token_rejection="401_access_denied")
    provider = make_provider(tao, aws, provider_parts, clock, rejection_memory_seconds=5.0)
    for _ in range(5):
        with pytest.raises(TransientError, match="credentials_rejected"):
            provider.token()
    assert tao.stats()["token_requests"] == 3  # one probe of three forms, then remembered
    clock.now += 6
    tao.configure(token_reject_all=False)
    assert provider.token() in tao.issued_tokens()
    assert tao.stats()["token_requests"] == 4  # post works: the endpoint takes every form now


@pytest.mark.parametrize(("form", "lifetime_known"), [("int", True), ("string", True), ("absent", False)])
def test_the_token_lifetime_follows_expires_in(
    tao: TaoEmulator,
    aws: StackResources,
    provider_parts: tuple[requests.Session, AwsClients],
    form: str,
    lifetime_known: bool,
) -> None:
    clock = FakeClock()
    tao.configure(token_expires_in=3600, token_expires_in_as=form)
    provider = make_provider(tao, aws, provider_parts, clock)
    first = provider.token()
    clock.now += 3600 * 24 * 365  # a year later on the function's clock
    second = provider.token()
    assert (second != first) is lifetime_known
    assert tao.stats()["token_requests"] == (2 if lifetime_known else 1)
    if not lifetime_known:
        provider.invalidate(first)  # what the Download API client does on a 401
        assert provider.token() != first
        assert tao.stats()["token_requests"] == 2


# ---- the emulator's token endpoint knobs, driven directly ---------------------------------------------


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("rejection", TOKEN_REJECTIONS)
def test_emulator_refuses_a_form_it_does_not_take_as_configured(rejection: str) -> None:
    with TaoEmulator(token_auth_methods=["client_secret_basic"], token_rejection=rejection) as emu:
        url = emu.base_url + TOKEN_PATH
        form = {
            "grant_type": "client_credentials",
            "client_id": "demo-client",
            "client_secret": "demo-secret",
        }
        refused = [
            requests.post(url, data=form, timeout=5),
            requests.post(url, files={k: (None, v) for k, v in form.items()}, timeout=5),
        ]
        status, body, content_type, headers = TOKEN_REJECTIONS[rejection]
        for answer in refused:
            assert answer.status_code == status
            assert answer.headers["Content-Type"] == content_type
            assert answer.text == body
            for name, value in headers.items():
                assert answer.headers[name] == value
        if status == 400:
            assert answer.json()["error"] == rejection.removeprefix("400_")  # RFC 6749 §5.2 codes
        ok = requests.post(
            url, data={"grant_type": "client_credentials"}, auth=("demo-client", "demo-secret"), timeout=5
        )
        assert ok.status_code == 200
        emu.configure(token_reject_all=True)
        assert (
            requests.post(
                url, data={"grant_type": "client_credentials"}, auth=("demo-client", "demo-secret"), timeout=5
            ).status_code
            == status
        )
        assert [e["client_auth"] for e in emu.requests_log()] == [
            "client_secret_post",
            "multipart",
            "client_secret_basic",
            "client_secret_basic",
        ]


def test_emulator_decodes_basic_credentials_per_rfc_6749() -> None:
    with TaoEmulator(client_id=AWKWARD_ID, client_secret=AWKWARD_SECRET) as emu:
        url = emu.base_url + TOKEN_PATH
        grant = {"grant_type": "client_credentials"}
        encoded = _basic(quote_plus(AWKWARD_ID, safe=""), quote_plus(AWKWARD_SECRET, safe=""))
        assert requests.post(url, data=grant, headers=encoded, timeout=5).status_code == 200
        # Not form-encoded first: '+' reads as a space and the ':' in the id splits it wrongly.
        raw = requests.post(url, data=grant, headers=_basic(AWKWARD_ID, AWKWARD_SECRET), timeout=5)
        assert (raw.status_code, raw.json()) == (401, {"error": "invalid_client"})
        assert raw.headers["WWW-Authenticate"].startswith("Basic")
        both = requests.post(
            url, data={**grant, "client_secret": AWKWARD_SECRET}, headers=encoded, timeout=5
        )  # RFC 6749 §2.3: one authentication method per request
        assert (both.status_code, both.json()["error"]) == (400, "invalid_request")


@pytest.mark.parametrize(("form", "expected"), [("int", 1234), ("string", "1234"), ("absent", None)])
def test_emulator_expires_in_forms(form: str, expected: object) -> None:
    with TaoEmulator(token_expires_in=1234, token_expires_in_as=form) as emu:
        answer = requests.post(
            emu.base_url + TOKEN_PATH,
            data={
                "grant_type": "client_credentials",
                "client_id": "demo-client",
                "client_secret": "demo-secret",
            },
            timeout=5,
        ).json()
        assert answer.get("expires_in") == expected
        assert ("expires_in" in answer) is (expected is not None)


def test_emulator_rejects_unknown_token_settings() -> None:
    with TaoEmulator() as emu:
        for bad in (
            {"token_auth_methods": ["private_key_jwt"]},
            {"token_rejection": "418"},
            {"token_expires_in_as": "float"},
        ):
            with pytest.raises(ValueError):
                emu.configure(**bad)
