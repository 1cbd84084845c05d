"""tao_results_cli: the operator tools around the function, never deployed with it.

- ``cli``: the ``tao-results`` command (enqueue, dlq list/redrive, run-local, doctor)
- ``doctor``: the checks behind ``tao-results doctor``
- ``status``: what ``tao-results status`` reads (queues, dead-letter reasons, metrics)
- ``aws``: the tools' AWS access (clients and their region, the stack, error codes, one-line errors)
- ``queues``: the queue operations (enqueue, dlq list, dlq redrive)
- ``request_bodies``: the bodies ``enqueue`` sends, checked with the function's parser
- ``local``: a local SQS event source mapping that runs the function on this machine

Installed by ``pyproject.toml`` for operators and developers; the Lambda layer
(``layers/tao_results``) holds only what the function imports.
"""
