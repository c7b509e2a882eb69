"""Origins for the integration suite: small servers on 127.0.0.1 that behave
(echo) or misbehave (hang, reset, bad chunked, close early) on purpose.

Every origin runs in the test process (threads + raw sockets), so tests can
look at what it saw directly: `origin.requests` lists every request received
(raw head bytes, decoded body, connection number, PROXY protocol header),
`origin.connections` counts accepted connections.

A PROXY protocol header (v1 text or v2 binary) at the start of a connection
is detected, stripped and recorded on the requests of that connection.
"""

import hashlib
import json
import socket
import struct
import threading
import time

PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def close_hard(s):
    """Shuts a socket down both ways and closes it, ignoring errors (the peer
    may be gone): wakes any thread blocked on it."""
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass

class Request:
    """One request as the origin received it."""

    def __init__(self, conn_no, index, head, method, target, version, headers, body, proxy):
        self.conn_no = conn_no  # 1-based number of the connection it came on
        self.index = index  # 0-based index of the request on its connection
        self.head = head  # raw head bytes, request line to the empty line included
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value) as received
        self.body = body  # decoded body bytes
        self.proxy = proxy  # dict from the PROXY header, or None

    def header(self, name, default=None):
        """First value of header `name` (case-insensitive)."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def has_header(self, name):
        return any(k.lower() == name.lower() for k, _ in self.headers)


class ConnReader:
    """Buffered reader over a socket (bytearray: big bodies stay linear)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def fill(self):
        data = self.sock.recv(262144)
        if not data:
            raise EOFError
        self.buf += data

    def read_until(self, sep, limit=1 << 20):
        start = 0
        while True:
            i = self.buf.find(sep, max(0, start - len(sep)))
            if i >= 0:
                break
            if len(self.buf) > limit:
                raise ValueError("line too long")
            start = len(self.buf)
            self.fill()
        i += len(sep)
        out = bytes(self.buf[:i])
        del self.buf[:i]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def peek(self, n):
        while len(self.buf) < n:
            self.fill()
        return bytes(self.buf[:n])


def parse_proxy_header(r):
    """Strips a PROXY v1/v2 header if the connection starts with one."""
    first = r.peek(1)
    if first == b"P":
        start = r.peek(6)
        if start != b"PROXY ":
            return None
        line = r.read_until(b"\r\n", limit=200).decode("latin-1")
        parts = line.strip().split(" ")
        info = {"version": 1, "line": line}
        if len(parts) == 6:
            info.update(proto=parts[1], src=parts[2], dst=parts[3], sport=int(parts[4]), dport=int(parts[5]))
        else:
            info.update(proto=parts[1] if len(parts) > 1 else "")
        return info
    if first == b"\r":
        if r.peek(12) != PP2_SIG:
            return None
        hdr = r.read_exact(16)
        ver_cmd, fam, length = hdr[12], hdr[13], struct.unpack("!H", hdr[14:16])[0]
        payload = r.read_exact(length)
        info = {"version": 2, "command": ver_cmd & 0x0F, "family": fam, "raw": (hdr + payload).hex()}
        if fam == 0x11 and length >= 12:
            info.update(proto="TCP4", src=socket.inet_ntop(socket.AF_INET, payload[0:4]),
                        dst=socket.inet_ntop(socket.AF_INET, payload[4:8]),
                        sport=struct.unpack("!H", payload[8:10])[0],
                        dport=struct.unpack("!H", payload[10:12])[0])
        elif fam == 0x21 and length >= 36:
            info.update(proto="TCP6", src=socket.inet_ntop(socket.AF_INET6, payload[0:16]),
                        dst=socket.inet_ntop(socket.AF_INET6, payload[16:32]),
                        sport=struct.unpack("!H", payload[32:34])[0],
                        dport=struct.unpack("!H", payload[34:36])[0])
        return info
    return None


def read_request_head(r):
    """Reads one request head. Returns (raw, method, target, version, headers)."""
    while r.peek(2) == b"\r\n":
        del r.buf[:2]
    raw = r.read_until(b"\r\n\r\n")
    lines = raw[:-4].split(b"\r\n")
    method, target, version = lines[0].decode("latin-1").split(" ", 2)
    headers = []
    for ln in lines[1:]:
        name, _, value = ln.decode("latin-1").partition(":")
        headers.append((name, value.strip()))
    return raw, method, target, version, headers


