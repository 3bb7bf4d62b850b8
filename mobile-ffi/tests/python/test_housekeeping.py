"""The calls an app makes around the work itself: the catalogue's categories for the
report form, throwing away this phone's changes to a case (and getting the server's
copy back whole), and wiping the phone when it is handed in or lost."""

import os
import unittest

from helpers import DEAD_URL, PASSWORD, URL, client, ffi, fix, login_as_device, new_dir, run


class Housekeeping(unittest.TestCase):
    def test_categories_carry_both_labels_and_their_team(self):
        phone = client(new_dir())
        categories = phone.categories()
        codes = [c.code for c in categories]
        self.assertEqual(len(codes), len(set(codes)), "codes are unique")
        self.assertGreater(len(codes), 50)
        by_code = {c.code: c for c in categories}
        sewage = by_code["C0102"]
        self.assertEqual(sewage.name_zh, "污水井盖")
        self.assertEqual(sewage.name_en, "Sewage manhole cover")
        self.assertEqual(sewage.team, "municipal_maintenance")
        for category in categories:
            self.assertRegex(category.code, r"^[CE][0-9]{4}$")
            self.assertTrue(category.name_zh.strip() and category.name_en.strip(), category.code)
            self.assertEqual(category.kind[0].upper(), category.code[0], category.code)
        # Offline, before any login: the form works without the server.
        self.assertEqual(len(client(new_dir(), url=DEAD_URL).categories()), len(categories))

    def test_discarding_local_changes_drops_unsent_work_and_fetches_the_servers_copy(self):
        data_dir = new_dir()
        phone = client(data_dir)
        run(phone.login("officer", PASSWORD))
        synced = phone.report_case(
            ffi.NewReport(category="E0102", position=fix(), address="", description="已同步")
        )
        run(phone.sync_now())
        self.assertEqual(phone.pending().documents, 0)
        # A comment written offline, then thrown away: the case goes, and the next
        # sync brings the server's copy back whole, without the comment.
        phone.act(synced, ffi.CaseAction.COMMENT(), "写错了")
        self.assertEqual(phone.pending().documents, 1)
        phone.discard_local_changes(synced)
        self.assertNotIn(synced, [c.id for c in phone.list_cases()])
        self.assertEqual(phone.pending().documents, 0)
        run(phone.sync_now())
        self.assertIn(synced, [c.id for c in phone.list_cases()])
        timeline = phone.show_case(synced).timeline
        self.assertFalse(any(e.note == "写错了" for e in timeline), timeline)
        # A report never sent, thrown away: gone for good, nothing sent.
        unsent = phone.report_case(
            ffi.NewReport(category="E0102", position=fix(), address="", description="草稿")
        )
        phone.discard_local_changes(unsent)
        run(phone.sync_now())
        self.assertNotIn(unsent, [c.id for c in phone.list_cases()])
        self.assertEqual(phone.pending().documents, 0)
        # Discarding a case the phone does not have is harmless.
        phone.discard_local_changes("no-such-case")

    def test_logout_and_wipe_leaves_nothing_behind(self):
        data_dir = new_dir()
        phone = client(data_dir)
        who = run(phone.login("officer", PASSWORD))
        phone.report_case(
            ffi.NewReport(category="C0102", position=fix(), address="", description="交还手机")
        )
        run(phone.sync_now())
        self.assertTrue(os.path.exists(os.path.join(data_dir, "store.sqlite3")))
        phone.logout_and_wipe()
        self.assertFalse(os.path.exists(os.path.join(data_dir, "store.sqlite3")))
        # The server was told: the device is revoked, it cannot log in as itself again.
        status, body = login_as_device("officer", who.device_id)
        self.assertEqual((status, body["error"]["code"]), (401, "device_revoked"), body)
        # The closed client refuses work with a typed error instead of writing.
        with self.assertRaises(ffi.FieldError.Closed):
            phone.list_cases()
        with self.assertRaises(ffi.FieldError.Closed):
            phone.report_case(
                ffi.NewReport(category="C0102", position=fix(), address="", description="x")
            )
        # The directory opens again as a new phone: no session, no cases.
        fresh = client(data_dir, url=URL)
        self.assertIsNone(fresh.session())
        self.assertEqual(fresh.list_cases(), [])


if __name__ == "__main__":
    unittest.main()
