"""The queue URL the function derives from a record (no GetQueueUrl) is one SQS accepts.

moto answers GetQueueUrl with its own host (``http://127.0.0.1:<port>/<account>/<name>``) and real
SQS with ``https://sqs.<region>.amazonaws.com/<account>/<name>``; SQS finds the queue by the path,
and the request goes to the client's endpoint. Both calls the function makes with the URL,
ChangeMessageVisibility and GetQueueAttributes, must reach the right queue.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from local_aws import REGION, StackResources, aws_client
from tao_results.delivery import queue_url
from tao_results_cli.local.events import lambda_record


def test_the_derived_queue_url_reaches_the_queue_a_record_came_from(aws: StackResources) -> None:
    sqs = aws_client("sqs", aws.endpoint_url)
    sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps({"referenceId": "r-1"}))
    received = sqs.receive_message(
        QueueUrl=aws.queue_url, AttributeNames=["All"], VisibilityTimeout=600, WaitTimeSeconds=1
    )["Messages"]
    record = SQSRecord(lambda_record(received[0], aws.queue_arn))

    derived = queue_url(record)
    assert derived is not None
    assert derived.startswith(f"https://sqs.{REGION}.amazonaws.com/")
    assert urlsplit(derived).path == urlsplit(aws.queue_url).path

    attributes = sqs.get_queue_attributes(QueueUrl=derived, AttributeNames=["QueueArn"])["Attributes"]
    assert attributes["QueueArn"] == aws.queue_arn
    # Visible again at once: the next receive finds the same message, so the change hit this queue.
    sqs.change_message_visibility(QueueUrl=derived, ReceiptHandle=record.receipt_handle, VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=aws.queue_url, WaitTimeSeconds=1).get("Messages", [])
    assert [message["MessageId"] for message in again] == [record.message_id]
