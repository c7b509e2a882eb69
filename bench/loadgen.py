#!/usr/bin/python3
"""Open-loop HTTP/1.1 load generator for the upstream scenarios (stdlib only).

    loadgen.py --port P [--path /small] [--rate 1000] [--duration 30]
               [--timeout 1.0] [--conns 128] [--max-conns N]
               [--window A,B] [--touch-at S:PATH] [--remove-at S:PATH]

Requests are scheduled at a fixed rate (request i at start + i/rate) whatever
the proxy does, so a slow answer never delays the next request (no
coordinated omission). Each latency runs from the moment the generator
dispatches the request to the last byte of its response: the generator's
own lag behind its schedule (it is one Python process on a possibly busy
CPU; reported as max_send_lag_ms) is left out, but waiting for a free
connection counts. A request goes out on an idle keep-alive connection; when
none is idle a new one is opened (up to --max-conns; beyond that requests
queue). --conns connections are opened before the clock starts; by default that
is the whole pool (opening connections in Python during a burst costs more
than the queueing it saves).

A request that has no complete response --timeout seconds after its
dispatch is a timeout: it fails, and its connection is closed. Success
= a 2xx response within the timeout. Latency percentiles are over every
request: failed requests without a response (timeouts, connection errors)
count as +infinity, so a percentile that lands on them is reported as null
with "<name>_failed": true. wrk, by contrast, leaves timeouts out of its
latency figures.

--touch-at / --remove-at create / delete a file at a time on this clock
(used to switch an origin to slow and back). --window A,B adds the same
summary for the requests scheduled in [A, B) seconds.

Prints one JSON object on stdout (see summarize()).
"""

import argparse
import asyncio
import collections
import json
import math
import os
import socket
import sys

OUTCOME_TIMEOUT = -1
OUTCOME_ERROR = -2


class Request:
    __slots__ = ("t", "timer", "done", "conn")

    def __init__(self, t):
        self.t = t          # dispatch time (loop clock): the latency's start
        self.timer = None   # timeout handle
        self.done = False
        self.conn = None    # connection carrying it, once sent


