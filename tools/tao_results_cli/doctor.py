"""``tao-results doctor``: prove a deployment before traffic arrives.

An operator tool, run with the operator's AWS credentials; the function never imports this module.
Every check goes through the function's own library objects (``load_settings``,
``CredentialStore``, ``TokenProvider``, ``DownloadApi``, ``SignedUrlPolicy``, ``S3Calls``,
``AwsClients``), so a PASS means the function takes the same path with the same settings.

Checks, in order (name: what must hold for PASS):

``stack``               (``--stack-name`` only) DescribeStacks finds a settled stack naming its
                        function; GetFunctionConfiguration gives the function's environment.
``settings``            ``load_settings`` accepts the function's environment.
``secret``              GetSecretValue answers and the value is ``{"client_id", "client_secret"}``.
``token``               the token endpoint issues a Bearer token; the client authentication that
                        worked is named (``TAO_TOKEN_AUTH_METHOD``, or found by ``auto``).
``download-api``        (``--reference-id``) the Download API answers 200 with a ``signedUrl``.
``signed-url-policy``   that URL passes ``SignedUrlPolicy`` (``SIGNED_URL_ALLOWED_HOSTS``, scheme).
``bucket-write``        a probe object ``{RESULTS_PREFIX}.doctor/<uuid>`` is put, then deleted.
``dead-letter-queue``   GetQueueAttributes answers for ``DEAD_LETTER_QUEUE_URL``.
``visibility-timeout``  the source queue's VisibilityTimeout is at least 6 x the function's Timeout
                        (AWS Lambda developer guide, "Configuring an Amazon SQS event source").
``batch-item-failures`` the queue's event source mapping to the function lists
                        ``ReportBatchItemFailures`` in ``FunctionResponseTypes`` (partial batch
                        responses; without it one failed record sends the whole batch back).

A check whose prerequisite did not pass is SKIP; so is a read the caller is not allowed to make
(AccessDenied on CloudFormation, Lambda or the source queue's attributes), with a note saying what
to check by hand. Details never carry a secret, a token or a URL query (``redact_url`` and
``SECRETS.scrub``).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import ipaddress
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import requests
from botocore.exceptions import BotoCoreError, ClientError

from tao_results.auth import TokenProvider
from tao_results.aws_clients import AwsClients
from tao_results.config import ConfigError, Settings, load_settings
from tao_results.credentials import CredentialStore
from tao_results.download_api import DownloadApi
from tao_results.errors import PermanentError, ProcessingError, aws_error_details
from tao_results.http_sessions import Resolver, new_session, system_resolver
from tao_results.redaction import SECRETS, redact_url
from tao_results.s3_upload import S3Calls
from tao_results.url_policy import SignedUrlPolicy
from tao_results_cli.aws import (
    StackNotFound,
    cloudformation_client,
    describe_client_error,
    is_denied,
    is_missing_queue,
    lambda_client,
    read_stack,
    sqs_client,
)

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sqs import SQSClient

T = TypeVar("T")

VISIBILITY_FACTOR = 6
PROBE_FOLDER = ".doctor/"  # referenceIds start with a letter or digit: no result key starts with "."
MAX_DETAIL = 300
# CloudFormation states in which the stack's resources are those of a finished deployment.
SETTLED_STACK_STATES = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}
)


class Verdict(enum.StrEnum):
    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    detail: str


@dataclass(frozen=True)
class DoctorOptions:
    """What to examine. Without ``stack_name`` the settings come from ``environ``."""

    stack_name: str | None = None
    function_name: str | None = None
    source_queue_url: str | None = None
    reference_id: str | None = None


class Skipped(Exception):
    """Raised by a check: SKIP, with this note."""


class CheckFailed(Exception):
    """Raised by a check: FAIL, with this detail."""


def _lazy(create: Callable[[], T]) -> Callable[[], T]:
    """A factory that calls ``create`` on first use and then hands out the same object."""
    created: list[T] = []

    def client() -> T:
        if not created:
            created.append(create())
        return created[0]

    return client


def _function_clients(settings: Settings) -> AwsClients:
    # The function's own client factory, sized for one caller.
    return AwsClients(4, settings.connect_timeout_seconds, settings.read_timeout_seconds)


@dataclass
class DoctorClients:
    """Client factories (a test may swap one, e.g. for a Lambda client that is always denied)."""

    cloudformation: Callable[[], CloudFormationClient] = field(
        default_factory=lambda: _lazy(cloudformation_client)
    )
    lambda_: Callable[[], LambdaClient] = field(default_factory=lambda: _lazy(lambda_client))
    sqs: Callable[[], SQSClient] = field(default_factory=lambda: _lazy(sqs_client))
    function: Callable[[Settings], AwsClients] = _function_clients


@dataclass
class _SourceQueue:
    url: str
    arn: str
    visibility_timeout: int


@dataclass
class Doctor:
    options: DoctorOptions
    environ: Mapping[str, str]
    clients: DoctorClients = field(default_factory=DoctorClients)
    # Names → addresses for the signed URL's host, as the function's storage session resolves them.
    resolver: Resolver = system_resolver
    results: list[CheckResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._function_name = self.options.function_name
        self._queue_url = self.options.source_queue_url
        self._function_config: dict[str, Any] | None = None
        self._queue: _SourceQueue | None = None

    # ------------------------------------------------------------------------------------- driver

    def run(self) -> list[CheckResult]:
        """Run every check once, in order; the results are also kept in ``self.results``."""
        environment, origin = self._environment()
        settings = self._check("settings", lambda: self._settings(environment, origin))
        aws = self.clients.function(settings) if settings else None
        session = new_session(pool_size=2)
        try:
            store = self._check("secret", lambda: self._secret(_need(settings, "settings"), aws))
            provider = self._check(
                "token", lambda: self._token(_need(settings, "settings"), _need(store, "the secret"), session)
            )
            signed_url = self._check(
                "download-api",
                lambda: self._download_api(_need(settings, "settings"), _need(provider, "a token"), session),
            )
            self._check(
                "signed-url-policy",
                lambda: self._policy(_need(settings, "settings"), _need(signed_url, "a signed URL")),
            )
        finally:
            session.close()
        self._check("bucket-write", lambda: self._bucket_write(_need(settings, "settings"), aws))
        self._check("dead-letter-queue", lambda: self._dead_letter_queue(_need(settings, "settings"), aws))
        self._check("visibility-timeout", self._visibility_timeout)
        self._check("batch-item-failures", self._batch_item_failures)
        return self.results

    def _check(self, name: str, body: Callable[[], tuple[T, str]]) -> T | None:
        try:
            value, detail = body()
        except Skipped as skipped:
            self.results.append(CheckResult(name, Verdict.SKIP, _clean(str(skipped))))
            return None
        except StackNotFound:
            raise  # a usage error, not a verdict
        except Exception as error:  # every failure is a verdict, never a traceback
            self.results.append(CheckResult(name, Verdict.FAIL, _clean(_describe(error))))
            return None
        self.results.append(CheckResult(name, Verdict.PASS, _clean(detail)))
        return value

    # ------------------------------------------------------------------------------ stack, settings

    def _environment(self) -> tuple[Mapping[str, str], str]:
        """The environment to validate, and where it came from (adds the ``stack`` row)."""
        if not self.options.stack_name:
            self._queue_url = self._queue_url or self.environ.get("SOURCE_QUEUE_URL") or None
            return self.environ, "this environment"
        found = self._check("stack", self._stack)
        if found is None:
            return self.environ, "this environment (not the function's)"
        return found

    def _stack(self) -> tuple[tuple[Mapping[str, str], str], str]:
        name = self.options.stack_name or ""
        try:
            stack = read_stack(self.clients.cloudformation(), name)
        except ClientError as error:
            _skip_if_denied(error, f"stack {name}", "settings are read from this environment instead")
            raise
        status, outputs = stack.status, stack.outputs
        if status not in SETTLED_STACK_STATES:
            raise CheckFailed(f"stack {name} is {status}: deploy it (again) and let it settle")
        self._function_name = self._function_name or outputs.get("FunctionName")
        self._queue_url = self._queue_url or outputs.get("SourceQueueUrl")
        if not self._function_name:
            raise CheckFailed(f"stack {name} ({status}) has no FunctionName output")
        try:
            configuration = self._function_configuration()
        except Skipped:
            raise Skipped(
                f"stack {name} ({status}): may not read the configuration of function "
                f"{self._function_name}; settings from this environment"
            ) from None
        problem = configuration.get("Environment", {}).get("Error")
        if problem:
            raise Skipped(
                f"stack {name} ({status}); the function's environment is unreadable "
                f"({problem.get('ErrorCode', 'unknown')}); settings from this environment"
            )
        environment = dict(configuration.get("Environment", {}).get("Variables", {}))
        origin = f"the environment of function {self._function_name}"
        return (environment, origin), f"stack {name} ({status}): function {self._function_name}"

    def _settings(self, environment: Mapping[str, str], origin: str) -> tuple[Settings, str]:
        try:
            settings = load_settings(environment)
        except ConfigError as error:
            raise CheckFailed(f"{error} (read from {origin})") from error
        return settings, (
            f"from {origin}: TAO {settings.tao_base_url}, "
            f"s3://{settings.results_bucket}/{settings.results_prefix}"
        )

    # ---------------------------------------------------------------------------------- TAO path

    def _secret(self, settings: Settings, aws: AwsClients | None) -> tuple[CredentialStore, str]:
        clients = _need(aws, "settings")
        store = CredentialStore(
            lambda: clients.secrets_manager, settings.credentials_secret_id, settings.secret_cache_seconds
        )
        credentials = store.get()
        return store, f"{settings.credentials_secret_id}: client_id {credentials.client_id}"

    def _token(
        self, settings: Settings, store: CredentialStore, session: requests.Session
    ) -> tuple[TokenProvider, str]:
        chosen_by: list[str] = []
        provider = TokenProvider(
            session=session,
            token_url=settings.tao_token_url,
            scope=settings.tao_token_scope,
            credentials=store,
            timeout=(settings.connect_timeout_seconds, settings.read_timeout_seconds),
            refresh_margin_seconds=settings.token_refresh_margin_seconds,
            auth_method=settings.tao_token_auth_method,
            on_auth_method=lambda method, probed: chosen_by.append(
                "found by auto" if probed else "TAO_TOKEN_AUTH_METHOD"
            ),
        )
        provider.token()
        how = f", {chosen_by[0]}" if chosen_by else ""
        return provider, (
            f"access token issued by {redact_url(settings.tao_token_url)} "
            f"(client authentication {provider.auth_method}{how}; scope {settings.tao_token_scope!r})"
        )

    def _download_api(
        self, settings: Settings, provider: TokenProvider, session: requests.Session
    ) -> tuple[str, str]:
        reference_id = self.options.reference_id
        if not reference_id:
            raise Skipped("no --reference-id: give the referenceId of a ready result to try this")
        signed_url = DownloadApi(session, settings, provider).signed_url(reference_id)
        return signed_url, f"{reference_id}: signed URL {redact_url(signed_url)}"

    def _policy(self, settings: Settings, signed_url: str) -> tuple[None, str]:
        policy = SignedUrlPolicy(settings.signed_url_allowed_hosts, settings.allow_plain_http)
        policy.check(signed_url)
        # The function checks again at connect time, against the addresses the name resolves to
        # (http.new_storage_session): do the same, or a name on a private address would PASS here
        # and be refused for every message.
        parts = urlsplit(signed_url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                addresses = [ipaddress.ip_address(a) for a in self.resolver(host, port)]
            except OSError as error:
                raise PermanentError(
                    "signed_url_unresolvable", f"host {host!r} does not resolve here: {error}"
                ) from error
        policy.admit_connection(host, port, addresses)
        resolved = ", ".join(str(a) for a in addresses)
        allowed = ", ".join(settings.signed_url_allowed_hosts)
        return None, f"{redact_url(signed_url)} (resolved to {resolved}) allowed by {allowed}"

    # ---------------------------------------------------------------------------------- AWS path

    def _bucket_write(self, settings: Settings, aws: AwsClients | None) -> tuple[None, str]:
        clients = _need(aws, "settings")
        calls = S3Calls(lambda: clients.s3, settings.results_bucket)
        key = f"{settings.results_prefix}{PROBE_FOLDER}{uuid.uuid4()}"
        body = b"tao-results doctor probe\n"
        digest = hashlib.sha256(body).digest()
        # The same call shape as the function's single-part upload (S3Writer._put_single).
        answer = calls.run(
            "PutObject",
            lambda s3, bucket: s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType="text/plain",
                ChecksumSHA256=base64.b64encode(digest).decode(),
            ),
        )
        location = f"s3://{settings.results_bucket}/{key}"
        return None, f"{location} written and {_delete_probe(calls, key, answer.get('VersionId'))}"

    def _dead_letter_queue(self, settings: Settings, aws: AwsClients | None) -> tuple[None, str]:
        url = settings.dead_letter_queue_url
        try:
            attributes = (
                _need(aws, "settings")
                .sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["QueueArn", "ApproximateNumberOfMessages"]
                )
                .get("Attributes", {})
            )
        except ClientError as error:
            if is_missing_queue(error):
                raise CheckFailed(f"queue does not exist: {url}") from error
            raise
        waiting = attributes.get("ApproximateNumberOfMessages", "?")
        return None, f"{attributes.get('QueueArn', url)}: {waiting} message(s) waiting"

    def _visibility_timeout(self) -> tuple[None, str]:
        queue = self._source_queue()
        configuration = self._function_configuration()
        timeout = int(configuration.get("Timeout", 3))
        needed = VISIBILITY_FACTOR * timeout
        relation = (
            f"VisibilityTimeout {queue.visibility_timeout} s vs {VISIBILITY_FACTOR} x Timeout {timeout} s"
        )
        if queue.visibility_timeout < needed:
            raise CheckFailed(
                f"{relation}: below {needed} s, SQS may deliver a message again while an invocation "
                "still works on it"
            )
        return None, relation

    def _batch_item_failures(self) -> tuple[None, str]:
        queue = self._source_queue()
        function_name = self._need_function_name()
        mappings = [
            mapping
            for mapping in self._mappings(EventSourceArn=queue.arn)
            if _is_function(mapping.get("FunctionArn", ""), function_name)
        ]
        if not mappings:
            raise CheckFailed(f"no event source mapping from {queue.arn} to function {function_name}")
        for mapping in mappings:
            if "ReportBatchItemFailures" not in mapping.get("FunctionResponseTypes", []):
                raise CheckFailed(
                    f"mapping {mapping.get('UUID')} ({mapping.get('State')}) lacks ReportBatchItemFailures "
                    "in FunctionResponseTypes: one failed record would send its whole batch back"
                )
        described = ", ".join(f"{m.get('UUID')} ({m.get('State')})" for m in mappings)
        return None, f"mapping {described}: ReportBatchItemFailures"

    # ----------------------------------------------------------------------- function and queue

    def _need_function_name(self) -> str:
        if not self._function_name:
            queue = self._source_queue()
            functions = {m.get("FunctionArn", "") for m in self._mappings(EventSourceArn=queue.arn)}
            if len(functions) != 1:
                raise Skipped(
                    f"no function: pass --function-name (the queue has {len(functions)} mapping(s))"
                )
            self._function_name = functions.pop()
        return self._function_name

    def _function_configuration(self) -> dict[str, Any]:
        if self._function_config is None:
            name = self._need_function_name()
            try:
                answer = self.clients.lambda_().get_function_configuration(FunctionName=name)
            except ClientError as error:
                _skip_if_denied(error, f"function {name}", "compare its Timeout with the queue by hand")
                if aws_error_details(error).code == "ResourceNotFoundException":
                    raise CheckFailed(f"function does not exist: {name}") from error
                raise
            self._function_config = dict(answer)
        return self._function_config

    def _source_queue(self) -> _SourceQueue:
        if self._queue is None:
            url = self._queue_url or self._discover_queue_url()
            try:
                attributes = self.clients.sqs().get_queue_attributes(
                    QueueUrl=url, AttributeNames=["QueueArn", "VisibilityTimeout"]
                )["Attributes"]
            except ClientError as error:
                _skip_if_denied(error, f"source queue {url}", "check its attributes by hand")
                if is_missing_queue(error):
                    raise CheckFailed(f"source queue does not exist: {url}") from error
                raise
            self._queue = _SourceQueue(url, attributes["QueueArn"], int(attributes["VisibilityTimeout"]))
        return self._queue

    def _discover_queue_url(self) -> str:
        if not self._function_name:
            raise Skipped("no source queue or function: pass --source-queue-url and --function-name")
        arns = {
            m.get("EventSourceArn", "")
            for m in self._mappings(FunctionName=self._function_name)
            if m.get("EventSourceArn", "").split(":")[2:3] == ["sqs"]
        }
        if len(arns) != 1:
            raise Skipped(
                f"no source queue: pass --source-queue-url (function {self._function_name} has "
                f"{len(arns)} SQS mapping(s))"
            )
        _, _, _, _, account, name = arns.pop().split(":", 5)
        return self.clients.sqs().get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]

    def _mappings(self, **selector: str) -> Iterator[dict[str, Any]]:
        try:
            paginator: Any = self.clients.lambda_().get_paginator("list_event_source_mappings")
            for page in paginator.paginate(**selector):
                yield from (dict(mapping) for mapping in page.get("EventSourceMappings", []))
        except ClientError as error:
            _skip_if_denied(error, "event source mappings", "check the mapping in the Lambda console")
            raise


# ----------------------------------------------------------------------------------------- helpers


def _delete_probe(calls: S3Calls, key: str, version_id: str | None) -> str:
    """Delete the probe: its version where the bucket keeps versions (no delete marker left behind),
    else the key; say what happened."""
    if version_id:
        try:
            calls.run(
                "DeleteObject",
                lambda s3, bucket: s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id),
            )
        except ProcessingError:
            pass  # s3:DeleteObjectVersion may be denied where s3:DeleteObject is not
        else:
            return "deleted"
    try:
        calls.run("DeleteObject", lambda s3, bucket: s3.delete_object(Bucket=bucket, Key=key))
    except ProcessingError as error:
        return f"NOT deleted ({error.detail}): remove it by hand"
    return "deleted (a delete marker remains)" if version_id else "deleted"


def _is_function(function_arn: str, name: str) -> bool:
    """Whether a mapping's ``FunctionArn`` (maybe with a ``:qualifier``) is the function ``name``
    (a name or an ARN)."""
    if name.startswith("arn:"):
        return function_arn == name or function_arn.startswith(name + ":")
    parts = function_arn.split(":")
    return len(parts) >= 7 and parts[6] == name


def _need(value: T | None, what: str) -> T:
    if value is None:
        raise Skipped(f"needs {what}")
    return value


def _skip_if_denied(error: ClientError, what: str, instead: str) -> None:
    if is_denied(error):
        raise Skipped(f"may not read {what} ({aws_error_details(error).code}): {instead}") from error


def _describe(error: BaseException) -> str:
    if isinstance(error, ProcessingError):
        status = f" (HTTP {error.http_status})" if error.http_status else ""
        return f"{error.reason}{status}: {error.detail}"
    if isinstance(error, ClientError):
        return describe_client_error(error)
    if isinstance(error, CheckFailed | BotoCoreError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _clean(text: str) -> str:
    text = " ".join(SECRETS.scrub(text).split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


# ------------------------------------------------------------------------------------------ output


def format_table(results: list[CheckResult]) -> str:
    """One row per check: name, verdict, detail (columns aligned, header first)."""
    rows = [("CHECK", "VERDICT", "DETAIL"), *((r.name, r.verdict.value, r.detail) for r in results)]
    width = max(len(name) for name, _, _ in rows)
    return "\n".join(f"{name:<{width}}  {verdict:<7}  {detail}".rstrip() for name, verdict, detail in rows)


def verdict_line(results: list[CheckResult]) -> str:
    """``doctor: PASS (...)`` or ``doctor: FAIL: <failing checks> (...)``."""
    counts = {verdict: sum(r.verdict is verdict for r in results) for verdict in Verdict}
    summary = f"{counts[Verdict.PASS]} passed, {counts[Verdict.FAIL]} failed, {counts[Verdict.SKIP]} skipped"
    failing = [r.name for r in results if r.verdict is Verdict.FAIL]
    if failing:
        return f"doctor: FAIL: {', '.join(failing)} ({summary})"
    return f"doctor: PASS ({summary})"


def passed(results: list[CheckResult]) -> bool:
    return all(r.verdict is not Verdict.FAIL for r in results)
