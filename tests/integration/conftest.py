"""Integration test infrastructure: a real portico, real origins, real clients.

- PORTICO_BIN: the binary under test (default build/asan/portico in the repo).
- `portico(conf, **subst)`: writes a config into a fresh tmp dir, starts
  `portico -c FILE` in the foreground (output to portico.log there), waits
  until every listener accepts, and at teardown sends SIGTERM and fails the
  test if the process does not exit 0 within 10 s or if the log shows an
  AddressSanitizer / UBSan / LeakSanitizer report.
- Config text uses <<name>> placeholders (braces stay plain nginx syntax):
  <<listen>> / <<port>> (and <<listen2>>, <<port3>>, ...: one free port per
  distinct number), <<admin>> / <<admin_port>>, <<tmp>>, and any keyword
  passed to the factory (e.g. echo=origin.addr).
- Origins: `nginx` (session-wide Debian nginx serving files and echo
  locations) and the misbehaving Python origins from origins.py.
- RawConn and raw_exchange() for malformed input over plain sockets.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import httpx
import pytest

import origins

REPO = Path(__file__).resolve().parents[2]
PORTICO_BIN = os.environ.get("PORTICO_BIN") or str(REPO / "build/asan/portico")
if not os.path.isabs(PORTICO_BIN):
    PORTICO_BIN = str(REPO / PORTICO_BIN)
NGINX_BIN = "/usr/sbin/nginx"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
LONG = os.environ.get("PT_LONG") == "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "long: long-running variant (run with PT_LONG=1)")


def pytest_collection_modifyitems(config, items):
    if LONG:
        return
    skip = pytest.mark.skip(reason="long test: set PT_LONG=1")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def free_port():
    """A port that was free a moment ago (bind port 0, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout, alive=None):
    """Waits until 127.0.0.1:port accepts. alive() returning False aborts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def child_env():
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    return env


def http_client(base_url, timeout=10.0, **kw):
    """httpx client that never looks at proxy env vars."""
    # verify=False: plain http on loopback only; building an SSL context for
    # every client costs ~50-300 ms.
    return httpx.Client(base_url=base_url, trust_env=False, timeout=timeout, verify=False, **kw)


def tail(text, n=150):
    lines = text.splitlines()
    return "\n".join(lines[-n:])


# ---------------------------------------------------------------------------
# raw HTTP/1 client
# ---------------------------------------------------------------------------

class Resp:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body
        self.raw_head = raw_head
        self.interim = []  # 1xx responses seen before this one (status list)

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def has(self, name):
        return any(k.lower() == name.lower() for k, _ in self.headers)

    def conn_tokens(self):
        v = ",".join(self.header_all("connection"))
        return {t.strip().lower() for t in v.split(",") if t.strip()}

    def __repr__(self):
        return "<Resp %d %r %d bytes>" % (self.status, self.headers, len(self.body))


class RawConn:
    """A plain TCP connection to a server with an HTTP/1 response reader."""

    def __init__(self, port, timeout=5.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _fill(self):
        if self.eof:
            raise EOFError("connection closed")
        data = self.sock.recv(262144)
        if not data:
            self.eof = True
            raise EOFError("connection closed")
        if not isinstance(self.buf, bytearray):
            self.buf = bytearray(self.buf)
        self.buf += data

    def _until(self, sep):
        start = 0
        while True:
            i = self.buf.find(sep, max(0, start - len(sep)))
            if i >= 0:
                break
            start = len(self.buf)
            self._fill()
        i += len(sep)
        out = bytes(self.buf[:i])
        del self.buf[:i]
        return out

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_head(self):
        raw = self._until(b"\r\n\r\n")
        lines = raw[:-4].split(b"\r\n")
        first = lines[0].decode("latin-1")
        parts = first.split(" ", 2)
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.decode("latin-1").partition(":")
            headers.append((k, v.strip()))
        return Resp(version, status, reason, headers, b"", raw)

    def read_response(self, method="GET", skip_interim=True):
        """Reads one response (by its framing). 1xx other than 101 are
        skipped (and listed in resp.interim) when skip_interim."""
        interim = []
        while True:
            r = self.read_head()
            if skip_interim and 100 <= r.status < 200 and r.status != 101:
                interim.append(r.status)
                continue
            break
        r.interim = interim
        if method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200:
            return r
        te = r.header("transfer-encoding")
        cl = r.header("content-length")
        if te is not None and "chunked" in te.lower():
            body = bytearray()
            while True:
                line = self._until(b"\r\n")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self._until(b"\r\n") != b"\r\n":
                        pass
                    break
                body += self._exact(size)
                assert self._exact(2) == b"\r\n", "bad chunk terminator"
            r.body = bytes(body)
        elif cl is not None:
            r.body = self._exact(int(cl))
        else:
            r.body = self.read_all()
        return r

    def read_all(self, timeout=None):
        """Reads until EOF (or timeout: then returns what came)."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        out = bytearray(self.buf)
        self.buf = bytearray()
        if self.eof:
            return bytes(out)
        try:
            while True:
                data = self.sock.recv(262144)
                if not data:
                    self.eof = True
                    break
                out += data
        except socket.timeout:
            pass
        except ConnectionResetError:
            self.eof = True
        return bytes(out)

    def is_closed(self, timeout=2.0):
        """True if the peer closes (EOF or RST) within timeout with no more data."""
        if self.buf:
            return False
        if self.eof:
            return True
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            self.eof = True
            return True
        if not data:
            self.eof = True
            return True
        self.buf = bytearray(self.buf) + data
        return False


