"""Static checks of template.yaml that no linter makes.

cfn-lint and `sam validate --lint` check the schema; checkov checks generic hardening. These tests
pin down what this project promises: visibility timeout >= 6x the function timeout, the DLQ wiring,
resource-scoped IAM (no "*" on S3/SQS/Secrets Manager/KMS actions), encryption, alarms, outputs,
and that the sample events are shaped like Lambda's SQS event.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from tao_results import memory_budget
from tao_results.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REFERENCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SQS_VISIBILITY_MAX = 43_200
SQS_RETENTION_MAX = 1_209_600


# ----------------------------------------------------------------------------- loading


def load_cfn_yaml(path: Path) -> dict[str, Any]:
    """The template with CloudFormation's short-form tags (``!Ref``, ``!Sub``, ``!GetAtt a.b``) in
    their long form (``{"Ref": ...}``, ``{"Fn::Sub": ...}``), read by cfn-lint's own decoder."""
    loaded: dict[str, Any] = cfn_yaml.load(str(path))
    return loaded


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_cfn_yaml(TEMPLATE)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"]
    return found


@pytest.fixture(scope="module")
def params(template: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = template["Parameters"]
    return found


def of_type(resources: dict[str, Any], type_name: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == type_name}


def only(resources: dict[str, Any], type_name: str) -> tuple[str, dict[str, Any]]:
    found = of_type(resources, type_name)
    assert len(found) == 1, f"expected exactly one {type_name}, found {sorted(found)}"
    return next(iter(found.items()))


def branches(value: Any) -> Iterator[Any]:
    """Every concrete value `value` can take, expanding each Fn::If both ways."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            _, when_true, when_false = value["Fn::If"]
            yield from branches(when_true)
            yield from branches(when_false)
            return
        keys = list(value)
        for combo in itertools.product(*(list(branches(value[k])) for k in keys)):
            yield {k: v for k, v in zip(keys, combo, strict=True) if v != {"Ref": "AWS::NoValue"}}
    elif isinstance(value, list):
        for combo in itertools.product(*(list(branches(v)) for v in value)):
            yield [v for v in combo if v != {"Ref": "AWS::NoValue"}]
    else:
        yield value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [resource, attribute]}


# ----------------------------------------------------------------------------- function and layer


def test_is_a_sam_template(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"


def test_function_code_runtime_and_architecture(template: dict[str, Any], resources: dict[str, Any]) -> None:
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.12"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Timeout"] == ref("FunctionTimeout")
    assert globals_["MemorySize"] == ref("FunctionMemorySize")

    _, function = only(resources, "AWS::Serverless::Function")
    props = function["Properties"]
    assert props["CodeUri"] == "functions/download_result/"
    assert props["Handler"] == "app.lambda_handler"
    assert "Runtime" not in props and "Architectures" not in props, "set once, in Globals"
    assert "ReservedConcurrentExecutions" not in props
    (layer_ref,) = props["Layers"]
    layer = resources[layer_ref["Ref"]]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/tao_results/"
    assert layer["Metadata"] == {"BuildMethod": "python3.12", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["CompatibleRuntimes"] == [globals_["Runtime"]]
    assert layer["Properties"]["CompatibleArchitectures"] == globals_["Architectures"]


def test_function_defaults(params: dict[str, Any]) -> None:
    assert params["FunctionTimeout"]["Default"] == 900
    # The cheapest size measured for small results (make bench, docs/benchmarks.md), and one
    # whose derived transfer sizing keeps the headroom memory_budget.py promises.
    memory_mb = params["FunctionMemorySize"]["Default"]
    assert memory_mb == 256
    assert memory_budget.derive(memory_mb).buffer_bytes <= memory_budget.budget_bytes(memory_mb)
    # The template's defaults are the library's defaults.
    library = load_settings(
        {
            "TAO_BASE_URL": "https://tao.example",
            "TAO_CREDENTIALS_SECRET_ID": "secret",
            "RESULTS_BUCKET": "bucket",
            "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/dlq",
        }
    )
    assert params["RecordConcurrency"]["Default"] == library.record_concurrency
    assert params["NotFoundGraceSeconds"]["Default"] == library.not_found_grace_seconds
    assert params["ResultsPrefix"]["Default"] == library.results_prefix
    assert params["TaoDownloadPath"]["Default"] == library.tao_download_path
    assert re.fullmatch(params["ResultsPrefix"]["AllowedPattern"], "tao-results/")
    for bad in ("", "/", "tao-results", "a/*/", "*", "../x/", "/abs/"):
        assert not re.fullmatch(params["ResultsPrefix"]["AllowedPattern"], bad), bad


def test_environment_variables(template: dict[str, Any], resources: dict[str, Any]) -> None:
    global_env = template["Globals"]["Function"]["Environment"]["Variables"]
    for name in (
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
        "LOG_LEVEL",
        "POWERTOOLS_TRACE_DISABLED",
    ):
        assert name in global_env, name
    assert set(branches(global_env["POWERTOOLS_TRACE_DISABLED"])) == {"true", "false"}
    assert set(branches(template["Globals"]["Function"]["Tracing"])) == {"Active", "PassThrough"}

    _, function = only(resources, "AWS::Serverless::Function")
    env = function["Properties"]["Environment"]["Variables"]
    assert set(env) == {
        "TAO_BASE_URL",
        "TAO_TOKEN_URL",
        "TAO_TOKEN_AUTH_METHOD",
        "TAO_DOWNLOAD_PATH",
        "TAO_CREDENTIALS_SECRET_ID",
        "RESULTS_BUCKET",
        "RESULTS_PREFIX",
        "DEAD_LETTER_QUEUE_URL",
        "SIGNED_URL_ALLOWED_HOSTS",
        "NOT_FOUND_GRACE_SECONDS",
        "RECORD_CONCURRENCY",
        "MAX_RECEIVE_COUNT",
        "RESULTS_KEY_TEMPLATE",
        "RESULT_EVENT_BUS",
        "STEP_FUNCTIONS_CALLBACKS",
    }
    # One parameter for both, so the function's last delivery is the queue's.
    _, queue = next((n, r) for n, r in resources.items() if n == "SourceQueue")
    assert env["MAX_RECEIVE_COUNT"] == queue["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    assert env["MAX_RECEIVE_COUNT"] == ref("MaxReceiveCount")
    assert env["DEAD_LETTER_QUEUE_URL"] == ref("DeadLetterQueue")  # Ref of a queue is its URL
    assert env["RESULTS_PREFIX"] == ref("ResultsPrefix")
    assert env["TAO_TOKEN_AUTH_METHOD"] == ref("TaoTokenAuthMethod")
    assert list(branches(env["TAO_CREDENTIALS_SECRET_ID"])) == [
        ref("CredentialsSecret"),
        ref("TaoCredentialsSecretArn"),
    ]
    assert list(branches(env["RESULTS_BUCKET"])) == [ref("ResultsBucket"), ref("ResultsBucketName")]


def test_log_group_has_retention_and_is_the_functions(resources: dict[str, Any]) -> None:
    name, log_group = only(resources, "AWS::Logs::LogGroup")
    assert log_group["Properties"]["RetentionInDays"] == ref("LogRetentionInDays")
    _, function = only(resources, "AWS::Serverless::Function")
    assert function["Properties"]["LoggingConfig"]["LogGroup"] == ref(name)


# ----------------------------------------------------------------------------- queues


def test_visibility_timeout_is_at_least_six_times_the_function_timeout(
    template: dict[str, Any], resources: dict[str, Any], params: dict[str, Any]
) -> None:
    source = resources["SourceQueue"]["Properties"]
    assert source["VisibilityTimeout"] == {
        "Fn::FindInMap": ["TimeoutSettings", ref("FunctionTimeout"), "VisibilityTimeout"]
    }
    mapping = template["Mappings"]["TimeoutSettings"]
    allowed = params["FunctionTimeout"]["AllowedValues"]
    assert params["FunctionTimeout"]["Default"] in allowed
    assert sorted(mapping, key=int) == [str(t) for t in sorted(allowed)], "a row for every allowed timeout"
    max_window = params["MaximumBatchingWindowInSeconds"]["MaxValue"]
    for timeout in allowed:
        assert 1 <= timeout <= 900
        visibility = mapping[str(timeout)]["VisibilityTimeout"]
        assert visibility >= 6 * timeout + max_window, (timeout, visibility)
        assert visibility <= SQS_VISIBILITY_MAX


def test_dead_letter_queue_is_wired(resources: dict[str, Any], params: dict[str, Any]) -> None:
    redrive = resources["SourceQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == get_att("DeadLetterQueue", "Arn")
    assert redrive["maxReceiveCount"] == ref("MaxReceiveCount")
    assert params["MaxReceiveCount"]["Type"] == "Number"
    assert params["MaxReceiveCount"]["MinValue"] >= 1
    dlq = resources["DeadLetterQueue"]["Properties"]
    assert dlq["MessageRetentionPeriod"] == SQS_RETENTION_MAX  # 14 days
    assert "RedrivePolicy" not in dlq


@pytest.mark.parametrize("queue", ["SourceQueue", "DeadLetterQueue"])
def test_queues_are_encrypted_in_every_configuration(resources: dict[str, Any], queue: str) -> None:
    props = resources[queue]["Properties"]
    encryption = {k: props[k] for k in ("SqsManagedSseEnabled", "KmsMasterKeyId") if k in props}
    # Fn::If on the same condition in both properties: pair the branches, not all combinations.
    with_key = {k: v["Fn::If"][1] for k, v in encryption.items()}
    without_key = {k: v["Fn::If"][2] for k, v in encryption.items()}
    assert all(v["Fn::If"][0] == "HasKmsKey" for v in encryption.values())
    assert with_key["KmsMasterKeyId"] == ref("KmsKeyArn")
    assert with_key["SqsManagedSseEnabled"] == ref("AWS::NoValue")
    assert without_key["SqsManagedSseEnabled"] is True
    assert without_key["KmsMasterKeyId"] == ref("AWS::NoValue")


@pytest.mark.parametrize("queue", ["SourceQueue", "DeadLetterQueue"])
def test_queues_deny_insecure_transport(resources: dict[str, Any], queue: str) -> None:
    policies = [
        r
        for r in of_type(resources, "AWS::SQS::QueueInlinePolicy").values()
        if r["Properties"]["Queue"] == ref(queue)
    ]
    assert len(policies) == 1
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    (statement,) = [s for s in statements if s["Sid"] == "DenyInsecureTransport"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_the_function_and_the_source_queues_redrive_write_dead_letters(
    resources: dict[str, Any],
) -> None:
    source_name = resources["SourceQueue"]["Properties"]["QueueName"]
    assert source_name == {"Fn::Sub": "${AWS::StackName}-source"}
    allow = resources["DeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]
    assert allow == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [
            {
                "Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:"
                + source_name["Fn::Sub"]
            }
        ],
    }
    (policy,) = [
        r
        for r in of_type(resources, "AWS::SQS::QueueInlinePolicy").values()
        if r["Properties"]["Queue"] == ref("DeadLetterQueue")
    ]
    (deny,) = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Sid"] == "OnlyTheFunctionSends"
    ]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Action"] == "sqs:SendMessage"  # also what SendMessageBatch is authorised as
    assert deny["Resource"] == get_att("DeadLetterQueue", "Arn")
    assert deny["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": get_att("DownloadResultRole", "Arn")},
        # SQS's redrive is not denied: it is bounded by the RedriveAllowPolicy above.
        "Bool": {"aws:PrincipalIsAWSService": "false"},
    }


def test_event_source_mapping(resources: dict[str, Any], params: dict[str, Any]) -> None:
    _, function = only(resources, "AWS::Serverless::Function")
    (event,) = function["Properties"]["Events"].values()
    assert event["Type"] == "SQS"
    props = event["Properties"]
    assert props["Queue"] == get_att("SourceQueue", "Arn")
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == ref("BatchSize")
    assert props["MaximumBatchingWindowInSeconds"] == ref("MaximumBatchingWindowInSeconds")
    assert props["ScalingConfig"] == {"MaximumConcurrency": ref("MaximumConcurrency")}
    assert params["MaximumConcurrency"]["MinValue"] >= 2  # the Lambda minimum
    assert params["MaximumBatchingWindowInSeconds"]["MaxValue"] <= 300


# ----------------------------------------------------------------------------- bucket and secret


def test_results_bucket_is_hardened(resources: dict[str, Any]) -> None:
    bucket = resources["ResultsBucket"]
    assert bucket["Condition"] == "CreateBucket"
    assert bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    algorithms = set()
    for encryption in branches(props["BucketEncryption"]):
        (rule,) = encryption["ServerSideEncryptionConfiguration"]
        algorithms.add(rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"])
    assert algorithms == {"aws:kms", "AES256"}
    assert set(branches(props["VersioningConfiguration"]["Status"])) == {"Enabled", "Suspended"}
    abort_rules = [
        r for r in props["LifecycleConfiguration"]["Rules"] if "AbortIncompleteMultipartUpload" in r
    ]
    assert len(abort_rules) == 1
    assert abort_rules[0]["Status"] == "Enabled"
    assert abort_rules[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == ref(
        "AbortIncompleteMultipartUploadDays"
    )


def test_results_bucket_policy_requires_tls(resources: dict[str, Any]) -> None:
    _, policy = only(resources, "AWS::S3::BucketPolicy")
    assert policy["Condition"] == "CreateBucket"
    assert policy["Properties"]["Bucket"] == ref("ResultsBucket")
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [get_att("ResultsBucket", "Arn"), {"Fn::Sub": "${ResultsBucket.Arn}/*"}]


def test_secret_is_a_parameter_never_a_value(resources: dict[str, Any], params: dict[str, Any]) -> None:
    assert params["TaoCredentialsSecretArn"]["Type"] == "String"
    assert "secretsmanager" in params["TaoCredentialsSecretArn"]["AllowedPattern"]
    secret = resources["CredentialsSecret"]
    assert secret["Condition"] == "CreateSecret"
    assert "SecretString" not in secret["Properties"]
    assert "GenerateSecretString" not in secret["Properties"]
    text = TEMPLATE.read_text(encoding="utf-8")
    assert not re.search(
        r"^\s*(SecretString|SecretBinary|client_secret)\s*:", text, re.MULTILINE | re.IGNORECASE
    )
    for name in params:
        assert "password" not in name.lower() and "clientsecret" not in name.lower(), name


# ----------------------------------------------------------------------------- IAM


def role_statements(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(policy name, statement) for every statement the function's role can have."""
    _, role = only(resources, "AWS::IAM::Role")
    out = []
    for policies in branches(role["Properties"]["Policies"]):
        for policy in policies:
            for statement in as_list(policy["PolicyDocument"]["Statement"]):
                out.append((policy["PolicyName"], statement))
    unique = {json.dumps(item, sort_keys=True): item for item in out}
    return list(unique.values())


def test_function_uses_only_the_explicit_role(resources: dict[str, Any]) -> None:
    role_name, role = only(resources, "AWS::IAM::Role")
    _, function = only(resources, "AWS::Serverless::Function")
    assert function["Properties"]["Role"] == get_att(role_name, "Arn")
    assert "Policies" not in function["Properties"], "SAM policy templates would add unscoped statements"
    assert "ManagedPolicyArns" not in role["Properties"]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}


