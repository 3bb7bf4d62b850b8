"""A revoked device is told so and wipes itself: through the push socket while it is
connected, and at its next contact with the server when it is not."""

import os
import subprocess
import unittest

from helpers import PASSWORD, Listener, client, ffi, fix, login_as_device, new_dir, run


def revoke(device_id):
    subprocess.run(
        [
            os.environ["WANGGE_BIN"],
            "device",
            "revoke",
            "--database",
            os.environ["WANGGE_DATABASE"],
            device_id,
        ],
        check=True,
        capture_output=True,
    )


def report(phone):
    return phone.report_case(
        ffi.NewReport(category="C0102", position=fix(), address="", description="unsent")
    )


class Revoked(unittest.TestCase):
    def test_push_tells_a_connected_phone_which_wipes(self):
        data_dir = new_dir()
        phone = client(data_dir)
        who = run(phone.login("officer", PASSWORD))
        listener = Listener()
        phone.start_push(listener)
        self.assertTrue(listener.wait_for("online"))
        report(phone)
        revoke(who.device_id)
        listener.wait_for("revoked")
        self.assertFalse(os.path.exists(os.path.join(data_dir, "store.sqlite3")))
        with self.assertRaises(ffi.FieldError.Closed):
            phone.pending()

    def test_the_next_sync_tells_a_phone_which_wipes(self):
        data_dir = new_dir()
        phone = client(data_dir)
        who = run(phone.login("maint", PASSWORD))
        report(phone)
        revoke(who.device_id)
        with self.assertRaises(ffi.FieldError.DeviceRevoked):
            run(phone.sync_now())
        self.assertFalse(os.path.exists(os.path.join(data_dir, "store.sqlite3")))
        # A new client on the directory starts empty, and the revoked device cannot
        # log in again as itself.
        fresh = client(data_dir)
        self.assertIsNone(fresh.session())
        self.assertEqual(fresh.list_cases(), [])
        status, body = login_as_device("maint", who.device_id)
        self.assertEqual(status, 401, body)
        self.assertEqual(body["error"]["code"], "device_revoked")


if __name__ == "__main__":
    unittest.main()
