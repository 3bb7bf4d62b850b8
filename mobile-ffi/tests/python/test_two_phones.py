"""The issue's scenario: two phones and a supervisor against the real server.

Phone A (an enforcement officer), offline, reports a missing sewage manhole cover with
a photo and checks in; it syncs; the server routes the case and pushes the dispatch
to phone B (the maintenance worker posted there); both phones go offline and edit the
same case (A adds a photo and a comment, B records the handling); both sync; the
supervisor verifies and closes; both phones show the same folded state with every
edit, and so does the server. The supervisor then approves A's patrol log, and A's
phone shows the review. The district's official, on a phone, hears of the report as
a double report (双报告)."""

import unittest

from helpers import (
    DEAD_URL,
    GRID_A,
    PASSWORD,
    Listener,
    api,
    client,
    fetch,
    ffi,
    fix,
    new_dir,
    photo,
    run,
    settle,
    token,
)


class TwoPhones(unittest.TestCase):
    def test_report_dispatch_concurrent_edits_close(self):
        dir_a, dir_b = new_dir(), new_dir()

        b = client(dir_b)
        who = run(b.login("maint", PASSWORD))
        self.assertEqual(who.role, "municipal_maintenance")
        listener = Listener()
        b.start_push(listener)
        self.assertTrue(listener.wait_for("online"))

        # The district's 下沉 official, on a phone too: told of reports beyond authority.
        official = client(new_dir())
        run(official.login("supervisor", PASSWORD))
        official_listener = Listener()
        official.start_push(official_listener)
        self.assertTrue(official_listener.wait_for("online"))

        a = client(dir_a)
        run(a.login("officer", PASSWORD))
        grids = run(a.refresh_reference_data())
        self.assertGreater(grids, 0)
        self.assertEqual(a.locate(fix()), GRID_A, "offline locate on the cached grids")
        mine = a.my_grids()
        self.assertEqual(len(mine), grids)
        self.assertIn(GRID_A, [g.code for g in mine])
        self.assertTrue(all(g.code.startswith(GRID_A[:12]) for g in mine), "one community")
        self.assertTrue(mine[0].community_name)
        self.assertIn('"FeatureCollection"', a.grid_polygons_geojson())
        del a

        # Offline: a closed port. Everything is local and durable.
        a = client(dir_a, DEAD_URL)
        case_id = a.report_case(
            ffi.NewReport(
                category="C0102",
                position=fix(),
                address="金水路与经三路交叉口东北角",
                description="污水井盖缺失 missing sewage manhole cover",
            )
        )
        attached = run(a.attach_photo(case_id, photo("before.jpg"), ffi.PhotoRole.BEFORE))
        self.assertEqual(attached.upload, "waiting_ack")
        self.assertIsNotNone(attached.taken_at_ms, "the EXIF time is kept in the entry")
        checked = a.check_in(fix(), "早班巡查")
        self.assertEqual(checked.grid, GRID_A)
        pending = a.pending()
        self.assertEqual((pending.documents, pending.photos), (2, 1))
        report = run(a.sync_now())
        self.assertEqual(report.outcome, ffi.SyncOutcome.OFFLINE)
        self.assertEqual(a.pending(), pending, "an offline sync changes nothing")
        shown = a.show_case(case_id)
        self.assertEqual(shown.summary.status, "reported")
        self.assertTrue(shown.summary.unsent)
        del a

        # Online: the report, the check-in and the photo go; the server dispatches.
        a = client(dir_a)
        report = run(a.sync_now())
        self.assertEqual(report.outcome, ffi.SyncOutcome.SYNCED, report)
        self.assertGreaterEqual(report.sent, 2)
        self.assertEqual(report.photos_uploaded, 1)
        self.assertEqual(report.pending.photos, 0)
        on_a = a.show_case(case_id)
        self.assertEqual(on_a.summary.status, "dispatched")
        self.assertEqual(on_a.summary.assignee, "maint")
        self.assertEqual([p.upload for p in on_a.photos], ["done"])

        # B hears of the dispatch and gets the case; the official hears of the report
        # (a sewage manhole cover is maintenance's work, beyond the officer's: 双报告).
        self.assertEqual(listener.wait_for("dispatch"), case_id)
        self.assertEqual(official_listener.wait_for("double_report"), case_id)
        official.stop_push()
        report = run(b.sync_now())
        self.assertGreaterEqual(report.received, 1)
        on_b = b.show_case(case_id)
        self.assertEqual(on_b.summary.status, "dispatched")
        self.assertIn("handle", on_b.allowed_actions)
        self.assertNotIn("close", on_b.allowed_actions)
        with self.assertRaises(ffi.FieldError.ActionRefused):
            b.act(case_id, ffi.CaseAction.CLOSE(), None)

        # Both offline, editing the same case.
        b.stop_push()
        del a, b
        a, b = client(dir_a, DEAD_URL), client(dir_b, DEAD_URL)
        run(a.attach_photo(case_id, photo("more.jpg"), ffi.PhotoRole.OTHER))
        a.act(case_id, ffi.CaseAction.COMMENT(), "井口已设围挡 fenced off")
        b.act(case_id, ffi.CaseAction.HANDLE(), "已更换井盖 cover replaced")
        self.assertEqual(b.show_case(case_id).summary.status, "handled")
        self.assertEqual(run(a.sync_now()).outcome, ffi.SyncOutcome.OFFLINE)
        del a, b

        a, b = client(dir_a), client(dir_b)
        settle(a, b)

        supervisor = token("supervisor")
        for action in ("verify", "close"):
            status, body = api(
                "POST", f"/v1/cases/{case_id}/actions", supervisor, {"action": action}
            )
            self.assertEqual(status, 200, body)
        settle(a, b, times=1)

        on_a, on_b = a.show_case(case_id), b.show_case(case_id)
        self.assertEqual(on_a.summary.status, "closed")
        self.assertEqual(on_b.summary.status, "closed")
        self.assertEqual(on_a.timeline, on_b.timeline)
        actions = [t.action for t in on_a.timeline]
        for expected in ("report", "dispatch", "comment", "handle", "verify", "close"):
            self.assertIn(expected, actions)
        self.assertTrue(all(t.outcome == "applied" for t in on_a.timeline), on_a.timeline)
        self.assertEqual(
            sorted(p.sha256 for p in on_a.photos), sorted(p.sha256 for p in on_b.photos)
        )
        self.assertEqual(len(on_a.photos), 2)
        self.assertTrue(all(p.upload == "done" for p in on_a.photos), on_a.photos)
        self.assertFalse(on_a.summary.unsent or on_b.summary.unsent)
        self.assertEqual(a.pending().documents + b.pending().documents, 0)

        status, server = api("GET", f"/v1/cases/{case_id}", supervisor)
        self.assertEqual(status, 200, server)
        self.assertEqual(server["case"]["status"], "closed")
        self.assertEqual(
            sorted(p["hash"] for p in server["photos"]),
            sorted(p.sha256 for p in on_a.photos),
        )
        for p in server["photos"]:
            status, body = fetch(p["thumb"], supervisor)
            self.assertEqual(status, 200, "the uploaded photo is served")
            self.assertEqual(body[:2], b"\xff\xd8", "a JPEG thumbnail")

        # The supervisor reviews A's patrol log of the day; A's phone shows the review
        # after its next sync, with the check-in it wrote offline.
        status, body = api(
            "POST",
            f"/v1/patrol/logs/{checked.log_id}/reviews",
            supervisor,
            {"verdict": "approve", "comment": "巡查到位 well patrolled"},
        )
        self.assertEqual(status, 201, body)
        self.assertEqual(body["log"]["verdict"], "approve")
        run(a.sync_now())
        log = a.show_patrol_log(None)
        self.assertEqual(log.log_id, checked.log_id)
        self.assertEqual([c.id for c in log.check_ins], [checked.check_in_id])
        self.assertEqual(log.check_ins[0].note, "早班巡查")
        self.assertEqual(log.check_ins[0].grid, GRID_A)
        self.assertEqual(log.verdict, "approve")
        self.assertEqual(
            [(r.reviewer, r.reviewer_role, r.comment) for r in log.reviews],
            [("supervisor", "district_supervisor", "巡查到位 well patrolled")],
        )
        self.assertEqual(a.show_patrol_log(log.date), log)
        with self.assertRaises(ffi.FieldError.NotFound):
            a.show_patrol_log("2020-01-01")
        with self.assertRaises(ffi.FieldError.InvalidInput):
            a.show_patrol_log("yesterday")


if __name__ == "__main__":
    unittest.main()