EVENT_BUS_ARN = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${ResultEventBus}"


def test_iam_statements_are_resource_scoped(resources: dict[str, Any]) -> None:
    statements = role_statements(resources)
    assert statements
    for policy, statement in statements:
        assert statement["Effect"] == "Allow"
        actions = as_list(statement["Action"])
        assert all("*" not in action for action in actions), (policy, actions)
        services = {action.split(":")[0] for action in actions}
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                # Only actions without resource-level permissions may use "*".
                assert services in ({"xray"}, {"states"}), (policy, actions)
                continue
            assert isinstance(resource, dict), (policy, resource)
            if "Fn::Sub" in resource:
                sub = resource["Fn::Sub"]
                pattern = sub[0] if isinstance(sub, list) else sub
                if services == {"events"}:  # the bus named by a parameter, no wildcard
                    assert pattern == EVENT_BUS_ARN, (policy, pattern)
                    continue
                # The only wildcard allowed: objects below the results prefix.
                assert services == {"s3"}, (policy, pattern)
                assert pattern == "arn:${AWS::Partition}:s3:::${Bucket}/${ResultsPrefix}*"


def actions_by_resource(resources: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for _, statement in role_statements(resources):
        for resource in as_list(statement["Resource"]):
            for concrete in branches(resource):
                found.setdefault(json.dumps(concrete, sort_keys=True), set()).update(
                    as_list(statement["Action"])
                )
    return found


def test_iam_exact_permissions(resources: dict[str, Any]) -> None:
    found = actions_by_resource(resources)

    def on(resource: Any) -> set[str]:
        return found.pop(json.dumps(resource, sort_keys=True))

    assert on(ref("CredentialsSecret")) == {"secretsmanager:GetSecretValue"}
    assert on(ref("TaoCredentialsSecretArn")) == {"secretsmanager:GetSecretValue"}
    assert on(get_att("DeadLetterQueue", "Arn")) == {"sqs:SendMessage"}
    assert on(get_att("SourceQueue", "Arn")) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
    }
    assert on(get_att("FunctionLogGroup", "Arn")) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert on(ref("KmsKeyArn")) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert on("*") == {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
    }
    assert on(ref("ResultEventBus")) == {"events:PutEvents"}
    assert on({"Fn::Sub": EVENT_BUS_ARN}) == {"events:PutEvents"}
    s3 = [key for key in found if "s3:::" in key]
    assert len(s3) == 2  # created bucket and existing bucket
    for key in s3:
        # GetObject: HeadObject before uploading (is a redelivered result already there?)
        assert found.pop(key) == {"s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"}
    assert not found, f"unexpected statements: {found}"


