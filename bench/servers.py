"""Server processes for the benchmark: the origin and the three proxies.

Every server runs in the foreground as a child of the harness, in its own
session (so a Ctrl-C in the terminal reaches only the harness, which then
stops them in order), with RLIMIT_NOFILE raised as far as the hard limit
allows, optionally pinned to one CPU with taskset, optionally wrapped in a
tool (valgrind, strace).  All of them are registered in a module-level list
so the harness can always stop whatever is still running.
"""

import os
import resource
import signal
import socket
import subprocess
import time

import httpc

# Connections a proxy (and the origin) may hold: worker_connections / maxconn.
MAX_CONNS = 20000
KEEPALIVE_TIMEOUT_S = 300
SMALL_BODY = b"hello from origin"  # 17 bytes
BIG_BODY_BYTES = 64 * 1024
PATHS = {"small": "/small", "64k": "/64k"}

_running = []  # every Server started and not yet stopped


def nofile_target():
    """The RLIMIT_NOFILE every child gets: high, but within the hard limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return 1 << 20
    return hard


def raise_nofile():
    """Raise our own soft RLIMIT_NOFILE to the hard limit (no privilege needed)."""
    n = nofile_target()
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    except (ValueError, OSError):
        pass


def _child_setup():
    # Runs in the child between fork and exec.
    raise_nofile()


def free_port(taken=set()):  # noqa: B006 - deliberate memo of ports handed out
    """A free TCP port on 127.0.0.1, never the same one twice in a run."""
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in taken:
            taken.add(port)
            return port


def proc_children():
    """Map ppid -> [pid] over every process in /proc."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        # comm may contain spaces and parentheses: split after the last ')'.
        rest = data[data.rfind(b")") + 2:].split()
        kids.setdefault(int(rest[1]), []).append(int(name))
    return kids


def proc_tree(root):
    """root and all its live descendants (nginx master + workers, etc.)."""
    kids = proc_children()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if os.path.exists(f"/proc/{pid}"):
            out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def cpu_ticks(pids):
    """Sum of utime+stime (clock ticks) of pids; /proc/PID/stat covers all threads."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat
    return total


def rss_kib(pids):
    """Sum of VmRSS (KiB) of pids."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


class ServerError(RuntimeError):
    pass


