"""tao_results: collect TAO Advance rostering import results and land them in S3.

The Lambda handler in ``functions/download_result/app.py`` is a thin shell around
:func:`tao_results.service.build_service`; everything else lives here, one concern per module:

- ``config``: settings read and validated once at cold start
- ``errors``: the two failure families and the table that maps HTTP/AWS answers to them
- ``message``: SQS body → referenceId
- ``credentials`` / ``auth``: Secrets Manager client credentials and the OAuth2 token cache
- ``tao_client``: the Download API (referenceId → signed URL)
- ``url_policy``: which signed URLs may be fetched at all
- ``transfer`` / ``naming``: the bounded-memory streaming copy into S3 and the object key
- ``dead_letters`` / ``redelivery``: where permanent and transient failures go
- ``pipeline``: one record, end to end, with bounded retries; ``service``: a batch
"""
