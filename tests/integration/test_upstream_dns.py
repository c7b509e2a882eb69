"""Upstream names re-resolved at run time (`server NAME:PORT resolve;`,
`resolver ADDR valid=TIME;`), against the test DNS server of dnsserver.py.

Two origins listen on the same port of two loopback addresses, 127.0.0.1
("one") and 127.0.0.2 ("two"); the name app.test points at one, the other
or both, and the tests check which origin answers, without reloads and
without failed requests. app.test is not known to the system resolver, so
the group starts empty and fills when the first answer arrives.

The test DNS server is a Python thread: when the test process is busy it
may answer late, so the resolver timeout is generous (a late answer makes
portico ask again, which is right but adds queries).
"""

import re
import threading
import time

import pytest

from ctl_origins import CtlOrigin, by_origin, run_load, wait_for
from dnsserver import DnsServer

CONF = """
resolver <<dns>> <<resolver_opts>>;
resolver_timeout 2s;
upstream app {
    server app.test:<<app_port>> resolve;
}
server {
    listen <<listen>>;
    location / { proxy_pass http://app; }
}
"""


@pytest.fixture
def dns():
    d = DnsServer()
    yield d
    d.stop()


@pytest.fixture
def twins():
    """Origins "one" on 127.0.0.1:P and "two" on 127.0.0.2:P (same P)."""
    started = []
    for _ in range(50):
        two = CtlOrigin("two", host="127.0.0.2")
        try:
            one = CtlOrigin("one", host="127.0.0.1", port=two.port)
        except OSError:
            two.stop()
            continue
        started = [one, two]
        break
    assert started, "no port free on both 127.0.0.1 and 127.0.0.2"
    yield started
    for o in started:
        o.stop()


def start(portico, dns, port, resolver_opts="valid=1s", **kw):
    return portico(CONF, dns=dns.addr, app_port=port, resolver_opts=resolver_opts, **kw)


def resolves_to(p, port, *ips, timeout=10.0):
    """Waits for the notice that app.test now resolves to exactly ips."""
    addrs = ", ".join("%s:%d" % (ip, port) for ip in ips)
    return p.wait_log(r"upstream app: app\.test:%d now resolves to %s\n"
                      % (port, re.escape(addrs)), timeout=timeout)


def all_ok(results):
    bad = [r for r in results if r.status != 200]
    assert not bad, bad[:5]
    return by_origin(results)


class Load:
    """Requests in a loop from a background thread until stopped."""

    def __init__(self, url, concurrency=2):
        self.url = url
        self.concurrency = concurrency
        self.results = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            self.results += run_load(self.url, 10, concurrency=self.concurrency)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=60)
        return self.results


def test_change_moves_traffic_without_reload_or_errors(portico, dns, twins):
    one, two = twins
    dns.set("app.test", ["127.0.0.1"], ttl=1)
    p = start(portico, dns, one.port)
    resolves_to(p, one.port, "127.0.0.1")
    gen = p.generation()
    assert all_ok(run_load(p.url, 20)) == {"one": 20}

    # Both addresses: both origins get traffic.
    load = Load(p.url)
    dns.set("app.test", ["127.0.0.2", "127.0.0.1"], ttl=1)
    resolves_to(p, one.port, "127.0.0.1", "127.0.0.2")
    two.reset_counts()
    wait_for(lambda: two.count() >= 10, 10, "no traffic reached 127.0.0.2")
    assert one.count() > 0

    # Only the new address: traffic moves over, and no request fails.
    dns.set("app.test", ["127.0.0.2"], ttl=1)
    resolves_to(p, one.port, "127.0.0.2")
    time.sleep(0.3)  # requests picked before the change may still finish on one
    one.reset_counts()
    time.sleep(1.0)
    results = load.stop()
    assert len(results) >= 50
    seen = all_ok(results)
    assert seen["one"] > 0 and seen["two"] > 0, seen
    assert one.count() == 0, "requests still reach the removed address"
    assert all_ok(run_load(p.url, 20)) == {"two": 20}
    assert p.generation() == gen, "the change must not reload"


def test_in_flight_requests_keep_their_peer(portico, dns, twins):
    one, two = twins
    dns.set("app.test", ["127.0.0.1"], ttl=1)
    p = start(portico, dns, one.port)
    resolves_to(p, one.port, "127.0.0.1")
    one.hold()
    held = []
    t = threading.Thread(target=lambda: held.extend(run_load(p.url, 3, concurrency=3)),
                         daemon=True)
    t.start()
    one.wait_held(3)
    dns.set("app.test", ["127.0.0.2"], ttl=1)
    resolves_to(p, one.port, "127.0.0.2")
    assert all_ok(run_load(p.url, 10)) == {"two": 10}
    one.release()
    t.join(timeout=20)
    assert all_ok(held) == {"one": 3}