def parse_response(buf):
    """Parse one complete response at the start of buf.

    Returns None if incomplete, else (status, keep_alive, bytes_consumed).
    Handles Content-Length and chunked bodies (the slow origin answers
    chunked)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).split(b"\r\n")
    parts = head[0].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"bad status line {head[0][:80]!r}")
    status = int(parts[1])
    keep = parts[0] == b"HTTP/1.1"
    length, chunked = None, False
    for line in head[1:]:
        k, _, v = line.partition(b":")
        k = k.strip().lower()
        v = v.strip().lower()
        if k == b"content-length":
            length = int(v)
        elif k == b"transfer-encoding" and b"chunked" in v:
            chunked = True
        elif k == b"connection":
            if b"close" in v:
                keep = False
            elif b"keep-alive" in v:
                keep = True
    pos = end + 4
    if chunked:
        while True:
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                return None
            size = int(bytes(buf[pos:nl]).split(b";")[0].strip(), 16)
            pos = nl + 2
            if size == 0:
                # Trailers end with an empty line.
                while True:
                    nl = buf.find(b"\r\n", pos)
                    if nl < 0:
                        return None
                    empty = nl == pos
                    pos = nl + 2
                    if empty:
                        return status, keep, pos
            if len(buf) < pos + size + 2:
                return None
            pos += size + 2
    if length is None:
        if status in (204, 304) or 100 <= status < 200:
            return status, keep, pos
        raise ValueError("response without length")
    if len(buf) < pos + length:
        return None
    return status, keep, pos + length


class Client(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    def __init__(self, gen):
        self.gen = gen
        self.transport = None
        self.buf = bytearray()
        self.req = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, req):
        self.req = req
        req.conn = self
        self.transport.write(self.gen.request_bytes)

    def data_received(self, data):
        self.buf += data
        if self.req is None:
            self.abort()  # bytes nobody asked for: do not trust this connection
            return
        try:
            r = parse_response(self.buf)
        except ValueError:
            self.gen.finish(self.req, OUTCOME_ERROR)
            self.req = None
            self.abort()
            return
        if r is None:
            return
        status, keep, used = r
        del self.buf[:used]
        req, self.req = self.req, None
        self.gen.finish(req, status)
        if keep and not self.buf:
            self.gen.release(self)
        else:
            self.abort()

    def abort(self):
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def connection_lost(self, exc):
        self.closed = True
        self.gen.lost(self)


class Gen:
    def __init__(self, a, loop):
        self.a = a
        self.loop = loop
        self.request_bytes = (f"GET {a.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              f"User-Agent: portico-bench-loadgen\r\n\r\n").encode()
        self.idle = collections.deque()
        self.waiting = collections.deque()  # requests with no connection yet
        self.nconns = 0
        self.opening = 0
        self.connect_errors = 0
        self.conns_opened = 0
        self.outstanding = 0
        self.start = None
        self.sched = []     # scheduled time, relative to start (s)
        self.lat = []       # latency (s), math.inf when failed without a response
        self.outcome = []   # HTTP status, OUTCOME_TIMEOUT or OUTCOME_ERROR
        self.index = {}     # id(req) -> slot in the arrays
        self.all_done = asyncio.Event()
        self.max_lag = 0.0  # worst delay between a scheduled time and the send

    # -- connections

    async def open_conn(self):
        self.opening += 1
        try:
            _t, proto = await self.loop.create_connection(
                lambda: Client(self), "127.0.0.1", self.a.port)
        except OSError:
            self.connect_errors += 1
            return None
        finally:
            self.opening -= 1
        self.nconns += 1
        self.conns_opened += 1
        return proto

    async def open_and_release(self):
        proto = await self.open_conn()
        if proto is not None:
            self.release(proto)
        elif self.waiting:
            # Retry later rather than spinning on a refusing port.
            self.loop.call_later(0.05, self.maybe_open)

    def maybe_open(self):
        if self.waiting and self.nconns + self.opening < self.a.max_conns:
            self.loop.create_task(self.open_and_release())

    def release(self, conn):
        """conn is free: give it the oldest waiting request, else park it."""
        if conn.closed:
            return
        while self.waiting:
            req = self.waiting.popleft()
            if not req.done:
                conn.send(req)
                return
        self.idle.append(conn)

    def lost(self, conn):
        self.nconns -= 1
        try:
            self.idle.remove(conn)
        except ValueError:
            pass
        if conn.req is not None and not conn.req.done:
            self.finish(conn.req, OUTCOME_ERROR)
            conn.req = None
        self.maybe_open()

    # -- requests

    def dispatch(self, t, now):
        """Send the request scheduled at t; its clock starts now (see the
        module comment)."""
        req = Request(now)
        self.index[id(req)] = len(self.sched)
        self.sched.append(t - self.start)
        self.lat.append(math.inf)
        self.outcome.append(OUTCOME_TIMEOUT)
        self.outstanding += 1
        req.timer = self.loop.call_at(now + self.a.timeout, self.on_timeout, req)
        while self.idle:
            conn = self.idle.popleft()
            if not conn.closed:
                conn.send(req)
                return
        self.waiting.append(req)
        self.maybe_open()

    def finish(self, req, outcome):
        if req.done:
            return
        req.done = True
        req.timer.cancel()
        i = self.index.pop(id(req))
        self.outcome[i] = outcome
        if outcome >= 0:
            self.lat[i] = self.loop.time() - req.t
        self.outstanding -= 1
        if self.outstanding == 0 and self.scheduling_over:
            self.all_done.set()

    def on_timeout(self, req):
        if req.done:
            return
        conn = req.conn
        self.finish(req, OUTCOME_TIMEOUT)
        if conn is not None and conn.req is req:
            conn.req = None
            conn.abort()  # its response may still come: the connection is unusable

    # -- the run

    scheduling_over = False

    async def run(self):
        a = self.a
        for _ in range(a.conns):
            proto = await self.open_conn()
            if proto is None:
                raise SystemExit(f"loadgen: cannot connect to 127.0.0.1:{a.port}")
            self.idle.append(proto)
        loop = self.loop
        self.start = loop.time() + 0.05
        for at, path, create in a.file_actions:
            loop.call_at(self.start + at, file_action, path, create)
        total = int(a.rate * a.duration)
        i = 0
        while i < total:
            t = self.start + i / a.rate
            now = loop.time()
            if t > now:
                await asyncio.sleep(t - now)
            # Send everything that is due (we may have woken up late).
            now = loop.time()
            while i < total and self.start + i / a.rate <= now:
                t = self.start + i / a.rate
                self.max_lag = max(self.max_lag, now - t)
                self.dispatch(t, now)
                i += 1
        self.scheduling_over = True
        if self.outstanding:
            try:
                await asyncio.wait_for(self.all_done.wait(), a.timeout + 5.0)
            except asyncio.TimeoutError:
                pass
        elapsed = self.elapsed()
        for conn in list(self.idle):
            conn.abort()
        for task in asyncio.all_tasks(loop):
            if task is not asyncio.current_task(loop):
                task.cancel()
        await asyncio.sleep(0)
        return elapsed

    def elapsed(self):
        return self.loop.time() - self.start


def file_action(path, create):
    if create:
        with open(path, "w"):
            pass
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def percentile(sorted_vals, q):
    """Nearest-rank percentile (q in 0..100) of an ascending list."""
    if not sorted_vals:
        return None
    k = max(0, math.ceil(q / 100.0 * len(sorted_vals)) - 1)
    return sorted_vals[min(k, len(sorted_vals) - 1)]


PCTS = (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9))


def summarize(lat, outcome, timeout):
    """Counts, success rate and latency percentiles (us) of a set of requests."""
    n = len(lat)
    status = collections.Counter(o for o in outcome if o >= 0)
    ok = sum(1 for la, o in zip(lat, outcome) if 200 <= o < 300 and la <= timeout)
    out = {
        "requests": n,
        "ok": ok,
        "success_rate": round(ok / n, 6) if n else None,
        "timeouts": sum(1 for o in outcome if o == OUTCOME_TIMEOUT),
        "errors": sum(1 for o in outcome if o == OUTCOME_ERROR),
        "status": {str(k): v for k, v in sorted(status.items())},
    }
    s = sorted(lat)
    for name, q in PCTS:
        v = percentile(s, q)
        out[f"{name}_us"] = None if v is None or math.isinf(v) else round(v * 1e6, 1)
        if v is not None and math.isinf(v):
            out[f"{name}_failed"] = True
    done = [la for la in lat if not math.isinf(la)]
    out["max_us"] = round(max(done) * 1e6, 1) if done else None
    out["mean_us"] = round(sum(done) / len(done) * 1e6, 1) if done else None
    return out


def series(sched, lat, outcome, timeout, step=1.0):
    """Per-step [t, requests, failed, p99_us] (p99 with failures as the timeout)."""
    buckets = collections.defaultdict(list)
    for t, la, o in zip(sched, lat, outcome):
        failed = not (200 <= o < 300 and la <= timeout)
        buckets[int(t // step)].append((min(la, timeout), failed))
    out = []
    for b in sorted(buckets):
        vals = buckets[b]
        s = sorted(v for v, _ in vals)
        out.append([round(b * step, 3), len(vals), sum(1 for _, f in vals if f),
                    round(percentile(s, 99) * 1e6, 1)])
    return out


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/small")
    ap.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of scheduling")
    ap.add_argument("--timeout", type=float, default=1.0, help="client timeout (s)")
    ap.add_argument("--conns", type=int, default=128, help="connections opened up front")
    ap.add_argument("--max-conns", type=int,
                    help="connections at most (default: --conns, a fixed pool)")
    ap.add_argument("--window", help="A,B: also summarize requests scheduled in [A,B) s")
    ap.add_argument("--touch-at", action="append", default=[], metavar="S:PATH")
    ap.add_argument("--remove-at", action="append", default=[], metavar="S:PATH")
    ap.add_argument("--series", action="store_true", help="include the per-second series")
    a = ap.parse_args(argv)
    a.file_actions = []
    for items, create in ((a.touch_at, True), (a.remove_at, False)):
        for item in items:
            at, _, path = item.partition(":")
            a.file_actions.append((float(at), path, create))
    if a.max_conns is None or a.max_conns < a.conns:
        a.max_conns = a.conns
    a.window_s = tuple(float(x) for x in a.window.split(",")) if a.window else None
    return a


def main(argv):
    a = parse_args(argv)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    gen = Gen(a, loop)
    try:
        elapsed = loop.run_until_complete(gen.run())
    finally:
        loop.close()
    res = {"rate": a.rate, "duration_s": a.duration, "timeout_s": a.timeout,
           "elapsed_s": round(elapsed, 3), "conns_opened": gen.conns_opened,
           "connect_errors": gen.connect_errors,
           # A scheduler far behind means the generator, not the proxy, set
           # the latencies (a stalled machine shows here too).
           "max_send_lag_ms": round(gen.max_lag * 1e3, 1)}
    res.update(summarize(gen.lat, gen.outcome, a.timeout))
    if a.window_s:
        lo, hi = a.window_s
        sel = [i for i, t in enumerate(gen.sched) if lo <= t < hi]
        res["window"] = {"from_s": lo, "to_s": hi}
        res["window"].update(summarize([gen.lat[i] for i in sel],
                                       [gen.outcome[i] for i in sel], a.timeout))
    if a.series:
        res["series"] = series(gen.sched, gen.lat, gen.outcome, a.timeout)
    json.dump(res, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
