"""Routing: server_name (exact, wildcard, default server) and location
matching precedence (= > ^~ > regex in order > longest prefix), match_header,
`return` with text and redirects."""

import pytest

from conftest import RawConn

CONF = """
server {
    listen <<listen>>;
    server_name example.com www.example.com;
    location / { return 200 "A\\n"; }
}
server {
    listen <<listen>>;
    server_name *.example.org;
    location / { return 200 "B\\n"; }
}
server {
    listen <<listen>> default_server;
    server_name fallback.test;
    location / { return 200 "D\\n"; }
}
server {
    listen <<listen>>;
    server_name loc.test;
    location / { return 200 "prefix-root\\n"; }
    location = / { return 200 "exact-root\\n"; }
    location /docs/ { return 200 "prefix-docs\\n"; }
    location /docs/api/ { return 200 "prefix-docs-api\\n"; }
    location = /docs/exact { return 200 "exact\\n"; }
    location ^~ /static/ { return 200 "noregex-static\\n"; }
    location ~ \\.php$ { return 200 "regex-php\\n"; }
    location ~* \\.(png|jpg)$ { return 200 "regex-img\\n"; }
    location ~ ^/docs/.*\\.txt$ { return 200 "regex-docs-txt\\n"; }
    location ~ ^/re/ { return 200 "regex-first\\n"; }
    location ~ ^/re/b { return 200 "regex-second\\n"; }
    location /canary/ { match_header X-Canary "^1$"; return 200 "canary\\n"; }
    location /beta/ { match_header X-Beta; return 200 "beta\\n"; }
    location /blocked { return 403; }
    location /gone { return 404; }
    location /redirect { return 301 https://example.com/; }
    location /found { return 302 /elsewhere; }
    location /vars { return 200 "$host $request_uri\\n"; }
}
server {
    listen <<listen>>;
    server_name whole.test;
    return 200 "server-level\\n";
}
server {
    listen <<listen2>>;
    server_name first.test;
    location / { return 200 "first-on-port2\\n"; }
}
server {
    listen <<listen2>>;
    server_name second.test;
    location / { return 200 "second-on-port2\\n"; }
}
"""


@pytest.fixture(scope="module")
def srv(portico_module):
    return portico_module(CONF)


def get(srv, path, host, headers=None, port=None):
    with RawConn(port or srv.port) as c:
        extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        c.send("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path, host, extra))
        return c.read_response()


@pytest.mark.parametrize("host,expected", [
    ("example.com", "A"),
    ("www.example.com", "A"),
    ("EXAMPLE.COM", "A"),
    ("example.com:8080", "A"),
    ("a.example.org", "B"),
    ("a.b.example.org", "B"),
    ("example.org", "D"),
    ("unknown.test", "D"),
    ("fallback.test", "D"),
    ("127.0.0.1", "D"),
    ("xexample.com", "D"),
])
def test_server_name(srv, host, expected):
    r = get(srv, "/", host)
    assert r.status == 200
    assert r.body == (expected + "\n").encode()


def test_http10_without_host_goes_to_default(srv):
    with RawConn(srv.port) as c:
        c.send("GET / HTTP/1.0\r\n\r\n")
        r = c.read_response()
    assert r.body == b"D\n"


def test_first_server_is_default_without_default_server(srv):
    assert get(srv, "/", "nobody.test", port=srv.port_n(2)).body == b"first-on-port2\n"
    assert get(srv, "/", "second.test", port=srv.port_n(2)).body == b"second-on-port2\n"


def test_server_names_are_per_listener(srv):
    # example.com is not served on port 2: it falls to port 2's default
    assert get(srv, "/", "example.com", port=srv.port_n(2)).body == b"first-on-port2\n"


@pytest.mark.parametrize("path,expected", [
    ("/", "exact-root"),
    ("/other", "prefix-root"),
    ("/docs/exact", "exact"),
    ("/docs/exact?x=1", "exact"),
    ("/docs/exact/", "prefix-docs"),
    ("/docs/exactly", "prefix-docs"),
    ("/docs/readme", "prefix-docs"),
    ("/docs", "prefix-root"),
    ("/docs/api/x", "prefix-docs-api"),
    ("/docs/a.txt", "regex-docs-txt"),
    ("/docs/api/x.php", "regex-php"),
    ("/static/a.php", "noregex-static"),
    ("/static/img.PNG", "noregex-static"),
    ("/img/a.PNG", "regex-img"),
    ("/img/a.jpg", "regex-img"),
    ("/img/a.PHP", "prefix-root"),
    ("/x.php?y=.png", "regex-php"),
    ("/re/b", "regex-first"),
])
def test_location_precedence(srv, path, expected):
    r = get(srv, path, "loc.test")
    assert r.status == 200
    assert r.body == (expected + "\n").encode()


@pytest.mark.parametrize("headers,expected", [
    ({"X-Canary": "1"}, "canary"),
    ({"x-canary": "1"}, "canary"),
    ({"X-Canary": "2"}, "prefix-root"),
    ({"X-Canary": "10"}, "prefix-root"),
    ({}, "prefix-root"),
])
def test_match_header_regex(srv, headers, expected):
    r = get(srv, "/canary/page", "loc.test", headers)
    assert r.body == (expected + "\n").encode()


def test_match_header_presence(srv):
    assert get(srv, "/beta/x", "loc.test", {"X-Beta": "anything"}).body == b"beta\n"
    assert get(srv, "/beta/x", "loc.test").body == b"prefix-root\n"


def test_return_status_only(srv):
    assert get(srv, "/blocked", "loc.test").status == 403
    assert get(srv, "/gone", "loc.test").status == 404


def test_return_redirect_absolute(srv):
    r = get(srv, "/redirect", "loc.test")
    assert r.status == 301
    assert r.header("location") == "https://example.com/"


def test_return_redirect_relative(srv):
    r = get(srv, "/found", "loc.test")
    assert r.status == 302
    assert r.header("location") in ("/elsewhere", "http://loc.test/elsewhere",
                                     "http://loc.test:%d/elsewhere" % srv.port)


def test_return_with_variables(srv):
    r = get(srv, "/vars?q=1", "loc.test")
    assert r.body == b"loc.test /vars?q=1\n"


def test_server_level_return(srv):
    for path in ("/", "/anything/else", "/x.php"):
        r = get(srv, path, "whole.test")
        assert r.status == 200
        assert r.body == b"server-level\n"


def test_return_text_content_length(srv):
    r = get(srv, "/docs/exact", "loc.test")
    assert r.header("content-length") == "6"
