"""Retries (proxy_next_upstream*), idempotency and the retry budget over
real origins (issue 4). Every assertion is on requests counted at the
origins and by portico's /upstreams counters."""

import pytest

from ctl_origins import Admin, by_origin, ctl_origins, run_load, upstream_conf  # noqa: F401

NO_OD = "round_robin;\noutlier_detection off;"


def total(origins, method=None):
    return sum(o.count(method=method) for o in origins)


def statuses(results):
    out = {}
    for r in results:
        out[r.status] = out.get(r.status, 0) + 1
    return out


# ----------------------------------------------------------------------
# what is retried
# ----------------------------------------------------------------------

def test_retry_on_connect_failure(portico, ctl_origins):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups=NO_OD))
    dead = os_[0]
    dead.die()
    res = run_load(p.url, 30, concurrency=1)
    assert statuses(res) == {200: 30}, res
    c = by_origin(res)
    assert c[dead.name] == 0 and c["origin-1"] + c["origin-2"] == 30, c
    assert total(os_) == 30  # the dead one saw nothing, no request was duplicated
    g = Admin(p).group()
    assert g["retries"] >= 5, g  # about one in three first attempts hit the dead server
    # A POST with a body is retried too: none of its bytes reached an origin.
    res = run_load(p.url, 30, method="POST", content=b"p" * 100)
    assert statuses(res) == {200: 30}, res
    assert total(os_, "POST") == 30


def test_retry_on_reset_before_response(portico, ctl_origins):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups=NO_OD))
    bad = os_[0]
    bad.reset(before_head=True)
    res = run_load(p.url, 30, concurrency=1)
    assert statuses(res) == {200: 30}, res
    assert by_origin(res)[bad.name] == 0
    hits = bad.count()
    assert hits >= 5, "the resetting server was never tried"
    assert total(os_) == 30 + hits, "each reset attempt is retried exactly once elsewhere"
    assert Admin(p).group()["retries"] == hits


def test_reset_after_response_head_is_not_retried(portico, ctl_origins):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups=NO_OD))
    bad = os_[0]
    bad.reset()  # head and part of the body, then RST
    res = run_load(p.url, 30, concurrency=1)
    hits = bad.count()
    assert hits >= 5
    assert total(os_) == 30, "a request whose response had started was sent again"
    assert sum(1 for r in res if r.status == 200 and r.origin != bad.name) == 30 - hits, res


@pytest.mark.parametrize("status", [502, 503])
def test_retry_on_configured_status(portico, ctl_origins, status):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups=NO_OD,
                              loc="proxy_next_upstream error timeout http_502 http_503;"))
    bad = os_[0]
    bad.fail(status)
    res = run_load(p.url, 30, concurrency=1)
    assert statuses(res) == {200: 30}, res
    assert by_origin(res)[bad.name] == 0, "a retry went back to the failing server"
    hits = bad.count()
    assert hits >= 5
    assert total(os_) == 30 + hits
    assert Admin(p).group()["retries"] == hits


def test_status_not_configured_is_passed_through(portico, ctl_origins):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups=NO_OD,
                              loc="proxy_next_upstream error timeout http_502 http_503;"))
    os_[0].fail(500)
    res = run_load(p.url, 30, concurrency=1)
    assert total(os_) == 30
    assert statuses(res).get(500, 0) == os_[0].count() >= 5
    assert Admin(p).group()["retries"] == 0


def test_retry_on_try_timeout(portico, ctl_origins):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups=NO_OD, loc="proxy_try_timeout 1s;"))
    hung = os_[0]
    hung.hang()
    res = run_load(p.url, 12, concurrency=3)
    assert statuses(res) == {200: 12}, res
    assert by_origin(res)[hung.name] == 0
    hits = hung.count()
    assert hits >= 2
    # Every timed-out attempt was retried once elsewhere. (Counted with the
    # group's retry counter: on a loaded machine a healthy origin may also
    # miss a try timeout now and then.)
    retries = Admin(p).group()["retries"]
    assert retries >= hits
    assert total(os_) == 12 + retries


