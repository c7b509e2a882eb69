"""Process lifecycle: reload (SIGHUP, bad config, under traffic), graceful
stop (SIGTERM with a response in flight), worker_shutdown_timeout, the pid
file, and `portico -s reload|stop`."""

import os
import signal
import subprocess
import threading
import time

import httpx
import pytest

import origins
from conftest import PORTICO_BIN, RawConn, child_env, http_client

RET = """
server {
    listen <<listen>>;
    location / { return 200 "<<text>>\\n"; }
}
"""


def test_sighup_reload_changes_config(portico):
    p = portico(RET, text="v1")
    assert p.get("/").text == "v1\n"
    assert p.generation() == 1
    g = p.reload(RET, text="v2")
    assert g == 2
    assert p.get("/").text == "v2\n"
    assert p.generation() == 2


def test_reload_with_broken_config_keeps_old(portico):
    p = portico(RET, text="good")
    p.conf_path.write_text(p.conf_text.replace("location / {", "location / { no_such_directive 1;"))
    p.signal(signal.SIGHUP)
    m = p.wait_log(r"portico\.conf:\d+:\d+: .*no_such_directive")
    assert m
    assert p.alive()
    assert p.get("/").text == "good\n"
    assert p.generation() == 1
    # a fixed config loads afterwards
    assert p.reload(RET, text="fixed") == 2
    assert p.get("/").text == "fixed\n"


def test_reload_under_traffic_no_failures(portico):
    p = portico(RET, text="gen0")
    failures = []
    bodies = []
    stop = threading.Event()

    def new_conn_loop():
        while not stop.is_set():
            try:
                with p.client() as c:
                    r = c.get("/")
                if r.status_code != 200:
                    failures.append("status %d" % r.status_code)
                bodies.append(r.text)
            except Exception as e:
                failures.append(repr(e))

    def keepalive_loop():
        try:
            with p.client() as c:
                while not stop.is_set():
                    try:
                        r = c.get("/")
                        if r.status_code != 200:
                            failures.append("ka status %d" % r.status_code)
                        bodies.append(r.text)
                    except Exception as e:
                        failures.append("ka " + repr(e))
        except Exception as e:
            failures.append(repr(e))

    threads = [threading.Thread(target=new_conn_loop), threading.Thread(target=keepalive_loop)]
    for t in threads:
        t.start()
    try:
        for i in range(1, 6):
            time.sleep(0.3)
            assert p.reload(RET, text="gen%d" % i) == i + 1
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert failures == [], failures[:10]
    assert len(bodies) > 20
    assert set(bodies) <= {"gen%d\n" % i for i in range(6)}
    assert p.get("/").text == "gen5\n"


def test_reload_switches_upstream(portico, origin):
    a = origin(origins.EchoOrigin)
    b = origin(origins.EchoOrigin)
    conf = """
        upstream o { server <<o>>; keepalive 8; }
        server { listen <<listen>>; location / { proxy_pass http://o; } }
    """
    p = portico(conf, o=a.addr)
    with p.client() as c:
        assert c.get("/gen/3").status_code == 200
    p.reload(conf, o=b.addr)
    for _ in range(5):
        with p.client() as c:
            assert c.get("/gen/3").status_code == 200
    assert len(a.requests) == 1
    assert len(b.requests) == 5


def test_inflight_response_survives_reload(portico, origin):
    slow = origin(origins.SlowOrigin)
    conf = """
        upstream o { server <<o>>; }
        server { listen <<listen>>; location / { proxy_pass http://o; } location = /t { return 200 "<<text>>\\n"; } }
    """
    p = portico(conf, o=slow.addr, text="a")
    result = {}

    def fetch():
        with p.client(timeout=20) as c:
            result["r"] = c.get("/slow/10/150")

    t = threading.Thread(target=fetch)
    t.start()
    time.sleep(0.4)
    p.reload(conf, text="b")
    t.join(timeout=20)
    r = result["r"]
    assert r.status_code == 200
    assert len(r.content) == 10 * origins.SlowOrigin.piece_len
    assert p.get("/t").text == "b\n"


def test_keepalive_connection_survives_reload(portico):
    p = portico(RET, text="one")
    with RawConn(p.port) as c:
        c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().body == b"one\n"
        p.reload(RET, text="two")
        c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.body in (b"one\n", b"two\n")