def raw_exchange(port, data, timeout=5.0):
    """Sends data, reads one response, and reports whether the server then
    closed the connection. Returns (resp, closed)."""
    with RawConn(port, timeout=timeout) as c:
        c.send(data)
        r = c.read_response()
        closed = c.is_closed(timeout=2.0)
        return r, closed


def parse_responses(data, methods=None):
    """Splits a byte string holding several responses (pipelining)."""
    out = []
    i = 0
    n = 0
    while i < len(data):
        end = data.index(b"\r\n\r\n", i) + 4
        head = data[i:end]
        lines = head[:-4].split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.decode("latin-1").partition(":")
            hdrs[k.strip().lower()] = v.strip()
        method = methods[n] if methods else "GET"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
            i = end
        elif "chunked" in hdrs.get("transfer-encoding", "").lower():
            j = end
            body = b""
            while True:
                le = data.index(b"\r\n", j)
                size = int(data[j:le].split(b";")[0], 16)
                j = le + 2
                if size == 0:
                    j = data.index(b"\r\n\r\n", j - 2) + 4
                    break
                body += data[j:j + size]
                j += size + 2
            i = j
        else:
            cl = int(hdrs.get("content-length", "0"))
            body = data[end:end + cl]
            i = end + cl
        if 100 <= status < 200 and status != 101:
            continue
        out.append((status, hdrs, body))
        n += 1
    return out


# ---------------------------------------------------------------------------
# portico
# ---------------------------------------------------------------------------

MAIN_TEMPLATE = """\
workers <<workers>>;
pid <<tmp>>/portico.pid;
error_log stderr info;
admin_listen <<admin_line>>;
worker_shutdown_timeout <<shutdown_timeout>>;
events { worker_connections 1024; }
<<main_extra>>
http {
    access_log <<access_log>>;
    client_header_timeout 10s;
    client_body_timeout 10s;
    proxy_connect_timeout 2s;
    proxy_read_timeout 10s;
    proxy_send_timeout 10s;
    send_timeout 10s;
<<http>>
}
"""

TOKEN = re.compile(r"<<([a-zA-Z_][a-zA-Z0-9_]*)>>")


class PorticoError(Exception):
    pass


