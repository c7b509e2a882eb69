"""The measurements: wrk load cells, idle keep-alive memory, and the
noise-free figures from callgrind (instructions) and strace (syscalls)."""

import json
import os
import re
import subprocess
import time

import httpc
import servers

HERE = os.path.dirname(os.path.abspath(__file__))
WRK_LUA = os.path.join(HERE, "wrk_report.lua")
CLK_TCK = os.sysconf("SC_CLK_TCK")

_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def _taskset(cpu):
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def parse_wrk_text(text):
    """Parse wrk's --latency text: requests, req/s, p50/p90/p99 (us), errors."""
    out = {}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", text, re.M)
    if m:
        out["requests"] = int(m.group(1))
        out["duration_us"] = float(m.group(2)) * _UNITS_US[m.group(3)]
    m = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    if m:
        out["rps_wrk"] = float(m.group(1))
    dist = text.split("Latency Distribution", 1)
    if len(dist) == 2:
        for pct, val, unit in re.findall(r"^\s*(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$",
                                         dist[1], re.M):
            out[f"p{pct}_us"] = float(val) * _UNITS_US[unit]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                  text)
    if m:
        for k, v in zip(("connect", "read", "write", "timeout"), m.groups()):
            out[f"err_{k}"] = int(v)
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    if m:
        out["err_status"] = int(m.group(1))
    return out


def parse_wrk(text):
    """Prefer the Lua summary line (exact figures); fall back to the text."""
    res = parse_wrk_text(text)
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            res.update(json.loads(line[len("BENCH_JSON "):]))
    return res