def test_graceful_stop_completes_inflight(portico, origin):
    slow = origin(origins.SlowOrigin)
    p = portico("""
        upstream o { server <<o>>; }
        server { listen <<listen>>; location / { proxy_pass http://o; } }
    """, o=slow.addr, shutdown_timeout="10s")
    result = {}

    def fetch():
        try:
            with p.client(timeout=20) as c:
                result["r"] = c.get("/slow/10/200")
        except Exception as e:
            result["e"] = e

    t = threading.Thread(target=fetch)
    t.start()
    # SIGTERM only once the request is really in flight at the origin
    # (a fixed sleep raced on a loaded machine).
    deadline = time.monotonic() + 10
    while not slow.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow.requests, "the request never reached the origin"
    p.signal(signal.SIGTERM)
    # new connections are refused soon after SIGTERM
    time.sleep(0.5)
    refused = False
    try:
        with http_client(p.url, timeout=2) as c:
            c.get("/slow/1/10")
    except httpx.TransportError:
        refused = True
    t.join(timeout=20)
    assert "e" not in result, result.get("e")
    r = result["r"]
    assert r.status_code == 200
    assert len(r.content) == 10 * origins.SlowOrigin.piece_len
    rc = p.proc.wait(timeout=10)
    assert rc == 0
    assert refused, "new connection accepted after SIGTERM"


def test_stop_with_idle_keepalive_connection_is_quick(portico):
    p = portico(RET, text="x")
    with RawConn(p.port) as c:
        c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().status == 200
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        rc = p.proc.wait(timeout=10)
        assert time.monotonic() - t0 < 3
        assert rc == 0
        assert c.is_closed(timeout=2)


def test_shutdown_timeout_bounds_stop(portico, origin):
    slow = origin(origins.SlowOrigin)
    p = portico("""
        upstream o { server <<o>>; }
        server { listen <<listen>>; location / { proxy_pass http://o; } }
    """, o=slow.addr, shutdown_timeout="1s")
    c = RawConn(p.port, timeout=30)
    c.send("GET /slow/100/200 HTTP/1.1\r\nHost: t\r\n\r\n")  # 20 s
    assert c.read_head().status == 200
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    rc = p.proc.wait(timeout=10)
    elapsed = time.monotonic() - t0
    c.read_all(timeout=5)
    c.close()
    assert elapsed < 4, "stop took %.1fs with worker_shutdown_timeout 1s" % elapsed
    assert rc == 0
    assert c.eof


def test_pid_file(portico):
    p = portico(RET, text="x")
    assert int(p.pid_path.read_text().strip()) == p.proc.pid
    p.signal(signal.SIGTERM)
    assert p.proc.wait(timeout=10) == 0
    assert not p.pid_path.exists(), "pid file left behind after a clean stop"


def cli(*args):
    return subprocess.run([PORTICO_BIN, *args], capture_output=True, text=True, timeout=20,
                          env=child_env(), stdin=subprocess.DEVNULL)


def test_s_reload(portico):
    p = portico(RET, text="before")
    assert p.generation() == 1
    p.write_conf(RET, text="after")
    res = cli("-s", "reload", "-c", str(p.conf_path))
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 10
    while p.generation() != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert p.generation() == 2
    assert p.get("/").text == "after\n"


def test_s_stop(portico):
    p = portico(RET, text="x")
    res = cli("-s", "stop", "-c", str(p.conf_path))
    assert res.returncode == 0, res.stderr
    assert p.proc.wait(timeout=10) == 0


def test_s_without_running_process_fails(tmp_path):
    conf = tmp_path / "portico.conf"
    conf.write_text("workers 1;\npid %s/none.pid;\nadmin_listen off;\nevents { }\nhttp { }\n" % tmp_path)
    res = cli("-s", "reload", "-c", str(conf))
    assert res.returncode != 0
    assert res.stderr.strip() != ""


def test_s_unknown_signal_name(portico):
    p = portico(RET, text="x")
    res = cli("-s", "explode", "-c", str(p.conf_path))
    assert res.returncode != 0
    assert p.alive()


def test_sigterm_exit_code_and_clean_log(portico):
    p = portico(RET, text="x")
    for _ in range(20):
        assert p.get("/").status_code == 200
    p.signal(signal.SIGTERM)
    assert p.proc.wait(timeout=10) == 0
    assert p.sanitizer_report() is None


@pytest.mark.long
def test_fifty_reloads_under_traffic(portico):
    p = portico(RET, text="r0")
    failures, stop = [], threading.Event()

    def loop():
        while not stop.is_set():
            try:
                with p.client() as c:
                    for _ in range(20):
                        r = c.get("/")
                        if r.status_code != 200:
                            failures.append(r.status_code)
            except Exception as e:
                failures.append(repr(e))

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(1, 51):
            p.reload(RET, text="r%d" % i)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert failures == []
    assert p.get("/").text == "r50\n"
    assert p.generation() == 51
