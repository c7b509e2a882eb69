"""Origin failures and client-side timeouts: 502/504, truncated responses,
client_header_timeout, send_timeout, and that portico stays healthy."""

import socket
import threading
import time

import pytest

import origins
from conftest import RawConn, free_port


def make(portico, origin, cls, extra="", read_timeout="1s"):
    o = origin(cls)
    p = portico("""
        upstream o { server <<o>>; }
        server {
            listen <<listen>>;
            proxy_read_timeout %s;
            %s
            location / { proxy_pass http://o; }
            location = /alive { return 200 "alive\\n"; }
        }
    """ % (read_timeout, extra), o=o.addr)
    return p, o


def assert_alive(p):
    r = p.get("/alive")
    assert r.status_code == 200
    assert r.content == b"alive\n"


def test_connection_refused_502(portico):
    dead = free_port()
    p = portico("""
        upstream o { server 127.0.0.1:<<dead>>; }
        server {
            listen <<listen>>;
            location / { proxy_pass http://o; }
            location = /alive { return 200 "alive\\n"; }
        }
    """, dead=dead)
    t0 = time.monotonic()
    r = p.get("/x")
    assert r.status_code == 502
    assert time.monotonic() - t0 < 3
    assert_alive(p)


def test_hang_504_after_read_timeout(portico, origin):
    p, o = make(portico, origin, origins.HangOrigin)
    t0 = time.monotonic()
    r = p.get("/x", timeout=15)
    elapsed = time.monotonic() - t0
    assert r.status_code == 504
    assert 0.9 <= elapsed < 4, elapsed
    assert_alive(p)


def test_reset_mid_body_closes_client(portico, origin):
    p, o = make(portico, origin, origins.ResetMidBodyOrigin)
    with RawConn(p.port, timeout=10) as c:
        c.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        head = c.read_head()
        t0 = time.monotonic()
        body = c.read_all(timeout=8)
        elapsed = time.monotonic() - t0
    assert head.status == 200
    assert head.header("content-length") == "100000"
    assert c.eof, "connection not closed after the origin reset (hung for %.1fs)" % elapsed
    assert len(body) < 100000
    assert elapsed < 5
    assert_alive(p)


def test_close_early_closes_client(portico, origin):
    p, o = make(portico, origin, origins.CloseEarlyOrigin)
    with RawConn(p.port, timeout=10) as c:
        c.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        head = c.read_head()
        body = c.read_all(timeout=8)
    assert head.status == 200
    assert head.header("content-length") == "5000"
    assert c.eof, "connection not closed after the origin closed early"
    assert len(body) == 100
    assert_alive(p)


def read_chunked_outcome(c):
    """Reads a response; returns (head, raw body, complete) where complete
    says whether a full valid chunked body arrived."""
    try:
        head = c.read_head()
    except EOFError:
        raise AssertionError("connection closed without any response: expected a 502 "
                             "(no response head had been sent yet)")
    raw = c.read_all(timeout=5)
    complete = raw.endswith(b"0\r\n\r\n")
    return head, raw, complete


def test_invalid_chunked_early_502_or_closed(portico, origin):
    p, o = make(portico, origin, origins.InvalidChunkedOrigin)
    with RawConn(p.port, timeout=10) as c:
        c.send("GET /early HTTP/1.1\r\nHost: t\r\n\r\n")
        head, raw, complete = read_chunked_outcome(c)
    if head.status != 502:
        assert head.status == 200
        assert not complete, "invalid chunked body was passed on as a complete message"
        assert c.eof
    assert b"broken" not in raw
    assert_alive(p)


def test_invalid_chunked_late_closed(portico, origin):
    p, o = make(portico, origin, origins.InvalidChunkedOrigin)
    with RawConn(p.port, timeout=10) as c:
        c.send("GET /late HTTP/1.1\r\nHost: t\r\n\r\n")
        head, raw, complete = read_chunked_outcome(c)
    assert head.status == 200
    assert not complete
    assert c.eof
    assert b"broken" not in raw
    assert_alive(p)


def test_bad_response_head_502(portico, origin):
    p, o = make(portico, origin, origins.BadHeadOrigin)
    r = p.get("/x")
    assert r.status_code == 502
    assert_alive(p)


def test_502_is_not_cached_in_pool(portico, origin):
    # after an origin error, the next request still reaches a healthy origin
    p, o = make(portico, origin, origins.EchoOrigin)
    with p.client() as c:
        assert c.get("/status/200").status_code == 200
        assert c.get("/close").status_code == 200
        assert c.get("/gen/5").content == origins.pattern_bytes(5)