def read_chunked(r):
    body = bytearray()
    while True:
        line = r.read_until(b"\r\n").strip()
        size = int(line.split(b";")[0], 16)
        if size == 0:
            while r.read_until(b"\r\n") != b"\r\n":
                pass
            return bytes(body)
        body += r.read_exact(size)
        if r.read_exact(2) != b"\r\n":
            raise ValueError("bad chunk end")


def hval(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def pattern_bytes(n, seed=0):
    """Deterministic n bytes (not compressible, quick to make)."""
    block = hashlib.sha256(b"portico-%d" % seed).digest() * 128  # 4 KiB
    reps = n // len(block) + 1
    return (block * reps)[:n]


class Origin:
    """Threaded TCP server; subclasses implement handle(sock, reader, conn_no, proxy)."""

    name = "origin"

    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = []
        self.peers = []  # (ip, port) of each accepted connection
        self.errors = []  # exceptions raised in handlers (for debugging)
        self.socks = set()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    # -- lifecycle --
    def _accept_loop(self):
        self.lsock.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                s, peer = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                conn_no = self.connections
                self.peers.append(peer)
                self.socks.add(s)
            threading.Thread(target=self._run, args=(s, conn_no), daemon=True).start()

    def _run(self, s, conn_no):
        try:
            s.settimeout(30)
            r = ConnReader(s)
            proxy = parse_proxy_header(r)
            self.handle(s, r, conn_no, proxy)
        except (EOFError, ConnectionError, socket.timeout, OSError):
            pass
        except Exception as e:  # pragma: no cover - diagnostic
            self.errors.append(repr(e))
        finally:
            with self.lock:
                self.socks.discard(s)
            try:
                s.close()
            except OSError:
                pass

    def stop(self):
        self.stopping.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            close_hard(s)

    def reset_stats(self):
        with self.lock:
            self.connections = 0
            self.requests = []
            self.peers = []

    # -- helpers for subclasses --
    def read_request(self, s, r, conn_no, index, proxy, send_continue=True):
        raw, method, target, version, headers = read_request_head(r)
        te = hval(headers, "transfer-encoding")
        cl = hval(headers, "content-length")
        expect = hval(headers, "expect")
        if send_continue and expect and expect.lower() == "100-continue":
            s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if te and "chunked" in te.lower():
            body = read_chunked(r)
        elif cl is not None:
            body = r.read_exact(int(cl))
        else:
            body = b""
        req = Request(conn_no, index, raw, method, target, version, headers, body, proxy)
        with self.lock:
            self.requests.append(req)
        return req

    def handle(self, s, r, conn_no, proxy):
        raise NotImplementedError

    def __repr__(self):
        return "<%s %s>" % (type(self).__name__, self.addr)


def response(status, headers=(), body=b"", reason=None):
    reasons = {200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently",
               304: "Not Modified", 404: "Not Found", 500: "Internal Server Error"}
    reason = reason or reasons.get(status, "Status")
    out = "HTTP/1.1 %d %s\r\n" % (status, reason)
    for k, v in headers:
        out += "%s: %s\r\n" % (k, v)
    return out.encode("latin-1") + b"\r\n" + body


class EchoOrigin(Origin):
    """Keep-alive origin that reflects what it received.

    The first path segment that is a keyword picks the answer (so a prefix
    like /addh/status/500 works):
    /anything      -> 200, body = raw request head + decoded body
    /body          -> 200, body = the decoded request body only
    /info, /einfo  -> 200, JSON: method, target, headers, body_len, body_sha256,
                      conn, index, proxy
    /gen/N         -> 200, N pattern bytes with Content-Length
    /chunked/N     -> 200, N pattern bytes chunked (in 16 KiB chunks)
    /status/NNN    -> that status (204/304 without body, others with "status NNN\n")
    /hop           -> 200 with hop-by-hop response headers to be removed
    /close         -> 200 with Connection: close, then closes
    /date          -> 200 with Date and Server headers set by the origin
    Every response carries X-Origin-Conn (connection number) and X-Origin-Index.
    HEAD gets the same headers without a body.
    """

    def handle(self, s, r, conn_no, proxy):
        index = 0
        while not self.stopping.is_set():
            req = self.read_request(s, r, conn_no, index, proxy)
            index += 1
            keep = self.respond(s, req)
            if not keep:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                # drain so the close is a FIN, not an RST
                try:
                    s.settimeout(1)
                    while s.recv(65536):
                        pass
                except OSError:
                    pass
                return

    KEYWORDS = ("body", "info", "einfo", "gen", "chunked", "status", "hop", "close", "date")

    def respond(self, s, req):
        segs = req.target.split("?")[0].split("/")
        kw, args = None, []
        for i, seg in enumerate(segs):
            if seg in self.KEYWORDS:
                kw, args = seg, segs[i + 1:]
                break
        conn_hdr = (req.header("connection") or "").lower()
        keep = "close" not in conn_hdr and req.version == "HTTP/1.1"
        base = [("X-Origin-Conn", str(req.conn_no)), ("X-Origin-Index", str(req.index))]
        status = 200
        extra = []
        chunked = False
        if kw == "body":
            body = req.body
            extra.append(("Content-Type", "application/octet-stream"))
        elif kw in ("info", "einfo"):
            info = {
                "method": req.method, "target": req.target, "version": req.version,
                "headers": req.headers, "body_len": len(req.body),
                "body_sha256": hashlib.sha256(req.body).hexdigest(),
                "conn": req.conn_no, "index": req.index, "proxy": req.proxy,
            }
            body = json.dumps(info).encode()
            extra.append(("Content-Type", "application/json"))
        elif kw == "gen":
            body = pattern_bytes(int(args[0]))
            extra.append(("Content-Type", "application/octet-stream"))
        elif kw == "chunked":
            body = pattern_bytes(int(args[0]))
            chunked = True
        elif kw == "status":
            status = int(args[0])
            body = b"" if status in (204, 304) else ("status %d\n" % status).encode()
        elif kw == "hop":
            body = b"hop\n"
            extra += [("Connection", "X-Hop-Resp"), ("X-Hop-Resp", "secret"),
                      ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
                      ("Trailer", "X-Trailer"), ("Upgrade", "foo/1"), ("X-End-To-End", "kept")]
        elif kw == "close":
            body = b"closing\n"
            keep = False
        elif kw == "date":
            body = b"date\n"
            extra += [("Date", "Tue, 01 Jan 2030 00:00:00 GMT"), ("Server", "echo-origin/1")]
        else:
            body = req.head + req.body
            extra.append(("Content-Type", "text/plain"))
        hdrs = base + extra
        if not keep:
            hdrs.append(("Connection", "close"))
        no_body = req.method == "HEAD" or status in (204, 304)
        if chunked:
            hdrs.append(("Transfer-Encoding", "chunked"))
            s.sendall(response(status, hdrs))
            if not no_body:
                for i in range(0, len(body), 16384):
                    part = body[i:i + 16384]
                    s.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            return keep
        if status not in (204, 304):
            hdrs.append(("Content-Length", str(len(body))))
        s.sendall(response(status, hdrs, b"" if no_body else body))
        return keep


class HangOrigin(Origin):
    """Accepts, reads the request, never answers (until stopped)."""

    def handle(self, s, r, conn_no, proxy):
        self.read_request(s, r, conn_no, 0, proxy, send_continue=False)
        while not self.stopping.is_set():
            s.settimeout(0.2)
            try:
                if not s.recv(65536):
                    return
            except socket.timeout:
                continue


class SilentAcceptOrigin(Origin):
    """Accepts and never even reads (the kernel buffers what it can)."""

    def handle(self, s, r, conn_no, proxy):
        while not self.stopping.wait(0.2):
            pass


class ResetMidBodyOrigin(Origin):
    """Content-Length: 100000, sends 1000 bytes, then RST (SO_LINGER 0)."""

    total = 100000
    sent = 1000

    def handle(self, s, r, conn_no, proxy):
        self.read_request(s, r, conn_no, 0, proxy)
        s.sendall(response(200, [("Content-Length", str(self.total)),
                                 ("Content-Type", "application/octet-stream")],
                           b"x" * self.sent))
        time.sleep(0.2)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


class CloseEarlyOrigin(Origin):
    """Content-Length: 5000, sends 100 bytes, then a clean close (FIN)."""

    total = 5000
    sent = 100

    def handle(self, s, r, conn_no, proxy):
        self.read_request(s, r, conn_no, 0, proxy)
        s.sendall(response(200, [("Content-Length", str(self.total))], b"y" * self.sent))
        time.sleep(0.1)
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.5)


