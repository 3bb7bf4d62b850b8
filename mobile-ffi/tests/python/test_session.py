"""The session under short-lived access tokens (the server runs with 30 s here, and the
phone renews 30 s before expiry, so every request spends a refresh token): the push thread and several syncs
refreshing at once never spend one refresh token twice, which the server would
punish by revoking the whole login."""

import threading
import unittest

from helpers import PASSWORD, Listener, client, ffi, fix, new_dir, run


class Session(unittest.TestCase):
    def test_concurrent_refreshes_keep_the_login(self):
        phone = client(new_dir())
        run(phone.login("officer", PASSWORD))
        phone.report_case(
            ffi.NewReport(category="C0102", position=fix(), address="", description="刷新")
        )
        listener = Listener()
        errors = []

        def repeat(call):
            def calls():
                for _ in range(5):
                    try:
                        run(call())
                    # Any exception on a worker thread (not only the library's
                    # typed errors) fails the test: a thread's exception is
                    # otherwise only printed.
                    except Exception as error:  # noqa: BLE001
                        errors.append(error)

            return calls

        # Syncs (one at a time by design), grid refreshes (not serialized with syncs)
        # and the push connection all renew the token at once.
        phone.start_push(listener)
        threads = [threading.Thread(target=repeat(phone.sync_now)) for _ in range(2)]
        threads += [
            threading.Thread(target=repeat(phone.refresh_reference_data)) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        self.assertTrue(listener.wait_for("online"))
        # Still logged in: a last sync goes through.
        report = run(phone.sync_now())
        self.assertEqual(report.outcome, ffi.SyncOutcome.SYNCED, report)
        phone.stop_push()


if __name__ == "__main__":
    unittest.main()