class Portico:
    """One running portico process."""

    def __init__(self, tmp, conf, subst, workers=2, admin=True, access_log=True,
                 shutdown_timeout="5s", main_extra="", raw=False, start=True,
                 extra_args=()):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.tmp / "portico.conf"
        self.log_path = self.tmp / "portico.log"
        self.access_log_path = self.tmp / "access.log"
        self.pid_path = self.tmp / "portico.pid"
        self.ports = {}  # "" -> main port, "2" -> second, ...
        self.admin_port = free_port() if admin else None
        self.base = {
            "tmp": str(self.tmp),
            "workers": str(workers),
            "admin_line": "127.0.0.1:%d" % self.admin_port if admin else "off",
            "admin_port": str(self.admin_port or 0),
            "admin": "127.0.0.1:%d" % self.admin_port if admin else "off",
            "access_log": "%s json" % self.access_log_path if access_log else "off",
            "shutdown_timeout": shutdown_timeout,
            "main_extra": main_extra,
        }
        self.subst = dict(subst)
        self.raw = raw
        self.extra_args = list(extra_args)
        self.proc = None
        self.logf = None
        self.stopped = False
        self.expect_exit = None
        self.write_conf(conf)
        if start:
            self.start()

    # -- config --
    def render(self, conf):
        body = textwrap.dedent(conf)
        text = body if self.raw else MAIN_TEMPLATE.replace("<<http>>", textwrap.indent(body, "    "))

        def repl(m):
            name = m.group(1)
            mm = re.fullmatch(r"(listen|port)(\d*)", name)
            if mm:
                key = mm.group(2)
                if key not in self.ports:
                    self.ports[key] = free_port()
                port = self.ports[key]
                return "127.0.0.1:%d" % port if mm.group(1) == "listen" else str(port)
            if name in self.subst:
                return str(self.subst[name])
            if name in self.base:
                return self.base[name]
            raise PorticoError("unknown config placeholder <<%s>>" % name)

        # Two passes: base values may themselves hold placeholders (<<tmp>>).
        text = TOKEN.sub(repl, text)
        return TOKEN.sub(repl, text)

    def write_conf(self, conf, **more):
        self.subst.update(more)
        self.conf_text = self.render(conf)
        self.conf_path.write_text(self.conf_text)
        return self.conf_text

    @property
    def port(self):
        return self.ports[""]

    def port_n(self, n):
        return self.ports[str(n)]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def admin_url(self):
        return "http://127.0.0.1:%d" % self.admin_port

    # -- process --
    def start(self):
        if not os.path.exists(PORTICO_BIN):
            raise PorticoError("portico binary not found at %s (set PORTICO_BIN)" % PORTICO_BIN)
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([PORTICO_BIN, *self.extra_args, "-c", str(self.conf_path)],
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=child_env(), cwd="/")
        ports = list(self.ports.values()) + ([self.admin_port] if self.admin_port else [])
        for p in ports:
            if not wait_port(p, START_TIMEOUT, alive=lambda: self.proc.poll() is None):
                rc = self.proc.poll()
                if rc is None:
                    self.proc.kill()
                    self.proc.wait()
                self.stopped = True
                raise PorticoError("portico did not accept on port %d within %.0fs (exit %s)\n"
                                   "--- config ---\n%s\n--- log ---\n%s"
                                   % (p, START_TIMEOUT, rc, self.conf_text, tail(self.log())))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def sanitizer_report(self):
        text = self.log()
        for m in SANITIZER_MARKERS:
            if m in text:
                return text
        return None

    def stop(self, sig=None, timeout=STOP_TIMEOUT):
        """Stops the process (SIGTERM by default); returns its exit status."""
        sig = sig or signal.SIGTERM
        if self.proc is None or self.stopped:
            return self.proc.returncode if self.proc else None
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.logf.close()
                raise PorticoError("portico did not exit within %.0fs of %s\n--- log ---\n%s"
                                   % (timeout, signal.Signals(sig).name, tail(self.log())))
        self.logf.close()
        return self.proc.returncode

    def teardown_problems(self):
        """Stops the process and lists what went wrong (empty list if nothing)."""
        problems = []
        was_running = self.proc is not None and not self.stopped
        try:
            rc = self.stop()
        except PorticoError as e:
            problems.append(str(e))
            rc = None
        if self.proc is not None:
            expected = self.expect_exit
            if was_running and rc is not None and expected is None and rc != 0:
                problems.append("portico exited with status %s at SIGTERM" % rc)
            if expected is not None and rc != expected and rc is not None:
                problems.append("portico exited with status %s, expected %s" % (rc, expected))
        rep = self.sanitizer_report()
        if rep:
            problems.append("sanitizer report in portico.log")
        if problems:
            problems.append("--- log (%s) ---\n%s" % (self.log_path, tail(self.log(), 200)))
        return problems

    # -- convenience --
    def client(self, **kw):
        return http_client(self.url, **kw)

    def get(self, path, **kw):
        with self.client() as c:
            return c.get(path, **kw)

    def request(self, method, path, **kw):
        with self.client() as c:
            return c.request(method, path, **kw)

    def raw(self, data, timeout=5.0):
        return raw_exchange(self.port, data, timeout=timeout)

    def conn(self, timeout=5.0, port=None):
        return RawConn(port or self.port, timeout=timeout)

    def admin_get(self, path):
        with http_client(self.admin_url) as c:
            return c.get(path)

    def status(self):
        r = self.admin_get("/status")
        assert r.status_code == 200, r.text
        return r.json()

    def generation(self):
        return int(self.status()["config_generation"])

    def reload(self, conf=None, wait=True, timeout=10.0, **more):
        """Writes conf (if given), sends SIGHUP and waits for the generation
        to increase (needs the admin listener). Returns the new generation."""
        before = self.generation() if (wait and self.admin_port) else None
        if conf is not None:
            self.write_conf(conf, **more)
        self.signal(signal.SIGHUP)
        if not wait or not self.admin_port:
            time.sleep(0.5)
            return None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            g = self.generation()
            if g > before:
                return g
            time.sleep(0.05)
        raise PorticoError("generation did not increase after SIGHUP (still %d)\n%s"
                           % (before, tail(self.log())))

    def access_log(self):
        try:
            text = self.access_log_path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        # only complete lines: the writer may be mid-line
        lines = text.split("\n")[:-1]
        return [json.loads(ln) for ln in lines if ln.strip()]

    def wait_access_log(self, n, timeout=5.0):
        """Waits until the access log holds at least n lines; returns them."""
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            lines = self.access_log()
            if len(lines) >= n:
                return lines
            time.sleep(0.05)
        raise AssertionError("access log has %d lines, expected >= %d:\n%s"
                             % (len(lines), n, self.access_log_path.read_text(errors="replace")
                                if self.access_log_path.exists() else "(no file)"))

    def wait_log(self, pattern, timeout=5.0):
        """Waits until the process log matches the regex pattern; returns the match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log())
            if m:
                return m
            time.sleep(0.05)
        raise AssertionError("pattern %r not in log:\n%s" % (pattern, tail(self.log())))


class PorticoFactory:
    def __init__(self, tmp_factory):
        self.tmp_factory = tmp_factory
        self.instances = []

    def __call__(self, conf, **kw):
        opts = {k: kw.pop(k) for k in list(kw) if k in (
            "workers", "admin", "access_log", "shutdown_timeout", "main_extra", "raw", "start",
            "extra_args")}
        tmp = self.tmp_factory.mktemp("portico")
        try:
            p = Portico(tmp, conf, kw, **opts)
        except PorticoError as e:
            pytest.fail(str(e), pytrace=False)
        self.instances.append(p)
        if getattr(self, "shared", False):
            SHARED.append(p)
        return p

    def finish(self):
        problems = []
        for p in self.instances:
            problems += p.teardown_problems()
        self.instances = []
        return problems


@pytest.fixture
def portico(tmp_path_factory):
    """Factory: portico(conf_text, **placeholders) -> running Portico."""
    f = PorticoFactory(tmp_path_factory)
    yield f
    problems = f.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


SHARED = []  # Portico instances shared by a module (checked after each test)


@pytest.fixture(scope="module")
def portico_module(tmp_path_factory):
    """Same factory, shared by the tests of one module (faster for many small
    checks against one config). After each test the shared instances are
    checked (still running, no sanitizer report): see _check_shared."""
    f = PorticoFactory(tmp_path_factory)
    f.shared = True
    yield f
    for p in f.instances:
        if p in SHARED:
            SHARED.remove(p)
    problems = f.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def _check_shared():
    """Attributes a crash or sanitizer report of a shared portico to the test
    during which it happened."""
    yield
    for p in list(SHARED):
        if getattr(p, "reported", False):
            continue
        rep = p.sanitizer_report()
        dead = not p.alive()
        if rep or dead:
            p.reported = True
            pytest.fail("shared portico %s during this test (exit %s)\n--- log ---\n%s"
                        % ("crashed" if dead else "reported a sanitizer error",
                           p.proc.poll(), tail(p.log(), 200)), pytrace=False)


# ---------------------------------------------------------------------------
# origins
# ---------------------------------------------------------------------------

@pytest.fixture
def origin():
    """Factory: origin(origins.EchoOrigin) -> started origin, stopped at teardown."""
    started = []

    def make(cls=origins.EchoOrigin):
        o = cls()
        started.append(o)
        return o

    yield make
    for o in started:
        o.stop()


@pytest.fixture
def echo(origin):
    return origin(origins.EchoOrigin)


@pytest.fixture(scope="module")
def echo_module():
    o = origins.EchoOrigin()
    yield o
    o.stop()


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    keepalive_requests 10000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port};
        server_name nginx-origin;
        root {tmp}/www;
        location /info {{
            default_type text/plain;
            return 200 "$request_method $request_uri $http_host $http_x_forwarded_for $http_x_request_id\\n";
        }}
        location /conn {{
            default_type text/plain;
            return 200 "$connection $connection_requests\\n";
        }}
        location /fwd {{
            default_type text/plain;
            return 200 "via=$http_via|xfp=$http_x_forwarded_proto|fwd=$http_forwarded|xff=$http_x_forwarded_for\\n";
        }}
        location /status204 {{ return 204; }}
        location /redirect {{ return 302 /small.txt; }}
    }}
}}
"""


