import sys, time
sys.path.insert(0, "/work/main/tests")
from test_consent_browser import *  # noqa

def test_dbg(visitor, live_server):
    v = visitor()
    page = v.page
    pending = {}
    v.context.on("request", lambda r: pending.__setitem__(r.url + " " + r.method, time.time()))
    v.context.on("requestfinished", lambda r: pending.pop(r.url + " " + r.method, None))
    v.context.on("requestfailed", lambda r: pending.pop(r.url + " " + r.method, None))
    v.open("/")
    choose(page, "Alles accepteren")
    page.wait_for_timeout(3000)
    print("PENDING", pending)
    assert False
