"""A small authoritative DNS server for the integration tests (dnslib).

It answers UDP queries on 127.0.0.1 (a free port) from a table that a test
changes at run time, and counts what it was asked:

    dns = DnsServer()                     # started; dns.port, dns.addr
    dns.set("app.test", ["127.0.0.1"], ttl=1)
    dns.set("app.test", ["127.0.0.2", "::1"], ttl=30)   # A and AAAA
    dns.cname("www.test", "app.test", ttl=5)
    dns.remove("app.test")                # NXDOMAIN from now on
    dns.fail("servfail")                  # every answer SERVFAIL
    dns.fail("refused") / dns.fail("silent") / dns.fail("truncated")
    dns.fail(None)                        # back to normal answers
    dns.count("app.test", "A")            # queries received so far
    dns.wait_queries("app.test", n, timeout)
    dns.stop()

Names are matched case-insensitively. A name with neither A nor AAAA but
known (set with an empty list) gets NODATA. The answer's question, id and
flags come from dnslib's reply(), as from a real authoritative server.

Run it by hand: `python3 dnsserver.py app.test=127.0.0.2 [--ttl 5] [--port 5353]`.
"""

import argparse
import collections
import ipaddress
import socket
import threading
import time

from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, SOA, A, DNSRecord

ZONE_SOA = SOA("ns.test", "hostmaster.test", (1, 3600, 600, 86400, 1))


class DnsServer:
    def __init__(self, host="127.0.0.1", port=0):
        self.lock = threading.Lock()
        self.records = {}  # name -> (list of ip strings, ttl)
        self.cnames = {}  # name -> (target, ttl)
        self.mode = None  # None | "servfail" | "refused" | "silent" | "truncated"
        self.queries = collections.Counter()  # (name, qtype name) -> n
        self.log = []  # (monotonic time, name, qtype name, answered how)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.1)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.addr = "%s:%d" % (host, self.port)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True, name="dnsserver")
        self.thread.start()

    # -- the table --
    @staticmethod
    def _key(name):
        return name.lower().rstrip(".")

    def set(self, name, ips, ttl=1):
        for ip in ips:
            ipaddress.ip_address(ip)  # fail early on typos
        with self.lock:
            self.records[self._key(name)] = (list(ips), int(ttl))
            self.cnames.pop(self._key(name), None)

    def cname(self, name, target, ttl=1):
        with self.lock:
            self.cnames[self._key(name)] = (target, int(ttl))
            self.records.pop(self._key(name), None)

    def remove(self, name):
        with self.lock:
            self.records.pop(self._key(name), None)
            self.cnames.pop(self._key(name), None)

    def fail(self, mode):
        assert mode in (None, "servfail", "refused", "silent", "truncated"), mode
        with self.lock:
            self.mode = mode

    # -- statistics --
    def count(self, name=None, qtype=None):
        with self.lock:
            return sum(n for (qn, qt), n in self.queries.items()
                       if (name is None or qn == self._key(name)) and (qtype is None or qt == qtype))

    def wait_queries(self, name, n, timeout=10.0, qtype="A"):
        """Waits until at least n queries of (name, qtype) arrived; returns the count."""
        deadline = time.monotonic() + timeout
        while True:
            c = self.count(name, qtype)
            if c >= n:
                return c
            if time.monotonic() > deadline:
                raise AssertionError("DNS server got %d %s queries for %s, expected >= %d"
                                     % (c, qtype, name, n))
            time.sleep(0.02)

    # -- serving --
    def _answer(self, req):
        q = req.q
        name = self._key(str(q.qname))
        qtype = QTYPE[q.qtype]
        reply = req.reply()  # QR, AA, same id and question, RD copied
        with self.lock:
            mode = self.mode
            self.queries[(name, qtype)] += 1
            rec = self.records.get(name)
            cn = self.cnames.get(name)
            # follow CNAMEs inside our own table, as an authoritative server does
            chain = []
            seen = set()
            while cn is not None and name not in seen:
                seen.add(name)
                chain.append((name, cn))
                name = self._key(cn[0])
                rec = self.records.get(name)
                cn = self.cnames.get(name)
        how = mode or "answer"
        if mode == "silent":
            self.log.append((time.monotonic(), name, qtype, how))
            return None
        if mode in ("servfail", "refused"):
            reply.header.rcode = RCODE.SERVFAIL if mode == "servfail" else RCODE.REFUSED
        elif mode == "truncated":
            reply.header.tc = 1
        elif rec is None and not chain:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(RR("test", QTYPE.SOA, rdata=ZONE_SOA, ttl=60))
            how = "nxdomain"
        else:
            for owner, (target, ttl) in chain:
                reply.add_answer(RR(owner, QTYPE.CNAME, rdata=CNAME(target), ttl=ttl))
            if rec is not None:
                ips, ttl = rec
                for ip in ips:
                    v6 = ":" in ip
                    if qtype == "A" and not v6:
                        reply.add_answer(RR(name, QTYPE.A, rdata=A(ip), ttl=ttl))
                    elif qtype == "AAAA" and v6:
                        reply.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(ip), ttl=ttl))
        self.log.append((time.monotonic(), str(q.qname), qtype, how))
        return reply.pack()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                req = DNSRecord.parse(data)
            except Exception:  # not DNS: ignore, as a server would
                continue
            if not req.questions:
                continue
            out = self._answer(req)
            if out is not None:
                try:
                    self.sock.sendto(out, peer)
                except OSError:
                    pass

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=2)
        self.sock.close()

    def __repr__(self):
        return "<DnsServer %s>" % self.addr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("records", nargs="*", help="name=ip[,ip...]")
    ap.add_argument("--ttl", type=int, default=5)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    srv = DnsServer(port=args.port)
    for r in args.records:
        name, _, ips = r.partition("=")
        srv.set(name, [x for x in ips.split(",") if x], ttl=args.ttl)
    print("dnsserver on %s" % srv.addr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
