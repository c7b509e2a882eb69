"""Header handling: hop-by-hop removal, Via, X-Forwarded-*, Forwarded, Host,
proxy_set_header, request ids, add_header, server_tokens, variables."""

import email.utils
import re

import pytest

from conftest import RawConn

CONF = """
upstream echo { server <<echo>>; keepalive 8; }
server {
    listen <<listen>>;
    add_header X-Srv srv-level;
    location / { proxy_pass http://echo; }
    location /sethost/ {
        proxy_set_header Host backend.internal;
        proxy_pass http://echo;
    }
    location /setvars/ {
        proxy_set_header X-Vars "$remote_addr|$scheme|$request_method|$uri|$args|$request_uri|$host|$server_port|$http_x_in";
        proxy_set_header X-Remove-Me "";
        proxy_pass http://echo;
    }
    location /addh/ {
        add_header X-Normal normal;
        add_header X-Always always-here always;
        add_header X-Rid $request_id;
        proxy_pass http://echo;
    }
    location = /ret { return 200 "ret\\n"; }
    location = /vars {
        return 200 "$request_method|$uri|$args|$request_uri|$host|$scheme|$server_port|$remote_addr|$http_user_agent\\n";
    }
}
"""


@pytest.fixture(scope="module")
def srv(portico_module, echo_module):
    return portico_module(CONF, echo=echo_module.addr)


def last(echo):
    assert echo.requests, "origin saw no request"
    return echo.requests[-1]


def send(srv, head):
    with RawConn(srv.port) as c:
        c.send(head)
        return c.read_response()


def test_request_hop_by_hop_removed(srv, echo_module):
    r = send(srv, "GET /hop-req HTTP/1.1\r\nHost: t\r\n"
                  "Connection: keep-alive, X-Hop-A, x-hop-b\r\n"
                  "X-Hop-A: 1\r\nX-Hop-B: 2\r\nKeep-Alive: timeout=300\r\nTE: trailers\r\n"
                  "Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nProxy-Authorization: Basic eA==\r\n"
                  "X-End: kept\r\n\r\n")
    assert r.status == 200
    seen = last(echo_module)
    for h in ("X-Hop-A", "X-Hop-B", "Keep-Alive", "TE", "Proxy-Connection", "Upgrade"):
        assert not seen.has_header(h), "%s forwarded: %r" % (h, seen.headers)
    conn = ",".join(seen.header_all("connection")).lower()
    assert "x-hop" not in conn
    assert seen.header("x-end") == "kept"


