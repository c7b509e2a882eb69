"""The upstream scenarios (issue 4): slow origin, failing origin, and the
instruction cost of the load-balancing features.

- slow_origin: 4 origins; the last one answers DELAY late from 1/3 to 2/3 of
  the run. An open-loop load (bench/loadgen.py, fixed rate, fixed client
  timeout) goes through each proxy variant in turn: Portico p2c_ewma,
  Portico round_robin, nginx least_conn, HAProxy leastconn; plus the same
  load straight to one origin (no proxy), which shows the machine's own
  latency floor. Latency percentiles count timeouts as failures; the
  origin's access log says how many requests each proxy sent to the slow
  origin while it was slow (a figure the machine's noise does not touch).
- failing_origin: 4 origins; the last one answers 503 to half of its
  requests. Amplification = requests logged by the origins / requests the
  client sent; success = 2xx within the client timeout.
- lb_overhead: Portico under callgrind (measure.noise_free, as the
  callgrind phase) with the simplest group and with p2c_ewma + health_check +
  outlier_detection over 3 origins; the difference per request.
"""

import json
import os
import subprocess
import sys
import time

import lbconf
import measure
import servers

HERE = os.path.dirname(os.path.abspath(__file__))
LOADGEN = os.path.join(HERE, "loadgen.py")
N_ORIGINS = 4
OVERHEAD_ORIGINS = 3

SLOW_VARIANTS = ("portico-p2c", "portico-rr", "nginx-leastconn", "haproxy-leastconn")
FAIL_VARIANTS = ("portico-retryoff", "portico-retryon", "portico-retryon-noeject",
                 "nginx-retry", "haproxy-retry")
OVERHEAD_VARIANTS = ("portico-lbmin", "portico-lbfull")
DIRECT = "direct"  # the no-proxy baseline of the slow-origin scenario
DIRECT_LABEL = "no proxy (one origin, never slow)"

# Targets of issue 4.
TARGET_P999_VS_RR = 5.0
TARGET_AMPLIFICATION = 1.2
TARGET_SUCCESS = 0.99
TARGET_OVERHEAD_INSTR = 1500


def log(msg):
    print(msg, flush=True)


def settings(a):
    """The knobs of these scenarios, for result["config"]["upstream"]."""
    d = a.slow_duration
    return {
        "origins": N_ORIGINS, "rate": a.lb_rate, "client_conns": a.lb_conns,
        "client_timeout_s": a.client_timeout,
        "slow_duration_s": d, "slow_from_s": round(d / 3, 3),
        "slow_to_s": round(2 * d / 3, 3), "slow_delay_ms": a.slow_delay_ms,
        "slow_origin": N_ORIGINS, "fail_duration_s": a.fail_duration,
        "fail_origin": N_ORIGINS, "fail_ratio": 0.5,
        "overhead_origins": OVERHEAD_ORIGINS,
    }


def _variants(kinds, proxies):
    return [k for k in kinds if k.partition("-")[0] in proxies]


def _taskset(cpu):
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def run_loadgen(a, port, duration, cpu, window=None, flag=None, series=False):
    """One loadgen run; its JSON summary, or {"error": ...}."""
    argv = _taskset(cpu) + [
        sys.executable, LOADGEN, "--port", str(port), "--rate", str(a.lb_rate),
        "--duration", str(duration), "--timeout", str(a.client_timeout),
        "--conns", str(a.lb_conns)]
    if window:
        argv += ["--window", f"{window[0]},{window[1]}"]
        if flag:
            argv += ["--touch-at", f"{window[0]}:{flag}", "--remove-at",
                     f"{window[1]}:{flag}"]
    if series:
        argv.append("--series")
    try:
        r = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL,
                           timeout=duration + a.client_timeout + 60,
                           preexec_fn=servers.raise_nofile)
    except subprocess.TimeoutExpired:
        return {"error": "loadgen did not finish"}
    lines = r.stdout.decode(errors="replace").strip().splitlines()
    if r.returncode != 0 or not lines:
        return {"error": f"loadgen exit {r.returncode}: "
                         f"{r.stderr.decode(errors='replace')[-400:]}"}
    return json.loads(lines[-1])


def start_origins(origins):
    for o in origins:
        o.server.start()
    for o in origins:
        # The failing origin answers 503 half the time: wait_ready retries.
        o.server.wait_ready(timeout=20.0)


def stop_origins(origins):
    for o in origins:
        o.server.stop(timeout=5.0)


def start_variant(kind, tmp, origins, cpu, portico_bin, tag):
    srv = servers.make_proxy(kind, tmp, [o.port for o in origins], cpu=cpu,
                             portico_bin=portico_bin, tag=tag)
    srv.start()
    try:
        srv.wait_ready(timeout=20.0)
    except servers.ServerError:
        srv.stop(timeout=5.0)
        raise
    return srv