class Server:
    """One foreground server process (possibly under taskset/valgrind/strace).

    name:      label for logs ("nginx", "origin", ...)
    cmd:       argv of the server itself
    port:      the port it listens on (for readiness checks)
    stop_sig:  the signal that makes it exit cleanly
    cpu:       CPU to pin to with taskset, or None
    wrapper:   argv prefix such as ["valgrind", "--tool=callgrind", ...]
    """

    def __init__(self, name, cmd, port, workdir, stop_sig=signal.SIGTERM,
                 cpu=None, wrapper=None):
        self.name = name
        self.cmd = list(cmd)
        self.port = port
        self.workdir = workdir
        self.stop_sig = stop_sig
        self.cpu = cpu
        self.wrapper = list(wrapper or [])
        self.proc = None
        self.log_path = os.path.join(workdir, f"{name}.log")
        self._log = None

    def argv(self):
        argv = []
        if self.cpu is not None:
            argv += ["taskset", "-c", str(self.cpu)]
        return argv + self.wrapper + self.cmd

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv(), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, cwd=self.workdir,
            preexec_fn=_child_setup, start_new_session=True)
        _running.append(self)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        """The server's processes (the wrapper's own process excluded for strace)."""
        if not self.alive():
            return []
        return proc_tree(self.proc.pid)

    def main_pid(self):
        """The pid to signal: the server itself, not strace (valgrind and
        taskset exec in place, so their pid is the server's)."""
        if self.wrapper and os.path.basename(self.wrapper[0]) == "strace":
            kids = proc_children().get(self.proc.pid, [])
            if kids:
                return min(kids)
        return self.proc.pid

    def log_tail(self, lines=15):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(data.splitlines()[-lines:])

    def wait_ready(self, timeout=20.0, path="/small"):
        """Wait until GET path answers 200; raise ServerError with the log tail
        if the process dies or the deadline passes."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerError(f"{self.name} exited with code "
                                  f"{self.proc.returncode}:\n{self.log_tail()}")
            try:
                with httpc.Conn(self.port, timeout=2.0) as c:
                    status, _ = c.get(path)
                if status == 200:
                    return
                last = f"status {status}"
            except (OSError, httpc.HttpError) as e:
                last = str(e)
            time.sleep(0.05)
        raise ServerError(f"{self.name} not ready after {timeout:.0f}s "
                          f"({last}):\n{self.log_tail()}")

    def wait_listening(self, timeout=60.0):
        """Connect, retrying only while refused; return the connected socket.

        Used by the callgrind/strace runs so the readiness check itself is
        exactly one connection, the same in every run."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerError(f"{self.name} exited with code "
                                  f"{self.proc.returncode}:\n{self.log_tail()}")
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.connect(("127.0.0.1", self.port))
                return s
            except ConnectionRefusedError:
                s.close()
                time.sleep(0.05)
        raise ServerError(f"{self.name} not listening after {timeout:.0f}s:\n"
                          f"{self.log_tail()}")

    def stop(self, timeout=15.0):
        """Ask the server to exit (stop_sig), then kill its session if it will not.
        Returns True if it exited on its own."""
        if self.proc is None:
            return True
        clean = True
        if self.proc.poll() is None:
            try:
                os.kill(self.main_pid(), self.stop_sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                clean = False
        # Whatever is left in its session (nginx workers, strace tracees) goes.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self in _running:
            _running.remove(self)
        if self._log:
            self._log.close()
            self._log = None
        return clean


def stop_all():
    """Stop every server still running (used in finally / on Ctrl-C)."""
    for srv in list(reversed(_running)):
        try:
            srv.stop(timeout=5.0)
        except Exception:  # noqa: BLE001 - best effort during teardown
            pass


def stop_all_but(keep):
    """Stop every running server except keep (e.g. the origin)."""
    for srv in list(reversed(_running)):
        if srv is not keep:
            srv.stop(timeout=5.0)


# ---------------------------------------------------------------- configs

def _nginx_temp_paths(d):
    return "\n".join(
        f"    {k}_temp_path {d}/{k};"
        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


def origin_conf(d, port, www):
    return f"""\
worker_processes 1;
worker_rlimit_nofile {nofile_target()};
pid {d}/origin.pid;
error_log {d}/origin.error.log warn;
events {{ worker_connections {MAX_CONNS}; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=16 inactive=600s;
    open_file_cache_valid 600s;
    default_type application/octet-stream;
    keepalive_timeout {KEEPALIVE_TIMEOUT_S}s;
    keepalive_requests 1000000000;
{_nginx_temp_paths(d)}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {www};
        location / {{ }}
    }}
}}
"""


def nginx_conf(d, port, origin_port):
    return f"""\
worker_processes 1;
worker_rlimit_nofile {nofile_target()};
pid {d}/nginx.pid;
error_log {d}/nginx.error.log warn;
events {{ worker_connections {MAX_CONNS}; }}
http {{
    access_log off;
    keepalive_timeout {KEEPALIVE_TIMEOUT_S}s;
    keepalive_requests 1000000000;
{_nginx_temp_paths(d)}
    upstream origin {{
        server 127.0.0.1:{origin_port};
        keepalive 64;
        keepalive_requests 1000000000;
        keepalive_timeout {KEEPALIVE_TIMEOUT_S}s;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def haproxy_conf(port, origin_port):
    # "no strict-limits": maxconn 20000 wants ~40k fds (two per proxied
    # connection); where the hard limit is lower HAProxy would refuse to start.
    # It only needs that many when 20000 connections are all proxied at once.
    t = KEEPALIVE_TIMEOUT_S
    return f"""\
global
    nbthread 1
    maxconn {MAX_CONNS}
    no strict-limits

defaults
    mode http
    maxconn {MAX_CONNS}
    timeout connect 5s
    timeout client {t}s
    timeout server {t}s
    timeout http-request {t}s
    timeout http-keep-alive {t}s
    http-reuse always

frontend fe
    bind 127.0.0.1:{port}
    default_backend origin

backend origin
    server origin 127.0.0.1:{origin_port}
"""


def portico_conf(port, origin_port):
    return f"""\
workers 1;
error_log stderr warn;
admin_listen off;
events {{ worker_connections {MAX_CONNS}; }}
http {{
    access_log off;
    keepalive_timeout {KEEPALIVE_TIMEOUT_S}s;
    keepalive_requests 1000000000;
    upstream origin {{
        server 127.0.0.1:{origin_port};
        keepalive 64;
        keepalive_requests 1000000000;
        keepalive_timeout {KEEPALIVE_TIMEOUT_S}s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://origin; }}
    }}
}}
"""


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def make_origin(tmp, cpu):
    """The origin: Debian nginx, 1 worker, serving /small and /64k."""
    d = os.path.join(tmp, "origin")
    www = os.path.join(d, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "small"), "wb") as f:
        f.write(SMALL_BODY)
    with open(os.path.join(www, "64k"), "wb") as f:
        f.write(bytes((i * 7 + 13) & 0xFF for i in range(BIG_BODY_BYTES)))
    port = free_port()
    conf = _write(os.path.join(d, "nginx.conf"), origin_conf(d, port, www))
    cmd = ["nginx", "-e", "stderr", "-p", d + "/", "-c", conf, "-g", "daemon off;"]
    return Server("origin", cmd, port, d, signal.SIGTERM, cpu)


def make_proxy(kind, tmp, origin_port, cpu=None, wrapper=None,
               single_process=False, portico_bin=None, tag=""):
    """A proxy server of kind 'portico' | 'nginx' | 'haproxy' in its own dir,
    or a variant '<proxy>-<variant>' of the upstream scenarios (bench/lbconf.py).

    single_process: nginx without a master (so callgrind/strace see the worker).
    wrapper:        tool argv prefix (valgrind/strace).
    tag:            suffix for the working directory and log name."""
    name = kind + (f"-{tag}" if tag else "")
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    port = free_port()
    kind, _, variant = kind.partition("-")
    if variant:
        # A variant of the upstream scenarios ("portico-p2c", "nginx-retry"...):
        # origin_port is then a list of ports. Imported here: lbconf imports us.
        import lbconf
        fname, text = lbconf.proxy_conf(f"{kind}-{variant}", d, port, origin_port)
        conf = _write(os.path.join(d, fname), text)
    if kind == "nginx":
        if not variant:
            conf = _write(os.path.join(d, "nginx.conf"), nginx_conf(d, port, origin_port))
        g = "daemon off;" + (" master_process off;" if single_process else "")
        cmd = ["nginx", "-e", "stderr", "-p", d + "/", "-c", conf, "-g", g]
        # SIGQUIT: graceful stop; the process exits normally so tools flush.
        sig = signal.SIGQUIT
    elif kind == "haproxy":
        if not variant:
            conf = _write(os.path.join(d, "haproxy.cfg"), haproxy_conf(port, origin_port))
        cmd = ["haproxy", "-db", "-f", conf]
        sig = signal.SIGTERM
    elif kind == "portico":
        if not variant:
            conf = _write(os.path.join(d, "portico.conf"), portico_conf(port, origin_port))
        cmd = [portico_bin, "-c", conf]
        sig = signal.SIGTERM
    else:
        raise ValueError(kind)
    return Server(name, cmd, port, d, sig, cpu, wrapper)


def version_of(kind, portico_bin=None):
    """One-line version string of a proxy (or 'unknown')."""
    if kind == "nginx":
        argvs = [["nginx", "-v"]]
    elif kind == "haproxy":
        argvs = [["haproxy", "-v"]]
    else:
        argvs = [[portico_bin, "-v"], [portico_bin, "--version"]]
    for argv in argvs:
        try:
            r = subprocess.run(argv, capture_output=True, timeout=3,
                               stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            continue
        text = (r.stdout + r.stderr).decode(errors="replace").strip()
        if r.returncode == 0 and text:
            return text.splitlines()[0]
    return "unknown"