def test_the_key_is_usable_only_through_each_service_for_this_stacks_data(resources: dict[str, Any]) -> None:
    statements = {
        statement["Sid"]: statement for policy, statement in role_statements(resources) if policy == "kms"
    }
    assert set(statements) == {
        "KeyForResultObjects",
        "KeyForQueues",
        "KeyForCredentials",
        "KeyForFunctionEnvironment",
    }
    for statement in statements.values():
        assert statement["Resource"] == ref("KmsKeyArn")
        assert set(as_list(statement["Action"])) <= {"kms:Decrypt", "kms:GenerateDataKey"}
    via = {sid: s["Condition"]["StringEquals"]["kms:ViaService"] for sid, s in statements.items()}
    assert via == {
        "KeyForResultObjects": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"},
        "KeyForQueues": {"Fn::Sub": "sqs.${AWS::Region}.amazonaws.com"},
        "KeyForCredentials": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"},
        "KeyForFunctionEnvironment": {"Fn::Sub": "lambda.${AWS::Region}.amazonaws.com"},
    }
    s3_context = statements["KeyForResultObjects"]["Condition"]["StringLike"][
        "kms:EncryptionContext:aws:s3:arn"
    ]
    patterns = [item["Fn::Sub"][0] for item in s3_context]
    assert patterns == [
        "arn:${AWS::Partition}:s3:::${Bucket}",
        "arn:${AWS::Partition}:s3:::${Bucket}/${ResultsPrefix}*",
    ]
    sqs_context = statements["KeyForQueues"]["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sqs:arn"]
    assert sqs_context == [get_att("SourceQueue", "Arn"), get_att("DeadLetterQueue", "Arn")]
    secrets = [
        s["Condition"]["StringEquals"]["kms:EncryptionContext:SecretARN"]
        for policy, s in role_statements(resources)
        if policy == "kms" and s["Sid"] == "KeyForCredentials"
    ]
    assert secrets == [ref("CredentialsSecret"), ref("TaoCredentialsSecretArn")]
    assert statements["KeyForCredentials"]["Action"] == "kms:Decrypt"


