"""A lean HTTP session for ccxt's synchronous clients: the live broker's orders.

ccxt's sync client sends every request through a `requests.Session` (urllib3 below it): about
0.3-0.5 ms of Python per request on this machine, more than the rest of ccxt's own work on an
order (signing, building, parsing). `LeanSession` takes the session's place (ccxt calls only
`session.request`, `.headers`, `.cookies.clear()` and `.close()`): one kept-alive
`http.client` connection per host and thread, the request's head and body in one send, and the
answer read whole. What ccxt sees is what requests would hand it (status, reason, headers,
text), and every failure is raised as the `requests` exception ccxt maps (a timeout as
`requests.ReadTimeout`/`ConnectTimeout`, a refused or broken connection as
`requests.ConnectionError` "Connection aborted.", a certificate or TLS failure as
`requests.exceptions.SSLError`), so ccxt's error classes, and ours
(ccxt_errors.py), are unchanged. A kept connection the server has closed is seen before it is
reused (it reads as at its end) and replaced, never written to: a request is sent once, and
never resent here (the gateway decides that, after looking the order up). Certificates are
checked as requests checks them: against REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE when the
environment names one, else certifi's. Proxies (ccxt's, or the environment's HTTP(S)_PROXY,
which requests honours), or a body requests would build (files), go through a real
`requests.Session`.

`after_send`, when set, is called once the next request is written (before its answer is
read), then cleared: the live broker starts its state's fsync there (brokers/live/state.py),
while the order travels.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import threading
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict


class LeanResponse:
    """What ccxt reads of a `requests.Response`."""

    def __init__(self, url: str, status: int, reason: str, headers: CaseInsensitiveDict,
                 content: bytes) -> None:
        self.url = url
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self.content = content
        self.encoding = "utf-8"

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding or "utf-8", errors="replace")

    def raise_for_status(self) -> None:
        if 400 <= self.status_code < 600:
            kind = "Client" if self.status_code < 500 else "Server"
            raise requests.HTTPError(f"{self.status_code} {kind} Error: {self.reason} for url: "
                                     f"{self.url}", response=self)  # type: ignore[arg-type]


def _decoded(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return zlib.decompress(body, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    return body


def _requests_error(exc: BaseException, timeout_kind: type[requests.RequestException],
                    prefix: str) -> requests.RequestException | None:
    """The exception requests raises for this failure (None: not a network failure, e.g.
    KeyboardInterrupt; raised as it is): a timeout as `timeout_kind`, a certificate or TLS
    failure as requests' SSLError, the rest of the socket's and HTTP's as ConnectionError."""
    if isinstance(exc, TimeoutError):
        return timeout_kind(f"{prefix} timed out: {exc}")
    if isinstance(exc, ssl.SSLError):
        return requests.exceptions.SSLError(f"{prefix} {exc!r}")
    if isinstance(exc, OSError | http.client.HTTPException):
        return requests.ConnectionError(f"{prefix} {exc!r}")
    return None


class _OneSend:
    """http.client writes a request's head and its body in two sends: two packets on the
    wire (TCP_NODELAY), and a server that wakes for the head before the body is there. Told
    that a body follows (`body_follows`), the connection holds the head and writes both in
    one send."""

    body_follows = False
    _head: bytes | None = None

    def send(self, data: Any) -> None:
        if self.body_follows and self._head is None and isinstance(data, bytes):
            self._head, self.body_follows = data, False
            return
        head, self._head = self._head, None
        super().send(data if head is None else head + bytes(data))  # type: ignore[misc]


class _Connection(_OneSend, http.client.HTTPConnection):
    pass


class _TlsConnection(_OneSend, http.client.HTTPSConnection):
    pass


