"""A minimal blocking HTTP/1.1 keep-alive client (stdlib sockets only).

Enough for readiness checks, the idle-connection memory test and the
fixed-count request loops run under callgrind and strace: GET only,
Content-Length or chunked responses.
"""

import socket


class HttpError(Exception):
    pass


def request_bytes(path):
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"User-Agent: portico-bench\r\n\r\n").encode()


class Conn:
    """One keep-alive connection to 127.0.0.1:port (or an already connected socket)."""

    def __init__(self, port=None, timeout=10.0, sock=None):
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        else:
            sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise HttpError("connection closed by server")
        self.buf += data

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def send(self, path):
        self.sock.sendall(request_bytes(path))

    def read_response(self):
        """Read one response; return (status, body_length)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        parts = lines[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError(f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        length, chunked = None, False
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v.strip())
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
        if chunked:
            return status, self._read_chunked()
        if length is None:
            if status in (204, 304) or 100 <= status < 200:
                return status, 0
            raise HttpError("response without length on keep-alive connection")
        self._take(length)
        return status, length

    def _read_chunked(self):
        total = 0
        while True:
            size = int(self._line().split(b";")[0].strip(), 16)
            if size == 0:
                while self._line():  # trailers end with an empty line
                    pass
                return total
            self._take(size)
            self._take(2)
            total += size

    def get(self, path):
        self.send(path)
        return self.read_response()