def _ms(us):
    return "fail" if us is None else f"{us / 1000:.1f}"


# ------------------------------------------------------------ slow origin

def phase_slow_origin(a, res, tmp, proxies, cpus):
    out = res["slow_origin"]
    if not lbconf.echo_module_available():
        res["notes"].append(f"slow_origin skipped: {lbconf.ECHO_MODULE} missing "
                            "(package libnginx-mod-http-echo, pulled in by nginx-light)")
        return
    proxy_cpu, client_cpu = cpus
    delay_s = a.slow_delay_ms / 1000.0
    window = (round(a.slow_duration / 3, 3), round(2 * a.slow_duration / 3, 3))
    origins = lbconf.make_origins(tmp, "slow", N_ORIGINS, client_cpu, delay_s=delay_s)
    slow = origins[-1]
    try:
        start_origins(origins)
        for kind in [DIRECT] + _variants(SLOW_VARIANTS, proxies):
            srv = None
            try:
                if kind == DIRECT:
                    port = origins[0].port
                else:
                    srv = start_variant(kind, tmp, origins, proxy_cpu, a.portico, "slow")
                    port = srv.port
            except servers.ServerError as e:
                out[kind] = {"label": lbconf.label(kind), "error": f"did not start: {e}"}
                log(f"  slow_origin {kind}: did not start")
                continue
            try:
                offsets = [o.log_size() for o in origins]
                r = run_loadgen(a, port, a.slow_duration, client_cpu, window=window,
                                flag=None if kind == DIRECT else slow.slow_flag,
                                series=True)
                lbconf_remove(slow.slow_flag)
                time.sleep(0.3)  # let the origins write their last log lines
                logs = [o.log_since(off) for o, off in zip(origins, offsets)]
                r["origin_requests"] = [len(lines) for lines in logs]
                # Requests the slow origin held for the delay (request_time
                # is in ms resolution).
                r["slowed_requests"] = sum(1 for _t, _s, rt in logs[-1]
                                           if rt >= 0.9 * delay_s)
                if srv is not None and not srv.alive():
                    r["error"] = f"{srv.name} died during the run:\n{srv.log_tail()}"
            finally:
                if srv is not None:
                    srv.stop()
            r["label"] = DIRECT_LABEL if kind == DIRECT else lbconf.label(kind)
            out[kind] = r
            _log_slow(kind, r)
    finally:
        lbconf_remove(slow.slow_flag)
        stop_origins(origins)


def lbconf_remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _log_slow(kind, r):
    if "requests" not in r:
        log(f"  slow_origin {kind:<18} ERROR {r.get('error', '?').splitlines()[0]}")
        return
    w = r.get("window", {})
    log(f"  slow_origin {kind:<18} p50 {_ms(r['p50_us']):>7} ms  p99 {_ms(r['p99_us']):>7} ms"
        f"  p99.9 {_ms(r['p999_us']):>7} ms  success {r['success_rate']:.4f}"
        f"  window p99.9 {_ms(w.get('p999_us')):>7} ms  slowed {r['slowed_requests']}"
        f"  (send lag max {r['max_send_lag_ms']:.0f} ms)")


# ---------------------------------------------------------- failing origin

def phase_failing_origin(a, res, tmp, proxies, cpus):
    out = res["failing_origin"]
    proxy_cpu, client_cpu = cpus
    origins = lbconf.make_origins(tmp, "fail", N_ORIGINS, client_cpu,
                                  fail_index=N_ORIGINS - 1)
    try:
        start_origins(origins)
        for kind in _variants(FAIL_VARIANTS, proxies):
            try:
                srv = start_variant(kind, tmp, origins, proxy_cpu, a.portico, "fail")
            except servers.ServerError as e:
                out[kind] = {"label": lbconf.label(kind), "error": f"did not start: {e}"}
                log(f"  failing_origin {kind}: did not start")
                continue
            try:
                offsets = [o.log_size() for o in origins]
                r = run_loadgen(a, srv.port, a.fail_duration, client_cpu)
                time.sleep(0.3)
                logs = [o.log_since(off) for o, off in zip(origins, offsets)]
                if not srv.alive():
                    r["error"] = f"{srv.name} died during the run:\n{srv.log_tail()}"
            finally:
                srv.stop()
            r["label"] = lbconf.label(kind)
            r["origin_requests"] = [len(lines) for lines in logs]
            r["upstream_requests"] = sum(r["origin_requests"])
            r["failing_origin_503"] = sum(1 for _t, st, _rt in logs[-1] if st == 503)
            if r.get("requests"):
                r["amplification"] = round(r["upstream_requests"] / r["requests"], 4)
            out[kind] = r
            _log_fail(kind, r)
    finally:
        stop_origins(origins)