def _keep_alive(sock: socket.socket) -> None:
    """No delay on small writes; TCP keep-alive probes after 30 s idle, so a NAT or load
    balancer keeps the kept connection (or, if it dropped it, the socket reads as closed
    before an order is written into it)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        option = getattr(socket, name, None)  # Linux's; elsewhere the system's defaults
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    """A kept-alive connection the server closed (or sent something unasked on, or whose
    keep-alive probes went unanswered) reads ready."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):  # any descriptor number (select() stops at 1024)
            poller = select.poll()
            poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
            return bool(poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class LeanSession:
    """Drop-in for the `requests.Session` of a ccxt sync exchange (see the module docstring)."""

    def __init__(self) -> None:
        self.headers: CaseInsensitiveDict = CaseInsensitiveDict()
        self.cookies = requests.cookies.RequestsCookieJar()
        self._local = threading.local()
        self._fallback: requests.Session | None = None
        self._contexts: dict[bool, ssl.SSLContext] = {}
        self._environment_says: dict[tuple[str, str], bool] = {}
        self.after_send: Callable[[], None] | None = None

    def request(self, method: str, url: str, data: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float | None = None,
                proxies: Any = None, verify: bool = True, files: Any = None) -> Any:
        parts = urlsplit(url)
        if proxies or files or self._environment_applies(parts.scheme, parts.hostname, url):
            hook, self.after_send = self.after_send, None
            if hook is not None:  # requests cannot say when the request is out: now
                hook()
            if self._fallback is None:
                self._fallback = requests.Session()
            return self._fallback.request(method, url, data=data, headers=headers,
                                          timeout=timeout, proxies=proxies, verify=verify,
                                          files=files)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent_headers = dict(headers or {})
        if data is not None:
            sent_headers["Content-Length"] = str(len(data))
        connection = self._connection(parts.scheme, parts.hostname or "", parts.port, timeout,
                                      verify)
        connection.body_follows = bool(data)  # its head goes out with it, in one send
        try:
            connection.request(method, path, body=data, headers=sent_headers)
        except BaseException as exc:
            self._drop(connection)  # whatever stopped it, never reused half-written
            mapped = _requests_error(exc, requests.ConnectTimeout, "Connection aborted.")
            if mapped is None:
                raise
            raise mapped from exc
        try:
            hook, self.after_send = self.after_send, None
            if hook is not None:
                hook()
            answer = connection.getresponse()
            body = answer.read()
        except BaseException as exc:
            self._drop(connection)  # its answer unread: never reused
            mapped = _requests_error(exc, requests.ReadTimeout, "Connection aborted.")
            if mapped is None:
                raise
            raise mapped from exc
        received = CaseInsensitiveDict(answer.getheaders())
        if answer.will_close:
            self._drop(connection)
        encoding = received.get("Content-Encoding")
        if encoding and body:
            try:
                body = _decoded(body, encoding)
            except zlib.error as exc:
                raise requests.ConnectionError(f"Connection broken: {exc!r}") from exc
        return LeanResponse(url, answer.status, answer.reason, received, body)

    def _environment_applies(self, scheme: str, host: str | None, url: str) -> bool:
        """The environment sets a proxy for this host (read once per host)."""
        key = (scheme, host or "")
        says = self._environment_says.get(key)
        if says is None:
            says = self._environment_says[key] = bool(requests.utils.get_environ_proxies(url))
        return says

    def _connection(self, scheme: str, host: str, port: int | None, timeout: float | None,
                    verify: bool) -> _Connection | _TlsConnection:
        pool: dict[tuple[str, str, int | None], _Connection | _TlsConnection] = \
            self._local.__dict__.setdefault("pool", {})
        key = (scheme, host, port)
        connection = pool.get(key)
        if connection is not None and connection.sock is not None \
                and not _closed_by_peer(connection):
            connection.timeout = timeout
            connection.sock.settimeout(timeout)
            return connection
        if connection is not None:
            connection.close()
        if scheme == "https":
            connection = _TlsConnection(host, port, timeout=timeout,
                                        context=self._context(verify))
        else:
            connection = _Connection(host, port, timeout=timeout)
        try:
            connection.connect()
        except Exception as exc:
            connection.close()
            mapped = _requests_error(exc, requests.ConnectTimeout, "Connection refused:")
            if mapped is None:
                raise
            raise mapped from exc
        _keep_alive(connection.sock)
        pool[key] = connection
        return connection

    def _context(self, verify: bool) -> ssl.SSLContext:
        context = self._contexts.get(verify)
        if context is None:
            # verify=False (ccxt's option): unchecked, as requests does
            context = _verifying_context() if verify else ssl._create_unverified_context()
            self._contexts[verify] = context
        return context

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        pool = self._local.__dict__.get("pool", {})
        for key, kept in list(pool.items()):
            if kept is connection:
                del pool[key]

    def close(self) -> None:
        for connection in self._local.__dict__.get("pool", {}).values():
            connection.close()
        self._local.__dict__["pool"] = {}
        if self._fallback is not None:
            self._fallback.close()


def _verifying_context() -> ssl.SSLContext:
    """Certificates checked against what requests would use: the environment's bundle (a file
    or a folder), else certifi's."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        if os.path.isdir(bundle):
            return ssl.create_default_context(capath=bundle)
        return ssl.create_default_context(cafile=bundle)
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())
