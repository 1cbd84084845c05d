import hashlib


def test_a_result_lands_in_s3_byte_exact(harness, tao):
    info = tao.add_result("ref-1", size=3000, filename="import-1.csv")
    h = harness()
    ids, failed = h.run({"referenceId": "ref-1"})
    assert failed == []
    assert h.keys() == ["tao-results/ref-1/import-1.csv"]
    data = h.object_bytes("tao-results/ref-1/import-1.csv")
    assert hashlib.sha256(data).hexdigest() == info.sha256
