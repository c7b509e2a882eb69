"""Active health checks (HTTP and TCP) and passive outlier detection over
real origins (issue 4). Short intervals (200 ms) and ejection times (1 s);
assertions on probe and request counts and on states, not on time."""

import time

from ctl_origins import Admin, by_origin, ctl_origins, run_load, upstream_conf, wait_for  # noqa: F401

HC = "health_check type=http interval=200ms timeout=200ms rise=%d fall=%d uri=/health;"


def ok(results):
    bad = [r for r in results if r.status != 200]
    assert not bad, bad[:5]
    return by_origin(results)


def wait_probed(origins, n=1):
    wait_for(lambda: all(o.health_hits >= n for o in origins), 10,
             lambda: "not probed: %r" % [(o.name, o.health_hits) for o in origins])


# ----------------------------------------------------------------------
# active checks
# ----------------------------------------------------------------------

def test_http_check_ejects_after_fall_and_restores_after_rise(portico, ctl_origins):
    rise, fall = 2, 3
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups="round_robin;\n" + HC % (rise, fall)))
    adm = Admin(p)
    wait_probed(os_)
    for o in os_:
        s = adm.server(o.addr)
        assert (s["state"], s["health"]) == ("up", "up"), s
    sick = os_[1]

    sick.set_health(503)
    h0 = sick.health_hits  # every probe counted from here saw 503
    s = adm.wait_state(sick.addr, "down")
    failed = sick.health_hits - h0
    assert failed >= fall, "marked down after %d failed probes, fall=%d" % (failed, fall)
    assert failed <= fall + 2, "marked down only after %d failed probes, fall=%d" % (failed, fall)
    assert s["health"] == "down", s
    before = sick.count()
    c = ok(run_load(p.url, 60, concurrency=3))
    assert sick.count() == before, "a server down by health checks got traffic: %r" % c
    assert set(c) == {"origin-0", "origin-2"} and abs(c["origin-0"] - 30) <= 3, c

    sick.set_health(200)
    h1 = sick.health_hits
    s = adm.wait_state(sick.addr, "up")
    passed = sick.health_hits - h1
    assert passed >= rise, "marked up after %d good probes, rise=%d" % (passed, rise)
    assert s["health"] == "up", s
    c = ok(run_load(p.url, 60, concurrency=3))
    assert c[sick.name] >= 15, c
    # the other servers were probed all along and never went down
    for o in (os_[0], os_[2]):
        assert adm.server(o.addr)["state"] == "up"


def test_http_check_options(portico, ctl_origins):
    """method, uri, Host header, expected status range and body substring."""
    os_ = ctl_origins(2)
    hc = ("health_check type=http interval=200ms timeout=200ms rise=1 fall=1 method=GET "
          "uri=/health?deep=1 host=check.example status=200-299 body=ALIVE;")
    p = portico(upstream_conf(os_, ups=hc))
    adm = Admin(p)
    o = os_[0]
    # body "OK\n" lacks ALIVE: down after the first probe
    adm.wait_state(o.addr, "down")
    method, target, headers = o.health_requests[-1]
    assert method == "GET"
    assert target == "/health?deep=1"
    hosts = [v for k, v in headers if k.lower() == "host"]
    assert hosts == ["check.example"], headers

    o.set_health(200, "I am ALIVE\n")
    os_[1].set_health(200, "ALIVE")
    adm.wait_state(o.addr, "up")
    adm.wait_state(os_[1].addr, "up")
    # status outside 200-299 fails even with the right body
    o.set_health(302, "ALIVE")
    adm.wait_state(o.addr, "down")
    o.set_health(299, "ALIVE")
    adm.wait_state(o.addr, "up")


