"""tao_results: collect TAO Advance rostering import results and land them in S3.

The Lambda handler in ``functions/download_result/app.py`` is a thin shell around
:func:`tao_results.wiring.build_batch_handler`; everything else lives here, one job per module, in
the order a message meets them (see docs/architecture.md):

- ``config``: settings read and validated once at cold start; ``wiring``: builds everything once;
  ``memory_budget``: part size, upload concurrency and buffer budget for the function's memory
- ``batch``: an SQS batch, its records run concurrently, answered with ``batchItemFailures``
- ``delivery``: what SQS says of one delivery (receive count, sent time, the source queue's URL)
- ``message``: SQS body (direct, SNS or EventBridge envelope) → the request
- ``credentials`` / ``auth``: Secrets Manager client credentials and the OAuth2 token
- ``download_api``: the TAO Download API (referenceId → signed URL)
- ``url_policy``: which signed URLs (names, addresses, ports) may be fetched at all
- ``http_sessions`` / ``literal_http``: the HTTP sessions, the address-checked storage connections,
  signed URLs sent byte for byte; ``headers``: parsing the answers' headers
- ``result_download``: GET of the signed URL (redirects, S3 error codes, the body)
- ``s3_upload`` / ``naming`` / ``key_template`` / ``object_attributes`` / ``unchanged``: the
  bounded-memory copy into S3, the object's filename, key, headers and metadata, and skipping an
  upload the bucket already holds
- ``errors`` / ``classification``: the two failure families, and the tables that map answers to them
- ``dead_letters`` / ``redelivery``: where permanent and transient failures go (the backoff, and
  whether this delivery is the queue's last)
- ``announcements`` / ``callbacks``: EventBridge events and Step Functions callbacks
- ``pipeline``: one record, end to end; ``deadline``: the time an invocation has left
- ``aws_clients``: boto3 clients bounded by the deadline; ``observability`` / ``redaction``: logs,
  metrics and traces, without a credential in any of them
"""
