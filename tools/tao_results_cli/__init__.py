"""tao_results_cli: the operator tools around the function, never deployed with it.

- ``cli``: the ``tao-results`` command (enqueue, dlq list/redrive, run-local)
- ``local``: a local SQS event source mapping that runs the function on this machine

Installed by ``pyproject.toml`` for operators and developers; the Lambda layer
(``layers/tao_results``) holds only what the function imports.
"""
