"""Static files: status codes, index, redirects, validators, ranges, types."""

import email.utils
import os

import pytest

from conftest import RawConn, sha256
from origins import pattern_bytes

HELLO = b"hello, static world\n"
BIG = pattern_bytes(1 << 20, seed=7)

CONF = """
server {
    listen <<listen>>;
    root <<site>>;
    index index.html;
    location / { }
    location /noetag/ { etag off; }
    location /typed/ {
        types { application/x-portico-test ptx; text/x-custom cst; }
        default_type application/x-unknown-test;
    }
}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("site")
    (d / "index.html").write_bytes(b"<html>root index</html>\n")
    (d / "hello.txt").write_bytes(HELLO)
    (d / "style.css").write_bytes(b"body { color: red; }\n")
    (d / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    (d / "pic.svg").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>\n")
    (d / "big.bin").write_bytes(BIG)
    (d / "dir").mkdir()
    (d / "dir" / "index.html").write_bytes(b"<html>dir index</html>\n")
    (d / "noindex").mkdir()
    (d / "noindex" / "file.txt").write_bytes(b"x\n")
    (d / "noetag").mkdir()
    (d / "noetag" / "a.txt").write_bytes(b"no etag\n")
    (d / "typed").mkdir()
    (d / "typed" / "a.ptx").write_bytes(b"ptx\n")
    (d / "typed" / "b.cst").write_bytes(b"cst\n")
    (d / "typed" / "c.zzz").write_bytes(b"zzz\n")
    (d / "with space.txt").write_bytes(b"spaced\n")
    return d


@pytest.fixture(scope="module")
def srv(portico_module, site):
    return portico_module(CONF, site=site)


def test_file_200_with_headers(srv, site):
    r = srv.get("/hello.txt")
    assert r.status_code == 200
    assert r.content == HELLO
    assert r.headers["content-length"] == str(len(HELLO))
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["accept-ranges"] == "bytes"
    mtime = int(os.stat(site / "hello.txt").st_mtime)
    lm = email.utils.parsedate_to_datetime(r.headers["last-modified"])
    assert int(lm.timestamp()) == mtime
    assert r.headers["last-modified"].endswith(" GMT")
    assert r.headers.get("etag", "").startswith('"') or r.headers.get("etag", "").startswith('W/"')
    assert "date" in r.headers


def test_index_file(srv):
    r = srv.get("/")
    assert r.status_code == 200
    assert r.content == b"<html>root index</html>\n"
    assert r.headers["content-type"].startswith("text/html")


def test_dir_without_slash_redirects(srv):
    r = srv.get("/dir")
    assert r.status_code == 301
    assert r.headers["location"].endswith("/dir/")


def test_dir_with_slash_serves_index(srv):
    r = srv.get("/dir/")
    assert r.status_code == 200
    assert r.content == b"<html>dir index</html>\n"


def test_dir_without_index_is_403(srv):
    r = srv.get("/noindex/")
    assert r.status_code == 403


def test_missing_is_404(srv):
    r = srv.get("/nope.txt")
    assert r.status_code == 404


def test_percent_encoded_name(srv):
    r = srv.get("/with%20space.txt")
    assert r.status_code == 200
    assert r.content == b"spaced\n"


@pytest.mark.parametrize("name,ctype", [
    ("/style.css", "text/css"),
    ("/logo.png", "image/png"),
    ("/pic.svg", "image/svg+xml"),
    ("/index.html", "text/html"),
])
def test_builtin_content_types(srv, name, ctype):
    r = srv.get(name)
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0].strip() == ctype


def test_types_block_and_default_type(srv):
    assert srv.get("/typed/a.ptx").headers["content-type"].split(";")[0] == "application/x-portico-test"
    assert srv.get("/typed/b.cst").headers["content-type"].split(";")[0] == "text/x-custom"
    assert srv.get("/typed/c.zzz").headers["content-type"].split(";")[0] == "application/x-unknown-test"


def test_etag_off(srv):
    r = srv.get("/noetag/a.txt")
    assert r.status_code == 200
    assert "etag" not in r.headers
    assert "last-modified" in r.headers


def test_if_none_match_304(srv):
    r = srv.get("/hello.txt")
    etag = r.headers["etag"]
    r2 = srv.get("/hello.txt", headers={"If-None-Match": etag})
    assert r2.status_code == 304
    assert r2.content == b""
    assert r2.headers["etag"] == etag
    r3 = srv.get("/hello.txt", headers={"If-None-Match": '"nope", ' + etag})
    assert r3.status_code == 304
    r4 = srv.get("/hello.txt", headers={"If-None-Match": '"other"'})
    assert r4.status_code == 200
    assert r4.content == HELLO


def test_if_modified_since(srv):
    r = srv.get("/hello.txt")
    lm = r.headers["last-modified"]
    assert srv.get("/hello.txt", headers={"If-Modified-Since": lm}).status_code == 304
    old = "Sat, 01 Jan 2000 00:00:00 GMT"
    r2 = srv.get("/hello.txt", headers={"If-Modified-Since": old})
    assert r2.status_code == 200
    assert r2.content == HELLO


def test_304_has_no_body_on_the_wire(srv):
    etag = srv.get("/hello.txt").headers["etag"]
    with RawConn(srv.port) as c:
        c.send("GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n"
               "GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n" % etag)
        r1 = c.read_response()
        r2 = c.read_response()
    assert r1.status == 304
    assert r2.status == 200
    assert r2.body == b"body { color: red; }\n"


def test_range_206(srv):
    r = srv.get("/big.bin", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206
    assert r.content == BIG[100:200]
    assert r.headers["content-range"] == "bytes 100-199/%d" % len(BIG)
    assert r.headers["content-length"] == "100"


def test_range_suffix_and_open(srv):
    r = srv.get("/big.bin", headers={"Range": "bytes=-10"})
    assert r.status_code == 206
    assert r.content == BIG[-10:]
    r = srv.get("/big.bin", headers={"Range": "bytes=%d-" % (len(BIG) - 5)})
    assert r.status_code == 206
    assert r.content == BIG[-5:]


def test_range_416(srv):
    r = srv.get("/hello.txt", headers={"Range": "bytes=1000-2000"})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */%d" % len(HELLO)


def test_if_range_mismatch_gives_full(srv):
    r = srv.get("/hello.txt", headers={"Range": "bytes=0-4", "If-Range": '"stale-etag"'})
    assert r.status_code == 200
    assert r.content == HELLO


def test_head_has_headers_no_body(srv):
    with RawConn(srv.port) as c:
        c.send("HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        r1 = c.read_response(method="HEAD")
        r2 = c.read_response()
    assert r1.status == 200
    assert r1.header("content-length") == str(len(BIG))
    assert r2.status == 200
    assert r2.body == HELLO


def test_big_file(srv):
    r = srv.get("/big.bin")
    assert r.status_code == 200
    assert len(r.content) == len(BIG)
    assert sha256(r.content) == sha256(BIG)


def test_post_is_405(srv):
    r = srv.request("POST", "/hello.txt", content=b"x")
    assert r.status_code == 405
    assert "GET" in r.headers.get("allow", "")


@pytest.mark.parametrize("target", ["/../etc/passwd", "/dir/../../etc/passwd",
                                    "/%2e%2e/%2e%2e/etc/passwd", "/dir/%2E%2E/%2E%2E/etc/passwd"])
def test_traversal_rejected(srv, target):
    with RawConn(srv.port) as c:
        c.send("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
        r = c.read_response()
    assert r.status == 400
    assert b"root:" not in r.body


def test_nul_in_path_rejected(srv):
    with RawConn(srv.port) as c:
        c.send("GET /hello.txt%00.html HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
    assert r.status in (400, 404)
    assert r.body != HELLO


def test_query_ignored_for_files(srv):
    r = srv.get("/hello.txt?v=123")
    assert r.status_code == 200
    assert r.content == HELLO


def test_relative_root_is_relative_to_config_dir(portico, tmp_path):
    # The config lives in its own tmp dir; "root site" must mean <confdir>/site,
    # whatever the working directory.
    p = portico("""
        server {
            listen <<listen>>;
            root relsite;
            location / { }
        }
    """, start=False)
    (p.tmp / "relsite").mkdir()
    (p.tmp / "relsite" / "r.txt").write_bytes(b"relative\n")
    p.start()
    r = p.get("/r.txt")
    assert r.status_code == 200
    assert r.content == b"relative\n"
