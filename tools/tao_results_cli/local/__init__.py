"""A local SQS event source mapping that runs the function on this machine (``run-local``).
Nothing here is part of the deployed function.
"""
