"""A loopback proxy in front of MiniStack's S3 that stalls chosen requests.

``tests/support/faulty_s3_proxy.py`` fails or delays every UploadPart; here one object's writes must
hang while its neighbours' go through, so the stall is chosen by a fragment of the request path
(the object key holds the referenceId). A stalled request is held ``seconds`` and then closed
without an answer -- an S3 call that never completes, not a slow one that lands late behind the
function's back. Everything else is forwarded to the upstream and answered as it answers
(:mod:`tests.support.loopback_proxy`).
"""

from __future__ import annotations

import threading
from collections import Counter

from tests.support.loopback_proxy import LoopbackProxy, ProxyRequest


class StallingS3Proxy(LoopbackProxy):
    """``with StallingS3Proxy(upstream) as proxy: proxy.stall("ref-1", seconds=15, times=1)``."""

    def __init__(self, upstream_url: str, host: str = "127.0.0.1") -> None:
        super().__init__(upstream_url, host)
        self._lock = threading.Lock()
        self._stalls: dict[str, list[float]] = {}  # fragment -> [seconds, remaining times]
        self.stalled: Counter[str] = Counter()

    def stall(self, path_fragment: str, seconds: float, times: int = 1) -> None:
        with self._lock:
            self._stalls[path_fragment] = [seconds, times]

    def _take_stall(self, path: str) -> tuple[str, float] | None:
        with self._lock:
            for fragment, rule in self._stalls.items():
                if fragment in path and rule[1] > 0:
                    rule[1] -= 1
                    self.stalled[fragment] += 1
                    return fragment, rule[0]
        return None

    def relay(self, request: ProxyRequest) -> None:
        body = request.read_body()  # the whole request is sent before the stall begins
        stall = self._take_stall(request.path)
        if stall is not None:
            self.hold(stall[1])
            request.hang_up()
            return
        request.pass_through(body)
