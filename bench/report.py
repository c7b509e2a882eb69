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
    lines.append(f"wrk {cfg.get('duration_s')} s per run, {cfg.get('rounds')} "
                 f"round(s), medians; proxy on CPU {cfg.get('proxy_cpu')}, "
                 f"wrk and origin on CPU {cfg.get('client_cpu')}.")
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
    notes = list(result.get("notes", []))
    for p, why in result.get("skipped", {}).items():
        notes.append(f"{p} skipped: {why.splitlines()[0] if why else ''}")
    for section in ("instructions", "syscalls", "memory"):
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
    and idle-connection memory per proxy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    proxies = result.get("proxies", [])
    cells = [c["id"] for c in result.get("cells", [])]
    load = result.get("load", {})
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))

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
    m = result.get("machine", {})
    fig.suptitle(f"Portico vs nginx vs HAProxy — {result.get('started_at', '')} · "
                 f"{m.get('nproc')} CPUs · {result.get('config', {}).get('duration_s')} s × "
                 f"{result.get('config', {}).get('rounds')} round(s) (medians)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
