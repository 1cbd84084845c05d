"""The storage behind the signed URLs: signing, session tokens, checks, streaming.

``GET /storage/results/{referenceId}/{filename}?X-Amz-...``
    An S3-like presigned URL (``X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders/Signature``
    and, as for temporary credentials, ``X-Amz-Security-Token`` with ``+/=`` in it),
    the signature an HMAC-SHA256 over path, date and expiry with a per-emulator key). Like S3: an
    ``Authorization`` header → 400 XML ``InvalidArgument`` "Only one auth mechanism allowed" (the
    XML echoes the header value in ``ArgumentValue``, as S3 does); bad signature → 403
    ``SignatureDoesNotMatch``; past expiry → 403 ``AccessDenied`` "Request has expired"; missing
    query auth → 403 ``AccessDenied``; an ``X-Amz-Security-Token`` it never issued → 400
    ``InvalidToken``, one whose session ended → 400 ``ExpiredToken``. Otherwise 200 with
    ``Content-Length``, ``Content-Type``, ``Content-Disposition`` (default ``attachment;
    filename="<filename>"``), ``Content-Encoding`` (when the result has one), ``ETag`` and the body
    streamed in 1 MiB memoryview slices. A single ``Range: bytes=a-b`` gets a 206. HEAD → 403 (the
    URL is signed for GET, as on S3). With ``signature_scope="literal"`` the signature covers the
    request target byte for byte (path, and query without ``X-Amz-Signature``), as signers that
    check the literal request do: a client that re-quotes ``%7E`` or upper-cases ``%2f`` gets 403
    ``SignatureDoesNotMatch``.
``/_emulator/{method}``
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, unquote, urlencode

from tao_emulator.faults import Fault
from tao_emulator.handler import _HandlerBase
from tao_emulator.results import ResultInfo, _Result
from tao_emulator.s3_errors import _s3_error
from tao_emulator.state import _State

STORAGE_PREFIX = "/storage/results/"
_FAKE_ACCESS_KEY = "ASIAEMULATOR7EXAMPLE"
_REGION = "eu-west-1"
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _UrlSigner(_State):
    """Presigned storage URLs: signatures, session tokens and the ``signed_url_*`` styles."""

    def _key(self) -> bytes:
        shared = self._settings.signing_key
        return bytes.fromhex(shared) if shared else self._signing_key

    def _signature(self, path: str, amz_date: str, expires: str) -> str:
        message = f"GET\n{unquote(path)}\n{amz_date}\n{expires}".encode()
        return hmac.new(self._key(), message, hashlib.sha256).hexdigest()

    def _literal_signature(self, path: str, query_without_signature: str) -> str:
        """``signature_scope="literal"``: the HMAC covers the request target byte for byte."""
        message = f"GET\n{path}?{query_without_signature}".encode()
        return hmac.new(self._key(), message, hashlib.sha256).hexdigest()

    def _styled(self, text: str) -> str:
        """Apply ``signed_url_tilde``/``signed_url_escapes`` to an issued path or query."""
        if self._settings.signed_url_tilde == "escaped":
            text = text.replace("~", "%7E")
        if self._settings.signed_url_escapes == "lower":
            text = re.sub(r"%[0-9A-F]{2}", lambda match: match.group(0).lower(), text)
        return text

    def _session_token(self, expired: bool) -> str:
        """A session token, base64 with "+/=" in it as STS tokens are (their encoded forms matter).

        Stateless: a nonce, whether its session is over, and an HMAC under the signing key, so a
        second emulator sharing ``signing_key`` (a redirect target) accepts it too.
        """
        payload = secrets.token_bytes(31) + (b"\x01" if expired else b"\x00")
        mac = hmac.new(self._key(), payload, hashlib.sha256).digest()[:16]
        return base64.b64encode(payload + mac + b"\xfb\xff").decode("ascii")

    def _session_state(self, token: str) -> str:
        """``"live"``, ``"expired"`` or ``"invalid"`` (not issued under this signing key)."""
        try:
            raw = base64.b64decode(token, validate=True)
        except ValueError:
            return "invalid"
        payload, mac = raw[:32], raw[32:48]
        if len(raw) != 50 or not hmac.compare_digest(
            mac, hmac.new(self._key(), payload, hashlib.sha256).digest()[:16]
        ):
            return "invalid"
        return "expired" if payload[-1:] == b"\x01" else "live"

    def _signed_path(self, info: ResultInfo, *, expired: bool = False, expired_session: bool = False) -> str:
        """A presigned path+query for ``info``, recorded in ``issued_signatures``.

        ``expired_session`` adds an ``X-Amz-Security-Token`` whose session has already ended (S3
        then answers 400 ``ExpiredToken``). The path and query are styled by the ``signed_url_*``
        settings; ``X-Amz-Signature`` always comes last.
        """
        ttl = self._settings.signed_url_ttl
        issued_at = self._now() - (ttl + 60 if expired else 0)
        amz_date = datetime.fromtimestamp(issued_at, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
        path = f"{STORAGE_PREFIX}{quote(info.reference_id, safe='')}/{quote(info.filename, safe='')}"
        credential = f"{_FAKE_ACCESS_KEY}/{amz_date[:8]}/{_REGION}/s3/aws4_request"
        # Every URL carries a session token, as a presigned URL made with temporary credentials
        # does; ``expired_session`` issues one whose session is already over.
        session_token = self._session_token(expired=expired_session)
        with self._lock:
            self._issued_url_credentials += [credential, session_token]
        parameters = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": credential,
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(ttl),
            "X-Amz-SignedHeaders": "host",
        }
        parameters["X-Amz-Security-Token"] = session_token
        query = urlencode(parameters, quote_via=quote)
        if self._settings.signed_url_extra_query:
            query += "&" + self._settings.signed_url_extra_query
        path, query = self._styled(path), self._styled(query)
        if self._settings.signature_scope == "literal":
            signature = self._literal_signature(path, query)
        else:
            signature = self._signature(path, amz_date, str(ttl))
        with self._lock:
            self._issued_signatures.append(signature)
        return f"{path}?{query}&X-Amz-Signature={signature}"


class _StorageEndpoint(_HandlerBase):
    """``GET /storage/results/{referenceId}/{filename}?X-Amz-...``: S3-like presigned downloads."""

    def _s3_redirect(self, fault: Fault) -> None:
        """S3's redirects (User Guide, "Request routing"): 301 PermanentRedirect names the endpoint
        only in its XML body and ``x-amz-bucket-region`` (no Location); 307 TemporaryRedirect also
        sends a Location to the same request on that endpoint."""
        endpoint = self._fill_placeholders(fault.endpoint)
        status = fault.status if fault.status in (301, 307) else 301
        headers = {"x-amz-request-id": secrets.token_hex(8).upper(), "x-amz-bucket-region": fault.region}
        if status == 307:
            code, message = (
                "TemporaryRedirect",
                "Please re-send this request to the specified temporary endpoint.",
            )
            headers["Location"] = f"http://{endpoint}{self.path}"
        else:
            code, message = (
                "PermanentRedirect",
                "The bucket you are attempting to access must be addressed using the specified endpoint. "
                "Please send all future requests to this endpoint.",
            )
        body = _s3_error(code, message, Bucket="tao-results", Endpoint=endpoint)
        self._send(status, body, "application/xml", {**headers, **fault.headers})

    def _storage(self, path: str, parts: list[str], rolled: tuple[str, Fault] | None) -> None:
        if "Authorization" in self.headers:
            self._send_s3_error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query "
                "string parameter or the Authorization header should be specified",
                ArgumentName="Authorization",
                ArgumentValue=self.headers.get("Authorization", ""),
            )
            return
        query = parse_qs(self.path.split("?", 1)[1] if "?" in self.path else "", keep_blank_values=True)
        params = {key: values[0] for key, values in query.items()}
        required = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature")
        if any(name not in params for name in required):
            self._send_s3_error(403, "AccessDenied", "Access Denied")
            return
        emulator = self.emulator
        amz_date, expires = params["X-Amz-Date"], params["X-Amz-Expires"]
        if emulator._settings.signature_scope == "literal":
            raw_query = self.path.split("?", 1)[1]
            unsigned = "&".join(p for p in raw_query.split("&") if not p.startswith("X-Amz-Signature="))
            expected = emulator._literal_signature(path, unsigned)
        else:
            expected = emulator._signature(path, amz_date, expires)
        if (
            self.command != "GET"
            or params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256"
            or not hmac.compare_digest(expected, params["X-Amz-Signature"])
        ):
            self._send_s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
            )
            return
        try:
            issued = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
            lifetime = int(expires)
        except ValueError:
            self._send_s3_error(
                400, "AuthorizationQueryParametersError", "Invalid X-Amz-Date or X-Amz-Expires"
            )
            return
        if emulator._now() > issued + lifetime:
            self._send_s3_error(
                403,
                "AccessDenied",
                "Request has expired",
                X_Amz_Expires=expires,
                Expires=datetime.fromtimestamp(issued + lifetime, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            return
        if "X-Amz-Security-Token" in params:
            session = emulator._session_state(params["X-Amz-Security-Token"])
            if session == "invalid":
                self._send_s3_error(
                    400, "InvalidToken", "The provided token is malformed or otherwise invalid."
                )
                return
            if session == "expired":
                self._send_s3_error(400, "ExpiredToken", "The provided token has expired.")
                return
        result = emulator._lookup(self.reference_id or "")
        if result is None or len(parts) != 2 or unquote(parts[1]) != result.info.filename:
            self._send_s3_error(404, "NoSuchKey", "The specified key does not exist.", Key=path)
            return
        self._stream(result, self._success_fault(rolled))

    def _stream(self, result: _Result, fault: Fault | None) -> None:
        info, body = result.info, result.body
        start, end, status = 0, info.size, 200
        headers = {
            "Content-Type": _on_the_wire(info.content_type, info.header_charset),
            "ETag": info.etag,
            "Accept-Ranges": "bytes",
            "Last-Modified": self.date_time_string(int(time.time()) - 60),
            "x-amz-request-id": secrets.token_hex(8).upper(),
        }
        if info.content_disposition is not None:
            headers["Content-Disposition"] = _on_the_wire(info.content_disposition, info.header_charset)
        if info.content_encoding is not None:
            headers["Content-Encoding"] = info.content_encoding
        range_header = self.headers.get("Range")
        if range_header:
            parsed = _parse_range(range_header, info.size)
            if parsed is None:
                self._send_s3_error(
                    416, "InvalidRange", "The requested range is not satisfiable", RangeRequested=range_header
                )
                return
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
        total = end - start
        sent = 0
        try:
            if fault is not None and fault.kind == "overlong":
                self.close_connection = True
                headers["Transfer-Encoding"] = "chunked"
                self._start(status, headers, max(0, total - fault.extra))
                for chunk in body.chunks(start, end):
                    self.wfile.write(b"%x\r\n" % len(chunk))
                    self.wfile.write(chunk)
                    self.wfile.write(b"\r\n")
                    sent += len(chunk)
                self.wfile.write(b"0\r\n\r\n")
                return
            if fault is not None and fault.kind == "content_length":
                self.close_connection = True
                self._start(status, headers, None, fault.length_values)
                for chunk in body.chunks(start, end):
                    self.wfile.write(chunk)
                    sent += len(chunk)
                return
            limit = total
            if fault is not None and fault.kind == "truncate":
                self.close_connection = True
                limit = min(total, total // 2 if fault.truncate_at is None else max(0, fault.truncate_at))
            self._start(status, headers, total)
            for chunk in body.chunks(start, start + limit):
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            self.close_connection = True
        finally:
            with self.emulator._lock:
                self.emulator._stats["bytes_served"] += sent


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    match = _RANGE_RE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        length = int(last)
        if length == 0:
            return None
        return max(0, size - length), size
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    if start >= size or end <= start:
        return None
    return start, end


def _on_the_wire(value: str, charset: str) -> str:
    """``value`` as ``send_header`` must get it to put ``charset`` bytes on the wire (it writes Latin-1)."""
    return value.encode("utf-8").decode("latin-1") if charset == "utf-8" else value
