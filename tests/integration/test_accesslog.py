"""Access log: one JSON object per line with the documented fields."""

import json
import re
import time

import pytest

import origins
from conftest import RawConn, free_port

REQUIRED = ("time", "request_id", "client", "method", "uri", "host", "status", "bytes_sent",
            "duration_ms", "upstream")


@pytest.fixture
def srv(portico, echo, origin):
    hang = origin(origins.HangOrigin)
    p = portico("""
        upstream echo { server <<echo>>; keepalive 4; }
        upstream hang { server <<hang>>; }
        upstream dead { server 127.0.0.1:<<dead>>; }
        server {
            listen <<listen>>;
            proxy_read_timeout 1s;
            location / { proxy_pass http://echo; }
            location /hang { proxy_pass http://hang; }
            location /dead { proxy_pass http://dead; }
            location = /ret { return 200 "ret\\n"; }
        }
    """, echo=echo.addr, hang=hang.addr, dead=free_port())
    p.echo = echo
    return p


def test_fields_for_proxied_request(srv):
    with srv.client() as c:
        r = c.get("/gen/1234?a=b", headers={"Host": "log.example"})
    assert r.status_code == 200
    e = srv.wait_access_log(1)[-1]
    for k in REQUIRED:
        assert k in e, "field %s missing: %r" % (k, e)
    assert e["request_id"] == r.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", e["request_id"])
    assert e["client"] == "127.0.0.1"
    assert e["method"] == "GET"
    assert e["uri"] == "/gen/1234?a=b"
    assert e["host"] == "log.example"
    assert e["status"] == 200
    assert 1234 <= e["bytes_sent"] <= 1234 + 2048
    assert isinstance(e["duration_ms"], (int, float)) and 0 <= e["duration_ms"] < 5000
    assert e["upstream"] == srv.echo.addr


def test_time_field_format(srv):
    srv.get("/ret")
    e = srv.wait_access_log(1)[-1]
    t = e["time"]
    if isinstance(t, str):
        assert re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", t), t
    else:
        assert abs(t - time.time()) < 60 or abs(t / 1000 - time.time()) < 60, t


def test_return_has_no_upstream(srv):
    srv.get("/ret")
    e = srv.wait_access_log(1)[-1]
    assert e["status"] == 200
    assert e["uri"] == "/ret"
    assert e["upstream"] in (None, "", "-")
    assert 4 <= e["bytes_sent"] <= 4 + 2048


def test_one_line_per_request_pipelined(srv):
    with RawConn(srv.port) as c:
        c.send("GET /ret HTTP/1.1\r\nHost: t\r\n\r\n" * 5)
        for _ in range(5):
            c.read_response()
    lines = srv.wait_access_log(5)
    assert len(lines) == 5
    assert len({e["request_id"] for e in lines}) == 5


def test_errors_logged(srv):
    assert srv.get("/dead").status_code == 502
    assert srv.get("/hang", timeout=10).status_code == 504
    lines = srv.wait_access_log(2)
    by_uri = {e["uri"]: e for e in lines}
    assert by_uri["/dead"]["status"] == 502
    assert by_uri["/hang"]["status"] == 504
    assert by_uri["/hang"]["duration_ms"] >= 900


def test_malformed_request_logged_or_not_but_valid_json(srv):
    with RawConn(srv.port) as c:
        c.send("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n")
        assert c.read_response().status == 400
    srv.get("/ret")
    # workers write their own lines: the order in the file is not the
    # order of the requests
    deadline = time.monotonic() + 5
    while not any(e["uri"] == "/ret" for e in srv.access_log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = srv.access_log()
    assert any(e["uri"] == "/ret" for e in lines), lines
    for e in lines:
        if e.get("status") == 400:
            assert e["client"] == "127.0.0.1"


def test_escaping_keeps_json_valid(srv):
    with RawConn(srv.port) as c:
        c.send('GET /q?x="quoted"\\back HTTP/1.1\r\nHost: t\r\n\r\n')
        assert c.read_response().status == 200
    e = srv.wait_access_log(1)[-1]
    for ln in srv.access_log_path.read_text().splitlines():
        json.loads(ln)
    assert e["uri"] == '/q?x="quoted"\\back'


def test_high_bytes_in_uri_keep_the_log_valid_utf8_json(srv):
    with RawConn(srv.port) as c:
        c.send(b"GET /ret\xff\xfe?\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n")
        c.read_response()
    srv.get("/ret")
    srv.wait_access_log(1)
    for ln in srv.access_log_path.read_bytes().splitlines():
        try:
            text = ln.decode("utf-8")
        except UnicodeDecodeError:
            raise AssertionError("access log line is not valid UTF-8 (raw bytes from the "
                                 "request copied into the JSON): %r" % ln)
        json.loads(text)


def test_access_log_off(portico):
    p = portico("""
        server { listen <<listen>>; location / { return 200 "x\\n"; } }
    """, access_log=False)
    assert p.get("/").status_code == 200
    time.sleep(0.3)
    assert not p.access_log_path.exists()


def test_post_logged_with_method(srv):
    srv.request("POST", "/body", content=b"hello")
    e = srv.wait_access_log(1)[-1]
    assert e["method"] == "POST"
    assert e["status"] == 200
