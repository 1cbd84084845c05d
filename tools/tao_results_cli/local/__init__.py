"""Local tooling: an SQS event source mapping that runs the function on this machine, and the
queue operations behind the ``tao-results`` CLI. Nothing here is part of the deployed function.
"""
