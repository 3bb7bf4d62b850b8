"""Bounded waits (issue 29): a server that accepts and never answers, and one that
trickles a byte at a time, cost the phone at most the timeouts the app configured,
and a stuck sync never holds up the calls that need no network."""

import threading
import time
import unittest

from helpers import PASSWORD, Silent, Trickle, client, ffi, fix, new_dir, run

WAITS = dict(connect_timeout_ms=2000, request_timeout_ms=4000, idle_timeout_ms=1500)


def logged_in_dir():
    data_dir = new_dir()
    phone = client(data_dir)
    run(phone.login("officer", PASSWORD))
    phone.report_case(
        ffi.NewReport(category="E0102", position=fix(), address="", description="等待")
    )
    del phone
    return data_dir


class Waits(unittest.TestCase):
    def test_a_silent_server_costs_the_idle_timeout_and_blocks_nothing_else(self):
        silent = Silent()
        self.addCleanup(silent.close)
        phone = client(logged_in_dir(), url=silent.url, **WAITS)
        waiting = phone.pending().documents  # the case and the day's patrol log
        result = {}

        def sync():
            started = time.monotonic()
            result["report"] = run(phone.sync_now())
            result["seconds"] = time.monotonic() - started

        thread = threading.Thread(target=sync)
        thread.start()
        # Meanwhile the local calls answer at once, repeatedly.
        time.sleep(0.3)
        slowest = 0.0
        while thread.is_alive():
            started = time.monotonic()
            self.assertEqual(len(phone.list_cases()), 1)
            phone.pending()
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.05)
        thread.join()
        self.assertLess(slowest, 0.5, "a local call waited on the stuck sync")
        self.assertEqual(result["report"].outcome, ffi.SyncOutcome.OFFLINE)
        self.assertLess(result["seconds"], 1.5 + 2.0, result)
        self.assertGreater(result["seconds"], 1.0, "it did wait for the server")
        # Nothing was lost or marked sent.
        self.assertEqual(phone.pending().documents, waiting)
        # Online calls that throw say Offline within the same bound.
        started = time.monotonic()
        with self.assertRaises(ffi.FieldError.Offline) as raised:
            run(phone.refresh_reference_data())
        self.assertLess(time.monotonic() - started, 3.5)
        self.assertIn("timeout", str(raised.exception).lower())
        # A local write while a sync hangs goes through too.
        thread = threading.Thread(target=lambda: run(phone.sync_now()))
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        phone.report_case(
            ffi.NewReport(category="E0102", position=fix(), address="", description="同时")
        )
        self.assertLess(time.monotonic() - started, 0.5)
        thread.join()

    def test_a_trickling_server_costs_the_request_timeout(self):
        trickle = Trickle(every=0.3)
        self.addCleanup(trickle.close)
        phone = client(logged_in_dir(), url=trickle.url, **WAITS)
        started = time.monotonic()
        with self.assertRaises(ffi.FieldError.Offline):
            run(phone.refresh_reference_data())
        elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 3.5, "the idle timeout did not cut a live trickle")
        self.assertLess(elapsed, 6.0)

    def test_waits_must_be_positive(self):
        for name in ("connect_timeout_ms", "request_timeout_ms", "idle_timeout_ms"):
            with self.assertRaises(ffi.FieldError.InvalidInput) as raised:
                client(new_dir(), **{name: 0})
            self.assertIn(name, str(raised.exception))
        with self.assertRaises(ffi.FieldError.InvalidInput):
            client(new_dir(), photo_cache_mb=0)

    def test_the_defaults_are_bounded(self):
        config = ffi.ClientConfig(data_dir="x", server_url="http://x", device_name="x")
        self.assertEqual(
            (config.connect_timeout_ms, config.request_timeout_ms, config.idle_timeout_ms),
            (10000, 300000, 20000),
        )


if __name__ == "__main__":
    unittest.main()