def _log_fail(kind, r):
    if "amplification" not in r:
        log(f"  failing_origin {kind:<24} ERROR {r.get('error', '?').splitlines()[0]}")
        return
    log(f"  failing_origin {kind:<24} requests {r['requests']}  upstream "
        f"{r['upstream_requests']}  amplification {r['amplification']:.3f}  "
        f"success {r['success_rate']:.4f}  origins {r['origin_requests']}")


# ------------------------------------------------------------- overhead

def phase_lb_overhead(a, res, tmp, proxies, cpus):
    out = res["lb_overhead"]
    if "portico" not in proxies:
        res["notes"].append("lb_overhead skipped: Portico not measured")
        return
    proxy_cpu, client_cpu = cpus
    origins = lbconf.make_origins(tmp, "ovh", OVERHEAD_ORIGINS, client_cpu)
    try:
        start_origins(origins)
        for kind in OVERHEAD_VARIANTS:
            try:
                r = measure.noise_free(kind, "callgrind", a.n1, a.n2, tmp,
                                       [o.port for o in origins], proxy_cpu, a.portico)
            except Exception as e:  # noqa: BLE001 - report it, keep going
                r = {"error": f"{type(e).__name__}: {e}"}
            r["label"] = lbconf.label(kind)
            out[kind] = r
            if "per_request" in r:
                log(f"  lb_overhead {kind:<15} {r['per_request']:,.1f} instructions/req "
                    f"({r['seconds']} s)")
            else:
                log(f"  lb_overhead {kind:<15} ERROR {r['error'].splitlines()[0]}")
    finally:
        stop_origins(origins)
    lo = out.get("portico-lbmin", {}).get("per_request")
    hi = out.get("portico-lbfull", {}).get("per_request")
    if lo is not None and hi is not None:
        out["delta_per_request"] = round(hi - lo, 1)
        out["target_per_request"] = TARGET_OVERHEAD_INSTR
        log(f"  lb_overhead delta {hi - lo:,.1f} instructions/req "
            f"(target <= {TARGET_OVERHEAD_INSTR:,})")


# ------------------------------------------------------------- verdicts

def _p999_lb(r, timeout_s):
    """p99.9 in us; a failed percentile counts as the client timeout (a lower
    bound of the true value)."""
    if not r or "requests" not in r:
        return None, False
    if r.get("p999_us") is None:
        return timeout_s * 1e6, True
    return r["p999_us"], False


def verdicts(res):
    """The issue's targets against what was measured (added to the result)."""
    v = {}
    timeout_s = res.get("config", {}).get("upstream", {}).get("client_timeout_s", 1.0)
    slow = res.get("slow_origin", {})
    p2c, p2c_failed = _p999_lb(slow.get("portico-p2c"), timeout_s)
    if p2c is not None:
        for other in ("portico-rr", "nginx-leastconn", "haproxy-leastconn"):
            o, o_failed = _p999_lb(slow.get(other), timeout_s)
            if o is None or p2c <= 0:
                continue
            target = TARGET_P999_VS_RR if other == "portico-rr" else 1.0
            entry = {"target": target}
            if o_failed and p2c_failed:
                # Both at or past the timeout: nothing to compare.
                entry.update(ratio=None, bound=None, met=None)
            else:
                ratio = o / p2c
                # A failed percentile is at least the timeout: the ratio is
                # then a lower bound (other failed) or an upper bound (p2c failed).
                entry.update(ratio=round(ratio, 2),
                             bound="lower" if o_failed else ("upper" if p2c_failed else None),
                             met=False if p2c_failed else
                             (ratio >= target if other == "portico-rr" else ratio > target))
            v[f"p999_vs_{other}"] = entry
    fail = res.get("failing_origin", {})
    for kind, r in fail.items():
        if kind.startswith("portico-retryon") and "amplification" in r:
            v[f"retry_{kind}"] = {
                "amplification": r["amplification"], "success_rate": r["success_rate"],
                "met": r["amplification"] <= TARGET_AMPLIFICATION
                and r["success_rate"] >= TARGET_SUCCESS}
    ovh = res.get("lb_overhead", {})
    if "delta_per_request" in ovh:
        v["lb_overhead"] = {"delta_per_request": ovh["delta_per_request"],
                            "target": TARGET_OVERHEAD_INSTR,
                            "met": ovh["delta_per_request"] <= TARGET_OVERHEAD_INSTR}
    return v
