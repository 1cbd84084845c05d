import json
from tests.integration.test_cli import *  # noqa
import tests.integration.test_cli as t

def test_probe(resources, tao, sqs):
    for ref in ("cli-ok", "unknown-1"):
        sqs.send_message(QueueUrl=resources.queue_url, MessageBody=json.dumps({"referenceId": ref}))
    r = t.run_local_with_the_real_function(resources, tao, sqs, ["--function-logs", "none", "--batch-size", "1"])
    print("RC", r.returncode)
    print("STDOUT<<", r.stdout, ">>")
    print("STDERR<<", r.stderr, ">>")
    assert 0
