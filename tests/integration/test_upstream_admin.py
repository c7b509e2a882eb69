"""Admin API for upstreams (issue 4): GET /upstreams, drain / enable /
weight without reload, input validation, IPv6 addresses, bearer token,
POST /reload and the upstream_state_file."""

import base64
import json
import re
import threading

import pytest

from conftest import RawConn
from ctl_origins import (Admin, by_origin, ctl_origins, ipv6_loopback, run_load,  # noqa: F401
                         server_path, upstream_conf, wait_for)

GROUP_KEYS = {"name", "algorithm", "active", "requests", "retries", "budget_exhausted",
              "overflow", "servers"}
SERVER_KEYS = {"address", "weight", "config_weight", "backup", "state", "admin", "health",
               "active", "connections", "ewma_ms", "requests", "failures", "ejections",
               "max_conns"}


def ok(results):
    bad = [r for r in results if r.status != 200]
    assert not bad, bad[:5]
    return by_origin(results)


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def test_get_upstreams_shape(portico, ctl_origins):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups="round_robin;",
                              server_opts={0: "weight=3 max_conns=7", 2: "backup"}))
    ok(run_load(p.url, 12, concurrency=1))
    adm = Admin(p)
    r = adm.get("/upstreams")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert isinstance(doc["upstreams"], list)
    groups = {g["name"]: g for g in doc["upstreams"]}
    g = groups["backend"]
    assert GROUP_KEYS <= set(g), sorted(GROUP_KEYS - set(g))
    assert g["algorithm"] == "round_robin"
    assert g["requests"] == 12 and g["retries"] == 0 and g["active"] == 0
    assert g["budget_exhausted"] == 0 and g["overflow"] == 0
    assert [s["address"] for s in g["servers"]] == [o.addr for o in os_]
    for s, o in zip(g["servers"], os_):
        assert SERVER_KEYS <= set(s), sorted(SERVER_KEYS - set(s))
        assert s["state"] == "up" and s["admin"] == "enabled" and s["health"] == "up", s
        assert s["requests"] == o.count(), (s, o.count())
        assert s["failures"] == 0 and s["ejections"] == 0 and s["active"] == 0, s
        for k in ("weight", "config_weight", "connections", "max_conns", "requests"):
            assert isinstance(s[k], int) and not isinstance(s[k], bool), (k, s)
        assert is_num(s["ewma_ms"]) and s["ewma_ms"] >= 0, s
    s0, s1, s2 = g["servers"]
    assert (s0["weight"], s0["config_weight"], s0["max_conns"]) == (3, 3, 7), s0
    assert (s1["weight"], s1["max_conns"], s1["backup"]) == (1, 0, False), s1
    assert s2["backup"] is True and s2["requests"] == 0, s2
    assert s0["requests"] == 9 and s1["requests"] == 3  # weights 3:1, backup idle
    assert s0["ewma_ms"] > 0
    # one group by name: the same document
    r = adm.get("/upstreams/backend")
    assert r.status_code == 200
    one = r.json()
    assert one["name"] == "backend" and [s["address"] for s in one["servers"]] == \
        [o.addr for o in os_]
    assert adm.get("/upstreams/nope").status_code == 404


def test_drain_lets_in_flight_finish_and_enable_restores(portico, ctl_origins):
    os_ = ctl_origins(2)
    a, b = os_
    p = portico(upstream_conf(os_, ups="round_robin;"))
    adm = Admin(p)
    gen = p.generation()
    a.hold()
    parked, threads = [], []
    try:
        # single requests until one is parked at a (b answers the others)
        for _ in range(20):
            t = threading.Thread(target=lambda: parked.extend(run_load(p.url, 1)), daemon=True)
            t.start()
            threads.append(t)
            wait_for(lambda: a.held >= 1 or not t.is_alive(), 10)
            if a.held >= 1:
                break
        assert a.held == 1
        s = adm.drain(a.addr)
        assert s["admin"] == "drain" and s["state"] == "drain", s
        assert s["active"] == 1, s  # the parked request is still in flight
        before = a.count()
        c = ok(run_load(p.url, 30, concurrency=3))
        assert c == {b.name: 30}, c
        assert a.count() == before, "a drained server got new requests"
    finally:
        a.release()
        for t in threads:
            t.join(15)
    assert [r.status for r in parked] == [200] * len(parked)
    assert parked[-1].origin == a.name, "the in-flight request did not finish on its server"
    wait_for(lambda: adm.server(a.addr)["active"] == 0, 5)
    s = adm.enable(a.addr)
    assert s["admin"] == "enabled" and s["state"] == "up", s
    c = ok(run_load(p.url, 30, concurrency=3))
    assert c[a.name] >= 10, c
    assert p.generation() == gen, "admin changes must not reload"


