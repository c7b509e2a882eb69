"""Upstream metrics at GET /metrics (issue 4): the new families with the
right labels and values after known traffic, and a real Prometheus (the
Debian package) scraping the admin listener."""

import os
import re
import signal
import subprocess
import threading
import urllib.parse

import httpx
import pytest

from conftest import child_env, free_port, tail, wait_port
from ctl_origins import Admin, ctl_origins, run_load, wait_for  # noqa: F401

PROMETHEUS = "/usr/bin/prometheus"

LINE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_metrics(text):
    """Returns ([(name, {label: value}, float)], {family: type})."""
    samples, types = [], {}
    for ln in text.splitlines():
        if not ln.strip():
            continue
        if ln.startswith("# TYPE "):
            _, _, name, typ = ln.split(" ", 3)
            types[name] = typ.strip()
            continue
        if ln.startswith("#"):
            continue
        m = LINE.match(ln)
        assert m, "bad exposition line: %r" % ln
        labels = {}
        rest = m.group(2) or ""
        pos = 0
        while pos < len(rest):
            lm = LABEL.match(rest, pos)
            assert lm, "bad labels in %r" % ln
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples, types


class Metrics:
    def __init__(self, text):
        self.text = text
        self.samples, self.types = parse_metrics(text)

    def find(self, name, **labels):
        return [(lb, v) for n, lb, v in self.samples
                if n == name and all(lb.get(k) == str(x) for k, x in labels.items())]

    def value(self, name, **labels):
        got = self.find(name, **labels)
        assert len(got) == 1, "%s%r: %d samples\n%s" % (name, labels, len(got), self.grep(name))
        return got[0][1]

    def total(self, name, **labels):
        return sum(v for _, v in self.find(name, **labels))

    def grep(self, name):
        return "\n".join(ln for ln in self.text.splitlines() if name in ln)


CONF = """
upstream backend {
    round_robin;
    health_check type=http interval=200ms timeout=200ms rise=1 fall=2 uri=/health;
    outlier_detection consecutive_failures=3 ejection_time=30s;
    server %(o0)s;
    server %(o1)s;
    server %(o2)s;
}
upstream small {
    max_pending 0;
    server %(o3)s max_conns=1;
}
server {
    listen <<listen>>;
    location / {
        proxy_pass http://backend;
        proxy_next_upstream error timeout http_503;
    }
    location /small {
        proxy_pass http://small;
    }
}
"""


