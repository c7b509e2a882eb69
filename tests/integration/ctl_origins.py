"""Controllable origins for the upstream tests (issue 4).

`CtlOrigin` is a keep-alive HTTP/1.1 server on a free loopback port, run by
threads of the pytest process (one per connection), that a test switches at
run time between behaviours:

    o.normal()                  answer 200 at once
    o.slow(0.2)                 answer 200 after 200 ms
    o.fail(503)                 answer 503 to every request
    o.fail(500, every=3)        ... to every 3rd request (counted from this call)
    o.fail(502, prob=0.5)       ... to about half of them (seeded RNG)
    o.fail(503, delay=0.02)     ... after 20 ms
    o.hang()                    read the request, never answer
    o.reset()                   send the head and part of the body, then RST
    o.reset(before_head=True)   RST right after reading the request
    o.hold()                    park requests until o.release(), then answer 200
    o.die()                     close the listen socket (connects are refused)
                                and reset every open connection
    o.revive()                  listen again on the same port

Every answer carries `X-Origin: <name>` and a body starting with the name
(`origin-2\n`), so a test knows which server answered. `GET /health` is
answered independently of the mode (except when dead) with the status and
body set by `o.set_health(status, body)` (status None: never answer);
health requests are counted apart (`o.health_hits`, `o.health_requests`).
Other requests are counted by (method, path): `o.count()`, `o.count("/x")`,
`o.count(method="POST")`.

The fixture `ctl_origins(n)` starts n origins named origin-0..origin-{n-1}
and stops them at teardown. Import it into a test module to use it:
`from ctl_origins import ctl_origins`.

Helpers for the tests: `upstream_conf()` builds a config, `Admin` talks to
the admin API, `run_load()` sends requests from several client threads and
tells which origin answered each, `wait_for()` polls a condition.
"""

import collections
import http.client
import json
import random
import socket
import struct
import threading
import time
import urllib.parse

import httpx
import pytest

from origins import ConnReader, close_hard, read_chunked, read_request_head, hval

BODY_PAD = b"x" * 64  # a few bytes after the name so bodies are not trivial