def test_weight_change_without_reload(portico, ctl_origins):
    os_ = ctl_origins(2)
    a, b = os_
    p = portico(upstream_conf(os_, ups="round_robin;"))
    adm = Admin(p)
    gen = p.generation()
    r = adm.set_weight(a.addr, 3)
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["address"], s["weight"], s["config_weight"]) == (a.addr, 3, 1), s
    c = ok(run_load(p.url, 400, concurrency=4))
    assert abs(c[a.name] - 300) <= 15, c
    r = adm.set_weight(a.addr, None)  # back to the configured weight
    assert r.status_code == 200, r.text
    assert r.json()["weight"] == 1
    c = ok(run_load(p.url, 200, concurrency=4))
    assert abs(c[a.name] - 100) <= 12, c
    assert p.generation() == gen


BAD_BODIES = ['{"weight":0}', '{"weight":1001}', '{"weight":-5}', '{"weight":"3"}',
              '{"weight":2.5}', '{"weight":[1]}', '{"weight":true}', '{}', '{"wait":3}',
              'not json', '', '[3]', '{"weight":3', '{"weight":1e3}']


def test_bad_input_rejected_and_state_unchanged(portico, ctl_origins):
    os_ = ctl_origins(2)
    a = os_[0]
    p = portico(upstream_conf(os_, ups="round_robin;"))
    adm = Admin(p)
    assert adm.set_weight(a.addr, 2).status_code == 200
    for body in BAD_BODIES:
        r = adm.action(a.addr, "weight", content=body,
                       headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/json"), body
        err = r.json()
        assert isinstance(err.get("error"), str) and err["error"], (body, err)
        s = adm.server(a.addr)
        assert (s["weight"], s["admin"]) == (2, "enabled"), (body, s)
    # unknown group, server, action; wrong method; bad percent-encoding
    cases = [
        ("POST", server_path("nope", a.addr, "drain"), 404),
        ("POST", server_path("backend", "127.0.0.1:1", "drain"), 404),
        ("POST", server_path("backend", a.addr, "explode"), 404),
        ("GET", server_path("backend", a.addr, "drain"), 405),
        ("DELETE", server_path("backend", a.addr, "enable"), 405),
    ]
    for method, path, want in cases:
        r = adm.request(method, path)
        assert r.status_code == want, (method, path, r.status_code, r.text)
        if want != 405:
            assert "error" in r.json(), (path, r.text)
    # a bad percent-escape (sent raw: httpx would re-encode the '%')
    with RawConn(p.admin_port) as conn:
        conn.send("POST /upstreams/backend/servers/127.0.0.1%%zz%d/drain HTTP/1.1\r\n"
                  "Host: a\r\nContent-Length: 0\r\n\r\n" % a.port)
        r = conn.read_response()
    assert r.status == 400, r
    assert "error" in json.loads(r.body), r.body
    for s in adm.group()["servers"]:
        assert s["admin"] == "enabled" and s["state"] == "up", s
    assert adm.server(a.addr)["weight"] == 2
    assert adm.server(os_[1].addr)["weight"] == 1


def test_ipv6_server_address_percent_encoded(portico, ctl_origins):
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    v4 = ctl_origins(1)
    v6 = ctl_origins(1, host="::1")[0]
    assert v6.addr.startswith("[::1]:")
    p = portico(upstream_conf(v4 + [v6], ups="round_robin;"))
    adm = Admin(p)
    assert v6.addr in [s["address"] for s in adm.group()["servers"]]
    c = ok(run_load(p.url, 20))
    assert c[v6.name] == 10, c
    path = server_path("backend", v6.addr, "drain")
    assert "%5B%3A%3A1%5D%3A" in path
    r = adm.post(path)
    assert r.status_code == 200, r.text
    assert r.json()["address"] == v6.addr and r.json()["admin"] == "drain"
    c = ok(run_load(p.url, 20))
    assert c == {v4[0].name: 20}, c
    assert adm.enable(v6.addr)["admin"] == "enabled"
    r = adm.set_weight(v6.addr, 4)
    assert r.status_code == 200 and r.json()["weight"] == 4, r.text


def test_bearer_token(portico, ctl_origins):
    os_ = ctl_origins(2)
    p = portico(upstream_conf(os_), main_extra="admin_token s3cret-token-0123456789;")
    anon, wrong, good = Admin(p), Admin(p, "nope"), Admin(p, "s3cret-token-0123456789")
    for path in ("/upstreams", "/upstreams/backend", "/status", "/metrics"):
        assert anon.get(path).status_code == 401, path
        assert wrong.get(path).status_code == 401, path
        assert good.get(path).status_code == 200, path
    r = anon.get("/upstreams")
    assert "bearer" in r.headers.get("www-authenticate", "").lower(), r.headers
    # a refused change changes nothing
    assert anon.action(os_[0].addr, "drain").status_code == 401
    assert wrong.post("/reload").status_code == 401
    assert good.server(os_[0].addr)["admin"] == "enabled"
    r = good.action(os_[0].addr, "drain")
    assert r.status_code == 200, r.text
    assert good.server(os_[0].addr)["admin"] == "drain"
    # a Basic header or a bare token is not a bearer token
    r = anon.get("/upstreams", headers={"Authorization": "Basic %s" % base64.b64encode(b"u:s3cret-token-0123456789").decode()})
    assert r.status_code == 401
    r = anon.get("/upstreams", headers={"Authorization": "s3cret-token-0123456789"})
    assert r.status_code == 401


def test_post_reload(portico, ctl_origins):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_[:2], ups="round_robin;"))
    adm = Admin(p)
    assert adm.get("/reload").status_code == 405
    r = adm.post("/reload")
    assert r.status_code == 200, r.text
    assert r.json() == {"generation": 2}
    assert p.generation() == 2
    # a new server appears after a reload through the API
    p.write_conf(upstream_conf(os_, ups="round_robin;"))
    r = adm.post("/reload")
    assert r.status_code == 200 and r.json()["generation"] == 3, r.text
    assert len(adm.group()["servers"]) == 3
    c = ok(run_load(p.url, 30, concurrency=3))
    assert c[os_[2].name] >= 8, c
    # a broken file: 400 with file:line:col, old config kept
    bad = upstream_conf(os_[:1], ups="round_robin;\nbogus_directive 1;")
    text = p.write_conf(bad)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "bogus_directive" in ln)
    col = text.splitlines()[line - 1].index("bogus_directive") + 1
    r = adm.post("/reload")
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    m = re.match(r"(.+):(\d+):(\d+): .+", err)
    assert m, err
    assert m.group(1).endswith("portico.conf") and int(m.group(2)) == line, (err, line)
    assert int(m.group(3)) == col, (err, col)
    assert p.generation() == 3
    assert len(adm.group()["servers"]) == 3
    c = ok(run_load(p.url, 30, concurrency=3))
    assert len(c) == 3, c
    assert p.alive()