class InvalidChunkedOrigin(Origin):
    """Chunked response with a bad chunk size.

    /early : the very first chunk-size line is garbage ("zz")
    /late  : a valid 4000-byte chunk first, then garbage
    """

    def handle(self, s, r, conn_no, proxy):
        req = self.read_request(s, r, conn_no, 0, proxy)
        head = response(200, [("Transfer-Encoding", "chunked"), ("Content-Type", "text/plain")])
        if req.target.startswith("/late"):
            s.sendall(head + b"fa0\r\n" + b"a" * 4000 + b"\r\n")
            time.sleep(0.3)
            s.sendall(b"zz\r\nbroken\r\n0\r\n\r\n")
        else:
            s.sendall(head + b"zz\r\nbroken\r\n0\r\n\r\n")
        time.sleep(1.0)


class BadHeadOrigin(Origin):
    """Answers with a response head that is not HTTP at all."""

    def handle(self, s, r, conn_no, proxy):
        self.read_request(s, r, conn_no, 0, proxy)
        s.sendall(b"this is not http\r\n\r\n")
        time.sleep(0.5)


class SlowOrigin(Origin):
    """Trickles a response: Content-Length = pieces * piece_len, one piece per interval.

    The target may override: /slow/PIECES/INTERVAL_MS
    """

    pieces = 10
    piece_len = 100
    interval = 0.2

    def handle(self, s, r, conn_no, proxy):
        index = 0
        while True:
            req = self.read_request(s, r, conn_no, index, proxy)
            index += 1
            pieces, interval = self.pieces, self.interval
            parts = req.target.split("/")
            if len(parts) >= 4 and parts[1] == "slow":
                pieces, interval = int(parts[2]), int(parts[3]) / 1000.0
            s.sendall(response(200, [("Content-Length", str(pieces * self.piece_len)),
                                     ("Content-Type", "text/plain")]))
            for i in range(pieces):
                if self.stopping.is_set():
                    return
                time.sleep(interval)
                s.sendall((b"%d" % (i % 10)) * self.piece_len)


