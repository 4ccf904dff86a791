"""The live broker's HTTP session (cryptobot/exchange/lean_http.py) against a raw loopback
server: what ccxt gets back and which errors it maps, exactly as through `requests`; a kept
connection the server closed is replaced before a request is written to it, never resent."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address

import ccxt
import pytest
import requests

from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.exchange.lean_http import LeanSession


class RawServer:
    """Answers each request with `reply(request_number)`: (status line, headers, body, then
    close the connection?); counts the connections and requests it saw."""

    def __init__(self, reply, tls: ssl.SSLContext | None = None) -> None:
        self.reply = reply
        self.tls = tls
        self.requests = 0
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                return  # the client refused our certificate
        with conn:
            try:
                self._answer(conn)
            except ConnectionError:
                return  # the client dropped the connection (as LeanSession does on an error)

    def _answer(self, conn: socket.socket) -> None:
        buffered = b""
        while True:
            while b"\r\n\r\n" not in buffered:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffered += chunk
            head, buffered = buffered.split(b"\r\n\r\n", 1)
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), 0)
            while len(buffered) < length:
                buffered += conn.recv(65536)
            buffered = buffered[length:]
            self.requests += 1
            status, headers, body, close = self.reply(self.requests)
            lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}",
                     *[f"{k}: {v}" for k, v in headers.items()]]
            conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            if close:
                return

    def url(self, path: str = "/") -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.listener.close()


@pytest.fixture
def serve():
    servers = []

    def start(reply, tls: ssl.SSLContext | None = None) -> RawServer:
        servers.append(RawServer(reply, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def ok(body: dict, close: bool = False, **headers: str):
    return "200 OK", {"Content-Type": "application/json", **headers}, \
        json.dumps(body).encode(), close


def test_answers_as_requests_gives_them_on_one_kept_connection(serve):
    server = serve(lambda n: ok({"n": n}))
    session = LeanSession()
    for n in (1, 2, 3):
        answer = session.request("POST", server.url("/fapi/v1/order?x=1"), data=b"a=1",
                                 headers={"X-MBX-APIKEY": "k"}, timeout=2.0)
        assert (answer.status_code, json.loads(answer.text)) == (200, {"n": n})
        assert answer.headers["content-type"] == "application/json"  # any case, as requests
    assert server.connections == 1


def test_a_connection_the_server_closed_is_replaced_before_it_is_written_to(serve):
    server = serve(lambda n: ok({"n": n}, close=True))  # no "Connection: close" said
    session = LeanSession()
    assert json.loads(session.request("GET", server.url(), timeout=2.0).text) == {"n": 1}
    time.sleep(0.05)  # the close has reached us
    assert json.loads(session.request("GET", server.url(), timeout=2.0).text) == {"n": 2}
    assert (server.requests, server.connections) == (2, 2)  # each request sent once


def test_gzip_answers_are_decoded(serve):
    packed = gzip.compress(b'{"price": "1.5"}')
    server = serve(lambda n: ("200 OK", {"Content-Encoding": "gzip",
                                         "Content-Type": "application/json"}, packed, False))
    assert LeanSession().request("GET", server.url(), timeout=2.0).text == '{"price": "1.5"}'


def test_errors_are_the_ones_requests_raises(serve):
    def reply(n):
        if n == 1:
            time.sleep(0.5)
            return ok({})
        return "429 Too Many Requests", {"Retry-After": "7"}, b'{"code":-1003}', False

    server = serve(reply)
    session = LeanSession()
    with pytest.raises(requests.ReadTimeout):
        session.request("GET", server.url(), timeout=0.1)
    answer = session.request("GET", server.url(), timeout=2.0)
    with pytest.raises(requests.HTTPError):
        answer.raise_for_status()
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(requests.ConnectionError):
        session.request("GET", f"http://127.0.0.1:{port}/", timeout=2.0)


def test_ccxt_maps_its_errors_and_reads_retry_after_through_it(serve):
    def reply(n):
        if n == 1:
            time.sleep(0.5)
            return ok({})
        return ("429 Too Many Requests", {"Retry-After": "7", "Content-Type": "application/json"},
                b'{"code":-1003,"msg":"Too many requests"}', False)

    server = serve(reply)
    exchange = make_exchange("binanceusdm", rest_url=server.url(), rate_limit=False,
                             timeout_ms=100)
    assert isinstance(exchange.session, LeanSession)
    with pytest.raises(ccxt.RequestTimeout):
        exchange.fapiPublicGetTime()
    with pytest.raises(ccxt.DDoSProtection):  # what ccxt raises for a 429 through requests
        exchange.fapiPublicGetTime()
    assert exchange.last_response_headers["retry-after"] == "7"


def test_after_send_runs_once_the_request_is_written_before_its_answer(serve):
    def reply(n):
        time.sleep(0.2)
        return ok({"n": n})

    server = serve(reply)
    session = LeanSession()
    called: list[float] = []
    session.after_send = lambda: called.append(time.perf_counter())
    session.request("POST", server.url(), data=b"a=1", timeout=2.0)
    answered = time.perf_counter()
    assert len(called) == 1 and answered - called[0] >= 0.15  # not after the answer
    assert session.after_send is None  # once: the next request does not call it
    session.request("GET", server.url(), timeout=2.0)
    assert len(called) == 1


def test_a_proxy_the_environment_sets_is_used_as_requests_would(serve, monkeypatch):
    """HTTP_PROXY set: the request goes to the proxy (the raw server), as through requests; the
    after-send hook still runs, once."""
    proxy = serve(lambda n: ok({"via": "proxy"}))
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = LeanSession()
    called: list[int] = []
    session.after_send = lambda: called.append(1)
    answer = session.request("GET", "http://venue.invalid/fapi/v1/time", timeout=2.0)
    assert json.loads(answer.text) == {"via": "proxy"} and proxy.requests == 1
    assert called == [1] and session.after_send is None
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a host the proxy is not for: straight there
    direct = serve(lambda n: ok({"via": "direct"}))
    assert json.loads(LeanSession().request("GET", direct.url(), timeout=2.0).text) == \
        {"via": "direct"}


def _self_signed(folder) -> tuple[ssl.SSLContext, str]:
    """A server context with a certificate for 127.0.0.1 made here, and that certificate's file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopback venue")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(hours=1))
                   .not_valid_after(now + timedelta(hours=1))
                   .add_extension(x509.SubjectAlternativeName(
                       [x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "venue.pem", folder / "venue.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, str(cert_file)


def test_https_checks_the_venues_certificate_as_requests_would(serve, tmp_path, monkeypatch):
    """TLS on loopback: a certificate no bundle vouches for is refused (requests' error); the
    bundle the environment names (REQUESTS_CA_BUNDLE) is trusted, as requests trusts it."""
    context, certificate = _self_signed(tmp_path)
    server = serve(lambda n: ok({"n": n}), tls=context)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(requests.exceptions.SSLError):  # ccxt: ExchangeError, not retried
        LeanSession().request("GET", server.url(), timeout=2.0)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate)
    session = LeanSession()
    for n in (2, 3):  # (the refused handshake was connection 1)
        assert json.loads(session.request("GET", server.url(), timeout=2.0).text) == {"n": n - 1}
    assert server.connections == 2  # the second request on the kept TLS connection
    assert json.loads(LeanSession().request("GET", server.url(), timeout=2.0,
                                            verify=False).text) == {"n": 3}


def test_a_request_cut_short_after_it_was_written_leaves_no_half_used_connection(serve):
    """Anything that stops a request once written (here the after-send hook raising) drops its
    connection: the next request gets a clean one, and its own answer."""
    server = serve(lambda n: ok({"n": n}))
    session = LeanSession()

    def broken() -> None:
        raise RuntimeError("hook failed")

    session.after_send = broken
    with pytest.raises(RuntimeError, match="hook failed"):
        session.request("POST", server.url(), data=b"a=1", timeout=2.0)
    answer = session.request("GET", server.url(), timeout=2.0)
    # its own answer on a new connection (the server may count the dropped one's request
    # after this one's: each connection has a thread of its own)
    assert json.loads(answer.text)["n"] in (1, 2) and server.connections == 2
    (kept,) = session._local.pool.values()
    assert kept.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1


def test_a_requests_head_and_body_go_out_in_one_send(serve, monkeypatch):
    """One packet per order: http.client alone writes the head, then the body."""
    import http.client

    sends: list[bytes] = []
    send = http.client.HTTPConnection.send

    def counted(self, data):
        sends.append(bytes(data))
        return send(self, data)

    monkeypatch.setattr(http.client.HTTPConnection, "send", counted)
    server = serve(lambda n: ok({"n": n}))
    session = LeanSession()
    for body in (b"symbol=BTCUSDT&side=BUY&signature=ab12", b"x=1"):
        answer = session.request("POST", server.url("/fapi/v1/order"), data=body,
                                 headers={"X-MBX-APIKEY": "k"}, timeout=2.0)
        assert answer.status_code == 200
        assert len(sends) == 1 and sends[0].startswith(b"POST /fapi/v1/order HTTP/1.1\r\n")
        assert sends.pop().endswith(b"\r\n\r\n" + body)
    session.request("GET", server.url("/fapi/v1/time"), timeout=2.0)  # no body: its head
    assert len(sends) == 1 and sends[0].endswith(b"\r\n\r\n")
    assert server.requests == 3 and server.connections == 1
