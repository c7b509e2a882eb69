"""Request and response bodies: Content-Length and chunked uploads, large
streams both ways, client_max_body_size, Expect: 100-continue."""

import socket
import time

import pytest

import origins
from conftest import RawConn, sha256
from origins import pattern_bytes

CONF = """
upstream echo { server <<echo>>; keepalive 8; }
upstream cont { server <<cont>>; }
server {
    listen <<listen>>;
    client_max_body_size 200m;
    location / { proxy_pass http://echo; }
    location /small/ { client_max_body_size 1k; proxy_pass http://echo; }
    location /cont { proxy_pass http://cont; }
}
"""


@pytest.fixture(scope="module")
def cont_module():
    o = origins.ContinueOrigin()
    yield o
    o.stop()


@pytest.fixture(scope="module")
def srv(portico_module, echo_module, cont_module):
    p = portico_module(CONF, echo=echo_module.addr, cont=cont_module.addr)
    p.cont = cont_module
    return p


@pytest.fixture
def echo(echo_module):
    return echo_module


def test_post_content_length(srv, echo):
    body = pattern_bytes(1000, seed=3)
    r = srv.request("POST", "/body", content=body)
    assert r.status_code == 200
    assert r.content == body
    seen = echo.requests[-1]
    assert seen.body == body
    assert seen.header("content-length") == "1000" or seen.header("transfer-encoding") == "chunked"


def test_post_empty_body(srv, echo):
    r = srv.request("POST", "/body", content=b"")
    assert r.status_code == 200
    assert r.content == b""
    assert echo.requests[-1].body == b""


def test_post_chunked_request_body(srv, echo):
    chunks = [b"first-", b"second-", b"x" * 5000, b"-last"]
    data = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nX-Trailer: t\r\n\r\n"
    with RawConn(srv.port) as c:
        c.send(b"POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        # send the body in several pieces, splitting chunk framing
        for i in range(0, len(data), 1000):
            c.send(data[i:i + 1000])
            time.sleep(0.01)
        r = c.read_response()
    assert r.status == 200
    assert r.body == b"".join(chunks)
    assert echo.requests[-1].body == b"".join(chunks)


def test_chunked_with_extensions(srv, echo):
    data = b"5;name=value\r\nhello\r\n6;a=\"q\"\r\n world\r\n0\r\n\r\n"
    with RawConn(srv.port) as c:
        c.send(b"POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + data)
        r = c.read_response()
    assert r.status == 200
    assert r.body == b"hello world"


def gen_chunks(data, size):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_10mib_upload_and_download_content_length(srv, echo):
    data = pattern_bytes(10 * 1024 * 1024, seed=10)
    r = srv.request("POST", "/body", content=data, timeout=60)
    assert r.status_code == 200
    assert len(r.content) == len(data)
    assert sha256(r.content) == sha256(data)
    assert sha256(echo.requests[-1].body) == sha256(data)


def test_10mib_chunked_upload(srv, echo):
    data = pattern_bytes(10 * 1024 * 1024, seed=11)
    r = srv.request("POST", "/body", content=gen_chunks(data, 65536), timeout=60)
    assert r.status_code == 200
    assert sha256(r.content) == sha256(data)
    assert sha256(echo.requests[-1].body) == sha256(data)


def test_10mib_chunked_download(srv):
    n = 10 * 1024 * 1024
    r = srv.get("/chunked/%d" % n, timeout=60)
    assert r.status_code == 200
    assert sha256(r.content) == sha256(pattern_bytes(n))


def test_slow_reading_client_gets_everything(srv):
    # back-pressure: the client reads slowly, nothing is lost
    n = 4 * 1024 * 1024
    with RawConn(srv.port, timeout=20) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        c.send("GET /gen/%d HTTP/1.1\r\nHost: t\r\n\r\n" % n)
        time.sleep(1.0)
        r = c.read_response()
    assert r.status == 200
    assert sha256(r.body) == sha256(pattern_bytes(n))


def test_body_too_large_content_length_413(srv, echo):
    before = len(echo.requests)
    with RawConn(srv.port) as c:
        c.send(b"POST /small/x HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n" + b"z" * 2000)
        r = c.read_response()
        assert r.status == 413
        assert "close" in r.conn_tokens()
    assert len(echo.requests) == before, "the too-large request reached the origin"


def test_body_at_limit_ok(srv):
    r = srv.request("POST", "/small/body", content=b"q" * 1024)
    assert r.status_code == 200
    assert r.content == b"q" * 1024


def test_body_too_large_chunked_413(srv):
    data = b"".join(b"100\r\n" + b"k" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
    with RawConn(srv.port) as c:
        c.send(b"POST /small/body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            c.send(data)
        except OSError:
            pass
        raw = c.read_all(timeout=5)
    # Either a 413 before the origin answered, or the connection was closed
    # without a successful answer.
    assert not raw.startswith(b"HTTP/1.1 200"), raw[:200]
    if raw:
        assert raw.startswith(b"HTTP/1.1 413"), raw[:200]


def test_expect_100_continue(srv):
    body = b"continue-body-" * 100
    with RawConn(srv.port) as c:
        c.send("POST /cont HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
               % len(body))
        first = c.read_head()
        assert first.status == 100, "expected 100 Continue before the body, got %d" % first.status
        c.send(body)
        r = c.read_response()
    assert r.status == 200
    assert r.body == ("%d %s\n" % (len(body), sha256(body))).encode()


def test_expect_100_continue_via_proxy_to_echo(srv, echo):
    with RawConn(srv.port) as c:
        c.send("POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        first = c.read_head()
        assert first.status == 100
        c.send("abcde")
        r = c.read_response()
    assert r.status == 200
    assert r.body == b"abcde"


def test_expect_100_continue_too_large_gets_413_without_100(srv):
    with RawConn(srv.port) as c:
        c.send("POST /small/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        r = c.read_head()
    assert r.status == 413


def test_client_body_timeout(portico, echo):
    p = portico("""
        upstream echo { server <<echo>>; }
        server {
            listen <<listen>>;
            client_body_timeout 1s;
            location / { proxy_pass http://echo; }
        }
    """, echo=echo.addr)
    with RawConn(p.port, timeout=10) as c:
        c.send(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
        t0 = time.monotonic()
        raw = c.read_all(timeout=8)
        elapsed = time.monotonic() - t0
    assert elapsed < 6, "connection not closed after client_body_timeout"
    assert not raw.startswith(b"HTTP/1.1 200")
    if raw:
        assert raw.split(b" ")[1] in (b"408", b"400", b"502", b"504"), raw[:100]


def test_head_request_to_origin_body_not_forwarded(srv):
    with RawConn(srv.port) as c:
        c.send("HEAD /gen/100000 HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response(method="HEAD")
        assert r.status == 200
        assert r.header("content-length") == "100000"
        # nothing else must follow
        assert c.read_all(timeout=0.5) == b""


@pytest.mark.long
def test_100mib_both_ways(srv, echo):
    data = pattern_bytes(100 * 1024 * 1024, seed=100)
    r = srv.request("POST", "/body", content=gen_chunks(data, 1 << 20), timeout=300)
    assert r.status_code == 200
    assert sha256(r.content) == sha256(data)
