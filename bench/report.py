"""Summaries of a benchmark result: medians, ratios vs nginx, the Markdown
tables and the PNG chart."""

import statistics

PROXY_COLORS = {"portico": "#d62728", "nginx": "#2ca02c", "haproxy": "#1f77b4"}
METRICS = ("rps", "p50_us", "p99_us", "cpu_us_per_req")


def summarize_cell(runs):
    """Median (and min/max) of each metric over the runs without errors."""
    good = [r for r in runs if "error" not in r]
    out = {"runs_ok": len(good), "runs_failed": len(runs) - len(good)}
    for m in METRICS:
        vals = [r[m] for r in good if r.get(m) is not None]
        if vals:
            out[m] = round(statistics.median(vals), 3)
            out[m + "_min"] = min(vals)
            out[m + "_max"] = max(vals)
    out["errors"] = sum(r.get("errors", 0) for r in good)
    out["requests"] = sum(r.get("requests", 0) for r in good)
    return out


def _ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return round(a / b, 3)


def add_ratios(result):
    """Ratios vs nginx: req/s and CPU per cell, and the noise-free figures."""
    load = result.get("load", {})
    ng = load.get("nginx", {})
    for proxy, cells in load.items():
        for cell_id, cell in cells.items():
            med = cell.get("median", {})
            base = ng.get(cell_id, {}).get("median", {})
            cell["vs_nginx"] = {
                "rps": _ratio(med.get("rps"), base.get("rps")),
                "cpu_us_per_req": _ratio(med.get("cpu_us_per_req"),
                                         base.get("cpu_us_per_req")),
            }
    for section, key in (("instructions", "per_request"), ("syscalls", "per_request"),
                         ("memory", "bytes_per_conn")):
        data = result.get(section, {})
        base = data.get("nginx", {}).get(key)
        for entry in data.values():
            if isinstance(entry, dict) and key in entry:
                entry["vs_nginx"] = _ratio(entry[key], base)


def _fmt(v, digits=1):
    if v is None:
        return "—"
    if isinstance(v, float) and abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def _ms(us):
    return "—" if us is None else f"{us / 1000:.2f}"


def _x(r):
    return "—" if r is None else f"{r:.2f}×"