class CtlOrigin:
    """One controllable origin (see the module docstring)."""

    def __init__(self, name, host="127.0.0.1", port=0, seed=0):
        self.name = name
        self.host = host
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.stopping = threading.Event()
        self.rng = random.Random(seed)
        # behaviour (read under lock at each request)
        self.mode = "normal"
        self.delay = 0.0
        self.fail_status = 503
        self.fail_every = 1
        self.fail_prob = None
        self.fail_seen = 0
        self.reset_before_head = False
        self.mode_gen = 0  # bumped at each mode change (wakes hung requests)
        self.holding = False
        self.health_status = 200
        self.health_body = b"OK\n"
        # statistics
        self.counts = collections.Counter()  # (method, path) -> n
        self.requests = []  # (method, target, headers, body_len, wall time), newest last
        self.health_hits = 0
        self.health_requests = []  # (method, target, headers)
        self.connections = 0
        self.inflight = 0
        self.held = 0
        self.answered = 0
        self.socks = set()
        self.lsock = None
        self.accept_thread = None
        self._listen(port)
        self.port = self.lsock.getsockname()[1]
        self.addr = ("[%s]:%d" if self.family == socket.AF_INET6 else "%s:%d") % (host, self.port)

    # ------------------------------------------------------------------
    # listening, dying, reviving
    # ------------------------------------------------------------------
    def _listen(self, port):
        s = socket.socket(self.family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, port))
        s.listen(512)
        s.settimeout(0.05)
        self.lsock = s
        t = threading.Thread(target=self._accept_loop, args=(s,), daemon=True,
                             name="%s-accept" % self.name)
        self.accept_thread = t
        t.start()

    def _accept_loop(self, lsock):
        while not self.stopping.is_set() and self.lsock is lsock:
            try:
                s, _ = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                if self.lsock is not lsock:  # died while accepting
                    _rst(s)
                    continue
                self.connections += 1
                self.socks.add(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _close_listener(self):
        with self.lock:
            lsock, self.lsock = self.lsock, None
            socks = list(self.socks)
            self.mode_gen += 1
            self.wake.notify_all()
        t = self.accept_thread
        if lsock is not None:
            try:
                lsock.close()
            except OSError:
                pass
        if t is not None and t is not threading.current_thread():
            t.join(timeout=2)
        return socks

    def die(self):
        """Stops listening (connects are refused) and resets open connections."""
        for s in self._close_listener():
            # Closing a socket another thread is blocked on does not wake that
            # thread (nor send anything): shut the read side instead; the
            # serving thread then sees EOF and closes with an RST (linger 0).
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RD)
            except OSError:
                pass

    def revive(self):
        """Listens again on the same port."""
        with self.lock:
            assert self.lsock is None, "%s is not dead" % self.name
        deadline = time.monotonic() + 5
        while True:
            try:
                self._listen(self.port)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def dead(self):
        return self.lsock is None

    def stop(self):
        self.stopping.set()
        with self.lock:
            self.holding = False
        for s in self._close_listener():
            close_hard(s)

    # ------------------------------------------------------------------
    # modes
    # ------------------------------------------------------------------
    def _set(self, mode, **kw):
        with self.lock:
            self.mode = mode
            self.delay = kw.get("delay", 0.0)
            self.fail_status = kw.get("status", 503)
            self.fail_every = kw.get("every", 1)
            self.fail_prob = kw.get("prob")
            self.fail_seen = 0
            self.reset_before_head = kw.get("before_head", False)
            self.mode_gen += 1
            self.wake.notify_all()

    def normal(self):
        self._set("normal")

    def slow(self, delay):
        self._set("normal", delay=delay)

    def fail(self, status=503, every=None, prob=None, delay=0.0):
        assert every is None or prob is None
        self._set("fail", status=status, every=every or 1, prob=prob, delay=delay)

    def hang(self):
        self._set("hang")

    def reset(self, before_head=False):
        self._set("reset", before_head=before_head)

    def hold(self):
        """Requests arriving from now on wait until release()."""
        with self.lock:
            self.holding = True

    def release(self):
        with self.lock:
            self.holding = False
            self.wake.notify_all()

    def set_health(self, status, body=None):
        """Status (and body) of GET /health; None: never answer it."""
        with self.lock:
            self.health_status = status
            if body is not None:
                self.health_body = body.encode() if isinstance(body, str) else body
            self.wake.notify_all()

    # ------------------------------------------------------------------
    # statistics
    # ------------------------------------------------------------------
    def count(self, path=None, method=None):
        """Requests received (not /health), optionally only one path / method."""
        with self.lock:
            return sum(n for (m, p), n in self.counts.items()
                       if (path is None or p == path) and (method is None or m == method))

    def reset_counts(self):
        with self.lock:
            self.counts.clear()
            self.requests = []
            self.health_hits = 0
            self.health_requests = []
            self.answered = 0

    def wait_held(self, n, timeout=10):
        return wait_for(lambda: self.held >= n, timeout,
                        "%s: %d requests held, wanted %d" % (self.name, self.held, n))

    # ------------------------------------------------------------------
    # serving
    # ------------------------------------------------------------------
    def _serve(self, s):
        try:
            s.settimeout(120)
            r = ConnReader(s)
            while not self.stopping.is_set():
                if not self._one(s, r):
                    return
        except (EOFError, OSError, ValueError):
            pass
        finally:
            with self.lock:
                self.socks.discard(s)
            try:
                s.close()
            except OSError:
                pass

    def _one(self, s, r):
        """Serves one request; False to close the connection."""
        _raw, method, target, version, headers = read_request_head(r)
        te, cl = hval(headers, "transfer-encoding"), hval(headers, "content-length")
        if te and "chunked" in te.lower():
            body = read_chunked(r)
        elif cl is not None:
            body = r.read_exact(int(cl))
        else:
            body = b""
        path = target.split("?", 1)[0]
        keep = version == "HTTP/1.1" and "close" not in (hval(headers, "connection") or "").lower()
        if path == "/health":
            with self.lock:
                self.health_hits += 1
                self.health_requests.append((method, target, headers))
                status, hbody = self.health_status, self.health_body
                while self.health_status is None and not self.stopping.is_set() \
                        and self.lsock is not None:  # hang until changed
                    self.wake.wait(0.2)
            if status is None:
                return False
            self._send(s, status, hbody, method, keep)
            return keep
        with self.lock:
            self.counts[(method, path)] += 1
            self.requests.append((method, target, headers, len(body), time.time()))
            self.inflight += 1
        try:
            return self._answer(s, method, keep)
        finally:
            with self.lock:
                self.inflight -= 1

    def _answer(self, s, method, keep):
        with self.lock:
            if self.holding:
                self.held += 1
                while self.holding and not self.stopping.is_set():
                    self.wake.wait(0.2)
                self.held -= 1
            mode, delay, gen = self.mode, self.delay, self.mode_gen
            status = 200
            if mode == "fail":
                self.fail_seen += 1
                if self.fail_prob is not None:
                    hit = self.rng.random() < self.fail_prob
                else:
                    hit = self.fail_seen % self.fail_every == 0
                status = self.fail_status if hit else 200
        if mode == "hang":
            with self.lock:
                while self.mode_gen == gen and not self.stopping.is_set():
                    self.wake.wait(0.2)
            _rst(s)
            return False
        if mode == "reset":
            if not self.reset_before_head:
                head = ("HTTP/1.1 200 OK\r\nX-Origin: %s\r\nContent-Length: 100000\r\n\r\n"
                        % self.name).encode()
                s.sendall(head + self.name.encode() + b"\n" + b"r" * 1000)
                time.sleep(0.05)
            _rst(s)
            return False
        if delay and self.stopping.wait(delay):
            return False
        self._send(s, status, self.name.encode() + b"\n" + BODY_PAD, method, keep)
        with self.lock:
            self.answered += 1
        return keep

    def _send(self, s, status, body, method, keep):
        reason = {200: "OK", 500: "Internal Server Error", 502: "Bad Gateway",
                  503: "Service Unavailable", 504: "Gateway Timeout",
                  429: "Too Many Requests"}.get(status, "Status")
        head = "HTTP/1.1 %d %s\r\nX-Origin: %s\r\nContent-Type: text/plain\r\n" \
               "Content-Length: %d\r\n" % (status, reason, self.name, len(body))
        if not keep:
            head += "Connection: close\r\n"
        s.sendall(head.encode() + b"\r\n" + (b"" if method == "HEAD" else body))

    def __repr__(self):
        return "<CtlOrigin %s %s %s>" % (self.name, self.addr, self.mode)