def test_optional_permissions_are_conditional(resources: dict[str, Any]) -> None:
    _, role = only(resources, "AWS::IAM::Role")
    conditional = {
        p["Fn::If"][1]["PolicyName"]: p["Fn::If"][0] for p in role["Properties"]["Policies"] if "Fn::If" in p
    }
    assert conditional == {
        "kms": "HasKmsKey",
        "xray": "TracingEnabled",
        "result-events": "HasResultEventBus",
        "step-functions-callbacks": "CallbacksEnabled",
    }


def test_result_events_may_only_carry_our_source(resources: dict[str, Any]) -> None:
    _, role = only(resources, "AWS::IAM::Role")
    (policy,) = [
        p["Fn::If"][1]
        for p in role["Properties"]["Policies"]
        if "Fn::If" in p and p["Fn::If"][0] == "HasResultEventBus"
    ]
    (statement,) = policy["PolicyDocument"]["Statement"]
    from tao_results.announcements import EVENT_SOURCE  # noqa: PLC0415

    assert statement["Condition"] == {"StringEquals": {"events:source": EVENT_SOURCE}}


def test_integration_parameters_reach_the_function(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    from tao_results.key_template import DEFAULT_KEY_TEMPLATE  # noqa: PLC0415

    _, function = only(resources, "AWS::Serverless::Function")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["RESULT_EVENT_BUS"] == ref("ResultEventBus")
    assert variables["STEP_FUNCTIONS_CALLBACKS"] == ref("EnableStepFunctionsCallbacks")
    assert variables["RESULTS_KEY_TEMPLATE"] == ref("ResultsKeyTemplate")
    assert template["Parameters"]["ResultsKeyTemplate"]["Default"] == DEFAULT_KEY_TEMPLATE
    pattern = re.compile(template["Parameters"]["ResultsKeyTemplate"]["AllowedPattern"])
    assert pattern.match("{prefix}dt={year}-{month}-{day}/{referenceId}/{filename}")
    assert not pattern.match("{prefix}{filename}")
    bus = re.compile(template["Parameters"]["ResultEventBus"]["AllowedPattern"])
    for value in ("", "tao-results", "arn:aws:events:eu-west-1:123456789012:event-bus/tao-results"):
        assert bus.match(value), value


# ----------------------------------------------------------------------------- operations


def test_alarms(template: dict[str, Any], resources: dict[str, Any]) -> None:
    alarms = of_type(resources, "AWS::CloudWatch::Alarm").values()
    by_metric = {
        (
            a["Properties"]["Namespace"],
            a["Properties"]["MetricName"],
            json.dumps(a["Properties"]["Dimensions"]),
        ): a
        for a in alarms
    }

    def alarm(namespace: str, metric: str, dimension: str, value: Any) -> dict[str, Any]:
        key = (namespace, metric, json.dumps([{"Name": dimension, "Value": value}]))
        assert key in by_metric, key
        props: dict[str, Any] = by_metric[key]["Properties"]
        return props

    dlq = alarm(
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", get_att("DeadLetterQueue", "QueueName")
    )
    assert dlq["Threshold"] == 0 and dlq["ComparisonOperator"] == "GreaterThanThreshold"
    age = alarm("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", get_att("SourceQueue", "QueueName"))
    assert age["Threshold"] == ref("OldestMessageAgeAlarmSeconds")
    function = ref("DownloadResultFunction")
    errors = alarm("AWS/Lambda", "Errors", "FunctionName", function)
    throttles = alarm("AWS/Lambda", "Throttles", "FunctionName", function)
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    namespace = environment["POWERTOOLS_METRICS_NAMESPACE"]
    # Powertools Metrics adds the service name as the "service" dimension of every metric.
    permanent = alarm(namespace, "PermanentFailures", "service", environment["POWERTOOLS_SERVICE_NAME"])
    rejected = alarm(namespace, "SignedUrlRejected", "FunctionName", function)
    (metric_filter,) = of_type(resources, "AWS::Logs::MetricFilter").values()
    assert metric_filter["Properties"]["LogGroupName"] == ref("FunctionLogGroup")
    (transformation,) = metric_filter["Properties"]["MetricTransformations"]
    assert (transformation["MetricNamespace"], transformation["MetricName"]) == (
        namespace,
        "SignedUrlRejected",
    )
    assert transformation["Dimensions"] == [{"Key": "FunctionName", "Value": "$.function_name"}]
    for props in (dlq, age, errors, throttles, permanent, rejected):
        assert props["TreatMissingData"] == "notBreaching"
        assert props["AlarmActions"] == {
            "Fn::If": ["HasAlarmTopic", [ref("AlarmTopicArn")], ref("AWS::NoValue")]
        }
    for props in (errors, throttles, permanent, rejected):
        assert props["Threshold"] == 0 and props["Statistic"] == "Sum"


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for name in (
        "SourceQueueUrl",
        "DeadLetterQueueUrl",
        "ResultsBucketName",
        "FunctionName",
        "FunctionArn",
        "CredentialsSecretArn",
    ):
        assert name in outputs, name
    assert outputs["SourceQueueUrl"]["Value"] == ref("SourceQueue")
    assert outputs["DeadLetterQueueUrl"]["Value"] == ref("DeadLetterQueue")
    assert outputs["FunctionArn"]["Value"] == get_att("DownloadResultFunction", "Arn")


def test_parameters_with_defaults_satisfy_their_own_constraints(params: dict[str, Any]) -> None:
    for name, param in params.items():
        if "Default" not in param:
            continue
        default = param["Default"]
        if "AllowedValues" in param:
            assert default in param["AllowedValues"], name
        if "AllowedPattern" in param:
            assert re.fullmatch(param["AllowedPattern"], str(default)), name
        if "MinValue" in param:
            assert param["MinValue"] <= default, name
        if "MaxValue" in param:
            assert default <= param["MaxValue"], name
    assert "Default" not in params["TaoBaseUrl"], "the TAO tenant URL must be given"


# ----------------------------------------------------------------------------- checkov skips


def test_every_checkov_skip_is_justified_in_the_docs(resources: dict[str, Any]) -> None:
    doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    skips = [
        (name, skip)
        for name, resource in resources.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert len(skip.get("comment", "")) > 20, (name, skip)
        assert skip["id"] in doc, f"{skip['id']} on {name} is not in docs/security.md"


# ----------------------------------------------------------------------------- samconfig and requirements


def test_samconfig() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert config["version"] == 0.1
    default = config["default"]
    assert default["global"]["parameters"]["stack_name"]
    assert default["validate"]["parameters"]["lint"] is True
    deploy = default["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["confirm_changeset"] is True
    assert "parameter_overrides" not in deploy, "deploy parameters belong on the command line"


def test_layer_lock_pins_every_distribution_with_hashes() -> None:
    """requirements.txt is a full lock: every distribution (transitive ones too) pinned and hashed."""
    layer = ROOT / "layers/tao_results"
    declared = {
        line.split("==")[0].strip().lower(): line.split("==")[1].strip()
        for line in (layer / "requirements.in").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    locked: dict[str, str] = {}
    hashes: dict[str, int] = {}
    current = ""
    for line in (layer / "requirements.txt").read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if "==" in text and not text.startswith("#"):
            current, _, version = text.rstrip(" \\").partition("==")
            current = current.lower()
            locked[current] = version
        elif text.startswith("--hash=sha256:") and current:
            hashes[current] = hashes.get(current, 0) + 1
    assert declared.items() <= locked.items(), "requirements.in and the lock disagree: run make lock"
    assert {"botocore", "urllib3", "s3transfer", "jmespath"} <= set(locked), "transitive pins missing"
    assert set(hashes) == set(locked), f"unhashed: {set(locked) - set(hashes)}"
    # pyproject's runtime dependencies (what `pip install .` gives operators) name the same packages.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert {re.split(r"[<>=!~\[ ;]", name, maxsplit=1)[0].lower() for name in project["dependencies"]} == set(
        declared
    ), "pyproject.toml's dependencies and layers/tao_results/requirements.in name different packages"


def test_function_has_no_own_dependencies() -> None:
    lines = (ROOT / "functions/download_result/requirements.txt").read_text(encoding="utf-8").splitlines()
    assert all(not line.strip() or line.lstrip().startswith("#") for line in lines)


# ----------------------------------------------------------------------------- events


EVENT_FILES = sorted((ROOT / "events").glob("sqs-*.json"))


def test_event_files_exist() -> None:
    assert {p.name for p in EVENT_FILES} >= {"sqs-single.json", "sqs-batch.json"}


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.name)
def test_events_are_shaped_like_lambdas_sqs_event(path: Path) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    assert set(event) == {"Records"}
    assert event["Records"]
    message_ids = set()
    for record in event["Records"]:
        assert set(record) == {
            "messageId",
            "receiptHandle",
            "body",
            "attributes",
            "messageAttributes",
            "md5OfBody",
            "eventSource",
            "eventSourceARN",
            "awsRegion",
        }
        assert set(record["attributes"]) >= {
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
        }
        assert all(isinstance(v, str) for v in record["attributes"].values())
        assert int(record["attributes"]["ApproximateReceiveCount"]) >= 1
        assert record["eventSource"] == "aws:sqs"
        # A FIFO queue's name ends in .fifo (events/sqs-fifo-batch.json).
        queue_arn = r"arn:aws:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+(\.fifo)?"
        assert re.fullmatch(queue_arn, record["eventSourceARN"])
        assert record["eventSourceARN"].split(":")[3] == record["awsRegion"]
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # SQS's own checksum
        assert isinstance(record["messageAttributes"], dict)
        message_ids.add(record["messageId"])
    assert len(message_ids) == len(event["Records"]), "messageIds must be unique (batchItemFailures)"


def _classify(body: str) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        return "malformed"
    reference_id = payload.get("referenceId") if isinstance(payload, dict) else None
    if isinstance(reference_id, str) and REFERENCE_ID.fullmatch(reference_id):
        return "valid"
    return "bad-reference"


def test_single_event_has_one_valid_message() -> None:
    event = json.loads((ROOT / "events/sqs-single.json").read_text(encoding="utf-8"))
    assert [_classify(r["body"]) for r in event["Records"]] == ["valid"]


def test_batch_event_mixes_valid_malformed_and_bad_reference() -> None:
    event = json.loads((ROOT / "events/sqs-batch.json").read_text(encoding="utf-8"))
    kinds = [_classify(r["body"]) for r in event["Records"]]
    assert {"valid", "malformed", "bad-reference"} <= set(kinds)
    assert len(event["Records"]) <= 10


def test_token_auth_method_parameter_offers_exactly_what_the_function_accepts(
    params: dict[str, Any],
) -> None:
    from tao_results.config import TOKEN_AUTH_METHODS  # noqa: PLC0415

    parameter = params["TaoTokenAuthMethod"]
    assert parameter["Default"] == "auto"
    assert sorted(parameter["AllowedValues"]) == sorted(TOKEN_AUTH_METHODS)
