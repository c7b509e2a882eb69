"""Configurations for the upstream scenarios (bench/lbbench.py): several
origins, and the proxies in front of them in the variants compared.

Origins are Debian nginx, one worker each, serving /small (17 bytes). Each
can be made slow without a restart: while the file `slow` exists in its
directory, /small is answered by the echo module after `echo_sleep DELAY`
(nginx-light ships that module). One origin can answer 503 to half of its
requests (`split_clients` on `$request_id`). Every /small answered is logged
to `access.log` as `$msec $status $request_time`, which is how the harness
counts what reached the origins.

Proxy variants are named `<proxy>-<variant>` (servers.make_proxy builds them
with proxy_conf() below); origin_port is then the list of origin ports.
"""

import os

import servers

ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"

# kind -> (label, settings). The settings are read by the *_conf functions.
VARIANTS = {
    # Slow-origin scenario: each proxy's best algorithm for a slow server.
    "portico-p2c": ("Portico p2c_ewma", {"algorithm": "p2c_ewma"}),
    "portico-rr": ("Portico round_robin", {"algorithm": "round_robin"}),
    "nginx-leastconn": ("nginx least_conn", {}),
    "haproxy-leastconn": ("HAProxy leastconn", {}),
    # Failing-origin scenario: retries off and on.
    "portico-retryoff": ("Portico retries off", {"next_upstream": "off"}),
    "portico-retryon": ("Portico retries on",
                        {"next_upstream": "error timeout http_503"}),
    "portico-retryon-noeject": ("Portico retries on, outlier_detection off",
                                {"next_upstream": "error timeout http_503",
                                 "outlier": "off"}),
    "nginx-retry": ("nginx proxy_next_upstream http_503", {"retry_503": True}),
    "haproxy-retry": ("HAProxy retry-on 503, redispatch", {"retry_503": True}),
    # Overhead: the LB, health and outlier features on, or the simplest group.
    "portico-lbfull": ("Portico p2c_ewma + health_check + outlier_detection, 3 origins",
                       {"algorithm": "p2c_ewma",
                        "health": "type=http interval=5s timeout=2s uri=/small",
                        "outlier": "consecutive_failures=5", "admin": True}),
    "portico-lbmin": ("Portico 1 server, round_robin, no health_check, "
                      "outlier_detection off",
                      {"algorithm": "round_robin", "outlier": "off", "servers": 1}),
}


def label(kind):
    return VARIANTS[kind][0] if kind in VARIANTS else kind


def echo_module_available():
    return os.path.exists(ECHO_MODULE)


# ------------------------------------------------------------------ origins

def origin_conf(d, port, www, delay_s, fail_half):
    """An origin: static /small, slow while d/slow exists, optionally 503 for
    half of the requests. The `if (-f)` check is in every origin so all of
    them do the same work per request."""
    t = servers.KEEPALIVE_TIMEOUT_S
    fail_map = ("    split_clients \"${request_id}\" $fail_half { 50% 1; * 0; }\n"
                if fail_half else "")
    fail_if = "            if ($fail_half) { return 503; }\n" if fail_half else ""
    return f"""\
load_module {ECHO_MODULE};
worker_processes 1;
worker_rlimit_nofile {servers.nofile_target()};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections {servers.MAX_CONNS}; }}
http {{
    access_log off;
    log_format counts '$msec $status $request_time';
    sendfile on;
    # No open_file_cache: it would also cache the `-f slow` test, and the
    # origin would stay slow after the flag file is removed.
    default_type application/octet-stream;
    keepalive_timeout {t}s;
    keepalive_requests 1000000000;
{servers._nginx_temp_paths(d)}
{fail_map}    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {www};
        location = /small {{
            access_log {d}/access.log counts;
{fail_if}            error_page 418 = @slow;
            if (-f {d}/slow) {{ return 418; }}
        }}
        location @slow {{
            access_log {d}/access.log counts;
            echo_sleep {delay_s:.3f};
            echo -n "{servers.SMALL_BODY.decode()}";
        }}
        location / {{ }}
    }}
}}
"""