def _rst(s):
    """Closes with an RST (SO_LINGER 0), as a crashed server would."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


@pytest.fixture
def ctl_origins():
    """Factory: ctl_origins(n, host="127.0.0.1") -> [CtlOrigin] named origin-0.."""
    started = []

    def make(n, host="127.0.0.1"):
        base = len(started)
        out = [CtlOrigin("origin-%d" % (base + i), host=host, seed=base + i) for i in range(n)]
        started.extend(out)
        return out

    yield make
    for o in started:
        o.stop()


def ipv6_loopback():
    """True when [::1] can be bound."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------
# config
# ----------------------------------------------------------------------

def upstream_conf(origins, ups="", loc="", server_opts=None, name="backend", extra_http="",
                  servers=None):
    """An http-level config: `upstream NAME` over origins (server_opts: index
    -> options text) and one server on <<listen>> proxying / to it."""
    server_opts = server_opts or {}
    lines = servers if servers is not None else [
        "server %s %s;" % (o.addr, server_opts.get(i, "")) for i, o in enumerate(origins)]
    return """
%s
upstream %s {
    %s
    %s
}
server {
    listen <<listen>>;
    location / {
        proxy_pass http://%s;
        %s
    }
}
""" % (extra_http, name, "\n    ".join(x for x in ups.split("\n")),
       "\n    ".join(lines), name, loc)


