"""What an app should not rebuild (issue 29): the case list filtered and paged ("my
tasks", overdue, by status), Chinese and English labels as separate fields, and the
allowed actions as typed values ready for `act`."""

import time
import unittest

from helpers import PASSWORD, api, client, ffi, fix, new_dir, run, token


class Clock(ffi.PhoneClock):
    """The phone's clock, moved forward when a test says so."""

    def __init__(self):
        self.ahead_ms = 0

    def now_ms(self):
        return int(time.time() * 1000) + self.ahead_ms


class CaseList(unittest.TestCase):
    def test_filters_paging_labels_and_typed_actions(self):
        officer = client(new_dir())
        run(officer.login("officer", PASSWORD))
        urgent = officer.report_case(
            ffi.NewReport(category="C0102", position=fix(), address="", description="井盖")
        )
        queued = [
            officer.report_case(
                ffi.NewReport(category="E0102", position=fix(), address="", description=f"垃圾{n}")
            )
            for n in range(3)
        ]
        run(officer.sync_now())

        clock = Clock()
        maint = client(new_dir(), clock=clock)
        run(maint.login("maint", PASSWORD))
        run(maint.sync_now())
        mine = maint.list_cases_where(ffi.CaseListFilter(assigned_to_me=True))
        self.assertEqual([c.id for c in mine.cases], [urgent])
        self.assertEqual(mine.total, 1)
        task = mine.cases[0]
        self.assertEqual((task.status, task.status_zh, task.status_en), ("dispatched", "待处置", "Waiting to be handled"))
        self.assertEqual((task.category_zh, task.category_en), ("污水井盖", "Sewage manhole cover"))
        self.assertFalse(task.overdue)

        # Paging over the queued ones, newest first.
        reported = ffi.CaseListFilter(statuses=["reported"], limit=2)
        first = maint.list_cases_where(reported)
        self.assertGreaterEqual(first.total, 3)
        self.assertEqual(len(first.cases), 2)
        reported.offset = 2
        second = maint.list_cases_where(reported)
        ids = [c.id for c in first.cases + second.cases]
        self.assertEqual(len(ids), len(set(ids)), "pages do not overlap")
        for case_id in queued:
            self.assertIn(case_id, ids)
        self.assertEqual(maint.list_cases_where(ffi.CaseListFilter(reported_by_me=True)).total, 0)
        self.assertEqual(
            maint.list_cases_where(ffi.CaseListFilter(grid_prefix=task.grid[:12])).total,
            len(maint.list_cases()),
        )

        # Bad filters are refused.
        for bad in (
            ffi.CaseListFilter(limit=0),
            ffi.CaseListFilter(limit=501),
            ffi.CaseListFilter(statuses=["done"]),
            ffi.CaseListFilter(grid_prefix="41'; --"),
        ):
            with self.assertRaises(ffi.FieldError.InvalidInput):
                maint.list_cases_where(bad)

        # The detail: labels and typed actions.
        detail = maint.show_case(urgent)
        dispatch = [t for t in detail.timeline if t.action == "dispatch"][0]
        self.assertEqual((dispatch.action_zh, dispatch.action_en), ("派遣", "Dispatch"))
        self.assertEqual((dispatch.role, dispatch.role_zh), ("server", "系统"))
        by_name = {a.name: a for a in detail.actions}
        self.assertEqual(sorted(by_name), sorted(detail.allowed_actions))
        handle = by_name["handle"]
        self.assertEqual((handle.name_zh, handle.name_en, handle.needs), ("处置", "Handle", []))
        self.assertIsInstance(handle.template, ffi.CaseAction.HANDLE)
        extension = by_name["request_extension"]
        self.assertEqual(extension.needs, ["extra"])
        self.assertIsInstance(extension.template, ffi.CaseAction.REQUEST_EXTENSION)
        self.assertEqual(extension.template.extra, "2 working_days")

        # Three days later by the phone's clock (offline): the handling is overdue.
        clock.ahead_ms = 3 * 24 * 3600 * 1000
        overdue = maint.list_cases_where(ffi.CaseListFilter(overdue=True, assigned_to_me=True))
        self.assertEqual([c.id for c in overdue.cases], [urgent])
        self.assertTrue(overdue.cases[0].overdue)

        # The server's case: its steps are JSON, in the row as at the top.
        status, server = api("GET", f"/v1/cases/{urgent}", token("supervisor"))
        self.assertEqual(status, 200, server)
        self.assertIsInstance(server["case"]["steps"], list)
        self.assertEqual(server["case"]["steps"], server["steps"])

        # The template goes straight to `act`.
        maint.act(urgent, handle.template, "已更换")
        self.assertEqual(maint.show_case(urgent).summary.status, "handled")
        self.assertEqual(
            maint.list_cases_where(ffi.CaseListFilter(unsent=True)).cases[0].id, urgent
        )


if __name__ == "__main__":
    unittest.main()