class Origin:
    """One origin nginx and the files that control and count it."""

    def __init__(self, server, d):
        self.server = server
        self.dir = d
        self.port = server.port
        self.slow_flag = os.path.join(d, "slow")
        self.access_log = os.path.join(d, "access.log")

    def log_size(self):
        try:
            return os.path.getsize(self.access_log)
        except OSError:
            return 0

    def log_since(self, offset):
        """[(msec, status, request_time)] of the lines after byte offset."""
        out = []
        try:
            with open(self.access_log, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return out
        for line in data.decode(errors="replace").splitlines():
            tok = line.split()
            if len(tok) == 3:
                try:
                    out.append((float(tok[0]), int(tok[1]), float(tok[2])))
                except ValueError:
                    continue
        return out


def make_origins(tmp, tag, n, cpu, delay_s=0.2, fail_index=None):
    """n origins (not started) in tmp/<tag>-o<i>/; origin fail_index answers
    503 to half of its requests."""
    out = []
    for i in range(n):
        d = os.path.join(tmp, f"{tag}-o{i + 1}")
        www = os.path.join(d, "www")
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, "small"), "wb") as f:
            f.write(servers.SMALL_BODY)
        port = servers.free_port()
        conf = servers._write(os.path.join(d, "nginx.conf"),
                              origin_conf(d, port, www, delay_s, i == fail_index))
        cmd = ["nginx", "-e", "stderr", "-p", d + "/", "-c", conf, "-g", "daemon off;"]
        srv = servers.Server(f"{tag}-o{i + 1}", cmd, port, d, servers.signal.SIGTERM, cpu)
        out.append(Origin(srv, d))
    return out


# ------------------------------------------------------------------ proxies

def proxy_conf(kind, d, port, origin_ports):
    """(file name, text) of the configuration of variant kind."""
    base = kind.partition("-")[0]
    opts = VARIANTS[kind][1]
    ports = list(origin_ports)[:opts.get("servers", len(origin_ports))]
    if base == "portico":
        admin = servers.free_port() if opts.get("admin") else None
        return "portico.conf", portico_conf(port, ports, opts, admin)
    if base == "nginx":
        return "nginx.conf", nginx_conf(d, port, ports, opts)
    if base == "haproxy":
        return "haproxy.cfg", haproxy_conf(port, ports, opts)
    raise ValueError(kind)


def portico_conf(port, ports, opts, admin_port=None):
    t = servers.KEEPALIVE_TIMEOUT_S
    lines = [f"        server 127.0.0.1:{p};" for p in ports]
    if opts.get("algorithm"):  # else Portico's default, p2c_ewma
        lines.append(f"        {opts['algorithm']};")
    if opts.get("health"):
        lines.append(f"        health_check {opts['health']};")
    if opts.get("outlier"):
        lines.append(f"        outlier_detection {opts['outlier']};")
    group = "\n".join(lines)
    nu = (f"\n            proxy_next_upstream {opts['next_upstream']};"
          if opts.get("next_upstream") else "")
    admin = f"127.0.0.1:{admin_port}" if admin_port else "off"
    return f"""\
workers 1;
error_log stderr warn;
admin_listen {admin};
events {{ worker_connections {servers.MAX_CONNS}; }}
http {{
    access_log off;
    keepalive_timeout {t}s;
    keepalive_requests 1000000000;
    upstream origins {{
{group}
        keepalive 64;
        keepalive_requests 1000000000;
        keepalive_timeout {t}s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://origins;{nu}
        }}
    }}
}}
"""


def nginx_conf(d, port, ports, opts):
    t = servers.KEEPALIVE_TIMEOUT_S
    group = "\n".join(f"        server 127.0.0.1:{p};" for p in ports)
    # nginx default: proxy_next_upstream error timeout; max_fails=1
    # fail_timeout=10s, so a 503 also takes the server out for 10 s.
    nu = ("\n            proxy_next_upstream error timeout http_503;"
          if opts.get("retry_503") else "")
    return f"""\
worker_processes 1;
worker_rlimit_nofile {servers.nofile_target()};
pid {d}/nginx.pid;
error_log {d}/nginx.error.log warn;
events {{ worker_connections {servers.MAX_CONNS}; }}
http {{
    access_log off;
    keepalive_timeout {t}s;
    keepalive_requests 1000000000;
{servers._nginx_temp_paths(d)}
    upstream origins {{
        least_conn;
{group}
        keepalive 64;
        keepalive_requests 1000000000;
        keepalive_timeout {t}s;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://origins;
            proxy_http_version 1.1;
            proxy_set_header Connection "";{nu}
        }}
    }}
}}
"""


def haproxy_conf(port, ports, opts):
    t = servers.KEEPALIVE_TIMEOUT_S
    group = "\n".join(f"    server o{i + 1} 127.0.0.1:{p}" for i, p in enumerate(ports))
    # retry-on 503 with "option redispatch 1": every retry may go to another
    # server (plain "option redispatch" only redispatches the last retry).
    retry = ("\n    retries 3\n    retry-on 503\n    option redispatch 1"
             if opts.get("retry_503") else "")
    return f"""\
global
    nbthread 1
    maxconn {servers.MAX_CONNS}
    no strict-limits

defaults
    mode http
    maxconn {servers.MAX_CONNS}
    timeout connect 5s
    timeout client {t}s
    timeout server {t}s
    timeout http-request {t}s
    timeout http-keep-alive {t}s
    http-reuse always

frontend fe
    bind 127.0.0.1:{port}
    default_backend origins

backend origins
    balance leastconn{retry}
{group}
"""
