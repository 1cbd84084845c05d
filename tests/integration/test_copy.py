"""Results land in S3 byte-exact, named and described as the README says, with bounded memory."""

import hashlib
import json

from tao_emulator import Fault

MiB = 1024 * 1024


def test_small_result_is_one_object_with_type_and_metadata(harness, tao):
    info = tao.add_result(
        "ref-small", size=2048, filename="import-7.csv", content_type="text/csv; charset=utf-8"
    )
    h = harness()
    _, failed = h.run({"referenceId": "ref-small", "ignored": True})
    assert failed == []
    key = "tao-results/ref-small/import-7.csv"
    obj = h.object(key)
    data = obj["Body"].read()
    assert hashlib.sha256(data).hexdigest() == info.sha256
    assert obj["ContentType"] == "text/csv; charset=utf-8"
    assert obj["Metadata"]["reference-id"] == "ref-small"
    assert obj["Metadata"]["sha256"] == info.sha256


def test_large_result_goes_multipart_and_leaves_no_open_upload(harness, tao):
    info = tao.add_result("ref-large", size=23 * MiB + 17, filename="big.csv")
    h = harness()
    _, failed = h.run({"referenceId": "ref-large"})
    assert failed == []
    assert h.keys() == ["tao-results/ref-large/big.csv"]
    obj = h.object("tao-results/ref-large/big.csv")
    assert obj["ContentLength"] == info.size
    assert hashlib.sha256(obj["Body"].read()).hexdigest() == info.sha256
    assert obj["Metadata"]["reference-id"] == "ref-large"
    assert obj["ETag"].endswith('-5"')  # 5 MiB test parts: 23 MiB + 17 bytes → 5 parts
    assert h.open_uploads() == []


def test_an_exact_multiple_of_the_part_size(harness, tao):
    info = tao.add_result("ref-exact", size=10 * MiB)
    h = harness()
    _, failed = h.run({"referenceId": "ref-exact"})
    assert failed == []
    assert hashlib.sha256(h.object_bytes("tao-results/ref-exact/result.csv")).hexdigest() == info.sha256


def test_empty_result(harness, tao):
    tao.add_result("ref-empty", content=b"", filename="empty.csv")
    h = harness()
    _, failed = h.run({"referenceId": "ref-empty"})
    assert failed == []
    assert h.object_bytes("tao-results/ref-empty/empty.csv") == b""


def test_filename_falls_back_to_the_url_then_to_result(harness, tao):
    tao.add_result("ref-a", size=10, filename="from-url.csv", content_disposition=None)
    tao.add_result("ref-b", size=10, filename="__", content_disposition=None)
    h = harness(RESULTS_PREFIX="custom")
    _, failed = h.run({"referenceId": "ref-a"}, {"referenceId": "ref-b"})
    assert failed == []
    assert h.keys() == ["custom/ref-a/from-url.csv", "custom/ref-b/result"]


def test_hostile_filename_is_sanitised(harness, tao):
    tao.add_result("ref-h", size=10, content_disposition='attachment; filename="../../x/\x07evil name.csv"')
    h = harness()
    _, failed = h.run({"referenceId": "ref-h"})
    assert failed == []
    assert h.keys() == ["tao-results/ref-h/evil_name.csv"]


def test_redelivery_yields_the_same_single_object(harness, tao):
    info = tao.add_result("ref-again", size=12 * MiB)
    h = harness()
    ids, failed = h.run({"referenceId": "ref-again"})
    assert failed == []
    # The message comes back (e.g. the delete was lost): the same object, not a second one.
    h.make_visible_again(ids)
    assert h.invoke(h.receive_event(1)) == {"batchItemFailures": []}
    assert h.keys() == ["tao-results/ref-again/result.csv"]
    assert hashlib.sha256(h.object_bytes("tao-results/ref-again/result.csv")).hexdigest() == info.sha256
    assert h.open_uploads() == []