def test_http_check_timeout_counts_as_failure(portico, ctl_origins):
    os_ = ctl_origins(2)
    p = portico(upstream_conf(
        os_, ups="health_check type=http interval=500ms timeout=400ms rise=1 fall=2 uri=/health;"))
    adm = Admin(p)
    wait_probed(os_)
    os_[0].set_health(None)  # never answers
    adm.wait_state(os_[0].addr, "down")
    c = ok(run_load(p.url, 20, concurrency=2))
    assert c == {"origin-1": 20}, c
    os_[0].set_health(200)
    adm.wait_state(os_[0].addr, "up")


def test_tcp_check(portico, ctl_origins):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(
        os_, ups="round_robin;\nhealth_check type=tcp interval=200ms timeout=200ms rise=1 fall=2;"))
    adm = Admin(p)
    wait_for(lambda: all(o.connections >= 2 for o in os_), 10, "tcp probes do not connect")
    assert all(o.health_hits == 0 for o in os_), "tcp checks sent HTTP requests"
    dead = os_[2]
    dead.die()
    s = adm.wait_state(dead.addr, "down")
    assert s["health"] == "down"
    c = ok(run_load(p.url, 40, concurrency=2))
    assert set(c) == {"origin-0", "origin-1"} and abs(c["origin-0"] - 20) <= 3, c
    n = dead.connections
    dead.revive()
    adm.wait_state(dead.addr, "up")
    assert dead.connections > n
    c = ok(run_load(p.url, 30, concurrency=3))
    assert c[dead.name] >= 5, c


def test_health_check_port(portico, ctl_origins):
    """port=N: every server is probed on that port (here a separate origin)."""
    os_ = ctl_origins(3)
    checker = os_[2]
    p = portico(upstream_conf(
        os_[:2], ups="health_check type=http interval=200ms timeout=200ms rise=1 fall=1 port=%d uri=/health;"
        % checker.port))
    adm = Admin(p)
    wait_for(lambda: checker.health_hits >= 4, 10, "the check port is not probed")
    assert os_[0].health_hits == 0 and os_[1].health_hits == 0
    checker.set_health(500)
    adm.wait_state(os_[0].addr, "down")
    adm.wait_state(os_[1].addr, "down")
    checker.set_health(200)
    adm.wait_state(os_[0].addr, "up")


def test_all_servers_down_answers_503_at_once_and_keeps_probing(portico, ctl_origins):
    os_ = ctl_origins(2)
    p = portico(upstream_conf(os_, ups=HC % (1, 2)))
    adm = Admin(p)
    wait_probed(os_)
    for o in os_:
        o.set_health(503)
    for o in os_:
        adm.wait_state(o.addr, "down")
    before = [o.count() for o in os_]
    t0 = time.monotonic()
    res = run_load(p.url, 20, concurrency=2)
    elapsed = time.monotonic() - t0
    for r in res:
        assert r.status == 503, res
        assert r.headers.get("retry-after"), r.headers
        assert r.origin is None
    assert [o.count() for o in os_] == before, "portico tried origins that are down"
    assert elapsed < 5, "20 answers with every server down took %.1fs" % elapsed  # generous bound
    # probing goes on while everything is down
    h = [o.health_hits for o in os_]
    wait_for(lambda: all(o.health_hits >= x + 3 for o, x in zip(os_, h)), 10,
             "probes stopped while every server was down")
    os_[1].set_health(200)
    adm.wait_state(os_[1].addr, "up")
    c = ok(run_load(p.url, 10))
    assert c == {"origin-1": 10}, c


# ----------------------------------------------------------------------
# passive checks (outlier detection)
# ----------------------------------------------------------------------

OD = "outlier_detection consecutive_failures=3 ejection_time=1s max_ejection_time=10s max_ejected=50%;"


