#!/usr/bin/python3
"""Portico benchmark: Portico beside nginx and HAProxy as reverse proxies.

    /usr/bin/python3 bench/run.py --portico build/release/portico [--quick]

See bench/README.md for what is measured, the knobs and the JSON schema.
Writes bench/results/latest.{json,md,png} and prints the Markdown table.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import lbbench
import measure
import report
import servers

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_VERSION = 1
ALL_PROXIES = ("portico", "nginx", "haproxy")
ALL_PHASES = ("load", "memory", "callgrind", "strace",
              "slow_origin", "failing_origin", "lb_overhead")
UPSTREAM_PHASES = ("slow_origin", "failing_origin", "lb_overhead")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--portico", default="build/release/portico",
                    help="Portico binary (skipped with a note if missing)")
    ap.add_argument("--proxies", default=",".join(ALL_PROXIES),
                    help="comma list of proxies (default: %(default)s)")
    ap.add_argument("--phases", default=",".join(ALL_PHASES),
                    help="comma list of phases (default: %(default)s)")
    ap.add_argument("--quick", action="store_true",
                    help="fast sanity run: 3 s, 1 round, small N1/N2, 2000 idle conns")
    ap.add_argument("--duration", type=float, help="seconds per wrk run (default 10, quick 3)")
    ap.add_argument("--rounds", type=int, help="rounds per cell (default 3, quick 1)")
    ap.add_argument("--connections", default="50,1000",
                    help="wrk connection counts (default: %(default)s)")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    ap.add_argument("--warmup", type=float, help="warm-up seconds per proxy and body "
                    "(default 2, quick 1)")
    ap.add_argument("--n1", type=int, help="requests in the small callgrind/strace run "
                    "(default 2000, quick 200)")
    ap.add_argument("--n2", type=int, help="requests in the large callgrind/strace run "
                    "(default 12000, quick 1200)")
    ap.add_argument("--idle-conns", type=int,
                    help="idle keep-alive connections for the memory test "
                    "(default 10000, quick 2000)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"),
                    help="output directory (default: bench/results)")
    ap.add_argument("--keep-tmp", action="store_true",
                    help="keep the temp dir (configs, server logs, tool outputs)")
    ap.add_argument("--upstream", action="store_true",
                    help="only the upstream scenarios (phases " + ",".join(UPSTREAM_PHASES)
                    + "), written to upstream.{json,md,png} unless --name is given")
    ap.add_argument("--name", help="base name of the outputs (default: latest, "
                    "or upstream with --upstream)")
    ap.add_argument("--lb-rate", type=float, default=500.0,
                    help="requests/s of the open-loop load in the upstream scenarios "
                    "(default %(default)s)")
    ap.add_argument("--lb-conns", type=int, default=128,
                    help="client connections of that load (default %(default)s)")
    ap.add_argument("--client-timeout", type=float, default=1.0,
                    help="client timeout in the upstream scenarios, s (default %(default)s)")
    ap.add_argument("--slow-duration", type=float,
                    help="seconds per slow-origin run, slow during the middle third "
                    "(default 30, quick 12)")
    ap.add_argument("--slow-delay-ms", type=float, default=200.0,
                    help="delay the slow origin adds, ms (default %(default)s)")
    ap.add_argument("--fail-duration", type=float,
                    help="seconds per failing-origin run (default 10, quick 5)")
    a = ap.parse_args(argv)
    q = a.quick
    if a.upstream and a.phases == ",".join(ALL_PHASES):
        a.phases = ",".join(UPSTREAM_PHASES)
    a.name = a.name or ("upstream" if a.upstream else "latest")
    a.slow_duration = a.slow_duration or (12.0 if q else 30.0)
    a.fail_duration = a.fail_duration or (5.0 if q else 10.0)
    a.duration = a.duration if a.duration is not None else (3.0 if q else 10.0)
    a.rounds = a.rounds if a.rounds is not None else (1 if q else 3)
    a.warmup = a.warmup if a.warmup is not None else (1.0 if q else 2.0)
    a.n1 = a.n1 if a.n1 is not None else (200 if q else 2000)
    a.n2 = a.n2 if a.n2 is not None else (1200 if q else 12000)
    a.idle_conns = a.idle_conns if a.idle_conns is not None else (2000 if q else 10000)
    a.proxies = [p for p in a.proxies.split(",") if p]
    a.phases = [p for p in a.phases.split(",") if p]
    a.connections = [int(c) for c in a.connections.split(",") if c]
    for p in a.proxies:
        if p not in ALL_PROXIES:
            ap.error(f"unknown proxy {p}")
    for p in a.phases:
        if p not in ALL_PHASES:
            ap.error(f"unknown phase {p}")
    if a.n2 <= a.n1:
        ap.error("--n2 must be larger than --n1")
    return a


def log(msg):
    print(msg, flush=True)


def _first_line(argv):
    try:
        r = subprocess.run(argv, capture_output=True, timeout=5, stdin=subprocess.DEVNULL)
        text = (r.stdout + r.stderr).decode(errors="replace").strip()
        return text.splitlines()[0] if text else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def stall_probe(seconds=1.0, threshold=0.02):
    """Fraction of wall time in which a busy loop did not run (gaps longer
    than threshold between consecutive clock reads).  On a healthy machine
    this is ~0; on an overcommitted VM it shows how much the wall-clock
    figures (req/s, latency) are distorted."""
    t0 = prev = time.monotonic()
    gaps = 0.0
    while prev - t0 < seconds:
        now = time.monotonic()
        if now - prev > threshold:
            gaps += now - prev
        prev = now
    return round(gaps / (prev - t0), 3)


def _loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return None


def machine_info(proxies, portico_bin):
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = None
    try:
        with open("/proc/meminfo") as f:
            mem_kib = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    commit = _first_line(["git", "-C", os.path.dirname(HERE), "rev-parse", "--short", "HEAD"])
    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "cpu_model": cpu_model,
        "mem_total_kib": mem_kib,
        "python": platform.python_version(),
        "nofile_limit": servers.nofile_target(),
        "git_commit": commit if all(c in "0123456789abcdef" for c in commit) else None,
        "versions": {p: servers.version_of(p, portico_bin) for p in proxies},
        "tools": {
            "wrk": _first_line(["wrk", "--version"]),
            "valgrind": _first_line(["valgrind", "--version"]),
            "strace": _first_line(["strace", "-V"]),
            "origin": _first_line(["nginx", "-v"]),
        },
    }


def start_proxy(kind, tmp, origin_port, cpu, portico_bin, tag):
    srv = servers.make_proxy(kind, tmp, origin_port, cpu=cpu, portico_bin=portico_bin,
                             tag=tag)
    srv.start()
    try:
        srv.wait_ready(timeout=20.0)
    except servers.ServerError:
        srv.stop(timeout=5.0)
        raise
    return srv


def phase_load(a, res, tmp, origin, proxies, cpus):
    """wrk cells, interleaved across proxies, a.rounds times."""
    proxy_cpu, client_cpu = cpus
    live = {}
    for kind in proxies:
        try:
            live[kind] = start_proxy(kind, tmp, origin.port, proxy_cpu, a.portico, "load")
        except servers.ServerError as e:
            res["skipped"][kind] = f"did not start: {e}"
            log(f"  {kind}: did not start:\n{e}")
    order0 = [p for p in proxies if p in live]
    for kind in order0:
        for body, conns in (("small", min(a.connections)), ("64k", max(a.connections))):
            w = measure.run_wrk(live[kind].port, servers.PATHS[body], conns, a.warmup,
                                a.wrk_threads, client_cpu)
            if "error" in w:
                log(f"  warm-up {kind} {body}: {w['error']}")
    load = res["load"]
    for kind in order0:
        load[kind] = {c["id"]: {"runs": []} for c in res["cells"]}
    for rnd in range(a.rounds):
        # Rotate the order each round so no proxy always runs first or last.
        k = rnd % len(order0) if order0 else 0
        order = order0[k:] + order0[:k]
        for cell in res["cells"]:
            for kind in order:
                srv = live[kind]
                if not srv.alive():
                    run = {"error": f"{kind} is not running:\n{srv.log_tail()}"}
                else:
                    run = measure.run_wrk(srv.port, servers.PATHS[cell["body"]],
                                          cell["connections"], a.duration,
                                          a.wrk_threads, client_cpu, server=srv)
                run["round"] = rnd + 1
                load[kind][cell["id"]]["runs"].append(run)
                if "error" in run:
                    log(f"  [{rnd + 1}/{a.rounds}] {cell['id']:<12} {kind:<8} "
                        f"ERROR {run['error'].splitlines()[0]}")
                else:
                    log(f"  [{rnd + 1}/{a.rounds}] {cell['id']:<12} {kind:<8} "
                        f"{run['rps']:>10,.0f} req/s  p50 {run['p50_us'] / 1000:7.2f} ms  "
                        f"p99 {run['p99_us'] / 1000:8.2f} ms  "
                        f"CPU {run.get('cpu_us_per_req') or 0:7.1f} us/req"
                        + (f"  errors {run['errors']}" if run["errors"] else ""))
                time.sleep(0.3)
    for kind, srv in live.items():
        if not srv.stop():
            res["notes"].append(f"{kind} did not stop on its signal during the load phase")
        warn = _log_warnings(srv)
        if warn:
            res["notes"].append(f"{kind} logged during the load phase: {warn}")


def _log_warnings(srv):
    """First interesting line of a server's log (not HAProxy's start-up notices)."""
    paths = [srv.log_path]
    if srv.name.startswith("nginx"):
        paths.append(os.path.join(srv.workdir, "nginx.error.log"))
    for p in paths:
        try:
            with open(p, errors="replace") as f:
                for line in f:
                    line = line.strip()
                    if (not line or "[NOTICE]" in line or "FD limit" in line
                            or "open file limit" in line):
                        continue
                    if "exiting" in line or "signal" in line or "gracefully" in line:
                        continue
                    return line[:200]
        except OSError:
            continue
    return None


def phase_memory(a, res, tmp, origin, proxies, cpus):
    for kind in proxies:
        try:
            srv = start_proxy(kind, tmp, origin.port, cpus[0], a.portico, "mem")
        except servers.ServerError as e:
            res["memory"][kind] = {"error": f"did not start: {e}"}
            log(f"  memory {kind}: did not start")
            continue
        try:
            m = measure.idle_memory(srv, a.idle_conns)
        except Exception as e:  # noqa: BLE001 - keep the other proxies going
            m = {"error": f"{type(e).__name__}: {e}"}
        finally:
            srv.stop()
        res["memory"][kind] = m
        if m.get("bytes_per_conn") is not None:
            log(f"  memory {kind:<8} {m['idle_connections']} idle conns: "
                f"RSS {m['rss_before_kib']} -> {m['rss_after_kib']} KiB = "
                f"{m['bytes_per_conn']:.0f} bytes/conn"
                + (f"  ({m['error'].splitlines()[0]})" if m.get("error") else ""))
        else:
            log(f"  memory {kind}: {m.get('error')}")


def phase_tool(a, res, tmp, origin, proxies, cpus, tool):
    section = "instructions" if tool == "callgrind" else "syscalls"
    for kind in proxies:
        try:
            r = measure.noise_free(kind, tool, a.n1, a.n2, tmp, origin.port, cpus[0],
                                   a.portico)
        except Exception as e:  # noqa: BLE001 - keep the other proxies going
            r = {"error": f"{type(e).__name__}: {e}"}
        finally:
            servers.stop_all_but(origin)
        res[section][kind] = r
        if "per_request" in r:
            log(f"  {tool:<9} {kind:<8} {r['per_request']:,.2f} per request "
                f"({r['seconds']} s)")
        else:
            log(f"  {tool:<9} {kind:<8} ERROR {r['error'].splitlines()[0]}")


def write_outputs(res, out_dir, name="latest"):
    os.makedirs(out_dir, exist_ok=True)
    # Medians here, not at the end of the load phase, so an interrupted run
    # still reports the cells it finished.
    for cells in res["load"].values():
        for cell in cells.values():
            cell["median"] = report.summarize_cell(cell["runs"])
    report.add_ratios(res)
    res["upstream_targets"] = lbbench.verdicts(res)
    md = report.markdown(res)
    with open(os.path.join(out_dir, f"{name}.json.tmp"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(os.path.join(out_dir, f"{name}.json.tmp"), os.path.join(out_dir, f"{name}.json"))
    with open(os.path.join(out_dir, f"{name}.md"), "w") as f:
        f.write(md + "\n")
    try:
        report.chart(res, os.path.join(out_dir, f"{name}.png"))
    except Exception as e:  # noqa: BLE001 - the JSON and table still stand
        log(f"chart failed: {type(e).__name__}: {e}")
    return md


def _sigterm(_signo, _frame):
    raise KeyboardInterrupt


def main(argv):
    a = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    servers.raise_nofile()
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} not found (run scripts/deps.sh)")
    proxies = list(a.proxies)
    skipped = {}
    if "portico" in proxies:
        a.portico = os.path.abspath(a.portico)
        if not os.access(a.portico, os.X_OK):
            skipped["portico"] = f"binary {a.portico} not found or not executable"
            proxies.remove("portico")
    if "haproxy" in proxies and not shutil.which("haproxy"):
        skipped["haproxy"] = "haproxy not installed"
        proxies.remove("haproxy")
    ncpu = os.cpu_count() or 1
    # Proxy alone on CPU 1; wrk, origin and the Python clients on CPU 0.
    cpus = (1, 0) if ncpu >= 2 else (None, None)
    started = datetime.datetime.now(datetime.timezone.utc)
    res = {
        "schema_version": SCHEMA_VERSION,
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished_at": None,
        "complete": False,
        "config": {
            "quick": a.quick, "duration_s": a.duration, "rounds": a.rounds,
            "warmup_s": a.warmup, "wrk_threads": a.wrk_threads,
            "connections": a.connections, "n1": a.n1, "n2": a.n2,
            "idle_conns": a.idle_conns, "phases": a.phases,
            "proxy_cpu": cpus[0], "client_cpu": cpus[1],
            "max_conns": servers.MAX_CONNS,
            "keepalive_timeout_s": servers.KEEPALIVE_TIMEOUT_S,
            "bodies": {"small": len(servers.SMALL_BODY), "64k": servers.BIG_BODY_BYTES},
        },
        "machine": machine_info(a.proxies if "portico" not in skipped
                                else [p for p in a.proxies if p != "portico"], a.portico),
        "proxies": proxies,
        "skipped": skipped,
        "cells": [{"id": f"c{c}-{b}", "connections": c, "body": b,
                   "body_bytes": len(servers.SMALL_BODY) if b == "small"
                   else servers.BIG_BODY_BYTES}
                  for c in a.connections for b in ("small", "64k")],
        "load": {}, "memory": {}, "instructions": {}, "syscalls": {},
        "slow_origin": {}, "failing_origin": {}, "lb_overhead": {},
        "notes": [],
    }
    res["config"]["upstream"] = lbbench.settings(a)
    stall = stall_probe()
    res["machine"]["stall_fraction"] = stall
    res["machine"]["loadavg"] = _loadavg()
    if ncpu < 2:
        res["notes"].append("fewer than 2 CPUs: nothing pinned")
    if stall > 0.05:
        res["notes"].append(
            f"a 1 s busy loop was off-CPU {stall:.0%} of the time (other load on the "
            f"machine, load average {res['machine']['loadavg']}, or an overcommitted VM): "
            "req/s, latency and CPU/req are distorted (wrk's coordinated-omission "
            "correction turns stalls into a high p99); trust instructions and "
            "syscalls per request more")
    log(f"bench: proxies {', '.join(proxies) or 'none'}"
        + (f" (skipped: {', '.join(skipped)})" if skipped else "")
        + f"; phases {', '.join(a.phases)}; {a.duration:g} s x {a.rounds} round(s)"
        + f"; machine stall fraction {stall:.0%}")
    for k, why in skipped.items():
        log(f"  {k} skipped: {why}")
    tmp = tempfile.mkdtemp(prefix="portico-bench-")
    os.chmod(tmp, 0o755)  # nginx workers run as nobody and read the origin's files
    interrupted = False
    try:
        origin = servers.make_origin(tmp, cpus[1]).start()
        origin.wait_ready()
        phases = {
            "load": lambda: phase_load(a, res, tmp, origin, proxies, cpus),
            "memory": lambda: phase_memory(a, res, tmp, origin, proxies, cpus),
            "callgrind": lambda: phase_tool(a, res, tmp, origin, proxies, cpus, "callgrind"),
            "strace": lambda: phase_tool(a, res, tmp, origin, proxies, cpus, "strace"),
            "slow_origin": lambda: lbbench.phase_slow_origin(a, res, tmp, proxies, cpus),
            "failing_origin": lambda: lbbench.phase_failing_origin(a, res, tmp, proxies,
                                                                   cpus),
            "lb_overhead": lambda: lbbench.phase_lb_overhead(a, res, tmp, proxies, cpus),
        }
        for name in ALL_PHASES:
            if name in a.phases:
                t0 = time.monotonic()
                log(f"== {name}")
                phases[name]()
                res.setdefault("phase_seconds", {})[name] = round(time.monotonic() - t0, 1)
        res["complete"] = True
    except KeyboardInterrupt:
        interrupted = True
        res["notes"].append("interrupted: partial results")
        log("bench: interrupted, stopping servers")
    except servers.ServerError as e:
        res["notes"].append(f"aborted: {e}")
        log(f"bench: aborted: {e}")
    finally:
        # A second Ctrl-C must not cut the clean-up short (servers have timeouts).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        servers.stop_all()
        res["finished_at"] = datetime.datetime.now(
            datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if a.keep_tmp:
            log(f"bench: temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    md = write_outputs(res, a.out, a.name)
    print()
    print(md)
    log(f"bench: wrote {os.path.join(a.out, a.name + '.json')}, {a.name}.md, {a.name}.png")
    return 130 if interrupted else (0 if res["complete"] else 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
