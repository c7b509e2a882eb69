"""Connection upgrades (WebSocket-style): 101 passed through, then a byte
tunnel in both directions."""

import pytest

import origins
from conftest import RawConn

UPGRADE_REQ = ("GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


@pytest.fixture(scope="module")
def up_module():
    o = origins.UpgradeOrigin()
    yield o
    o.stop()


@pytest.fixture(scope="module")
def srv(portico_module, up_module, echo_module):
    up, echo = up_module, echo_module
    p = portico_module("""
        upstream up { server <<up>>; }
        upstream echo { server <<echo>>; keepalive 4; }
        server {
            listen <<listen>>;
            proxy_read_timeout 5s;
            location /ws { proxy_pass http://up; }
            location /plain { proxy_pass http://echo; }
            location = /ret { return 200 "ret\\n"; }
        }
    """, up=up.addr, echo=echo.addr)
    p.up = up
    return p


def recv_exact(c, n):
    out = b""
    while len(out) < n:
        if c.buf:
            out += c.buf
            c.buf = bytearray()
            continue
        data = c.sock.recv(65536)
        if not data:
            break
        out += data
    return out


def test_websocket_tunnel_echo(srv):
    with RawConn(srv.port, timeout=5) as c:
        c.send(UPGRADE_REQ)
        r = c.read_response()
        assert r.status == 101
        assert r.header("upgrade", "").lower() == "websocket"
        assert "upgrade" in r.conn_tokens()
        assert r.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        c.send(b"hello")
        assert recv_exact(c, 5) == b"hello"
        big = origins.pattern_bytes(300000, seed=5)
        c.send(big)
        assert recv_exact(c, len(big)) == big
        c.send(b"again")
        assert recv_exact(c, 5) == b"again"


def test_origin_sees_upgrade_headers(srv):
    with RawConn(srv.port) as c:
        c.send(UPGRADE_REQ)
        assert c.read_response().status == 101
    seen = srv.up.requests[-1]
    assert seen.header("upgrade", "").lower() == "websocket"
    assert "upgrade" in seen.header("connection", "").lower()
    assert seen.header("sec-websocket-key") == "dGhlIHNhbXBsZSBub25jZQ=="


def test_bytes_sent_with_the_upgrade_request(srv):
    with RawConn(srv.port) as c:
        c.send(UPGRADE_REQ + "early-bytes")
        r = c.read_response()
        assert r.status == 101
        assert recv_exact(c, 11) == b"early-bytes"


def test_client_half_close_closes_tunnel(srv):
    import socket
    with RawConn(srv.port) as c:
        c.send(UPGRADE_REQ)
        assert c.read_response().status == 101
        c.send(b"bye")
        assert recv_exact(c, 3) == b"bye"
        c.sock.shutdown(socket.SHUT_WR)
        assert c.is_closed(timeout=5)


def test_upgrade_to_non_upgrading_origin_is_plain_http(srv):
    with RawConn(srv.port) as c:
        c.send(UPGRADE_REQ.replace("/ws", "/plain/gen/4"))
        r = c.read_response()
        assert r.status == 200
        assert r.body == origins.pattern_bytes(4)
        # the connection is still HTTP
        c.send("GET /ret HTTP/1.1\r\nHost: t\r\n\r\n")
        r2 = c.read_response()
        assert r2.body == b"ret\n"


def test_upgrade_on_return_location_is_plain_http(srv):
    with RawConn(srv.port) as c:
        c.send(UPGRADE_REQ.replace("/ws", "/ret"))
        r = c.read_response()
        assert r.status == 200
        assert r.body == b"ret\n"


def test_many_tunnels(srv):
    conns = []
    try:
        for i in range(20):
            c = RawConn(srv.port)
            c.send(UPGRADE_REQ)
            assert c.read_response().status == 101
            conns.append(c)
        for i, c in enumerate(conns):
            msg = b"msg-%d" % i
            c.send(msg)
            assert recv_exact(c, len(msg)) == msg
    finally:
        for c in conns:
            c.close()
