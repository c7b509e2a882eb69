"""Malformed and hostile requests (RFC 9112 strictness): the answer status,
Connection: close, the connection really closed, nothing reaches the origin."""

import pytest

from conftest import RawConn

CONF = """
upstream echo { server <<echo>>; keepalive 4; }
server {
    listen <<listen>>;
    large_client_header_buffers 4 1k;
    max_headers 20;
    location / { return 200 "ok\\n"; }
    location /p/ { proxy_pass http://echo; }
}
"""


@pytest.fixture(scope="module")
def srv(portico_module, echo_module):
    return portico_module(CONF, echo=echo_module.addr)


H = "Host: t\r\n"

BAD = [
    # (id, raw request, expected status)
    ("no-version", "GET /\r\n\r\n", 400),
    ("garbage-line", "HELLO\r\n\r\n", 400),
    ("extra-token", "GET / HTTP/1.1 extra\r\n" + H + "\r\n", 400),
    ("bad-method-char", "G(T / HTTP/1.1\r\n" + H + "\r\n", 400),
    ("lowercase-version", "GET / http/1.1\r\n" + H + "\r\n", 400),
    ("target-not-origin-form", "GET foo HTTP/1.1\r\n" + H + "\r\n", 400),
    ("asterisk-with-get", "GET * HTTP/1.1\r\n" + H + "\r\n", 400),
    ("ctl-in-target", "GET /a\x01b HTTP/1.1\r\n" + H + "\r\n", 400),
    ("obs-fold", "GET / HTTP/1.1\r\n" + H + "X-A: a\r\n b\r\n\r\n", 400),
    ("obs-fold-tab", "GET / HTTP/1.1\r\n" + H + "X-A: a\r\n\tb\r\n\r\n", 400),
    ("space-before-colon", "GET / HTTP/1.1\r\n" + H + "X-A : a\r\n\r\n", 400),
    ("space-in-name", "GET / HTTP/1.1\r\n" + H + "X A: a\r\n\r\n", 400),
    ("empty-name", "GET / HTTP/1.1\r\n" + H + ": a\r\n\r\n", 400),
    ("no-colon", "GET / HTTP/1.1\r\n" + H + "JustAName\r\n\r\n", 400),
    ("bare-cr-in-value", "GET / HTTP/1.1\r\n" + H + "X-A: a\rb\r\n\r\n", 400),
    ("nul-in-value", "GET / HTTP/1.1\r\n" + H + "X-A: a\x00b\r\n\r\n", 400),
    ("ctl-in-value", "GET / HTTP/1.1\r\n" + H + "X-A: a\x01b\r\n\r\n", 400),
    ("cl-and-te", "POST / HTTP/1.1\r\n" + H + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-and-cl", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
    ("cl-not-number", "POST / HTTP/1.1\r\n" + H + "Content-Length: abc\r\n\r\n", 400),
    ("cl-negative", "POST / HTTP/1.1\r\n" + H + "Content-Length: -1\r\n\r\n", 400),
    ("cl-plus", "POST / HTTP/1.1\r\n" + H + "Content-Length: +5\r\n\r\nhello", 400),
    ("cl-hex", "POST / HTTP/1.1\r\n" + H + "Content-Length: 0x5\r\n\r\nhello", 400),
    ("cl-overflow", "POST / HTTP/1.1\r\n" + H + "Content-Length: 99999999999999999999999\r\n\r\n", 400),
    ("cl-list-conflict", "POST / HTTP/1.1\r\n" + H + "Content-Length: 1, 2\r\n\r\nab", 400),
    ("cl-dup-conflict", "POST / HTTP/1.1\r\n" + H + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    ("cl-empty", "POST / HTTP/1.1\r\n" + H + "Content-Length:\r\n\r\n", 400),
    ("te-in-http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-gzip-chunked", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    ("te-chunked-gzip", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    ("te-identity", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: identity\r\n\r\n", 400),
    ("te-chunked-twice", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-chunked-twice-fields", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("http2-line", "GET / HTTP/2.0\r\n" + H + "\r\n", 505),
    ("http3-line", "GET / HTTP/3.0\r\n" + H + "\r\n", 505),
    ("no-host-11", "GET / HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("bad-host-chars", "GET / HTTP/1.1\r\nHost: bad host\r\n\r\n", 400),
    ("request-line-too-long", "GET /" + "a" * 1100 + " HTTP/1.1\r\n" + H + "\r\n", 414),
    ("head-too-big", "GET / HTTP/1.1\r\n" + H + "".join("X-Big-%d: %s\r\n" % (i, "v" * 900) for i in range(6)) + "\r\n", 431),
    ("too-many-headers", "GET / HTTP/1.1\r\n" + H + "".join("X-H%d: v\r\n" % i for i in range(25)) + "\r\n", 431),
]


@pytest.mark.parametrize("raw,status", [(r, s) for _, r, s in BAD], ids=[i for i, _, _ in BAD])
def test_malformed_rejected(srv, raw, status):
    with RawConn(srv.port) as c:
        # a pipelined valid request after the bad one must never be answered
        c.send(raw.encode("latin-1") + b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == status, "expected %d, got %d %r" % (status, r.status, r.body[:200])
        assert "close" in r.conn_tokens(), "error response without Connection: close: %r" % r.headers
        rest = c.read_all(timeout=3)
        assert rest == b"", "data after the error response: %r" % rest[:200]
        assert c.eof, "connection not closed after %d" % status


@pytest.mark.parametrize("raw,status", [(r, s) for _, r, s in BAD if "Host" in r or "HTTP/1.0" in r],
                         ids=[i for i, r, _ in BAD if "Host" in r or "HTTP/1.0" in r])
def test_malformed_never_reaches_origin(srv, echo_module, raw, status):
    raw = raw.replace(" / HTTP", " /p/x HTTP", 1)
    before = len(echo_module.requests)
    with RawConn(srv.port) as c:
        c.send(raw.encode("latin-1"))
        r = c.read_response()
        assert r.status == status
    assert len(echo_module.requests) == before, "malformed request reached the origin"


def test_smuggling_cl_te_not_forwarded(srv, echo_module):
    before = len(echo_module.requests)
    data = ("POST /p/x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
            "0\r\n\r\nGET /p/smuggled HTTP/1.1\r\nHost: t\r\n\r\n")
    with RawConn(srv.port) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == 400
        assert c.read_all(timeout=2) == b""
    assert len(echo_module.requests) == before


def test_bad_chunk_size_in_request_body(srv, echo_module):
    with RawConn(srv.port) as c:
        c.send("POST /p/body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
        raw = c.read_all(timeout=5)
    assert not raw.startswith(b"HTTP/1.1 200"), raw[:200]
    if raw:
        assert raw.startswith(b"HTTP/1.1 400"), raw[:200]


GOOD = [
    ("lone-lf", "GET / HTTP/1.1\nHost: t\n\n"),
    ("leading-empty-lines", "\r\n\r\nGET / HTTP/1.1\r\n" + H + "\r\n"),
    ("http10-no-host", "GET / HTTP/1.0\r\n\r\n"),
    ("absolute-form", "GET http://t/ HTTP/1.1\r\nHost: t\r\n\r\n"),
    ("tab-in-value", "GET / HTTP/1.1\r\n" + H + "X-A: a\tb\r\n\r\n"),
    ("mixed-case-names", "GET / HTTP/1.1\r\nhOsT: t\r\nuSeR-aGeNt: x\r\n\r\n"),
    ("long-header-line-within-limit", "GET / HTTP/1.1\r\n" + H + "X-Long: " + "v" * 2000 + "\r\n\r\n"),
    ("max-headers-exactly", "GET / HTTP/1.1\r\n" + H + "".join("X-H%d: v\r\n" % i for i in range(19)) + "\r\n"),
    ("te-chunked-mixed-case", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"),
    ("utf8-in-value", "GET / HTTP/1.1\r\n" + H + "X-U: caf\xc3\xa9\r\n\r\n"),
]


@pytest.mark.parametrize("raw", [r for _, r in GOOD], ids=[i for i, _ in GOOD])
def test_lenient_but_valid_accepted(srv, raw):
    with RawConn(srv.port) as c:
        c.send(raw.encode("latin-1"))
        r = c.read_response()
    assert r.status == 200, r
    assert r.body == b"ok\n"


def test_duplicate_equal_content_length_merged(srv, echo_module):
    with RawConn(srv.port) as c:
        c.send("POST /p/body HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello")
        r = c.read_response()
    assert r.status == 200
    assert r.body == b"hello"
    seen = echo_module.requests[-1]
    assert seen.header_all("content-length") in (["5"], [])
    assert seen.body == b"hello"


def test_error_then_server_still_fine(srv):
    for _ in range(5):
        with RawConn(srv.port) as c:
            c.send("\x00\x01\x02garbage\r\n\r\n")
            c.read_all(timeout=2)
    r = srv.get("/")
    assert r.status_code == 200


def test_binary_garbage(srv):
    import os
    with RawConn(srv.port) as c:
        c.send(os.urandom(4096))
        raw = c.read_all(timeout=3)
    assert c.eof
    if raw:
        assert raw.startswith(b"HTTP/1.1 4"), raw[:100]


def test_tls_client_hello_on_plain_port(srv):
    hello = bytes.fromhex("16030100a5010000a10303") + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00"
    with RawConn(srv.port) as c:
        c.send(hello)
        raw = c.read_all(timeout=3)
    assert c.eof
    if raw:
        assert raw.startswith(b"HTTP/1.1 400"), raw[:100]
