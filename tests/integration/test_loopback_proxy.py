"""The test proxies' shared scaffolding (tests/support/loopback_proxy.py), over sockets: the e2e
tier's StallingS3Proxy in front of moto (it runs only under ``make e2e`` otherwise), the loopback
guard of every proxy, and what the base forwards: bodies byte-exact both ways, hop-by-hop fields
(RFC 9110 section 7.6.1) dropped."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from tests.e2e.stall_proxy import StallingS3Proxy
from tests.support.aws_stack import FAKE_CREDENTIALS, REGION, MotoServer, aws_client
from tests.support.faulty_aws_json_proxy import FaultyAwsJsonProxy
from tests.support.faulty_s3_proxy import FaultyS3Proxy
from tests.support.loopback_proxy import LoopbackProxy

BUCKET = "stall-proxy-bucket"


def _s3(endpoint_url: str, read_timeout: float = 10) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(read_timeout=read_timeout, connect_timeout=2, retries={"total_max_attempts": 1}),
    )


def test_stalling_proxy_forwards_and_stalls_the_chosen_key(moto_server: MotoServer) -> None:
    moto_server.reset()
    direct = aws_client("s3", moto_server.endpoint_url)
    direct.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    with StallingS3Proxy(moto_server.endpoint_url) as proxy:
        through = _s3(proxy.endpoint_url, read_timeout=1)
        through.put_object(Bucket=BUCKET, Key="results/ref-ok/a.bin", Body=b"\x00ok" * 1000)
        assert direct.get_object(Bucket=BUCKET, Key="results/ref-ok/a.bin")["Body"].read() == b"\x00ok" * 1000
        assert through.head_object(Bucket=BUCKET, Key="results/ref-ok/a.bin")["ContentLength"] == 3000

        proxy.stall("results/ref-stalled/", seconds=30, times=1)
        started = time.monotonic()
        with pytest.raises((ReadTimeoutError, ConnectionClosedError)):
            through.put_object(Bucket=BUCKET, Key="results/ref-stalled/a.bin", Body=b"late")
        assert time.monotonic() - started < 10
        assert proxy.stalled == {"results/ref-stalled/": 1}
        listed = direct.list_objects_v2(Bucket=BUCKET, Prefix="results/ref-stalled/")
        assert listed.get("KeyCount", 0) == 0  # held, never forwarded

        through.put_object(Bucket=BUCKET, Key="results/ref-stalled/a.bin", Body=b"once only")
        assert (
            direct.get_object(Bucket=BUCKET, Key="results/ref-stalled/a.bin")["Body"].read() == b"once only"
        )


@pytest.mark.parametrize("proxy_class", [LoopbackProxy, StallingS3Proxy, FaultyAwsJsonProxy, FaultyS3Proxy])
def test_every_proxy_stays_on_loopback(proxy_class: type[LoopbackProxy]) -> None:
    with pytest.raises(ValueError, match="forwards to loopback only"):
        proxy_class("http://192.0.2.1:9000")
    with pytest.raises(ValueError, match="binds to loopback only"):
        proxy_class("http://127.0.0.1:9000", host="192.0.2.1")


class _Upstream(BaseHTTPRequestHandler):
    """Records each request and answers its body back chunked, with hop-by-hop fields of its own."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_PUT(self) -> None:
        body = b""
        while size := int(self.rfile.readline().split(b";")[0], 16):  # the proxy forwards it chunked
            body += self.rfile.read(size)
            self.rfile.readline()
        self.rfile.readline()
        self.seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(201)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "X-Upstream-Hop")
        self.send_header("X-Upstream-Hop", "1")
        self.send_header("Keep-Alive", "timeout=5")
        self.send_header("X-End-To-End", "kept")
        self.end_headers()
        for start in range(0, len(body), 4096):
            piece = body[start : start + 4096]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def upstream() -> Iterator[str]:
    _Upstream.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_base_forwards_bodies_exactly_and_drops_hop_by_hop_fields(upstream: str) -> None:
    body = bytes(range(256)) * 5000  # 1.28 MB: more than one forwarding block
    with LoopbackProxy(upstream) as proxy:
        host, port = proxy.endpoint_url.removeprefix("http://").split(":")
        client = http.client.HTTPConnection(host, int(port), timeout=10)
        pieces = (body[start : start + 65536] for start in range(0, len(body), 65536))
        client.request(
            "PUT",
            "/bucket/key?x=1",
            body=pieces,  # no Content-Length: http.client sends it chunked
            headers={"Connection": "X-Client-Hop", "X-Client-Hop": "1", "TE": "trailers", "X-Keep": "yes"},
            encode_chunked=True,
        )
        response = client.getresponse()
        answered = response.read()
        client.close()
    ((headers, received),) = _Upstream.seen
    assert received == body
    assert headers["x-keep"] == "yes"
    assert headers["transfer-encoding"] == "chunked"  # re-framed by http.client, not copied
    assert not {"x-client-hop", "te", "content-length"} & set(headers)
    assert response.status == 201
    assert answered == body
    assert response.getheader("X-End-To-End") == "kept"
    assert response.getheader("X-Upstream-Hop") is None
    assert response.getheader("Keep-Alive") is None
