"""Proxying to real origins (Debian nginx and the echo origin): status,
bodies, methods, query strings, framing of the response to the client."""

import re

import pytest

from conftest import RawConn, sha256
from origins import pattern_bytes

CONF = """
upstream ngx { server <<nginx>>; keepalive 8; }
upstream echo { server <<echo>>; keepalive 8; }
server {
    listen <<listen>>;
    location / { proxy_pass http://ngx; }
    location /e/ { proxy_pass http://echo; }
    location /body { proxy_pass http://echo; }
    location /info { proxy_pass http://ngx; }
    location /einfo { proxy_pass http://echo; }
    location /gen/ { proxy_pass http://echo; }
    location /chunked/ { proxy_pass http://echo; }
    location /status/ { proxy_pass http://echo; }
    location /date { proxy_pass http://echo; }
}
"""


@pytest.fixture(scope="module")
def srv(portico_module, nginx, echo_module):
    return portico_module(CONF, nginx=nginx.addr, echo=echo_module.addr)


def test_small_file_from_nginx(srv, nginx):
    r = srv.get("/small.txt")
    assert r.status_code == 200
    assert r.content == nginx.files["small.txt"]
    assert r.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("name", ["64k.bin", "1m.bin"])
def test_binary_files_from_nginx(srv, nginx, name):
    r = srv.get("/" + name)
    assert r.status_code == 200
    assert len(r.content) == len(nginx.files[name])
    assert sha256(r.content) == sha256(nginx.files[name])


def test_nginx_sees_method_uri_host(srv):
    with srv.client() as c:
        r = c.get("/info?a=1&b=%20x", headers={"Host": "example.com"})
    assert r.status_code == 200
    method, uri, host, xff, rid = r.text.rstrip("\n").split(" ")
    assert method == "GET"
    assert uri == "/info?a=1&b=%20x"
    assert host == "example.com"
    assert xff == "127.0.0.1"
    assert re.fullmatch(r"[0-9a-f]{32}", rid), rid
    assert r.headers["x-request-id"] == rid


def test_origin_404_passed_through(srv):
    r = srv.get("/does-not-exist")
    assert r.status_code == 404


def test_origin_redirect_passed_through(srv):
    with srv.client(follow_redirects=False) as c:
        r = c.get("/redirect")
    assert r.status_code == 302
    assert r.headers["location"].endswith("/small.txt")


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"])
def test_methods_forwarded(srv, echo_module, method):
    body = b"payload" if method in ("POST", "PUT", "PATCH") else None
    r = srv.request(method, "/einfo/m", content=body)
    assert r.status_code == 200
    info = r.json()
    assert info["method"] == method
    assert info["target"] == "/einfo/m"
    assert info["version"] == "HTTP/1.1"
    if body:
        assert info["body_len"] == len(body)


def test_head_through_proxy_has_no_body(srv):
    with RawConn(srv.port) as c:
        c.send("HEAD /gen/5000 HTTP/1.1\r\nHost: x\r\n\r\nGET /gen/10 HTTP/1.1\r\nHost: x\r\n\r\n")
        r1 = c.read_response(method="HEAD")
        r2 = c.read_response()
    assert r1.status == 200
    assert r1.header("content-length") == "5000"
    assert r2.status == 200
    assert r2.body == pattern_bytes(10)


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(srv, status):
    with RawConn(srv.port) as c:
        c.send("GET /status/%d HTTP/1.1\r\nHost: x\r\n\r\nGET /gen/7 HTTP/1.1\r\nHost: x\r\n\r\n" % status)
        r1 = c.read_response()
        r2 = c.read_response()
    assert r1.status == status
    assert r1.header("transfer-encoding") is None
    assert r2.status == 200
    assert r2.body == pattern_bytes(7)


@pytest.mark.parametrize("status", [201, 400, 418, 500, 503])
def test_other_statuses_passed(srv, status):
    r = srv.get("/status/%d" % status)
    assert r.status_code == status
    assert r.content == b"status %d\n" % status


