"""No dispatch is missed (issue 29): a case dispatched to the officer while the
phone's network is gone (the push socket down, the notice sent to nobody) reaches
the listener when the socket comes back, once."""

import queue
import time
import unittest

from helpers import (
    PASSWORD,
    Listener,
    Proxy,
    api,
    client,
    ffi,
    fix,
    new_dir,
    photo,
    run,
    serve,
    token,
)


def dispatch_to(case_id, supervisor, team, assignee):
    """The command centre takes the case from wherever it is to a dispatch."""
    for _ in range(4):
        status, shown = api("GET", f"/v1/cases/{case_id}", supervisor)
        assert status == 200, shown
        now = shown["case"]["status"]
        body = {
            "reported": {"action": "accept"},
            "accepted": {"action": "register"},
            "registered": {"action": "dispatch", "team": team, "assignee": assignee},
        }.get(now)
        if body is None:
            return now
        status, answer = api("POST", f"/v1/cases/{case_id}/actions", supervisor, body)
        assert status == 200, (now, body, answer)
    return api("GET", f"/v1/cases/{case_id}", supervisor)[1]["case"]["status"]


def events_within(listener, seconds):
    found = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            found.append(listener.events.get(timeout=left))
        except queue.Empty:
            break
    return found


class MissedDispatch(unittest.TestCase):
    def test_a_dispatch_made_while_the_socket_is_down_arrives_at_reconnect(self):
        proxy = Proxy()
        self.addCleanup(proxy.close)
        officer = client(new_dir(), url=proxy.url)
        run(officer.login("officer", PASSWORD))
        listener = Listener()
        officer.start_push(listener)
        self.assertTrue(listener.wait_for("online"))

        # Someone else reports exposed garbage (queued for the dispatcher).
        reporter = client(new_dir())
        run(reporter.login("maint", PASSWORD))
        case_id = reporter.report_case(
            ffi.NewReport(category="E0102", position=fix(), address="", description="漏派")
        )
        run(reporter.sync_now())

        # The network goes; the dispatch is made while the socket is down.
        proxy.cut()
        self.assertFalse(listener.wait_for("online"))
        supervisor = token("supervisor")
        self.assertEqual(dispatch_to(case_id, supervisor, "enforcement", "officer"), "dispatched")
        time.sleep(1)
        self.assertNotIn(("dispatch", case_id), list(listener.events.queue))

        # The network comes back: the catch-up tells the listener.
        proxy.resume()
        self.assertEqual(listener.wait_for("dispatch", timeout=60), case_id)
        shown = officer.show_case(case_id)
        self.assertEqual(shown.summary.assignee, "officer", "the case came with the notice")
        # Once: the app's own sync does not raise it again.
        run(officer.sync_now())
        later = events_within(listener, 3)
        self.assertNotIn(("dispatch", case_id), later)
        officer.stop_push()

    def test_a_dispatch_synced_without_push_is_told_when_push_starts(self):
        officer = client(new_dir())
        run(officer.login("officer", PASSWORD))
        maint = client(new_dir())
        run(maint.login("maint", PASSWORD))
        case_id = maint.report_case(
            ffi.NewReport(category="E0102", position=fix(), address="", description="后听")
        )
        run(maint.sync_now())
        supervisor = token("supervisor")
        self.assertEqual(dispatch_to(case_id, supervisor, "enforcement", "officer"), "dispatched")
        # The app synced in the background with no listener (the process was not
        # on push): the dispatch waits in the store for the next listener.
        run(officer.sync_now())
        listener = Listener()
        officer.start_push(listener)
        # (A fresh phone is told of every case waiting for its user: this one too.)
        while listener.wait_for("dispatch") != case_id:
            pass
        # A second listener is refused rather than silently replacing the first.
        with self.assertRaises(ffi.FieldError.InvalidInput):
            officer.start_push(Listener())
        officer.stop_push()
        # After stopPush a new listener may start; it is not told again.
        again = Listener()
        officer.start_push(again)
        self.assertTrue(again.wait_for("online"))
        self.assertNotIn(("dispatch", case_id), events_within(again, 2))
        officer.stop_push()

    def test_a_dispatch_made_while_the_server_restarts_is_not_missed(self):
        first, first_url = serve({})
        proxy = Proxy(first_url)
        self.addCleanup(proxy.close)
        officer = client(new_dir(), url=proxy.url)
        run(officer.login("officer", PASSWORD))
        listener = Listener()
        officer.start_push(listener)
        self.assertTrue(listener.wait_for("online"))
        reporter = client(new_dir())
        run(reporter.login("maint", PASSWORD))
        case_id = reporter.report_case(
            ffi.NewReport(category="E0102", position=fix(), address="", description="重启")
        )
        run(reporter.sync_now())
        # The officer's server goes down (its sockets and whatever it held in memory
        # with it); the dispatch is made on another node meanwhile.
        first.kill()
        first.wait()
        self.assertFalse(listener.wait_for("online"))
        self.assertEqual(dispatch_to(case_id, token("supervisor"), "enforcement", "officer"), "dispatched")
        # The server comes back (on another port behind the same address).
        second, second_url = serve({})
        self.addCleanup(second.wait)
        self.addCleanup(second.terminate)
        proxy.retarget(second_url)
        while listener.wait_for("dispatch", timeout=60) != case_id:
            pass
        officer.stop_push()

    def test_a_silently_dead_socket_is_noticed_and_replaced(self):
        proxy = Proxy()
        self.addCleanup(proxy.close)
        officer = client(new_dir(), url=proxy.url, idle_timeout_ms=1500)
        run(officer.login("officer", PASSWORD))
        listener = Listener()
        officer.start_push(listener)
        self.assertTrue(listener.wait_for("online"))
        started = time.monotonic()
        proxy.freeze()
        # A ping every 25 s; no answer within the idle bound after it: dead.
        self.assertFalse(listener.wait_for("online", timeout=45))
        self.assertLess(time.monotonic() - started, 25 + 1.5 + 3)
        proxy.freeze(False)
        self.assertTrue(listener.wait_for("online", timeout=60))
        officer.stop_push()

    def test_a_phones_own_sync_is_not_echoed_back_to_it(self):
        officer = client(new_dir())
        run(officer.login("officer", PASSWORD))
        listener = Listener()
        officer.start_push(listener)
        self.assertTrue(listener.wait_for("online"))
        events_within(listener, 1)
        case_id = officer.report_case(
            ffi.NewReport(category="E0102", position=fix(), address="", description="回声")
        )
        run(officer.attach_photo(case_id, photo("before.jpg"), ffi.PhotoRole.BEFORE))
        officer.check_in(fix(), None)
        report = run(officer.sync_now())
        self.assertEqual(report.photos_uploaded, 1)
        heard = [e for e in events_within(listener, 3) if e[0] == "sync_needed"]
        self.assertEqual(heard, [], "the phone's own changes came back as notices")
        officer.stop_push()


if __name__ == "__main__":
    unittest.main()
