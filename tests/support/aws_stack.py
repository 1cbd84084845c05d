"""The tests' local AWS stack: :mod:`local_aws` (moto's server on loopback and the function's resources).

It lives in ``devtools/`` because the demo and the local stack use it too; the tests import it from here.
"""

from local_aws import (
    FAKE_CREDENTIALS,
    REGION,
    MotoServer,
    StackResources,
    aws_client,
    create_resources,
    free_port,
    function_environment,
    running_moto,
    wait_until,
)

__all__ = [
    "FAKE_CREDENTIALS",
    "REGION",
    "MotoServer",
    "StackResources",
    "aws_client",
    "create_resources",
    "free_port",
    "function_environment",
    "running_moto",
    "wait_until",
]
