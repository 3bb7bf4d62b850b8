"""The app killed (SIGKILL) between writing and syncing, and in the middle of syncs:
after a restart, everything it had returned success for reaches the server, once."""

import os
import random
import signal
import subprocess
import sys
import time
import unittest

from helpers import PASSWORD, api, client, new_dir, run, token

HERE = os.path.dirname(os.path.abspath(__file__))


def spawn(*args):
    return subprocess.Popen(
        [sys.executable, os.path.join(HERE, "writer.py"), *args],
        stdout=subprocess.PIPE,
        text=True,
    )


class Killed(unittest.TestCase):
    def test_killed_after_writing_offline_sends_everything_once(self):
        data_dir = new_dir()
        phone = client(data_dir)
        run(phone.login("officer", PASSWORD))
        # The grids cached: a report is located on the phone, so its reporter may act
        # on it before the server has seen it (an unlocated case is in no one's scope).
        run(phone.refresh_reference_data())
        del phone

        child = spawn("offline", data_dir)
        line = child.stdout.readline().split()
        self.assertEqual(line[0], "WRITTEN", line)
        case_id = line[1]
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()

        phone = client(data_dir)
        pending = phone.pending()
        self.assertEqual((pending.documents, pending.photos, pending.track_points), (2, 1, 100))
        report = run(phone.sync_now())
        self.assertEqual(report.sent, 2, report)
        self.assertEqual(report.photos_uploaded, 1)
        self.assertEqual(phone.pending().documents, 0)
        again = run(phone.sync_now())
        self.assertEqual((again.sent, again.photos_uploaded), (0, 0), again)

        status, body = api("GET", f"/v1/cases/{case_id}", token("supervisor"))
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["photos"]), 1)
        notes = [e.get("note") for e in body["timeline"]]
        self.assertEqual(notes.count("离线备注"), 1, notes)
        ids = [e.get("id") for e in body["timeline"]]
        self.assertEqual(len(ids), len(set(ids)), "every entry once")

    def test_killed_at_random_moments_while_syncing_loses_nothing(self):
        data_dir = new_dir()
        phone = client(data_dir)
        run(phone.login("officer", PASSWORD))
        from helpers import ffi, fix

        case_id = phone.report_case(
            ffi.NewReport(category="C0102", position=fix(), address="", description="kill test")
        )
        run(phone.sync_now())
        del phone

        rng = random.Random(7)
        done = []
        for life in range(5):
            # Each life numbers its comments apart: one committed just before the
            # kill but never reported as done must not be taken for a duplicate.
            child = spawn("comments", data_dir, case_id, str(life * 100_000))
            time.sleep(rng.uniform(0.5, 2.5))
            child.send_signal(signal.SIGKILL)
            child.wait()
            for line in child.stdout.read().splitlines():
                word, n = line.split()
                if word == "DONE":
                    done.append(int(n))
            child.stdout.close()
        self.assertGreater(len(done), 5, "the children wrote something before dying")

        phone = client(data_dir)
        report = run(phone.sync_now())
        self.assertEqual(phone.pending().documents, 0, report)
        status, body = api("GET", f"/v1/cases/{case_id}", token("supervisor"))
        self.assertEqual(status, 200, body)
        notes = [e.get("note") for e in body["timeline"] if e.get("action") == "comment"]
        for n in done:
            self.assertEqual(notes.count(f"c{n}"), 1, f"comment c{n} reached the server once")


if __name__ == "__main__":
    unittest.main()