def test_next_upstream_off(portico, ctl_origins):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups=NO_OD, loc="proxy_next_upstream off;"))
    os_[0].die()
    res = run_load(p.url, 30, concurrency=1)
    st = statuses(res)
    assert st.get(502, 0) >= 5 and st.get(502, 0) + st.get(200, 0) == 30, st
    assert Admin(p).group()["retries"] == 0


# ----------------------------------------------------------------------
# idempotency
# ----------------------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_non_idempotent_request_never_duplicated(portico, ctl_origins, method):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups=NO_OD,
                              loc="proxy_next_upstream error timeout http_503;"))
    bad = os_[0]
    bad.fail(503)
    res = run_load(p.url, 30, method=method, content=b"payload-" * 10)
    assert total(os_, method) == 30, \
        "%d %s requests reached origins for 30 sent" % (total(os_, method), method)
    assert statuses(res).get(503, 0) == bad.count() >= 5, statuses(res)
    # reset before any response byte: still not retried (its bytes reached the origin)
    bad.reset(before_head=True)
    for o in os_:
        o.reset_counts()
    res = run_load(p.url, 30, method=method, content=b"payload-" * 10)
    assert total(os_, method) == 30
    assert statuses(res).get(502, 0) == bad.count() >= 5, statuses(res)
    assert Admin(p).group()["retries"] == 0


def test_idempotent_methods_without_body_are_retried(portico, ctl_origins):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups=NO_OD,
                              loc="proxy_next_upstream error timeout http_503;"))
    bad = os_[0]
    bad.fail(503)
    for method in ("DELETE", "HEAD", "OPTIONS"):
        res = run_load(p.url, 15, method=method)
        assert statuses(res) == {200: 15}, (method, res)
        assert total(os_, method) == 15 + bad.count(method=method)


def test_non_idempotent_flag_allows_retry(portico, ctl_origins):
    os_ = ctl_origins(3)
    p = portico(upstream_conf(os_, ups=NO_OD,
                              loc="proxy_next_upstream error timeout http_503 non_idempotent;"))
    bad = os_[0]
    bad.fail(503)
    res = run_load(p.url, 30, method="POST")  # Content-Length: 0
    assert statuses(res) == {200: 30}, res
    hits = bad.count(method="POST")
    assert hits >= 5
    assert total(os_, "POST") == 30 + hits
    # but never once body bytes were sent (bodies are streamed, not buffered)
    for o in os_:
        o.reset_counts()
    res = run_load(p.url, 30, method="POST", content=b"b" * 200)
    assert total(os_, "POST") == 30
    assert statuses(res).get(503, 0) == bad.count()


# ----------------------------------------------------------------------
# how many tries
# ----------------------------------------------------------------------

@pytest.mark.parametrize("tries,expect", [(None, 3), (1, 1), (2, 2), (0, 4)],
                         ids=["default", "1", "2", "0=per-server"])
def test_tries_cap(portico, ctl_origins, tries, expect):
    os_ = ctl_origins(4)
    loc = "proxy_next_upstream http_503;"
    if tries is not None:
        loc += "\nproxy_next_upstream_tries %d;" % tries
    p = portico(upstream_conf(os_, ups=NO_OD + "\nretry_budget off;", loc=loc))
    for o in os_:
        o.fail(503)
    res = run_load(p.url, 20, concurrency=1)
    assert statuses(res) == {503: 20}, res
    assert total(os_) == 20 * expect, "%d origin requests for 20 client requests, %d tries each" \
        % (total(os_), expect)
    # every try of one request went to a different server
    assert all(o.count() <= 20 for o in os_)


# ----------------------------------------------------------------------
# retry budget
# ----------------------------------------------------------------------