def markdown(result):
    """The Markdown report: load table, noise-free table, notes."""
    lines = []
    m = result.get("machine", {})
    cfg = result.get("config", {})
    lines.append("# Portico benchmark")
    lines.append("")
    lines.append(f"{result.get('started_at', '')} · {m.get('nproc')} CPUs · "
                 f"kernel {m.get('kernel')} · {m.get('cpu_model', '')}")
    vers = m.get("versions", {})
    lines.append("Proxies: " + ", ".join(f"{k} `{v}`" for k, v in vers.items()))
    if "load" in cfg.get("phases", ["load"]):
        lines.append(f"wrk {cfg.get('duration_s')} s per run, {cfg.get('rounds')} "
                     f"round(s), medians; proxy on CPU {cfg.get('proxy_cpu')}, "
                     f"wrk and origin on CPU {cfg.get('client_cpu')}.")
    else:
        lines.append(f"Proxy on CPU {cfg.get('proxy_cpu')}, load generator and origins "
                     f"on CPU {cfg.get('client_cpu')}; machine stall fraction "
                     f"{m.get('stall_fraction')}, load average {m.get('loadavg')}.")
    lines.append("")
    load = result.get("load", {})
    proxies = [p for p in result.get("proxies", []) if p in load]
    if proxies:
        lines.append("| Proxy | Cell | req/s | p50 ms | p99 ms | CPU µs/req "
                     "| req/s vs nginx | CPU vs nginx |")
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for cell in result.get("cells", []):
            for p in proxies:
                c = load[p].get(cell["id"], {})
                med = c.get("median", {})
                vs = c.get("vs_nginx", {})
                flag = ""
                if med.get("errors"):
                    flag = f" ⚠{med['errors']} err"
                if not med.get("runs_ok"):
                    flag = " ⚠ failed" if med.get("runs_failed") else " (not run)"
                lines.append(
                    f"| {p}{flag} | {cell['id']} | {_fmt(med.get('rps'), 0)} | "
                    f"{_ms(med.get('p50_us'))} | {_ms(med.get('p99_us'))} | "
                    f"{_fmt(med.get('cpu_us_per_req'), 1)} | {_x(vs.get('rps'))} | "
                    f"{_x(vs.get('cpu_us_per_req'))} |")
        lines.append("")
    ins, sysc, mem = (result.get(k, {}) for k in ("instructions", "syscalls", "memory"))
    nf = [p for p in result.get("proxies", []) if p in ins or p in sysc or p in mem]
    if nf:
        lines.append("| Proxy | instructions/req | vs nginx | syscalls/req | vs nginx "
                     "| idle conn bytes | vs nginx |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for p in nf:
            i, s, mm = ins.get(p, {}), sysc.get(p, {}), mem.get(p, {})
            lines.append(
                f"| {p} | {_fmt(i.get('per_request'), 0)} | {_x(i.get('vs_nginx'))} | "
                f"{_fmt(s.get('per_request'), 2)} | {_x(s.get('vs_nginx'))} | "
                f"{_fmt(mm.get('bytes_per_conn'), 0)} | {_x(mm.get('vs_nginx'))} |")
        lines.append("")
        for p in nf:
            by = sysc.get(p, {}).get("by_syscall")
            if by:
                top = ", ".join(f"{k} {v:g}" for k, v in list(by.items())[:8])
                lines.append(f"- {p} syscalls/req: {top}")
        lines.append("")
    lines.extend(upstream_markdown(result))
    notes = list(result.get("notes", []))
    for p, why in result.get("skipped", {}).items():
        notes.append(f"{p} skipped: {why.splitlines()[0] if why else ''}")
    for section in ("instructions", "syscalls", "memory", "slow_origin",
                    "failing_origin", "lb_overhead"):
        for p, e in result.get(section, {}).items():
            if isinstance(e, dict) and e.get("error"):
                notes.append(f"{section} {p}: {e['error'].splitlines()[0]}")
    if notes:
        lines.append("Notes:")
        lines.extend(f"- {n}" for n in notes)
        lines.append("")
    return "\n".join(lines)


def _bars(ax, groups, proxies, values, title, ylabel, fmt="{:.0f}"):
    """Grouped bars: one group per label in groups, one bar per proxy."""
    n = max(1, len(proxies))
    width = 0.8 / n
    for i, p in enumerate(proxies):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        ys = [values.get((p, grp)) for grp in groups]
        hs = [y if y is not None else 0 for y in ys]
        bars = ax.bar(xs, hs, width, label=p, color=PROXY_COLORS.get(p))
        for b, y in zip(bars, ys):
            if y is not None:
                ax.annotate(fmt.format(y), (b.get_x() + b.get_width() / 2, b.get_height()),
                            ha="center", va="bottom", fontsize=6, rotation=90,
                            xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.margins(y=0.25)


def chart(result, path):
    """Write the PNG: req/s, CPU µs/req, p99 per cell; instructions, syscalls
    and idle-connection memory per proxy; and a row for the upstream
    scenarios when they ran (only that row when nothing else ran)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_base = any(result.get(k) for k in ("load", "memory", "instructions", "syscalls"))
    has_ups = any(result.get(k) for k in UPSTREAM_SECTIONS)
    rows = (2 if has_base or not has_ups else 0) + (1 if has_ups else 0)
    fig = plt.figure(figsize=(15, 4.25 * rows + (0.5 if rows == 1 else 0)))
    grid = fig.add_gridspec(rows, 12)
    if has_ups:
        upstream_panels([fig.add_subplot(grid[rows - 1, 3 * c:3 * c + 3])
                         for c in range(4)], result)
    if rows > 1:
        axes = [[fig.add_subplot(grid[r, 4 * c:4 * c + 4]) for c in range(3)]
                for r in range(2)]
        _base_panels(fig, axes, result)
    m = result.get("machine", {})
    if rows > 1:
        title = (f"Portico vs nginx vs HAProxy — {result.get('started_at', '')} · "
                 f"{m.get('nproc')} CPUs · {result.get('config', {}).get('duration_s')} s × "
                 f"{result.get('config', {}).get('rounds')} round(s) (medians)")
    else:
        up = result.get("config", {}).get("upstream", {})
        title = (f"Portico upstream scenarios — {result.get('started_at', '')} · "
                 f"{m.get('nproc')} CPUs · {up.get('rate', 0):g} req/s open loop, "
                 f"client timeout {up.get('client_timeout_s', 0):g} s")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95 if rows > 1 else 0.9))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _base_panels(fig, axes, result):
    """The two rows of the proxy comparison (load cells and noise-free figures)."""
    proxies = result.get("proxies", [])
    cells = [c["id"] for c in result.get("cells", [])]
    load = result.get("load", {})

    def cellvals(metric, scale=1.0):
        out = {}
        for p in proxies:
            for c in cells:
                v = load.get(p, {}).get(c, {}).get("median", {}).get(metric)
                out[(p, c)] = None if v is None else v / scale
        return out

    lp = [p for p in proxies if p in load]
    _bars(axes[0][0], cells, lp, cellvals("rps"), "Throughput (higher is better)", "req/s")
    _bars(axes[0][1], cells, lp, cellvals("cpu_us_per_req"),
          "Proxy CPU per request (lower is better)", "µs/req", "{:.1f}")
    _bars(axes[0][2], cells, lp, cellvals("p99_us", 1000.0),
          "p99 latency (lower is better)", "ms", "{:.1f}")
    for ax, section, key, title, unit, fmt in (
            (axes[1][0], "instructions", "per_request",
             "User-space instructions per request (callgrind)", "instructions", "{:.0f}"),
            (axes[1][1], "syscalls", "per_request",
             "Syscalls per request (strace)", "syscalls", "{:.2f}"),
            (axes[1][2], "memory", "bytes_per_conn",
             "RSS per idle keep-alive connection", "bytes", "{:.0f}")):
        data = result.get(section, {})
        ps = [p for p in proxies if data.get(p, {}).get(key) is not None]
        ys = [data[p][key] for p in ps]
        bars = ax.bar(range(len(ps)), ys, 0.6,
                      color=[PROXY_COLORS.get(p) for p in ps])
        for b, y in zip(bars, ys):
            ax.annotate(fmt.format(y), (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8,
                        xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(range(len(ps)))
        ax.set_xticklabels(ps, fontsize=8)
        ax.set_xlim(-0.75, max(len(proxies), 1) - 0.25)
        ax.set_title(title + " (lower is better)", fontsize=10)
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.margins(y=0.15)
        if not ps:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center",
                    transform=ax.transAxes)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", ncol=len(labels))


# ------------------------------------------------------ upstream scenarios

UPSTREAM_SECTIONS = ("slow_origin", "failing_origin", "lb_overhead")
VARIANT_COLORS = {
    "direct": "#7f7f7f", "portico-p2c": "#d62728", "portico-rr": "#ff9896",
    "nginx-leastconn": "#2ca02c", "haproxy-leastconn": "#1f77b4",
    "portico-retryoff": "#ff9896", "portico-retryon": "#d62728",
    "portico-retryon-noeject": "#9e1b1b", "nginx-retry": "#2ca02c",
    "haproxy-retry": "#1f77b4",
}


def _lat(r, key, timeout_s):
    """A latency percentile in ms for a table; '≥T s' when it lands on failures."""
    if key in r and r[key] is not None:
        return f"{r[key] / 1000:.1f}"
    if r.get(key.replace("_us", "_failed")):
        return f"≥{timeout_s:g} s ✗"
    return "—"


def _pct(v, digits=2):
    return "—" if v is None else f"{v * 100:.{digits}f} %"


def _met(flag):
    return "met" if flag else "**not met**"


def _slow_markdown(result, up):
    slow = result.get("slow_origin", {})
    if not slow:
        return []
    t = up.get("client_timeout_s", 1.0)
    lines = [
        "### Slow origin",
        "",
        f"{up.get('origins')} origins (nginx); origin {up.get('slow_origin')} answers "
        f"{up.get('slow_delay_ms'):g} ms late from {up.get('slow_from_s'):g} s to "
        f"{up.get('slow_to_s'):g} s of a {up.get('slow_duration_s'):g} s run. Open-loop "
        f"load: {up.get('rate'):g} req/s over {up.get('client_conns')} keep-alive "
        f"connections, client timeout {t:g} s (a timeout is a failure and counts as "
        "infinitely slow in the percentiles). \"Slowed\" = requests the slow origin held "
        "for the delay (its access log).",
        "",
        "| Proxy | p50 ms | p99 ms | p99.9 ms | success | window p99 ms "
        "| window p99.9 ms | slowed | req to origins | send lag ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for kind, r in slow.items():
        name = r.get("label", kind)
        if "requests" not in r:
            lines.append(f"| {name} ⚠ | — | — | — | — | — | — | — | "
                         f"{(r.get('error') or '').splitlines()[0][:60]} | — |")
            continue
        w = r.get("window", {})
        lines.append(
            f"| {name} | {_lat(r, 'p50_us', t)} | {_lat(r, 'p99_us', t)} | "
            f"{_lat(r, 'p999_us', t)} | {_pct(r.get('success_rate'))} | "
            f"{_lat(w, 'p99_us', t)} | {_lat(w, 'p999_us', t)} | "
            f"{r.get('slowed_requests', '—')} | "
            f"{' / '.join(str(n) for n in r.get('origin_requests', []))} | "
            f"{r.get('max_send_lag_ms', 0):.0f} |")
    lines.append("")
    v = result.get("upstream_targets", {})
    parts = []
    for other, name in (("portico-rr", "round_robin"), ("nginx-leastconn", "nginx"),
                        ("haproxy-leastconn", "HAProxy")):
        e = v.get(f"p999_vs_{other}")
        if e and e.get("ratio") is None:
            parts.append(f"vs {name}: undetermined (both p99.9 at or past the timeout)")
        elif e:
            bound = {"lower": "≥ ", "upper": "≤ "}.get(e.get("bound"), "")
            parts.append(f"vs {name} {bound}{e['ratio']:.2f}× "
                         f"(target {'≥ 5' if other == 'portico-rr' else '> 1'}×: "
                         f"{_met(e['met'])})")
    if parts:
        lines.append("Portico p2c_ewma p99.9 better by: " + "; ".join(parts) + ".")
        lines.append("")
    return lines


def _fail_markdown(result, up):
    fail = result.get("failing_origin", {})
    if not fail:
        return []
    lines = [
        "### Failing origin",
        "",
        f"{up.get('origins')} origins; origin {up.get('fail_origin')} answers 503 to "
        f"{up.get('fail_ratio', 0.5):.0%} of its requests. {up.get('rate'):g} req/s for "
        f"{up.get('fail_duration_s'):g} s. Amplification = requests logged by the origins "
        "÷ requests sent by the client. Target with retries on: amplification ≤ 1.2 "
        "and success ≥ 99 %.",
        "",
        "| Proxy | client req | upstream req | amplification | success "
        "| 503 from failing origin | req to origins |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    v = result.get("upstream_targets", {})
    for kind, r in fail.items():
        name = r.get("label", kind)
        if "amplification" not in r:
            lines.append(f"| {name} ⚠ | — | — | — | — | — | "
                         f"{(r.get('error') or '').splitlines()[0][:60]} |")
            continue
        verdict = v.get(f"retry_{kind}")
        flag = f" ({_met(verdict['met'])})" if verdict else ""
        lines.append(
            f"| {name}{flag} | {r['requests']:,} | {r['upstream_requests']:,} | "
            f"{r['amplification']:.3f} | {_pct(r.get('success_rate'))} | "
            f"{r.get('failing_origin_503', '—')} | "
            f"{' / '.join(str(n) for n in r.get('origin_requests', []))} |")
    lines.append("")
    return lines


def _overhead_markdown(result):
    ovh = result.get("lb_overhead", {})
    rows = [(k, r) for k, r in ovh.items() if isinstance(r, dict)]
    if not rows:
        return []
    lines = ["### Load-balancing overhead (callgrind)", "",
             "| Portico configuration | instructions/req |", "|---|---:|"]
    for kind, r in rows:
        val = _fmt(r.get("per_request"), 0) if "per_request" in r else \
            "⚠ " + (r.get("error") or "").splitlines()[0][:60]
        lines.append(f"| {r.get('label', kind)} | {val} |")
    if "delta_per_request" in ovh:
        d = ovh["delta_per_request"]
        lines.append(f"| **difference** (target ≤ {ovh.get('target_per_request', 1500):,}: "
                     f"{_met(d <= ovh.get('target_per_request', 1500))}) | {d:,.0f} |")
    lines.append("")
    return lines


def upstream_markdown(result):
    """The tables of the upstream scenarios (empty if none ran)."""
    if not any(result.get(k) for k in UPSTREAM_SECTIONS):
        return []
    up = result.get("config", {}).get("upstream", {})
    lines = ["## Upstream scenarios", ""]
    lines += _slow_markdown(result, up)
    lines += _fail_markdown(result, up)
    lines += _overhead_markdown(result)
    return lines


SHORT_LABELS = {
    "direct": "no proxy", "portico-p2c": "Portico\np2c_ewma",
    "portico-rr": "Portico\nround_robin", "nginx-leastconn": "nginx\nleast_conn",
    "haproxy-leastconn": "HAProxy\nleastconn", "portico-retryoff": "Portico\nretries off",
    "portico-retryon": "Portico\nretries on",
    "portico-retryon-noeject": "Portico\nretries on,\nno ejection",
    "nginx-retry": "nginx\nnext_upstream\nhttp_503", "haproxy-retry": "HAProxy\nretry-on 503",
}


def _short(kind):
    return SHORT_LABELS.get(kind, kind)


def _slow_percentile_panel(ax, result):
    slow = {k: r for k, r in result.get("slow_origin", {}).items() if "requests" in r}
    t = result.get("config", {}).get("upstream", {}).get("client_timeout_s", 1.0)
    keys = ("p50_us", "p99_us", "p999_us")
    names = ("p50", "p99", "p99.9")
    kinds = list(slow)
    width = 0.8 / max(1, len(kinds))
    for i, k in enumerate(kinds):
        r = slow[k]
        xs = [g + (i - (len(kinds) - 1) / 2) * width for g in range(len(keys))]
        ys = [(r[key] / 1000 if r.get(key) is not None else t * 1000) for key in keys]
        failed = [r.get(key) is None for key in keys]
        bars = ax.bar(xs, ys, width, label=r.get("label", k),
                      color=VARIANT_COLORS.get(k, "#999999"))
        for b, y, f in zip(bars, ys, failed):
            if f:
                b.set_hatch("//")
            ax.annotate(("≥" if f else "") + f"{y:.0f}",
                        (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=6, rotation=90,
                        xytext=(0, 2), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_ylabel("ms (log)", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("Slow origin: latency, whole run (lower is better)", fontsize=10)
    ax.legend(fontsize=6, loc="upper left")
    ax.margins(y=0.3)
    if not kinds:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)


def _slowed_panel(ax, result):
    """Requests each proxy sent to the slow origin while it was slow (from the
    origin's log: the machine's latency noise does not touch this count)."""
    up = result.get("config", {}).get("upstream", {})
    slow = {k: r for k, r in result.get("slow_origin", {}).items()
            if "slowed_requests" in r and "requests" in r and k != "direct"}
    kinds = list(slow)
    window_req = (up.get("slow_to_s", 0) - up.get("slow_from_s", 0)) * up.get("rate", 0)
    ys = [slow[k]["slowed_requests"] for k in kinds]
    bars = ax.bar(range(len(kinds)), ys, 0.6,
                  color=[VARIANT_COLORS.get(k, "#999999") for k in kinds])
    for b, y in zip(bars, ys):
        share = f"\n{y / window_req:.1%}" if window_req else ""
        ax.annotate(f"{y:,}{share}", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=7, xytext=(0, 2),
                    textcoords="offset points")
    ax.set_xticks(range(len(kinds)))
    ax.set_xticklabels([_short(k) for k in kinds], fontsize=7)
    ax.set_ylabel("requests (% of the window's)", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("Slow origin: requests sent to it while slow", fontsize=10)
    ax.margins(y=0.25)
    if not kinds:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)


def _fail_panel(ax, result):
    fail = {k: r for k, r in result.get("failing_origin", {}).items()
            if "amplification" in r}
    kinds = list(fail)
    ys = [fail[k]["amplification"] for k in kinds]
    bars = ax.bar(range(len(kinds)), ys, 0.6,
                  color=[VARIANT_COLORS.get(k, "#999999") for k in kinds])
    for b, k in zip(bars, kinds):
        r = fail[k]
        ax.annotate(f"{r['amplification']:.3f}\nok {r['success_rate'] * 100:.2f}%",
                    (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=7, xytext=(0, 2),
                    textcoords="offset points")
    ax.axhline(1.2, color="#555555", linestyle="--", linewidth=0.8)
    ax.set_xticks(range(len(kinds)))
    ax.set_xticklabels([_short(k) for k in kinds], fontsize=7)
    ax.set_ylim(0, max(ys + [1.3]) * 1.25)
    ax.set_ylabel("upstream req ÷ client req", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("Failing origin: amplification (dashed: 1.2)", fontsize=10)
    if not kinds:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)


def _overhead_panel(ax, result):
    ovh = result.get("lb_overhead", {})
    kinds = [k for k, r in ovh.items() if isinstance(r, dict) and "per_request" in r]
    ys = [ovh[k]["per_request"] for k in kinds]
    bars = ax.bar(range(len(kinds)), ys, 0.6, color=["#ff9896", "#d62728"][:len(kinds)])
    for b, y in zip(bars, ys):
        ax.annotate(f"{y:,.0f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                    textcoords="offset points")
    ax.set_xticks(range(len(kinds)))
    ax.set_xticklabels(["simplest group" if k.endswith("lbmin") else
                        "p2c_ewma + health\n+ outlier, 3 origins" for k in kinds], fontsize=7)
    ax.set_xlim(-0.75, 1.75)
    title = "Portico instructions/req (callgrind)"
    if "delta_per_request" in ovh:
        title += f": +{ovh['delta_per_request']:,.0f}"
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    ax.margins(y=0.15)
    if not kinds:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)


def upstream_panels(axes, result):
    """The chart row of the upstream scenarios (4 axes)."""
    _slow_percentile_panel(axes[0], result)
    _slowed_panel(axes[1], result)
    _fail_panel(axes[2], result)
    _overhead_panel(axes[3], result)