def test_slow_response_within_timeout(portico, origin):
    # proxy_read_timeout is between two reads, not for the whole response
    p, o = make(portico, origin, origins.SlowOrigin, read_timeout="2s")
    r = p.get("/slow/6/500", timeout=15)  # 6 pieces, 500 ms apart: 3 s in all
    assert r.status_code == 200
    assert len(r.content) == 6 * origins.SlowOrigin.piece_len


def test_slow_upload_not_cut_by_read_timeout(portico, origin):
    # proxy_read_timeout runs while waiting for the origin's answer, i.e.
    # once the request went out, not while the client is still uploading
    p, o = make(portico, origin, origins.EchoOrigin, read_timeout="1s")
    pieces = [b"%d" % i * 1000 for i in range(5)]
    with RawConn(p.port, timeout=15) as c:
        c.send("POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % sum(map(len, pieces)))
        for piece in pieces:
            time.sleep(0.6)
            c.send(piece)
        r = c.read_response()
    assert r.status == 200, "status %d after a 3 s upload with proxy_read_timeout 1s" % r.status
    assert r.body == b"".join(pieces)


def test_client_header_timeout(portico):
    p = portico("""
        server {
            listen <<listen>>;
            client_header_timeout 1s;
            location / { return 200 "x\\n"; }
        }
    """)
    with RawConn(p.port, timeout=10) as c:
        c.send("GET / HTTP/1.1\r\nHost: t\r\n")
        t0 = time.monotonic()
        raw = c.read_all(timeout=6)
        elapsed = time.monotonic() - t0
    assert c.eof, "partial head: connection still open after 6 s"
    assert 0.8 <= elapsed < 4, elapsed
    if raw:
        assert raw.startswith(b"HTTP/1.1 408"), raw[:80]


def test_client_header_timeout_slowloris(portico):
    # a byte every 300 ms must not keep the connection alive past the timeout
    p = portico("""
        server {
            listen <<listen>>;
            client_header_timeout 1s;
            location / { return 200 "x\\n"; }
        }
    """)
    head = b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-Slow: " + b"a" * 100
    with RawConn(p.port, timeout=10) as c:
        t0 = time.monotonic()
        closed = False
        for b in head:
            try:
                c.send(bytes([b]))
            except OSError:
                closed = True
                break
            if c.is_closed(timeout=0.3):
                closed = True
                break
            if time.monotonic() - t0 > 5:
                break
        elapsed = time.monotonic() - t0
    assert closed, "slowloris connection survived %.1fs" % elapsed
    assert elapsed < 4


def test_idle_connection_without_request_closed(portico):
    p = portico("""
        server {
            listen <<listen>>;
            client_header_timeout 1s;
            keepalive_timeout 1s;
            location / { return 200 "x\\n"; }
        }
    """)
    with RawConn(p.port, timeout=10) as c:
        assert c.is_closed(timeout=4)


def test_send_timeout_unread_response(portico, origin):
    p, o = make(portico, origin, origins.EchoOrigin, extra="send_timeout 1s;", read_timeout="10s")
    n = 32 * 1024 * 1024
    with RawConn(p.port, timeout=10) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.send("GET /gen/%d HTTP/1.1\r\nHost: t\r\n\r\n" % n)
        head = c.read_head()
        assert head.status == 200
        time.sleep(3)  # do not read: portico cannot send for longer than send_timeout
        total = len(c.buf)
        c.buf = bytearray()
        try:
            while True:
                data = c.sock.recv(1 << 20)
                if not data:
                    break
                total += len(data)
        except (socket.timeout, ConnectionResetError):
            pass
    assert total < n, "the whole response arrived although the client did not read for 3 s"
    assert_alive(p)


def test_many_errors_do_not_leak_or_crash(portico, origin):
    p, o = make(portico, origin, origins.ResetMidBodyOrigin)
    for _ in range(10):
        with RawConn(p.port, timeout=10) as c:
            c.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
            c.read_all(timeout=5)
    assert_alive(p)


def test_client_abort_mid_response(portico, origin):
    # the client goes away while a slow response streams: no crash, the
    # origin connection is dropped, the server keeps working
    p, o = make(portico, origin, origins.SlowOrigin)
    c = RawConn(p.port, timeout=5)
    c.send("GET /slow/20/100 HTTP/1.1\r\nHost: t\r\n\r\n")
    c.read_head()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    time.sleep(0.5)
    assert_alive(p)