class UpgradeOrigin(Origin):
    """Answers an Upgrade request with 101 and then echoes bytes back."""

    def handle(self, s, r, conn_no, proxy):
        req = self.read_request(s, r, conn_no, 0, proxy)
        if (req.header("upgrade") or "").lower() != "websocket":
            s.sendall(response(400, [("Content-Length", "11"), ("Connection", "close")], b"no upgrade\n"))
            return
        s.sendall(response(101, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                 ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")],
                           reason="Switching Protocols"))
        if r.buf:
            s.sendall(bytes(r.buf))
            r.buf = bytearray()
        while True:
            data = s.recv(65536)
            if not data:
                s.shutdown(socket.SHUT_WR)
                return
            s.sendall(data)


class ContinueOrigin(Origin):
    """100-continue-aware: records whether Expect arrived and whether it sent 100.

    It answers 100 Continue itself only if it sees Expect: 100-continue, then
    reads the body and answers with the body's length and sha256.
    """

    def __init__(self):
        super().__init__()
        self.saw_expect = []

    def handle(self, s, r, conn_no, proxy):
        index = 0
        while True:
            req = self.read_request(s, r, conn_no, index, proxy, send_continue=True)
            index += 1
            self.saw_expect.append(req.has_header("expect"))
            body = ("%d %s\n" % (len(req.body), hashlib.sha256(req.body).hexdigest())).encode()
            s.sendall(response(200, [("Content-Length", str(len(body)))], body))


class ChunkedOrigin(Origin):
    """Answers with a chunked body made of several small chunks and a trailer."""

    chunks = [b"hello ", b"chunked ", b"world", b"\n"]

    def handle(self, s, r, conn_no, proxy):
        index = 0
        while True:
            req = self.read_request(s, r, conn_no, index, proxy)
            index += 1
            out = response(200, [("Transfer-Encoding", "chunked"), ("Content-Type", "text/plain")])
            if req.method != "HEAD":
                for c in self.chunks:
                    out += b"%x;ext=1\r\n" % len(c) + c + b"\r\n"
                out += b"0\r\nX-Trailer: yes\r\n\r\n"
            s.sendall(out)
