"""Outcomes the app can show (issue 29): an action of this device that the workflow
ignored once merged (the same worker handled the case on two phones offline) is in
the sync report, once; TLS failures are not "offline"; a file given as the data
directory is the app's mistake, not a passing failure."""

import os
import unittest

from helpers import (
    DEAD_URL,
    PASSWORD,
    URL,
    Listener,
    client,
    ffi,
    fix,
    new_dir,
    private_ca,
    run,
    serve,
)


class Outcomes(unittest.TestCase):
    def test_an_ignored_concurrent_action_is_reported_once(self):
        officer = client(new_dir())
        run(officer.login("officer", PASSWORD))
        # A missing sewage cover: dispatched at once to the maintenance worker.
        case_id = officer.report_case(
            ffi.NewReport(category="C0102", position=fix(), address="", description="两台手机")
        )
        run(officer.sync_now())
        dir_1, dir_2 = new_dir(), new_dir()
        for d in (dir_1, dir_2):
            phone = client(d)
            run(phone.login("maint", PASSWORD))
            run(phone.sync_now())
            self.assertEqual(phone.show_case(case_id).summary.status, "dispatched")
            del phone
        # Both phones offline, both record the handling.
        for d, note in ((dir_1, "第一台"), (dir_2, "第二台")):
            phone = client(d, url=DEAD_URL)
            phone.act(case_id, ffi.CaseAction.HANDLE(), note)
            del phone
        one, two = client(dir_1), client(dir_2)
        reports = [run(one.sync_now()), run(two.sync_now()), run(one.sync_now())]
        ignored = [i for r in reports for i in r.ignored]
        self.assertEqual(len(ignored), 1, reports)
        self.assertEqual((ignored[0].case_id, ignored[0].action), (case_id, "handle"))
        self.assertTrue(ignored[0].reason, ignored[0])
        timeline = one.show_case(case_id).timeline
        ignored_entry = [t for t in timeline if t.id == ignored[0].entry_id]
        self.assertEqual(len(ignored_entry), 1)
        self.assertTrue(ignored_entry[0].outcome.startswith("ignored"), ignored_entry)
        # Reported once: later syncs do not repeat it.
        self.assertEqual(run(one.sync_now()).ignored + run(two.sync_now()).ignored, [])

    def test_https_to_a_plain_http_port_is_a_tls_error_not_offline(self):
        https = URL.replace("http://", "https://", 1)
        phone = client(new_dir(), url=https)
        with self.assertRaises(ffi.FieldError.Tls):
            run(phone.login("officer", PASSWORD))
        # A logged-in phone whose URL is wrong: the sync throws, it is no outcome.
        data_dir = new_dir()
        run(client(data_dir).login("officer", PASSWORD))
        with self.assertRaises(ffi.FieldError.Tls):
            run(client(data_dir, url=https).sync_now())
        # A closed port stays "offline".
        self.assertEqual(
            run(client(data_dir, url=DEAD_URL).sync_now()).outcome, ffi.SyncOutcome.OFFLINE
        )

    def test_a_file_as_data_directory_is_invalid_input(self):
        path = os.path.join(new_dir(), "not-a-directory")
        with open(path, "w") as f:
            f.write("a file")
        with self.assertRaises(ffi.FieldError.InvalidInput) as raised:
            client(path)
        self.assertIn("not a directory", str(raised.exception))
        with self.assertRaises(ffi.FieldError.InvalidInput):
            ffi.wipe_data_dir(path)
        self.assertTrue(os.path.isfile(path), "nothing deleted")

    def test_a_private_authority_given_by_the_app_is_trusted_for_https_and_push(self):
        authority, cert, key = private_ca(new_dir())
        process, url = serve({"WANGGE_TLS_CERT": cert, "WANGGE_TLS_KEY": key})
        self.addCleanup(process.wait)
        self.addCleanup(process.terminate)
        self.assertTrue(url.startswith("https://"), url)
        # The bundled public roots do not know the city's authority.
        with self.assertRaises(ffi.FieldError.Tls):
            run(client(new_dir(), url=url).login("officer", PASSWORD))
        with open(authority) as f:
            pem = f.read()
        phone = client(new_dir(), url=url, trusted_ca_pem=pem)
        run(phone.login("officer", PASSWORD))
        phone.report_case(
            ffi.NewReport(category="E0102", position=fix(), address="", description="私有CA")
        )
        self.assertEqual(run(phone.sync_now()).outcome, ffi.SyncOutcome.SYNCED)
        listener = Listener()
        phone.start_push(listener)
        self.assertTrue(listener.wait_for("online"), "wss:// with the same authority")
        phone.stop_push()

    def test_a_trusted_ca_that_is_not_a_certificate_is_refused(self):
        for pem in ("", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
            with self.assertRaises(ffi.FieldError.InvalidInput):
                client(new_dir(), trusted_ca_pem=pem)


if __name__ == "__main__":
    unittest.main()
