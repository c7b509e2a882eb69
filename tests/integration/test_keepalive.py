"""Client keep-alive, pipelining, keepalive_timeout/keepalive_requests, and
upstream connection reuse."""

import time

import pytest

from conftest import RawConn, parse_responses
from origins import pattern_bytes

CONF = """
upstream echo { server <<echo>>; keepalive 16; }
upstream ngx { server <<nginx>>; keepalive 16; }
server {
    listen <<listen>>;
    keepalive_timeout 30s;
    location = /a { return 200 "a\\n"; }
    location = /b { return 200 "b\\n"; }
    location / { proxy_pass http://echo; }
    location /conn { proxy_pass http://ngx; }
}
"""


@pytest.fixture
def srv(portico, echo, nginx):
    return portico(CONF, echo=echo.addr, nginx=nginx.addr)


def req(path, extra="", method="GET"):
    return "%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (method, path, extra)


def test_two_requests_one_connection(srv):
    with RawConn(srv.port) as c:
        c.send(req("/a"))
        r1 = c.read_response()
        c.send(req("/gen/10"))
        r2 = c.read_response()
        c.send(req("/b"))
        r3 = c.read_response()
        assert not c.is_closed(timeout=0.3)
    assert (r1.status, r1.body) == (200, b"a\n")
    assert (r2.status, r2.body) == (200, pattern_bytes(10))
    assert (r3.status, r3.body) == (200, b"b\n")
    assert "close" not in r3.conn_tokens()


def test_pipelining_in_order(srv):
    data = (req("/a") + req("/gen/3000") + req("/b") + req("/body", "Content-Length: 5\r\n", "POST")
            + "hello" + req("/gen/1") + req("/a"))
    with RawConn(srv.port) as c:
        c.send(data)
        got = [c.read_response() for _ in range(6)]
    bodies = [r.body for r in got]
    assert [r.status for r in got] == [200] * 6
    assert bodies == [b"a\n", pattern_bytes(3000), b"b\n", b"hello", pattern_bytes(1), b"a\n"]


def test_pipelining_many_small(srv):
    n = 40
    data = "".join(req("/a" if i % 2 == 0 else "/gen/%d" % i) for i in range(n))
    with RawConn(srv.port) as c:
        c.send(data)
        got = [c.read_response() for _ in range(n)]
    for i, r in enumerate(got):
        assert r.status == 200
        assert r.body == (b"a\n" if i % 2 == 0 else pattern_bytes(i)), i


def test_pipelined_then_close(srv):
    data = req("/a") + req("/b", "Connection: close\r\n") + req("/a")
    with RawConn(srv.port) as c:
        c.send(data)
        raw = c.read_all(timeout=5)
    rs = parse_responses(raw)
    assert [b for _, _, b in rs] == [b"a\n", b"b\n"]
    assert "close" in rs[1][1].get("connection", "").lower()


def test_connection_close_honored(srv):
    with RawConn(srv.port) as c:
        c.send(req("/gen/100", "Connection: close\r\n"))
        r = c.read_response()
        assert r.status == 200
        assert "close" in r.conn_tokens()
        assert c.is_closed(timeout=2)


def test_http10_closes_by_default(srv):
    with RawConn(srv.port) as c:
        c.send("GET /a HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.body == b"a\n"
        assert c.is_closed(timeout=2)


def test_http10_keepalive_kept(srv):
    with RawConn(srv.port) as c:
        c.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert "keep-alive" in r.conn_tokens()
        assert r.header("content-length") == "2"
        c.send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r2 = c.read_response()
        assert r2.body == b"b\n"


def test_keepalive_timeout(portico):
    p = portico("""
        server {
            listen <<listen>>;
            keepalive_timeout 1s;
            location / { return 200 "x\\n"; }
        }
    """)
    with RawConn(p.port) as c:
        c.send(req("/"))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        assert not c.is_closed(timeout=0.5)
        assert c.is_closed(timeout=4), "idle connection not closed after keepalive_timeout 1s"
        assert time.monotonic() - t0 < 4


def test_keepalive_requests(portico):
    p = portico("""
        server {
            listen <<listen>>;
            keepalive_requests 3;
            location / { return 200 "x\\n"; }
        }
    """)
    with RawConn(p.port) as c:
        for i in range(2):
            c.send(req("/"))
            r = c.read_response()
            assert "close" not in r.conn_tokens()
        c.send(req("/"))
        r = c.read_response()
        assert r.status == 200
        assert "close" in r.conn_tokens()
        assert c.is_closed(timeout=2)


def test_upstream_connections_reused(srv, echo):
    with srv.client() as c:
        for i in range(20):
            r = c.get("/gen/%d" % i)
            assert r.status_code == 200
    # 2 workers, sequential requests: at most one upstream connection each.
    assert len(echo.requests) == 20
    assert echo.connections <= 2, "origin saw %d connections for 20 requests" % echo.connections


def test_upstream_reuse_across_client_connections(srv, echo):
    for i in range(10):
        with srv.client() as c:
            assert c.get("/gen/1").status_code == 200
    assert echo.connections <= 2, "origin saw %d connections for 10 requests" % echo.connections


def test_upstream_reuse_with_nginx(srv):
    seen = []
    with srv.client() as c:
        for i in range(10):
            r = c.get("/conn")
            assert r.status_code == 200
            seen.append(tuple(int(x) for x in r.text.split()))
    # nginx reports "$connection $connection_requests": reuse shows as a
    # connection_requests count above 1.
    assert max(n for _, n in seen) >= 5, seen
    assert len({conn for conn, _ in seen}) <= 2, seen


def test_origin_closing_connection_is_not_reused(srv, echo):
    with srv.client() as c:
        for i in range(5):
            r = c.get("/close")
            assert r.status_code == 200
            assert r.content == b"closing\n"
            r = c.get("/gen/3")
            assert r.status_code == 200
    assert len(echo.requests) == 10


def test_request_after_origin_idle_close(portico, echo):
    # keepalive pool entries the origin closed while idle must not break the
    # next request.
    p = portico("""
        upstream echo { server <<echo>>; keepalive 4; }
        server { listen <<listen>>; location / { proxy_pass http://echo; } }
    """, echo=echo.addr)
    with p.client() as c:
        assert c.get("/gen/1").status_code == 200
    # Close every origin-side connection (as an origin with a short idle
    # timeout would).
    with echo.lock:
        socks = list(echo.socks)
    for s in socks:
        try:
            s.shutdown(2)
        except OSError:
            pass
    time.sleep(0.3)
    for i in range(4):
        with p.client() as c:
            r = c.get("/gen/2")
            assert r.status_code == 200, r.text
            assert r.content == pattern_bytes(2)


@pytest.mark.long
def test_many_concurrent_keepalive_clients(srv, echo):
    import threading
    errors = []

    def worker(i):
        try:
            with srv.client() as c:
                for j in range(50):
                    r = c.get("/gen/%d" % (i * 50 + j))
                    if r.content != pattern_bytes(i * 50 + j):
                        errors.append((i, j, r.status_code))
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    assert len(echo.requests) == 40 * 50
    assert echo.connections <= 2 * 16 + 40  # pooled: far fewer than 2000