N_BUDGET = 400
DELAY = 0.02  # every attempt takes about as long, failing or not (see below)


def budget_run(p, os_):
    res = run_load(p.url, N_BUDGET, concurrency=20)
    assert all(r.status is not None for r in res), [r for r in res if r.status is None][:3]
    return res, Admin(p).group()


def test_retry_budget_caps_amplification(portico, ctl_origins):
    """One of 4 origins fails every request with 503; 20 clients; default
    budget (20%, min_concurrency 3).

    Why the bound holds: the budget admits a retry only while retries in
    flight < 20% of requests in flight. Every attempt takes about the same
    time (all origins answer after DELAY), so by Little's law retries are at
    most ~20% of the requests in flight, i.e. origin requests / client
    requests <= 1 / (1 - 0.2) = 1.25. The counters must also add up exactly:
    each 503 was either retried or, over budget, passed to the client."""
    os_ = ctl_origins(4)
    p = portico(upstream_conf(os_, ups=NO_OD + "\nretry_budget 20%;",
                              loc="proxy_next_upstream error timeout http_503;"))
    for o in os_[1:]:
        o.slow(DELAY)
    bad = os_[0]
    bad.fail(503, delay=DELAY)
    res, g = budget_run(p, os_)
    st = statuses(res)
    upstream = total(os_)
    amp = upstream / N_BUDGET
    assert upstream == N_BUDGET + g["retries"], (upstream, g)
    assert st.get(503, 0) == g["budget_exhausted"], (st, g)
    assert bad.count() == g["retries"] + g["budget_exhausted"], (bad.count(), g)
    assert amp <= 1.25 + 0.02, "amplification %.3f with a 20%% retry budget (%r)" % (amp, g)
    assert st.get(200, 0) + st.get(503, 0) == N_BUDGET, st


@pytest.mark.parametrize("budget", ["20% min_concurrency=1", "off"])
def test_retry_budget_with_most_origins_failing(portico, ctl_origins, budget):
    """3 of 4 origins fail: without a budget each request costs ~2.5
    attempts (all succeed); with 20% it stays near 1.25 (same reasoning as
    above, a little slack for the instantaneous check)."""
    os_ = ctl_origins(4)
    p = portico(upstream_conf(os_, ups=NO_OD + "\nretry_budget %s;" % budget,
                              loc="proxy_next_upstream error timeout http_503;\n"
                                  "proxy_next_upstream_tries 0;"))
    for o in os_[:3]:
        o.fail(503, delay=DELAY)
    os_[3].slow(DELAY)
    res, g = budget_run(p, os_)
    st = statuses(res)
    upstream = total(os_)
    amp = upstream / N_BUDGET
    assert upstream == N_BUDGET + g["retries"], (upstream, g)
    if budget == "off":
        assert st == {200: N_BUDGET}, st
        assert g["budget_exhausted"] == 0, g
        assert amp >= 1.8, "amplification %.2f: failures were not all retried" % amp
    else:
        assert amp <= 1.35, "amplification %.3f with a 20%% retry budget (%r)" % (amp, g)
        assert g["budget_exhausted"] > 0, g
        assert st.get(503, 0) == g["budget_exhausted"], (st, g)


def test_retry_budget_off_retries_every_failure(portico, ctl_origins):
    os_ = ctl_origins(4)
    p = portico(upstream_conf(os_, ups=NO_OD + "\nretry_budget off;",
                              loc="proxy_next_upstream error timeout http_503;"))
    for o in os_[1:]:
        o.slow(DELAY)
    bad = os_[0]
    bad.fail(503, delay=DELAY)
    res, g = budget_run(p, os_)
    assert statuses(res) == {200: N_BUDGET}, statuses(res)
    assert bad.count() == g["retries"] > 0, g
    assert total(os_) == N_BUDGET + bad.count()
    assert g["budget_exhausted"] == 0