def test_chunked_response_from_origin(srv):
    n = 300000
    r = srv.get("/chunked/%d" % n)
    assert r.status_code == 200
    assert sha256(r.content) == sha256(pattern_bytes(n))


def test_chunked_origin_to_http10_client_is_not_chunked(srv):
    n = 50000
    with RawConn(srv.port) as c:
        c.send("GET /chunked/%d HTTP/1.0\r\nHost: x\r\n\r\n" % n)
        head = c.read_head()
        body = c.read_all(timeout=5)
    assert head.status == 200
    assert head.version in ("HTTP/1.0", "HTTP/1.1")
    assert head.header("transfer-encoding") is None
    assert body == pattern_bytes(n)


def test_origin_date_kept(srv):
    r = srv.get("/date")
    assert r.status_code == 200
    assert r.headers.get_list("date") == ["Tue, 01 Jan 2030 00:00:00 GMT"]


def test_large_download_sha(srv):
    n = 3 * 1024 * 1024 + 17
    r = srv.get("/gen/%d" % n)
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == n
    assert sha256(r.content) == sha256(pattern_bytes(n))


def test_absolute_form_request_target(srv, echo_module):
    with RawConn(srv.port) as c:
        c.send("GET http://example.net/einfo/abs?q=1 HTTP/1.1\r\nHost: example.net\r\n\r\n")
        r = c.read_response()
    assert r.status == 200
    import json
    info = json.loads(r.body)
    assert info["target"] == "/einfo/abs?q=1"
    hosts = [v for k, v in info["headers"] if k.lower() == "host"]
    assert hosts == ["example.net"]


def test_proxy_keeps_working_across_many_requests(srv):
    with srv.client() as c:
        for i in range(50):
            r = c.get("/gen/%d" % (i * 101))
            assert r.status_code == 200
            assert r.content == pattern_bytes(i * 101)


def test_chunked_origin_with_extensions_and_trailers(portico, origin):
    import origins
    o = origin(origins.ChunkedOrigin)
    p = portico("""
        upstream o { server <<o>>; keepalive 4; }
        server { listen <<listen>>; location / { proxy_pass http://o; } }
    """, o=o.addr)
    with RawConn(p.port) as c:
        for _ in range(3):  # and the origin connection stays usable
            c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            r = c.read_response()
            assert r.status == 200
            assert r.body == b"hello chunked world\n"
    assert o.connections == 1


def test_two_servers_both_used(portico, origin):
    # Round robin's guarantee; p2c_ewma (the default) follows latency instead
    # (see test_upstream_lb.py and the unit tests for its behaviour).
    import origins
    a, b = origin(origins.EchoOrigin), origin(origins.EchoOrigin)
    p = portico("""
        upstream pair { round_robin; server <<a>>; server <<b>>; keepalive 4; }
        server { listen <<listen>>; location / { proxy_pass http://pair; } }
    """, a=a.addr, b=b.addr)
    with p.client() as c:
        for i in range(20):
            assert c.get("/gen/1").status_code == 200
    assert len(a.requests) + len(b.requests) == 20
    assert len(a.requests) >= 5 and len(b.requests) >= 5, (len(a.requests), len(b.requests))


def test_weights(portico, origin):
    import origins
    a, b = origin(origins.EchoOrigin), origin(origins.EchoOrigin)
    p = portico("""
        upstream pair { round_robin; server <<a>> weight=3; server <<b>> weight=1; keepalive 4; }
        server { listen <<listen>>; location / { proxy_pass http://pair; } }
    """, a=a.addr, b=b.addr)
    with p.client() as c:
        for i in range(40):
            assert c.get("/gen/1").status_code == 200
    assert len(a.requests) + len(b.requests) == 40
    assert len(a.requests) > len(b.requests) >= 1, (len(a.requests), len(b.requests))
