"""PROXY protocol (v1/v2) on listeners and towards origins, and the real
client address (set_real_ip_from, real_ip_header, real_ip_recursive)."""

import socket
import struct
import time

import pytest

from conftest import RawConn
from origins import PP2_SIG


def pp2(src, dst, sport, dport):
    payload = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return PP2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(payload)) + payload


@pytest.fixture(scope="module")
def pp(portico_module, echo_module):
    p = portico_module("""
        upstream echo { server <<echo>>; }
        server {
            listen <<listen>> proxy_protocol;
            location / { proxy_pass http://echo; }
            location = /addr { return 200 "$remote_addr\\n"; }
        }
    """, echo=echo_module.addr)
    return p


def xff(echo):
    return ", ".join(echo.requests[-1].header_all("x-forwarded-for"))


def test_v1_accepted(pp, echo_module):
    echo = echo_module
    with RawConn(pp.port) as c:
        c.send("PROXY TCP4 203.0.113.7 127.0.0.1 56324 %d\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n" % pp.port)
        r = c.read_response()
    assert r.status == 200
    assert xff(echo) == "203.0.113.7"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any(e.get("client") == "203.0.113.7" for e in pp.access_log()):
            break
        time.sleep(0.05)
    assert any(e.get("client") == "203.0.113.7" for e in pp.access_log()), pp.access_log()


def test_v1_keepalive_after_header(pp, echo_module):
    echo = echo_module
    with RawConn(pp.port) as c:
        c.send("PROXY TCP4 203.0.113.8 127.0.0.1 1000 %d\r\n" % pp.port)
        for _ in range(3):
            c.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
            assert c.read_response().status == 200
            assert xff(echo) == "203.0.113.8"


def test_v1_ipv6(pp, echo_module):
    echo = echo_module
    with RawConn(pp.port) as c:
        c.send("PROXY TCP6 2001:db8::1 ::1 4000 %d\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n" % pp.port)
        r = c.read_response()
    assert r.status == 200
    assert xff(echo) == "2001:db8::1"