def test_outlier_ejects_after_consecutive_5xx_and_returns(portico, ctl_origins):
    os_ = ctl_origins(4)
    p = portico(upstream_conf(os_, ups="round_robin;\n" + OD), workers=1)
    adm = Admin(p)
    bad = os_[0]
    bad.fail(500)
    res = run_load(p.url, 60, concurrency=1)
    n500 = sum(1 for r in res if r.status == 500)
    assert bad.count() == n500
    assert 3 <= bad.count() <= 4, \
        "outlier detection (consecutive_failures=3) let %d failing requests through" % bad.count()
    s = adm.server(bad.addr)
    assert s["state"] == "ejected", s
    assert s["ejections"] == 1 and s["failures"] >= 3, s
    # ejection_time=1s: it comes back, still fails, and is ejected again
    adm.wait_state(bad.addr, "up", timeout=10)
    before = bad.count()
    wait_for(lambda: run_load(p.url, 4) and adm.server(bad.addr)["state"] == "ejected", 20,
             "the failing server was not ejected a second time")
    assert adm.server(bad.addr)["ejections"] == 2
    assert bad.count() - before <= 4
    # healthy again: after the (doubled) ejection it takes traffic
    bad.normal()
    adm.wait_state(bad.addr, "up", timeout=15)
    c = ok(run_load(p.url, 40, concurrency=2))
    assert c[bad.name] >= 5, c


def test_outlier_ejects_on_connect_failures(portico, ctl_origins):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups="round_robin;\noutlier_detection consecutive_failures=3 "
                              "ejection_time=30s max_ejected=50%;"))
    adm = Admin(p)
    dead = os_[0]
    dead.die()
    # default proxy_next_upstream error: clients never see the dead server
    c = ok(run_load(p.url, 60, concurrency=2))
    assert c[dead.name] == 0
    s = adm.server(dead.addr)
    assert s["state"] == "ejected", s
    assert s["failures"] >= 3, s
    assert s["failures"] <= 6, "a dead server kept being tried after ejection: %r" % s


def test_outlier_never_ejects_more_than_max_ejected(portico, ctl_origins):
    os_ = ctl_origins(4)
    p = portico(upstream_conf(os_, ups="round_robin;\noutlier_detection consecutive_failures=2 "
                              "ejection_time=30s max_ejected=50%;"), workers=1)
    adm = Admin(p)
    failing = os_[:3]
    for o in failing:
        o.fail(500)
    for _ in range(8):
        run_load(p.url, 10, concurrency=1)
        st = adm.states()
        ejected = [a for a, s in st.items() if s == "ejected"]
        assert len(ejected) <= 2, "more than 50%% of 4 servers ejected: %r" % st
    assert len(ejected) == 2, st
    # the third failing server is not ejected and keeps receiving requests
    third = [o for o in failing if st[o.addr] != "ejected"]
    assert len(third) == 1 and st[os_[3].addr] == "up", st
    before = third[0].count()
    run_load(p.url, 20)
    assert third[0].count() - before >= 5
    assert adm.group()["servers"] and sum(1 for s in adm.group()["servers"]
                                          if s["state"] == "ejected") == 2


def test_outlier_failure_ratio(portico, ctl_origins):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups="round_robin;\noutlier_detection consecutive_failures=0 "
                              "failure_ratio=50% min_requests=10 window=30s ejection_time=30s;"),
                workers=1)
    adm = Admin(p)
    os_[0].fail(500)             # 100% failures
    os_[1].fail(500, every=4)    # 25%: below the ratio
    run_load(p.url, 90, concurrency=1)
    s0, s1 = adm.server(os_[0].addr), adm.server(os_[1].addr)
    assert s0["state"] == "ejected", s0
    assert 10 <= os_[0].count() <= 12, \
        "ejected after %d requests with min_requests=10" % os_[0].count()
    assert s1["state"] == "up", s1
    assert os_[1].count() >= 30


def test_outlier_detection_off(portico, ctl_origins):
    os_ = ctl_origins(2)
    p = portico(upstream_conf(os_, ups="round_robin;\noutlier_detection off;"))
    os_[0].fail(500)
    res = run_load(p.url, 40, concurrency=1)  # one connection, one worker: exact rotation
    assert os_[0].count() == 20
    assert sum(1 for r in res if r.status == 500) == 20
    assert Admin(p).server(os_[0].addr)["state"] == "up"