def test_response_hop_by_hop_removed(srv):
    r = send(srv, "GET /hop HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.status == 200
    assert r.body == b"hop\n"
    for h in ("X-Hop-Resp", "Keep-Alive", "Proxy-Connection", "Upgrade", "Trailer"):
        assert not r.has(h), "%s passed to client: %r" % (h, r.headers)
    assert "x-hop-resp" not in r.conn_tokens()
    assert r.header("x-end-to-end") == "kept"


def test_via_added(srv, echo_module):
    send(srv, "GET /via HTTP/1.1\r\nHost: t\r\n\r\n")
    via = ", ".join(last(echo_module).header_all("via"))
    assert via == "1.1 portico"


def test_via_appended(srv, echo_module):
    send(srv, "GET /via HTTP/1.1\r\nHost: t\r\nVia: 1.0 upstream-cache\r\n\r\n")
    via = [v.strip() for v in ", ".join(last(echo_module).header_all("via")).split(",")]
    assert via == ["1.0 upstream-cache", "1.1 portico"]


def test_x_forwarded_for_set(srv, echo_module):
    send(srv, "GET /xff HTTP/1.1\r\nHost: t\r\n\r\n")
    assert last(echo_module).header_all("x-forwarded-for") == ["127.0.0.1"]


def test_x_forwarded_for_appended(srv, echo_module):
    send(srv, "GET /xff HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 192.0.2.1, 192.0.2.2\r\n\r\n")
    xff = [v.strip() for v in ",".join(last(echo_module).header_all("x-forwarded-for")).split(",")]
    assert xff == ["192.0.2.1", "192.0.2.2", "127.0.0.1"]


def test_x_forwarded_proto(srv, echo_module):
    send(srv, "GET /xfp HTTP/1.1\r\nHost: t\r\nX-Forwarded-Proto: https\r\n\r\n")
    assert last(echo_module).header_all("x-forwarded-proto") == ["http"]


def parse_forwarded(value):
    elems = [e.strip() for e in value.split(",")]
    out = []
    for e in elems:
        d = {}
        for pair in e.split(";"):
            k, _, v = pair.strip().partition("=")
            d[k.lower()] = v.strip('"')
        out.append(d)
    return out


def test_forwarded_header(srv, echo_module):
    send(srv, "GET /fwd HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
    fwd = parse_forwarded(", ".join(last(echo_module).header_all("forwarded")))
    assert fwd[-1] == {"for": "127.0.0.1", "proto": "http", "host": "www.example.com"}


def test_forwarded_host_with_port_is_quoted(srv, echo_module):
    send(srv, "GET /fwd HTTP/1.1\r\nHost: www.example.com:8080\r\n\r\n")
    raw = ", ".join(last(echo_module).header_all("forwarded"))
    assert 'host="www.example.com:8080"' in raw


def test_host_preserved(srv, echo_module):
    send(srv, "GET /host HTTP/1.1\r\nHost: Example.COM:1234\r\n\r\n")
    assert last(echo_module).header_all("host") == ["Example.COM:1234"]


def test_host_rewritten_by_proxy_set_header(srv, echo_module):
    send(srv, "GET /sethost/x HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert last(echo_module).header_all("host") == ["backend.internal"]


def test_proxy_set_header_variables_and_removal(srv, echo_module):
    r = send(srv, "GET /setvars/p%20q?a=1&b=2 HTTP/1.1\r\nHost: vars.example\r\n"
                  "X-In: incoming\r\nX-Remove-Me: secret\r\n\r\n")
    assert r.status == 200
    seen = last(echo_module)
    assert not seen.has_header("x-remove-me")
    v = seen.header("x-vars").split("|")
    assert v[0] == "127.0.0.1"
    assert v[1] == "http"
    assert v[2] == "GET"
    assert v[3] in ("/setvars/p q", "/setvars/p%20q")
    assert v[4] == "a=1&b=2"
    assert v[5] == "/setvars/p%20q?a=1&b=2"
    assert v[6] == "vars.example"
    assert v[7] == str(srv.port)
    assert v[8] == "incoming"


def test_return_variables(srv):
    r = send(srv, "GET /vars?x=y HTTP/1.1\r\nHost: h.example\r\nUser-Agent: ua/1\r\n\r\n")
    assert r.status == 200
    assert r.body == ("GET|/vars|x=y|/vars?x=y|h.example|http|%d|127.0.0.1|ua/1\n" % srv.port).encode()


def test_request_id_generated_forwarded_returned(srv, echo_module):
    r = send(srv, "GET /rid HTTP/1.1\r\nHost: t\r\n\r\n")
    rid = r.header("x-request-id")
    assert rid is not None and re.fullmatch(r"[0-9a-f]{32}", rid), rid
    assert last(echo_module).header_all("x-request-id") == [rid]


def test_request_id_unique(srv):
    ids = set()
    with srv.client() as c:
        for _ in range(30):
            ids.add(c.get("/ret").headers["x-request-id"])
    assert len(ids) == 30


def test_request_id_from_untrusted_client_replaced(srv, echo_module):
    r = send(srv, "GET /rid HTTP/1.1\r\nHost: t\r\nX-Request-ID: client-chosen-id\r\n\r\n")
    rid = r.header("x-request-id")
    assert rid != "client-chosen-id"
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert last(echo_module).header_all("x-request-id") == [rid]


def test_request_id_from_trusted_client_kept(portico, echo):
    p = portico("""
        upstream echo { server <<echo>>; }
        server {
            listen <<listen>>;
            set_real_ip_from 127.0.0.1;
            location / { proxy_pass http://echo; }
        }
    """, echo=echo.addr)
    r = send(p, "GET /rid HTTP/1.1\r\nHost: t\r\nX-Request-ID: trusted-id-123\r\n\r\n")
    assert r.header("x-request-id") == "trusted-id-123"
    assert echo.requests[-1].header_all("x-request-id") == ["trusted-id-123"]


def test_request_id_header_name(portico, echo):
    p = portico("""
        request_id_header X-Trace-Id;
        upstream echo { server <<echo>>; }
        server {
            listen <<listen>>;
            location / { proxy_pass http://echo; }
        }
    """, echo=echo.addr)
    r = send(p, "GET /rid HTTP/1.1\r\nHost: t\r\n\r\n")
    rid = r.header("x-trace-id")
    assert rid is not None and re.fullmatch(r"[0-9a-f]{32}", rid)
    seen = echo.requests[-1]
    assert seen.header_all("x-trace-id") == [rid]
    assert not seen.has_header("x-request-id")


def test_add_header_on_success(srv):
    r = send(srv, "GET /addh/x HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.status == 200
    assert r.header("x-normal") == "normal"
    assert r.header("x-always") == "always-here"
    assert r.header("x-rid") == r.header("x-request-id")
    # location-level add_header replaces the server-level set (nginx inheritance)
    assert r.header("x-srv") is None


def test_add_header_always_on_errors(srv):
    r = send(srv, "GET /addh/status/500 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.status == 500
    assert r.header("x-always") == "always-here"
    assert r.header("x-normal") is None


def test_add_header_inherited_from_server(srv):
    r = send(srv, "GET /inherit HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.header("x-srv") == "srv-level"
    r = send(srv, "GET /ret HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.header("x-srv") == "srv-level"


def test_generated_response_has_date_and_server(srv):
    r = send(srv, "GET /ret HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.body == b"ret\n"
    assert email.utils.parsedate_to_datetime(r.header("date")) is not None
    assert re.fullmatch(r"portico/\d+\.\d+\S*", r.header("server")), r.header("server")


def test_server_tokens_off(portico):
    p = portico("""
        server_tokens off;
        server { listen <<listen>>; location / { return 200 "x\\n"; } }
    """)
    # no version anywhere: either "Server: portico" or no Server header
    r = send(p, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.header("server") in (None, "portico")
    r = send(p, "GET /%zz HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n")
    assert r.status == 400
    assert r.header("server") in (None, "portico")
    assert b"0.1" not in r.body


def test_duplicate_request_headers_forwarded(srv, echo_module):
    send(srv, "GET /dup HTTP/1.1\r\nHost: t\r\nX-Multi: one\r\nX-Multi: two\r\n\r\n")
    assert last(echo_module).header_all("x-multi") == ["one", "two"]


def test_multiple_set_cookie_kept(portico, origin):
    import origins

    class CookieOrigin(origins.Origin):
        def handle(self, s, r, conn_no, proxy):
            self.read_request(s, r, conn_no, 0, proxy)
            s.sendall(origins.response(200, [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2"),
                                             ("Content-Length", "2"), ("Connection", "close")], b"ok"))

    o = origin(CookieOrigin)
    p = portico("""
        upstream o { server <<o>>; }
        server { listen <<listen>>; location / { proxy_pass http://o; } }
    """, o=o.addr)
    r = send(p, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.header_all("set-cookie") == ["a=1; Path=/", "b=2"]
