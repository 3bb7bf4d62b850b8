"""The operator's catalogue on the phone (issue 29): the server runs with a city's own
file (a team and a category added, see tests/tests/mobile_python.rs); a phone shows it
after its next sync (or a reference-data refresh), with urgency and time limits, and
reports in the new category offline."""

import unittest

from helpers import DEAD_URL, PASSWORD, client, ffi, fix, new_dir, run


class Catalogue(unittest.TestCase):
    def test_the_operators_catalogue_reaches_the_phone_at_its_next_sync(self):
        data_dir = new_dir()
        phone = client(data_dir)
        # Before anything is fetched: the built-in catalogue.
        self.assertIsNone(phone.catalogue_version())
        self.assertNotIn("E0560", [c.code for c in phone.categories()])
        run(phone.login("officer", PASSWORD))
        with self.assertRaises(ffi.FieldError.InvalidInput):
            phone.report_case(
                ffi.NewReport(category="E0560", position=fix(), address="", description="x")
            )

        # A sync names the server's version; the phone fetches the catalogue.
        run(phone.sync_now())
        version = phone.catalogue_version()
        self.assertRegex(version, r"^[0-9a-f]{64}$")
        by_code = {c.code: c for c in phone.categories()}
        bikes = by_code["E0560"]
        self.assertEqual(bikes.name_zh, "共享单车乱停放")
        self.assertEqual(bikes.team, "bike_operators")
        self.assertEqual((bikes.team_zh, bikes.team_en), ("共享单车企业", "Shared-bike operators"))
        self.assertFalse(bikes.urgent)
        limits = {l.step: l for l in bikes.limits}
        self.assertEqual(limits["handle"].limit, "4 working_hours")
        self.assertEqual((limits["handle"].amount, limits["handle"].unit), (4, "working_hours"))
        self.assertEqual(limits["handle"].step_zh, "处置")
        # The built-in rules dispatch a missing sewage cover at once, on calendar hours.
        self.assertTrue(by_code["C0102"].urgent)
        self.assertFalse(by_code["E0102"].urgent)

        # Kept: offline, after a restart, the new category can be reported.
        del phone
        offline = client(data_dir, url=DEAD_URL)
        self.assertEqual(offline.catalogue_version(), version)
        case_id = offline.report_case(
            ffi.NewReport(category="E0560", position=fix(), address="", description="单车堵门")
        )
        shown = offline.show_case(case_id)
        self.assertEqual(shown.summary.category, "E0560")
        # Its due time comes from the operator's limits (an unknown category has none).
        self.assertIsNotNone(shown.summary.due_at_ms)
        del offline

        # The server takes it (its write rules know the category).
        phone = client(data_dir)
        report = run(phone.sync_now())
        self.assertEqual(report.outcome, ffi.SyncOutcome.SYNCED, report)
        self.assertEqual(report.refused, [])
        self.assertEqual(phone.show_case(case_id).summary.status, "reported")
        self.assertEqual(phone.catalogue_version(), version, "unchanged: not fetched again")

    def test_a_reference_data_refresh_fetches_it_too(self):
        phone = client(new_dir())
        run(phone.login("officer", PASSWORD))
        run(phone.refresh_reference_data())
        self.assertIsNotNone(phone.catalogue_version())
        self.assertIn("E0560", [c.code for c in phone.categories()])


if __name__ == "__main__":
    unittest.main()
