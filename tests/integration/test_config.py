"""Command line and configuration checking: -v, -t, error messages with
file:line:col, the quoted source line and a caret."""

import re
import socket
import subprocess
import time

import pytest

from conftest import PORTICO_BIN, child_env, free_port

GOOD = """\
workers 1;
pid {tmp}/p.pid;
error_log stderr info;
admin_listen off;
events {{ worker_connections 64; }}
http {{
    access_log off;
    upstream backend {{ server 127.0.0.1:1 weight=1; keepalive 4; }}
    server {{
        listen 127.0.0.1:{port} reuseport default_server;
        server_name example.com *.example.org;
        location / {{ proxy_pass http://backend; }}
        location = /exact {{ return 200 "exact\\n"; }}
        location ~ \\.php$ {{ return 403; }}
        location /canary/ {{ match_header X-Canary "^1$"; return 200 "canary\\n"; }}
    }}
}}
"""


def write(tmp_path, text, name="portico.conf"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_version(run_portico_cli):
    res = run_portico_cli("-v")
    assert res.returncode == 0
    out = res.stdout + res.stderr
    assert re.search(r"^portico\b.*\b\d+\.\d+\.\d+", out, re.M), out


def test_t_good_config(run_portico_cli, tmp_path):
    conf = write(tmp_path, GOOD.format(tmp=tmp_path, port=free_port()))
    res = run_portico_cli("-t", "-c", str(conf))
    assert res.returncode == 0, res.stderr


def test_t_does_not_bind(run_portico_cli, tmp_path):
    # -t must work while the configured port is taken (it only checks)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        conf = write(tmp_path, GOOD.format(tmp=tmp_path, port=port))
        res = run_portico_cli("-t", "-c", str(conf))
    assert res.returncode == 0, res.stderr


def find_pos(err, conf):
    """Finds 'path/NAME:line:col: message' for conf's file name."""
    return re.search(r"(?m)(?:^|[\s/])" + re.escape(conf.name) + r":(\d+):(\d+): (.*)", err)


def check_error(res, conf, line, col=None, words=()):
    """Asserts exit 1 and 'file:line:col: message' + source line + caret."""
    assert res.returncode == 1, "exit %d\nstdout=%s\nstderr=%s" % (res.returncode, res.stdout, res.stderr)
    err = res.stderr
    m = find_pos(err, conf)
    assert m, "no 'file:line:col: message' in stderr:\n" + err
    assert int(m.group(1)) == line, err
    if col is not None:
        assert int(m.group(2)) == col, err
    col = int(m.group(2))
    msg = m.group(3)
    for w in words:
        assert w.lower() in msg.lower(), "%r not in message %r" % (w, msg)
    lines = err[m.end():].split("\n")[1:]
    src_line = conf.read_text().split("\n")[line - 1]
    # the quoted source line, then a caret under the column
    idx = next((i for i, ln in enumerate(lines) if src_line.strip() and src_line.strip() in ln), None)
    assert idx is not None, "source line %r not quoted:\n%s" % (src_line, err)
    quoted, caret = lines[idx], lines[idx + 1]
    assert caret.strip() == "^", "no caret line:\n" + err
    ci = caret.index("^")
    assert ci < len(quoted) and col - 1 < len(src_line), "caret beyond the line:\n" + err
    assert quoted[ci] == src_line[col - 1], "caret misplaced:\n" + err
    return msg


BASE = """\
workers 1;
error_log stderr;
admin_listen off;
events { worker_connections 64; }
http {
    access_log off;
%s
}
"""


def conf_with(tmp_path, http_body):
    return write(tmp_path, BASE % http_body)


def test_unknown_directive(run_portico_cli, tmp_path):
    conf = conf_with(tmp_path, "    server {\n        listen 127.0.0.1:1;\n        frobnicate on;\n    }")
    res = run_portico_cli("-t", "-c", str(conf))
    check_error(res, conf, line=9, col=9, words=("unknown directive", "frobnicate"))


def test_unknown_top_level_directive(run_portico_cli, tmp_path):
    conf = write(tmp_path, "workers 1;\nbogus_thing 5;\nevents { worker_connections 64; }\n")
    res = run_portico_cli("-t", "-c", str(conf))
    check_error(res, conf, line=2, col=1, words=("bogus_thing",))


def test_missing_semicolon(run_portico_cli, tmp_path):
    conf = write(tmp_path, "workers 1;\nevents {\n    worker_connections 64\n}\nhttp { }\n")
    res = run_portico_cli("-t", "-c", str(conf))
    assert res.returncode == 1
    m = find_pos(res.stderr, conf)
    assert m, res.stderr
    assert int(m.group(1)) in (3, 4), res.stderr
    assert re.search(r"';'|\";\"|semicolon|unexpected", m.group(3)), res.stderr


def test_bad_value(run_portico_cli, tmp_path):
    conf = write(tmp_path, "workers many;\nevents { worker_connections 64; }\nhttp { }\n")
    res = run_portico_cli("-t", "-c", str(conf))
    check_error(res, conf, line=1, col=9)


def test_bad_size_value(run_portico_cli, tmp_path):
    conf = conf_with(tmp_path, "    client_max_body_size 10q;")
    res = run_portico_cli("-t", "-c", str(conf))
    check_error(res, conf, line=7, col=26)


def test_bad_time_value(run_portico_cli, tmp_path):
    conf = conf_with(tmp_path, "    keepalive_timeout forever;")
    res = run_portico_cli("-t", "-c", str(conf))
    check_error(res, conf, line=7, col=23)


def test_undefined_upstream(run_portico_cli, tmp_path):
    conf = conf_with(tmp_path, "    server {\n        listen 127.0.0.1:1;\n"
                               "        location / { proxy_pass http://nosuch; }\n    }")
    res = run_portico_cli("-t", "-c", str(conf))
    msg = check_error(res, conf, line=9)
    assert "upstream" in msg.lower()
    assert "nosuch" in msg


def test_directive_in_wrong_context(run_portico_cli, tmp_path):
    conf = write(tmp_path, "workers 1;\nlisten 127.0.0.1:80;\nevents { worker_connections 64; }\n")
    res = run_portico_cli("-t", "-c", str(conf))
    check_error(res, conf, line=2, col=1, words=("listen",))


def test_invalid_listen_parameter(run_portico_cli, tmp_path):
    conf = conf_with(tmp_path, "    server {\n        listen 127.0.0.1:1 fastopen_please;\n    }")
    res = run_portico_cli("-t", "-c", str(conf))
    check_error(res, conf, line=8, col=28, words=("fastopen_please",))


def test_bad_regex(run_portico_cli, tmp_path):
    conf = conf_with(tmp_path, "    server {\n        listen 127.0.0.1:1;\n"
                               "        location ~ \"([a-z\" { return 200; }\n    }")
    res = run_portico_cli("-t", "-c", str(conf))
    assert res.returncode == 1
    m = find_pos(res.stderr, conf)
    assert m and m.group(1) == "9", res.stderr


def test_bad_location_modifier(run_portico_cli, tmp_path):
    conf = conf_with(tmp_path, "    server {\n        listen 127.0.0.1:1;\n"
                               "        location @@ /x { return 200; }\n    }")
    res = run_portico_cli("-t", "-c", str(conf))
    check_error(res, conf, line=9, col=18)


def test_unterminated_block(run_portico_cli, tmp_path):
    conf = write(tmp_path, "workers 1;\nevents { worker_connections 64; }\nhttp {\n    server {\n")
    res = run_portico_cli("-t", "-c", str(conf))
    assert res.returncode == 1
    assert find_pos(res.stderr, conf), res.stderr


def test_unterminated_quote(run_portico_cli, tmp_path):
    conf = write(tmp_path, "workers 1;\nerror_log \"stderr;\nevents { }\n")
    res = run_portico_cli("-t", "-c", str(conf))
    assert res.returncode == 1
    m = find_pos(res.stderr, conf)
    assert m and int(m.group(1)) == 2, res.stderr


def test_error_in_included_file(run_portico_cli, tmp_path):
    inc = write(tmp_path, "server {\n    listen 127.0.0.1:1;\n    bad_directive_here;\n}\n", "servers.conf")
    conf = conf_with(tmp_path, "    include servers.conf;")
    res = run_portico_cli("-t", "-c", str(conf))
    assert res.returncode == 1
    check_error(res, inc, line=3, col=5, words=("bad_directive_here",))


def test_missing_config_file(run_portico_cli, tmp_path):
    res = run_portico_cli("-t", "-c", str(tmp_path / "nope.conf"))
    assert res.returncode == 1
    assert "nope.conf" in res.stderr


def test_unknown_option(run_portico_cli):
    res = run_portico_cli("--definitely-not-an-option")
    assert res.returncode != 0
    assert res.stderr.strip() != ""


def test_start_with_bad_config_fails_fast(tmp_path):
    conf = write(tmp_path, "workers 1;\nnot_a_directive;\n")
    t0 = time.monotonic()
    res = subprocess.run([PORTICO_BIN, "-c", str(conf)], capture_output=True, text=True,
                         timeout=20, env=child_env(), stdin=subprocess.DEVNULL)
    assert res.returncode == 1
    assert time.monotonic() - t0 < 10
    m = find_pos(res.stderr, conf)
    assert m and (m.group(1), m.group(2)) == ("2", "1"), res.stderr


def test_start_with_port_in_use_fails(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        conf = write(tmp_path, GOOD.format(tmp=tmp_path, port=port).replace(" reuseport", ""))
        res = subprocess.run([PORTICO_BIN, "-c", str(conf)], capture_output=True, text=True,
                             timeout=20, env=child_env(), stdin=subprocess.DEVNULL)
    assert res.returncode != 0
    assert str(port) in res.stderr, res.stderr
    for m in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
        assert m not in res.stderr, res.stderr