def test_both_documented_download_paths_work(harness, tao):
    tao.add_result("12345", size=100)
    h = harness(TAO_DOWNLOAD_PATH="/api/v1/upload/api/v1/download/{referenceId}")
    _, failed = h.run({"referenceId": "12345"})
    assert failed == []
    assert any(entry["path"] == "/api/v1/upload/api/v1/download/12345" for entry in tao.requests_log())


def test_one_api_call_one_storage_get_one_token_and_keep_alive(harness, tao):
    refs = [f"ref-{n}" for n in range(6)]
    for ref in refs:
        tao.add_result(ref, size=1000)
    h = harness(RECORD_CONCURRENCY="2")
    _, failed = h.run(*({"referenceId": ref} for ref in refs))
    assert failed == []
    stats = tao.stats()
    assert stats["token_requests"] == 1
    assert all(stats["download_calls"][ref] == 1 for ref in refs)
    assert all(stats["storage_gets"][ref] == 1 for ref in refs)
    # A warm second invocation reuses the token and the connections.
    connections_before = stats["connections_accepted"]
    tao.add_result("ref-warm", size=10)
    _, failed = h.run({"referenceId": "ref-warm"})
    assert failed == []
    stats = tao.stats()
    assert stats["token_requests"] == 1
    assert stats["connections_accepted"] - connections_before <= 1
    # 6 records, 2 at a time: connections are reused across records (API pool + storage pool).
    assert stats["connections_accepted"] <= 2 * 2 + 1


def test_signed_url_is_fetched_without_the_bearer_token(harness, tao):
    tao.add_result("ref-auth", size=10)
    h = harness()
    _, failed = h.run({"referenceId": "ref-auth"})
    assert failed == []
    storage = [entry for entry in tao.requests_log() if entry["stage"] == "storage"]
    assert storage and not any(entry["authorization_present"] for entry in storage)


def test_same_host_redirect_is_followed(harness, tao):
    info = tao.add_result("ref-r", size=500)
    tao.add_fault(
        Fault(
            stage="storage",
            kind="redirect",
            reference_id="ref-r",
            status=307,
            location="{base_url}/{signed_path}",
        )
    )
    h = harness()
    _, failed = h.run({"referenceId": "ref-r"})
    assert failed == []
    assert hashlib.sha256(h.object_bytes("tao-results/ref-r/result.csv")).hexdigest() == info.sha256


def test_emf_metrics_are_published(harness, tao, capsys):
    tao.add_result("ref-m", size=1234)
    h = harness()
    capsys.readouterr()
    _, failed = h.run({"referenceId": "ref-m"})
    assert failed == []
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = [line for line in lines if "_aws" in line]
    assert emf, "no EMF metric line"
    names = {metric["Name"] for metric in emf[-1]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"ResultsCopied", "BytesCopied", "CopyDuration"} <= names
    assert emf[-1]["BytesCopied"] == 1234.0 or emf[-1]["BytesCopied"] == [1234.0]


def test_a_128_mb_function_derives_its_part_size_from_its_memory(harness, tao):
    # No sizing variable set: 128 MB → 8 MiB parts in a 24 MiB budget (memory_budget.py).
    info = tao.add_result("ref-128", size=20 * MiB + 5, filename="big.csv")
    h = harness(AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128", PART_SIZE_BYTES="")
    settings = h.app.batch_handler.settings
    assert (settings.part_size_bytes, settings.transfer_buffer_bytes) == (8 * MiB, 24 * MiB)
    _, failed = h.run({"referenceId": "ref-128"})
    assert failed == []
    obj = h.object("tao-results/ref-128/big.csv")
    assert hashlib.sha256(obj["Body"].read()).hexdigest() == info.sha256
    assert obj["ETag"].endswith('-3"')  # 8 + 8 + 4 MiB and 5 bytes
    assert h.open_uploads() == []