def read_state(path):
    with open(path) as f:
        return json.load(f)


def test_state_file_survives_reload_and_restart(portico, ctl_origins, tmp_path):
    os_ = ctl_origins(3)
    a, b, c = os_
    state = tmp_path / "upstreams.state"
    extra = "upstream_state_file %s;" % state
    conf = upstream_conf(os_, ups="round_robin;", extra_http=extra)
    p = portico(conf)
    adm = Admin(p)
    adm.drain(a.addr)
    assert adm.set_weight(b.addr, 5).status_code == 200
    wait_for(lambda: b.addr in read_state_safe(state).get("upstreams", {}).get("backend", {}), 5,
             lambda: "state file not written: %r" % read_state_safe(state))
    doc = read_state(state)
    assert doc["version"] == 1, doc
    entries = doc["upstreams"]["backend"]
    assert entries[a.addr] == {"weight": None, "admin": "drain"}, doc
    assert entries[b.addr] == {"weight": 5, "admin": "enabled"}, doc
    if c.addr in entries:
        assert entries[c.addr] == {"weight": None, "admin": "enabled"}, doc
    wait_for(lambda: not list(tmp_path.glob("upstreams.state?*")), 5,
             lambda: "temp file left behind: %r" % list(tmp_path.iterdir()))

    def check(adm_):
        sa, sb, sc = (adm_.server(o.addr) for o in os_)
        assert (sa["admin"], sa["state"]) == ("drain", "drain"), sa
        assert (sb["weight"], sb["config_weight"], sb["admin"]) == (5, 1, "enabled"), sb
        assert (sc["weight"], sc["admin"]) == (1, "enabled"), sc

    p.reload()  # SIGHUP
    check(adm)
    cnt = ok(run_load(p.url, 60, concurrency=2))
    assert cnt[a.name] == 0 and abs(cnt[b.name] - 50) <= 4, cnt

    assert p.stop() == 0
    p2 = portico(conf)  # a restart: same config, same state file
    adm2 = Admin(p2)
    check(adm2)
    cnt = ok(run_load(p2.url, 60, concurrency=2))
    assert cnt[a.name] == 0, cnt

    # a server removed from the config is dropped from the state
    p2.reload(upstream_conf([b, c], ups="round_robin;", extra_http=extra))
    assert a.addr not in [s["address"] for s in adm2.group()["servers"]]
    wait_for(lambda: a.addr not in read_state(state)["upstreams"].get("backend", {}), 5,
             lambda: "removed server still in the state file: %r" % read_state(state))
    assert read_state(state)["upstreams"]["backend"][b.addr]["weight"] == 5
    # ... so when it comes back it is a fresh, enabled server
    p2.reload(conf)
    sa = adm2.server(a.addr)
    assert (sa["admin"], sa["weight"]) == ("enabled", 1), sa


def read_state_safe(path):
    try:
        return read_state(path)
    except (OSError, ValueError):
        return {}