def test_upstream_metric_families(portico, ctl_origins):
    os_ = ctl_origins(4)
    o0, o1, o2, o3 = os_
    o2.set_health(503)  # down after two probes
    p = portico(CONF % {"o%d" % i: o.addr for i, o in enumerate(os_)})
    adm = Admin(p)
    adm.wait_state(o2.addr, "down")
    o1.fail(503)
    res = run_load(p.url, 30, concurrency=1)
    assert [r.status for r in res] == [200] * 30, res
    assert adm.server(o1.addr)["state"] == "ejected"
    assert o1.count() == 3 and o0.count() == 30 and o2.count() == 0

    # overflow in "small" while one request is in flight there
    o3.hold()
    bg = []
    t = threading.Thread(target=lambda: bg.extend(run_load(p.url, 1, path="/small")), daemon=True)
    t.start()
    try:
        o3.wait_held(1)
        over = run_load(p.url, 2, path="/small")
        assert [r.status for r in over] == [503, 503], over
        m = Metrics(adm.metrics())
        assert m.value("portico_upstream_server_active_requests",
                       upstream="small", server=o3.addr) == 1
    finally:
        o3.release()
        t.join(15)
    assert [r.status for r in bg] == [200]

    m = Metrics(adm.metrics())
    B = {"upstream": "backend"}
    for o in (o0, o1, o2):
        assert m.value("portico_upstream_server_requests_total", server=o.addr, **B) == o.count()
        assert m.value("portico_upstream_server_active_requests", server=o.addr, **B) == 0
    assert m.value("portico_upstream_server_failures_total", server=o1.addr, **B) == 3
    assert m.value("portico_upstream_server_failures_total", server=o0.addr, **B) == 0
    assert m.value("portico_upstream_server_up", server=o0.addr, **B) == 1
    assert m.value("portico_upstream_server_up", server=o2.addr, **B) == 0
    assert m.value("portico_upstream_server_ejections_total", server=o1.addr, **B) == 1
    assert m.value("portico_upstream_server_ejections_total", server=o0.addr, **B) == 0
    # by status class (the 503s of o1 may count as upstream responses too)
    assert [v for lb, v in m.find("portico_upstream_responses_total", **B)
            if lb.get("class") == "2xx"] == [30], m.grep("portico_upstream_responses_total")
    assert m.value("portico_upstream_retries_total", **B) == 3
    assert m.value("portico_upstream_retry_budget_exhausted_total", **B) == 0
    assert m.value("portico_upstream_overflow_total", upstream="small") == 2
    assert m.value("portico_upstream_overflow_total", **B) == 0
    assert m.value("portico_upstream_server_requests_total", upstream="small",
                   server=o3.addr) == 1

    # upstream time histogram, per group
    count = m.value("portico_upstream_response_seconds_count", **B)
    assert count >= 30
    assert m.value("portico_upstream_response_seconds_sum", **B) > 0
    buckets = sorted(((float(lb["le"]), v) for lb, v in
                      m.find("portico_upstream_response_seconds_bucket", **B)),
                     key=lambda x: x[0])
    assert len(buckets) >= 5 and buckets[-1][0] == float("inf"), buckets
    assert buckets[-1][1] == count
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), "buckets not cumulative"

    # pool reuse: 30 sequential requests over keep-alive connections
    ratio = m.find("portico_upstream_pool_reuse_ratio", **B) or \
        m.find("portico_upstream_pool_reuse_ratio")
    assert ratio, m.grep("reuse")
    for _, v in ratio:
        assert 0 <= v <= 1
    assert max(v for _, v in ratio) > 0.5, ratio
    # the existing per-connection counter agrees with what origins saw
    assert m.total("portico_upstream_requests_total") == sum(o.count() for o in os_)

    # types
    want = {
        "portico_upstream_server_requests_total": "counter",
        "portico_upstream_server_failures_total": "counter",
        "portico_upstream_server_ejections_total": "counter",
        "portico_upstream_responses_total": "counter",
        "portico_upstream_retries_total": "counter",
        "portico_upstream_retry_budget_exhausted_total": "counter",
        "portico_upstream_overflow_total": "counter",
        "portico_upstream_server_up": "gauge",
        "portico_upstream_server_active_requests": "gauge",
        "portico_upstream_pool_reuse_ratio": "gauge",
        "portico_upstream_response_seconds": "histogram",
    }
    for name, typ in want.items():
        got = m.types.get(name) or m.types.get(re.sub(r"_total$", "", name))
        assert got == typ, (name, got)


def test_upstream_metrics_follow_reload(portico, ctl_origins):
    """A server removed by reload disappears from the per-server series."""
    os_ = ctl_origins(2)
    conf = """
upstream backend {
    %s
}
server {
    listen <<listen>>;
    location / { proxy_pass http://backend; }
}
"""
    p = portico(conf % "\n".join("server %s;" % o.addr for o in os_))
    run_load(p.url, 10)
    adm = Admin(p)
    m = Metrics(adm.metrics())
    assert {lb["server"] for lb, _ in m.find("portico_upstream_server_up", upstream="backend")} \
        == {o.addr for o in os_}
    p.reload(conf % ("server %s;" % os_[0].addr))
    m = Metrics(adm.metrics())
    assert {lb["server"] for lb, _ in m.find("portico_upstream_server_up", upstream="backend")} \
        == {os_[0].addr}


# ----------------------------------------------------------------------
# Prometheus scrapes the admin listener
# ----------------------------------------------------------------------

PROM_CONF = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: portico
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:%d']
"""


class Prometheus:
    def __init__(self, tmp, target_port):
        self.tmp = tmp
        self.port = free_port()
        (tmp / "prometheus.yml").write_text(PROM_CONF % target_port)
        self.log = open(tmp / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=%s" % (tmp / "prometheus.yml"),
             "--storage.tsdb.path=%s" % (tmp / "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=child_env(), cwd=str(tmp))
        if not wait_port(self.port, 30, alive=lambda: self.proc.poll() is None):
            self.stop()
            raise AssertionError("prometheus did not start:\n" + self.logtext())

    def logtext(self):
        return tail((self.tmp / "prometheus.log").read_text(errors="replace"), 60)

    def query(self, q):
        url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (self.port, urllib.parse.quote(q))
        with httpx.Client(trust_env=False, timeout=5) as c:
            r = c.get(url)
        if r.status_code != 200:
            return None
        doc = r.json()
        if doc.get("status") != "success":
            return None
        return doc["data"]["result"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def test_prometheus_scrapes_admin_listener(portico, ctl_origins, tmp_path):
    if not os.path.exists(PROMETHEUS):
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus not installed at %s (Debian package prometheus)" % PROMETHEUS)
        pytest.skip("prometheus not installed")
    os_ = ctl_origins(2)
    p = portico("""