class Nginx:
    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        www = self.tmp / "www"
        www.mkdir(parents=True)
        self.files = {
            "small.txt": b"hello from nginx\n",
            "64k.bin": origins.pattern_bytes(65536, seed=64),
            "1m.bin": origins.pattern_bytes(1 << 20, seed=1),
            "index.html": b"<html><body>nginx index</body></html>\n",
        }
        for name, data in self.files.items():
            (www / name).write_bytes(data)
        conf = self.tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=self.tmp, port=self.port))
        self.log = open(self.tmp / "nginx.out", "wb")
        self.proc = subprocess.Popen([NGINX_BIN, "-p", str(self.tmp), "-c", str(conf),
                                      "-e", str(self.tmp / "error.log")],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        if not wait_port(self.port, 10, alive=lambda: self.proc.poll() is None):
            self.stop()
            raise RuntimeError("nginx origin did not start:\n%s\n%s" % (
                (self.tmp / "nginx.out").read_text(errors="replace"),
                (self.tmp / "error.log").read_text(errors="replace")
                if (self.tmp / "error.log").exists() else ""))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def nginx(tmp_path_factory):
    if not os.path.exists(NGINX_BIN):
        pytest.skip("nginx not installed")
    n = Nginx(tmp_path_factory.mktemp("nginx"))
    yield n
    n.stop()


@pytest.fixture
def run_portico_cli():
    """Runs the binary with arguments (no server), returns CompletedProcess."""
    def run(*args, timeout=20, cwd=None):
        if not os.path.exists(PORTICO_BIN):
            pytest.fail("portico binary not found at %s" % PORTICO_BIN, pytrace=False)
        res = subprocess.run([PORTICO_BIN, *args], capture_output=True, text=True,
                             timeout=timeout, env=child_env(), cwd=cwd, stdin=subprocess.DEVNULL)
        for m in SANITIZER_MARKERS:
            assert m not in res.stderr, "sanitizer report:\n" + res.stderr
        return res
    return run


__all__ = ["RawConn", "raw_exchange", "parse_responses", "free_port", "wait_port", "sha256",
           "http_client", "PORTICO_BIN", "REPO", "Portico", "PorticoFactory"]