def run_wrk(port, path, conns, duration_s, threads=1, cpu=None, server=None):
    """One wrk run against 127.0.0.1:port/path.

    If server is given, its CPU time (all processes, all threads) is sampled
    just before and just after wrk, giving cpu_us_per_req.  Returns a dict
    (see README: load.<proxy>.<cell>.runs[])."""
    threads = max(1, min(threads, conns))
    argv = _taskset(cpu) + [
        "wrk", "-t", str(threads), "-c", str(conns), "-d", f"{max(1, round(duration_s))}s",
        "--latency", "--timeout", "5s", "-s", WRK_LUA,
        f"http://127.0.0.1:{port}{path}"]
    pids = server.pids() if server else []
    t0 = cpu_ticks_now(pids)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, preexec_fn=servers.raise_nofile)
    try:
        out, _ = proc.communicate(timeout=duration_s + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Let the proxy finish closing wrk's connections: that work belongs to the run.
    time.sleep(0.1)
    t1 = cpu_ticks_now(pids)
    text = out.decode(errors="replace")
    res = parse_wrk(text)
    if proc.returncode != 0 or "requests" not in res:
        return {"error": f"wrk exit {proc.returncode}: {text[-400:]}"}
    reqs = res["requests"]
    dur_s = res.get("duration_us", duration_s * 1e6) / 1e6
    errors = sum(res.get(f"err_{k}", 0)
                 for k in ("connect", "read", "write", "timeout", "status"))
    run = {
        "requests": reqs,
        "duration_s": round(dur_s, 3),
        "rps": round(reqs / dur_s, 1) if dur_s > 0 else 0.0,
        "p50_us": res.get("p50_us"),
        "p90_us": res.get("p90_us"),
        "p99_us": res.get("p99_us"),
        "errors": errors,
        "errors_detail": {k: res.get(f"err_{k}", 0)
                          for k in ("connect", "read", "write", "timeout", "status")},
        "bytes": res.get("bytes"),
    }
    if server is not None:
        run["cpu_s"] = round((t1 - t0) / CLK_TCK, 3)
        run["cpu_us_per_req"] = (round((t1 - t0) / CLK_TCK * 1e6 / reqs, 3)
                                 if reqs else None)
        if not server.alive():
            run["error"] = f"{server.name} died during the run:\n{server.log_tail()}"
    return run


def cpu_ticks_now(pids):
    return servers.cpu_ticks(pids) if pids else 0


# ----------------------------------------------------------- idle memory

def idle_memory(server, n_conns, batch=100, settle_s=2.0):
    """RSS growth of server per idle HTTP keep-alive connection.

    Opens n_conns connections in batches; on each sends GET /small and reads
    the response, then leaves it idle.  RSS (sum over the server's processes)
    is taken after a warm-up and again once all connections are idle."""
    for _ in range(4):  # warm-up: pools, upstream connection, lazy allocations
        with httpc.Conn(server.port) as c:
            for _ in range(50):
                c.get("/small")
    time.sleep(1.0)
    rss0 = servers.rss_kib(server.pids())
    conns, error = [], None
    t0 = time.monotonic()
    try:
        while len(conns) < n_conns and error is None:
            fresh = []
            try:
                for _ in range(min(batch, n_conns - len(conns))):
                    c = httpc.Conn(server.port, timeout=10.0)
                    fresh.append(c)
                    c.send("/small")
                for c in fresh:
                    status, _ = c.read_response()
                    if status != 200:
                        raise httpc.HttpError(f"status {status}")
            except (OSError, httpc.HttpError) as e:
                error = f"after {len(conns) + len(fresh)} connections: {e}"
                for c in fresh:
                    c.close()
                fresh = []
            conns.extend(fresh)
        open_s = time.monotonic() - t0
        time.sleep(settle_s)
        rss1 = servers.rss_kib(server.pids())
        alive = server.alive()
    finally:
        for c in conns:
            c.close()
    n = len(conns)
    res = {
        "idle_connections": n,
        "requested_connections": n_conns,
        "rss_before_kib": rss0,
        "rss_after_kib": rss1,
        "bytes_per_conn": round((rss1 - rss0) * 1024 / n, 1) if n else None,
        "open_seconds": round(open_s, 2),
    }
    if error:
        res["error"] = error
    if not alive:
        res["error"] = f"{server.name} died:\n{server.log_tail()}"
    return res


# ------------------------------------------------- callgrind and strace

def _callgrind_total(path):
    """The Ir total of one callgrind output file."""
    total = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    return total


def _strace_counts(path):
    """{syscall: calls} from an `strace -c` summary."""
    counts = {}
    with open(path, errors="replace") as f:
        for line in f:
            tok = line.split()
            if len(tok) < 5 or not tok[0][0].isdigit() or tok[-1] == "total":
                continue
            try:
                counts[tok[-1]] = int(tok[3])
            except ValueError:
                continue
    return counts


def tool_run(kind, tool, n_requests, tmp, origin_port, cpu, portico_bin=None):
    """Run one proxy under callgrind or strace, send exactly n_requests GET
    /small over one keep-alive connection, stop it cleanly, return the totals.

    The connect that detects readiness is the benchmark connection itself,
    so every run does the same work apart from the request count."""
    d = os.path.join(tmp, f"{kind}-{tool}-{n_requests}")
    os.makedirs(d, exist_ok=True)
    if tool == "callgrind":
        wrapper = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                   f"--callgrind-out-file={d}/callgrind.out.%p", "--dump-instr=no",
                   f"--log-file={d}/valgrind.%p.log"]
    else:
        wrapper = ["strace", "-f", "-c", "-o", f"{d}/strace.txt"]
    srv = servers.make_proxy(kind, tmp, origin_port, cpu=cpu, wrapper=wrapper,
                             single_process=True, portico_bin=portico_bin,
                             tag=f"{tool}-{n_requests}")
    t0 = time.monotonic()
    srv.start()
    try:
        sock = srv.wait_listening(timeout=120.0)
        with httpc.Conn(sock=sock, timeout=120.0) as c:
            for i in range(n_requests):
                status, _ = c.get("/small")
                if status != 200:
                    raise servers.ServerError(f"request {i}: status {status}")
        time.sleep(0.3)
    finally:
        clean = srv.stop(timeout=120.0)
    res = {"requests": n_requests, "seconds": round(time.monotonic() - t0, 2),
           "clean_exit": clean}
    if tool == "callgrind":
        files = [os.path.join(d, f) for f in os.listdir(d)
                 if f.startswith("callgrind.out.")]
        totals = [_callgrind_total(f) for f in files]
        totals = [t for t in totals if t is not None]
        if not totals:
            raise servers.ServerError(
                f"{kind}: no callgrind output (clean exit: {clean}):\n{srv.log_tail()}")
        res["ir"] = sum(totals)
        res["processes"] = len(totals)
    else:
        path = os.path.join(d, "strace.txt")
        if not os.path.exists(path):
            raise servers.ServerError(f"{kind}: no strace output:\n{srv.log_tail()}")
        res["syscalls_by_name"] = _strace_counts(path)
        res["syscalls"] = sum(res["syscalls_by_name"].values())
    return res


def noise_free(kind, tool, n1, n2, tmp, origin_port, cpu, portico_bin=None):
    """Per-request cost from two runs: (total(n2) - total(n1)) / (n2 - n1)."""
    r1 = tool_run(kind, tool, n1, tmp, origin_port, cpu, portico_bin)
    r2 = tool_run(kind, tool, n2, tmp, origin_port, cpu, portico_bin)
    dn = n2 - n1
    if tool == "callgrind":
        return {"per_request": round((r2["ir"] - r1["ir"]) / dn, 1),
                "n1": n1, "n2": n2, "ir1": r1["ir"], "ir2": r2["ir"],
                "seconds": round(r1["seconds"] + r2["seconds"], 1),
                "clean_exit": r1["clean_exit"] and r2["clean_exit"]}
    c1, c2 = r1["syscalls_by_name"], r2["syscalls_by_name"]
    per = {}
    for name in set(c1) | set(c2):
        v = (c2.get(name, 0) - c1.get(name, 0)) / dn
        if abs(v) >= 0.005:
            per[name] = round(v, 3)
    per = dict(sorted(per.items(), key=lambda kv: -kv[1]))
    return {"per_request": round((r2["syscalls"] - r1["syscalls"]) / dn, 3),
            "by_syscall": per, "n1": n1, "n2": n2,
            "calls1": r1["syscalls"], "calls2": r2["syscalls"],
            "seconds": round(r1["seconds"] + r2["seconds"], 1),
            "clean_exit": r1["clean_exit"] and r2["clean_exit"]}