def test_v1_unknown_uses_socket_address(pp, echo_module):
    echo = echo_module
    with RawConn(pp.port) as c:
        c.send("PROXY UNKNOWN\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
    assert r.status == 200
    assert xff(echo) == "127.0.0.1"


def test_v2_accepted(pp, echo_module):
    echo = echo_module
    with RawConn(pp.port) as c:
        c.send(pp2("198.51.100.20", "127.0.0.1", 40000, pp.port) + b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
    assert r.status == 200
    assert xff(echo) == "198.51.100.20"


def test_v1_header_split_across_packets(pp, echo_module):
    echo = echo_module
    import time
    with RawConn(pp.port) as c:
        c.send("PROXY TCP4 203.0.113.9 127.0.")
        time.sleep(0.2)
        c.send("0.1 5 %d\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n" % pp.port)
        assert c.read_response().status == 200
    assert xff(echo) == "203.0.113.9"


@pytest.mark.parametrize("data", [
    b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n",
    b"PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n",
    b"PROXY TCP4 1.2.3.4 127.0.0.1 99999 80\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n",
    b"PROXY " + b"A" * 200 + b"\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n",
    b"PROXY TCP4 1.2.3.4 127.0.0.1 1 2\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n",
], ids=["missing", "bad-ip", "bad-port", "too-long", "lf-only"])
def test_bad_or_missing_header_rejected(pp, echo_module, data):
    echo = echo_module
    before = len(echo.requests)
    with RawConn(pp.port) as c:
        c.send(data)
        raw = c.read_all(timeout=3)
    assert c.eof
    assert not raw.startswith(b"HTTP/1.1 200"), raw[:200]
    if raw:
        assert raw.startswith(b"HTTP/1.1 400"), raw[:200]
    assert len(echo.requests) == before


def test_real_ip_header_proxy_protocol(portico):
    p = portico("""
        server {
            listen <<listen>> proxy_protocol;
            set_real_ip_from 127.0.0.1;
            real_ip_header proxy_protocol;
            location = /addr { return 200 "$remote_addr\\n"; }
        }
    """)
    with RawConn(p.port) as c:
        c.send("PROXY TCP4 203.0.113.50 127.0.0.1 1 %d\r\nGET /addr HTTP/1.1\r\nHost: t\r\n\r\n" % p.port)
        assert c.read_response().body == b"203.0.113.50\n"


def test_send_proxy_v1_to_origin(portico, echo):
    p = portico("""
        upstream echo { server <<echo>> send_proxy; }
        server { listen <<listen>>; location / { proxy_pass http://echo; } }
    """, echo=echo.addr)
    with RawConn(p.port) as c:
        c.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().status == 200
        client_port = c.sock.getsockname()[1]
    proxy = echo.requests[-1].proxy
    assert proxy is not None, "origin got no PROXY header"
    assert proxy["version"] == 1
    assert proxy["proto"] == "TCP4"
    assert proxy["src"] == "127.0.0.1"
    assert proxy["sport"] == client_port
    assert proxy["dst"] == "127.0.0.1"
    assert proxy["dport"] == p.port


def test_send_proxy_v2_to_origin(portico, echo):
    p = portico("""
        upstream echo { server <<echo>> send_proxy_v2; }
        server { listen <<listen>>; location / { proxy_pass http://echo; } }
    """, echo=echo.addr)
    with RawConn(p.port) as c:
        c.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().status == 200
        client_port = c.sock.getsockname()[1]
    proxy = echo.requests[-1].proxy
    assert proxy is not None and proxy["version"] == 2
    assert proxy["command"] == 1
    assert proxy["src"] == "127.0.0.1"
    assert proxy["sport"] == client_port
    assert proxy["dport"] == p.port


def test_proxy_protocol_chain(portico, echo):
    # client -> (PROXY in) portico -> (PROXY out) origin: the original client
    # address travels through
    p = portico("""
        upstream echo { server <<echo>> send_proxy; }
        server { listen <<listen>> proxy_protocol; location / { proxy_pass http://echo; } }
    """, echo=echo.addr)
    with RawConn(p.port) as c:
        c.send("PROXY TCP4 192.0.2.44 127.0.0.1 5555 %d\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n" % p.port)
        assert c.read_response().status == 200
    proxy = echo.requests[-1].proxy
    assert proxy["src"] == "192.0.2.44"
    assert proxy["sport"] == 5555


def test_send_proxy_without_keepalive_mixup(portico, echo):
    # two different clients must not share an origin connection whose PROXY
    # header names the other one
    p = portico("""
        upstream echo { server <<echo>> send_proxy; keepalive 8; }
        server { listen <<listen>> proxy_protocol; location / { proxy_pass http://echo; } }
    """, echo=echo.addr)
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        with RawConn(p.port) as c:
            c.send("PROXY TCP4 %s 127.0.0.1 7000 %d\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n" % (ip, p.port))
            assert c.read_response().status == 200
        assert echo.requests[-1].proxy["src"] == ip


REALIP = """
server {
    listen <<listen>>;
    <<trust>>
    real_ip_header X-Forwarded-For;
    <<recursive>>
    location = /addr { return 200 "$remote_addr\\n"; }
}
"""


def addr(p, xff):
    with RawConn(p.port) as c:
        c.send("GET /addr HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: %s\r\n\r\n" % xff)
        return c.read_response().body.decode().strip()


def test_real_ip_from_trusted(portico):
    p = portico(REALIP, trust="set_real_ip_from 127.0.0.1;", recursive="")
    assert addr(p, "198.51.100.9") == "198.51.100.9"
    log = p.wait_access_log(1)
    assert log[-1]["client"] == "198.51.100.9"


def test_real_ip_untrusted_ignored(portico):
    p = portico(REALIP, trust="set_real_ip_from 10.0.0.0/8;", recursive="")
    assert addr(p, "198.51.100.9") == "127.0.0.1"


def test_real_ip_cidr(portico):
    p = portico(REALIP, trust="set_real_ip_from 127.0.0.0/8;", recursive="")
    assert addr(p, "198.51.100.10") == "198.51.100.10"


def test_real_ip_recursive_off_takes_last(portico):
    p = portico(REALIP, trust="set_real_ip_from 127.0.0.1; set_real_ip_from 10.0.0.0/8;",
                recursive="real_ip_recursive off;")
    assert addr(p, "198.51.100.9, 10.1.2.3") == "10.1.2.3"


def test_real_ip_recursive_on_skips_trusted(portico):
    p = portico(REALIP, trust="set_real_ip_from 127.0.0.1; set_real_ip_from 10.0.0.0/8;",
                recursive="real_ip_recursive on;")
    assert addr(p, "198.51.100.9, 10.1.2.3") == "198.51.100.9"


def test_real_ip_garbage_ignored(portico):
    p = portico(REALIP, trust="set_real_ip_from 127.0.0.1;", recursive="")
    assert addr(p, "not-an-address") == "127.0.0.1"