upstream backend {
    %s
}
server {
    listen <<listen>>;
    location / { proxy_pass http://backend; }
}
""" % "\n".join("server %s;" % o.addr for o in os_))
    res = run_load(p.url, 20, concurrency=2)
    assert [r.status for r in res] == [200] * 20
    prom = Prometheus(tmp_path, p.admin_port)
    try:
        got = {}

        def target_up():
            r = prom.query('up{job="portico"}')
            got["up"] = r
            return bool(r) and r[0]["value"][1] == "1"

        wait_for(target_up, 45, lambda: "prometheus never saw the target up: %r\n%s"
                 % (got.get("up"), prom.logtext()))

        def series():
            r = prom.query('portico_upstream_server_requests_total{upstream="backend"}')
            got["series"] = r
            return bool(r) and sum(float(x["value"][1]) for x in r) == 20

        wait_for(series, 30, lambda: "portico_upstream_server_requests_total not scraped: %r"
                 % (got.get("series"),))
        servers = {x["metric"].get("server") for x in got["series"]}
        assert servers == {o.addr for o in os_}, got["series"]
        for x in got["series"]:
            assert x["metric"]["job"] == "portico"
            assert float(x["value"][1]) == next(o.count() for o in os_
                                                if o.addr == x["metric"]["server"])
        # a histogram and a gauge arrive too
        r = prom.query('portico_upstream_response_seconds_count{upstream="backend"}')
        assert r and float(r[0]["value"][1]) >= 20, r
        r = prom.query('portico_upstream_server_up{upstream="backend"}')
        assert r and all(x["value"][1] == "1" for x in r), r
        # the scrape itself must not warn about the exposition
        r = prom.query('scrape_samples_scraped{job="portico"}')
        assert r and float(r[0]["value"][1]) > 20, r
    finally:
        prom.stop()


ROUTES_CONF = """
server {
    listen <<listen>>;
    server_name routes.test;
    keepalive_timeout 2s;
    location /api/ {
        proxy_pass http://%(o0)s;
    }
    location = /ping {
        return 204;
    }
}
"""


def test_route_and_connection_metrics(portico, ctl_origins):
    """Requests by route and status class; connections idle and closed by reason."""
    (o0,) = ctl_origins(1)
    p = portico(ROUTES_CONF % {"o0": o0.addr})
    adm = Admin(p)
    with httpx.Client(base_url=p.url, headers={"Host": "routes.test"}) as c:
        assert c.get("/ping").status_code == 204
        for _ in range(3):
            assert c.get("/api/x").status_code == 200
        # This client, between requests (within the 2 s keep-alive).
        m = Metrics(adm.metrics())
        assert m.value("portico_connections_idle") >= 1
    with httpx.Client(base_url=p.url, headers={"Host": "routes.test", "Connection": "close"}) as c:
        assert c.get("/nowhere").status_code == 404  # the implicit "location /"

    def closed(reason):
        return Metrics(adm.metrics()).value("portico_connections_closed_total", reason=reason)

    # An idle keep-alive connection left open times out on the server side.
    with httpx.Client(base_url=p.url, headers={"Host": "routes.test"}) as c:
        assert c.get("/ping").status_code == 204
        wait_for(lambda: closed("idle_timeout") >= 1, timeout=10)

    m = Metrics(adm.metrics())
    assert m.types["portico_route_requests_total"] == "counter"
    assert m.value("portico_route_requests_total", route="routes.test /api/", **{"class": "2xx"}) == 3
    assert m.value("portico_route_requests_total", route="routes.test = /ping", **{"class": "2xx"}) == 2
    assert m.value("portico_route_requests_total", route="routes.test /", **{"class": "4xx"}) == 1
    assert m.value("portico_route_requests_total", route="routes.test /api/", **{"class": "5xx"}) == 0
    assert m.value("portico_connections_closed_total", reason="done") >= 1  # Connection: close
    assert m.value("portico_connections_closed_total", reason="client") >= 1
    assert m.value("portico_connections_closed_total", reason="error") == 0