# ----------------------------------------------------------------------
# admin API
# ----------------------------------------------------------------------

def server_path(group, addr, action=""):
    p = "/upstreams/%s/servers/%s" % (urllib.parse.quote(group, safe=""),
                                      urllib.parse.quote(addr, safe=""))
    return p + ("/" + action if action else "")


class Admin:
    """Admin API client for one portico (bearer token optional)."""

    def __init__(self, p, token=None):
        self.url = p.admin_url
        self.token = token

    def _headers(self, headers=None):
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = "Bearer %s" % self.token
        return h

    def request(self, method, path, **kw):
        kw["headers"] = self._headers(kw.get("headers"))
        with httpx.Client(base_url=self.url, trust_env=False, timeout=10) as c:
            return c.request(method, path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def upstreams(self):
        r = self.get("/upstreams")
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def group(self, name="backend"):
        r = self.get("/upstreams/%s" % name)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def server(self, addr, group="backend"):
        for s in self.group(group)["servers"]:
            if s["address"] == addr:
                return s
        raise AssertionError("server %s not in group %s" % (addr, group))

    def states(self, group="backend"):
        """{address: state}"""
        return {s["address"]: s["state"] for s in self.group(group)["servers"]}

    def action(self, addr, action, group="backend", **kw):
        return self.post(server_path(group, addr, action), **kw)

    def drain(self, addr, group="backend"):
        r = self.action(addr, "drain", group)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def enable(self, addr, group="backend"):
        r = self.action(addr, "enable", group)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def set_weight(self, addr, weight, group="backend"):
        return self.action(addr, "weight", group, content=json.dumps({"weight": weight}),
                           headers={"Content-Type": "application/json"})

    def metrics(self):
        r = self.get("/metrics")
        assert r.status_code == 200, (r.status_code, r.text)
        return r.text

    def wait_state(self, addr, state, group="backend", timeout=10):
        last = {}

        def check():
            last["s"] = self.server(addr, group)
            return last["s"]["state"] == state

        wait_for(check, timeout, lambda: "%s never became %s: %r" % (addr, state, last.get("s")))
        return last["s"]


# ----------------------------------------------------------------------
# load
# ----------------------------------------------------------------------

class Result:
    __slots__ = ("status", "origin", "headers", "body", "error")

    def __init__(self, status, origin, headers, body, error=None):
        self.status, self.origin, self.headers, self.body, self.error = \
            status, origin, headers, body, error

    def __repr__(self):
        return "<%s %s %s>" % (self.status, self.origin, self.error or "")


def run_load(url, n, concurrency=1, path="/", method="GET", headers_fn=None, content=None,
             timeout=15.0):
    """Sends n requests from `concurrency` threads (each with its own
    keep-alive connection, http.client: much cheaper than httpx).
    headers_fn(i) gives the headers of request i. Returns the Results in
    request order (origin = X-Origin or None; status None on a transport
    error)."""
    u = urllib.parse.urlsplit(url)
    results = [None] * n
    nxt = iter(range(n))
    lock = threading.Lock()

    def worker():
        conn = None
        while True:
            with lock:
                i = next(nxt, None)
            if i is None:
                break
            h = dict(headers_fn(i)) if headers_fn else {}
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
                conn.request(method, path, body=content, headers=h)
                r = conn.getresponse()
                body = r.read()
                hdrs = {k.lower(): v for k, v in r.getheaders()}
                results[i] = Result(r.status, hdrs.get("x-origin"), hdrs, body)
                if r.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                results[i] = Result(None, None, {}, b"", repr(e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout * n + 30)
    return results


def by_origin(results):
    """Counter of origin names over results (None for portico's own answers)."""
    return collections.Counter(r.origin for r in results)


def wait_for(pred, timeout=10.0, msg="condition not met", interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            raise AssertionError(msg() if callable(msg) else msg)
        time.sleep(interval)