@pytest.mark.parametrize("failure", ["servfail", "refused", "silent", "truncated", "nxdomain"])
def test_dns_failure_keeps_the_last_addresses(portico, dns, twins, failure):
    one, two = twins
    dns.set("app.test", ["127.0.0.2"], ttl=1)
    p = start(portico, dns, one.port)
    resolves_to(p, one.port, "127.0.0.2")
    if failure == "nxdomain":
        dns.remove("app.test")
    else:
        dns.fail(failure)
    n = dns.count("app.test", "A")
    p.wait_log(r"\[warn\] upstream app: cannot resolve app\.test:%d \(.*\); keeping 127\.0\.0\.2:%d"
               % (one.port, one.port), timeout=10)
    dns.wait_queries("app.test", n + 3, timeout=20)  # it keeps retrying
    assert all_ok(run_load(p.url, 30)) == {"two": 30}
    assert "now resolves to nothing" not in p.log()

    # Back to normal, with another address: it is picked up.
    dns.fail(None)
    dns.set("app.test", ["127.0.0.1"], ttl=1)
    resolves_to(p, one.port, "127.0.0.1", timeout=15)
    p.wait_log(r"upstream app: app\.test:%d resolves again after \d+ failure" % one.port)
    assert all_ok(run_load(p.url, 20)) == {"one": 20}


def test_ttl_is_followed_without_valid(portico, dns, twins):
    one, two = twins
    dns.set("app.test", ["127.0.0.1"], ttl=1)
    p = start(portico, dns, one.port, resolver_opts="")
    resolves_to(p, one.port, "127.0.0.1")
    # TTL 1 s: about one query a second.
    n0 = dns.count("app.test", "A")
    time.sleep(3.5)
    n1 = dns.count("app.test", "A")
    assert 2 <= n1 - n0 <= 8, (n0, n1)
    # TTL 1 hour: after the query that learns it, silence.
    dns.set("app.test", ["127.0.0.1"], ttl=3600)
    dns.wait_queries("app.test", n1 + 1, timeout=5)
    time.sleep(2.5)  # past any retry of that query
    n2 = dns.count("app.test", "A")
    time.sleep(3)
    assert dns.count("app.test", "A") == n2
    assert all_ok(run_load(p.url, 10)) == {"one": 10}


def test_valid_overrides_ttl(portico, dns, twins):
    one, two = twins
    dns.set("app.test", ["127.0.0.1"], ttl=3600)
    p = start(portico, dns, one.port, resolver_opts="valid=1s")
    resolves_to(p, one.port, "127.0.0.1")
    dns.set("app.test", ["127.0.0.2"], ttl=3600)
    resolves_to(p, one.port, "127.0.0.2", timeout=5)
    assert all_ok(run_load(p.url, 10)) == {"two": 10}


def test_cname_is_followed(portico, dns, twins):
    one, two = twins
    dns.cname("app.test", "edge.test", ttl=1)
    dns.set("edge.test", ["127.0.0.2"], ttl=1)
    p = start(portico, dns, one.port)
    resolves_to(p, one.port, "127.0.0.2")
    assert all_ok(run_load(p.url, 10)) == {"two": 10}


def test_reload_keeps_addresses_and_applies_a_new_resolver(portico, dns, twins):
    one, two = twins
    dns.set("app.test", ["127.0.0.2"], ttl=1)
    p = start(portico, dns, one.port)
    resolves_to(p, one.port, "127.0.0.2")

    # Same config: the dynamic addresses survive the reload (the system
    # resolver does not know app.test, so the config alone has none).
    load = Load(p.url, concurrency=1)
    p.reload()
    time.sleep(0.5)
    assert all_ok(load.stop()) == {"two": len(load.results)}
    assert all_ok(run_load(p.url, 10)) == {"two": 10}

    # Another resolver that says otherwise: it is used at once.
    other = DnsServer()
    try:
        other.set("app.test", ["127.0.0.1"], ttl=3600)
        dns.set("app.test", ["127.0.0.2"], ttl=3600)
        p.reload(CONF, dns=other.addr)
        resolves_to(p, one.port, "127.0.0.1", timeout=5)
        assert other.count("app.test", "A") >= 1
        assert all_ok(run_load(p.url, 10)) == {"one": 10}
    finally:
        other.stop()


def test_resolve_line_removed_by_reload(portico, dns, twins):
    one, two = twins
    dns.set("app.test", ["127.0.0.2"], ttl=1)
    p = start(portico, dns, one.port)
    resolves_to(p, one.port, "127.0.0.2")
    p.reload(CONF.replace("app.test:<<app_port>> resolve", "127.0.0.1:<<app_port>>"))
    time.sleep(0.3)
    n = dns.count("app.test")
    time.sleep(2.5)
    assert dns.count("app.test") == n, "a removed line is still resolved"
    assert all_ok(run_load(p.url, 10)) == {"one": 10}
