"""Admin listener: GET /status (JSON) and GET /metrics (Prometheus text)."""

import re
import time

import pytest

from conftest import RawConn

CONF = """
server {
    listen <<listen>>;
    location / { return 200 "x\\n"; }
    location /missing { return 404; }
}
"""


def parse_prom(text):
    """Returns ({(name, labels): value}, {name: type})."""
    samples, types = {}, {}
    for ln in text.splitlines():
        if not ln.strip():
            continue
        if ln.startswith("# TYPE "):
            _, _, name, typ = ln.split(" ", 3)
            types[name] = typ.strip()
            continue
        if ln.startswith("#"):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+\d+)?", ln)
        assert m, "bad exposition line: %r" % ln
        samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return samples, types


def test_status_json(portico):
    p = portico(CONF, workers=3)
    r = p.admin_get("/status")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    s = r.json()
    assert isinstance(s["version"], str) and re.match(r"\d+\.\d+", s["version"]), s
    assert isinstance(s["uptime_seconds"], (int, float))
    assert 0 <= s["uptime_seconds"] < 60
    assert s["workers"] == 3
    assert s["config_generation"] == 1


def test_status_uptime_grows(portico):
    p = portico(CONF)
    u1 = p.status()["uptime_seconds"]
    time.sleep(1.2)
    u2 = p.status()["uptime_seconds"]
    assert u2 >= u1 + 1


def test_metrics_requests_total(portico):
    p = portico(CONF)
    n = 7
    with p.client() as c:
        for _ in range(n):
            assert c.get("/").status_code == 200
        assert c.get("/missing").status_code == 404
    deadline = time.monotonic() + 5
    while True:
        r = p.admin_get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        samples, types = parse_prom(r.text)
        total = sum(v for (name, _), v in samples.items() if name == "portico_requests_total")
        if total >= n + 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert types.get("portico_requests_total") == "counter", r.text
    assert total == n + 1, r.text


def test_metrics_exposition_is_valid(portico):
    p = portico(CONF)
    p.get("/")
    r = p.admin_get("/metrics")
    samples, types = parse_prom(r.text)
    assert samples
    for (name, labels), v in samples.items():
        base = re.sub(r"_(bucket|sum|count|total)$", "", name)
        assert name in types or base in types or name.replace("_total", "") in types, \
            "sample %s without # TYPE" % name


def test_admin_unknown_path_404(portico):
    p = portico(CONF)
    assert p.admin_get("/nope").status_code == 404


def test_admin_closes_connection(portico):
    p = portico(CONF)
    with RawConn(p.admin_port) as c:
        c.send("GET /status HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert "close" in r.conn_tokens()
        assert c.is_closed(timeout=2)


def test_admin_malformed_request(portico):
    p = portico(CONF)
    with RawConn(p.admin_port) as c:
        c.send("BLAH\r\n\r\n")
        raw = c.read_all(timeout=3)
    assert c.eof
    if raw:
        assert raw.startswith(b"HTTP/1.1 4"), raw[:100]
    assert p.admin_get("/status").status_code == 200


def test_generation_increments_on_reload(portico):
    p = portico(CONF)
    assert p.status()["config_generation"] == 1
    p.reload()
    assert p.status()["config_generation"] == 2
    p.reload()
    assert p.status()["config_generation"] == 3


def test_admin_off(portico):
    p = portico(CONF, admin=False)
    assert p.get("/").status_code == 200
