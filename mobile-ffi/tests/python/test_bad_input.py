"""Bad input gets a clear, typed error and leaves the store as it was: a damaged
store file, photos that are missing or not photos, a server answering HTML or
garbage, and a phone clock hours off."""

import http.server
import os
import threading
import time
import unittest

from helpers import PASSWORD, URL, client, ffi, fix, new_dir, photo, run


class Stub(http.server.BaseHTTPRequestHandler):
    """A server that answers every request with `body` as `content_type`."""

    content_type = "text/html"
    body = b"<html><body>Please log in to the hotel Wi-Fi</body></html>"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(self.body)

    do_GET = do_POST = do_PATCH = do_HEAD = answer

    def log_message(self, *args):
        pass


def stub_server(content_type, body):
    handler = type("Handler", (Stub,), {"content_type": content_type, "body": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def snapshot(phone):
    return phone.pending(), phone.list_cases()


class Clock(ffi.PhoneClock):
    def __init__(self, offset_ms):
        self.offset_ms = offset_ms

    def now_ms(self):
        return int(time.time() * 1000) + self.offset_ms


class BadInput(unittest.TestCase):
    def logged_in(self):
        data_dir = new_dir()
        phone = client(data_dir)
        run(phone.login("officer", PASSWORD))
        case_id = phone.report_case(
            ffi.NewReport(category="C0102", position=fix(), address="", description="井盖")
        )
        return data_dir, phone, case_id

    def test_a_damaged_store_is_refused_until_wiped(self):
        for damage in ("garbage header", "truncated"):
            data_dir, phone, _ = self.logged_in()
            del phone
            path = os.path.join(data_dir, "store.sqlite3")
            with open(path, "r+b") as f:
                if damage == "garbage header":
                    f.write(b"this is not sqlite" * 8)
                else:
                    f.truncate(os.path.getsize(path) // 3)
            with self.assertRaises(ffi.FieldError.Storage) as raised:
                client(data_dir)
            self.assertFalse(raised.exception.recoverable, damage)
            ffi.wipe_data_dir(data_dir)
            fresh = client(data_dir)
            self.assertIsNone(fresh.session())

    def test_a_damaged_document_is_fetched_again_and_the_rest_syncs(self):
        import sqlite3

        data_dir, phone, case_id = self.logged_in()
        run(phone.sync_now())
        other = phone.report_case(
            ffi.NewReport(category="C0102", position=fix(), address="", description="另一个")
        )
        del phone
        db = sqlite3.connect(os.path.join(data_dir, "store.sqlite3"))
        with db:
            db.execute(
                "UPDATE document_chunks SET bytes = x'85c1deadbeef' WHERE doc_id = ?", (case_id,)
            )
            db.execute("UPDATE documents SET unsent = 1, unsent_since = 0 WHERE id = ?", (case_id,))
        db.close()
        phone = client(data_dir)
        with self.assertRaises(ffi.FieldError.Storage) as raised:
            phone.show_case(case_id)
        self.assertFalse(raised.exception.recoverable)
        report = run(phone.sync_now())
        self.assertTrue(any(r.startswith(case_id) for r in report.refused), report.refused)
        self.assertEqual(phone.show_case(case_id).summary.status, "dispatched")
        self.assertEqual(phone.show_case(other).summary.status, "dispatched")
        self.assertEqual(phone.pending().documents, 0)

    def test_photos_that_are_missing_or_not_photos(self):
        data_dir, phone, case_id = self.logged_in()
        before = snapshot(phone), phone.show_case(case_id)
        text = os.path.join(data_dir, "..", "notes.jpg")
        with open(text, "w") as f:
            f.write("这不是照片 not a photo\n")
        cases = [
            ("/nonexistent/IMG_0001.jpg", "not_found"),
            (text, "not_an_image"),
            (photo("photo.heic"), "heif_unsupported"),
            (photo("bomb.png"), "too_large"),
            (photo("empty.jpg"), "empty"),
        ]
        for path, code in cases:
            with self.assertRaises(ffi.FieldError.Photo) as raised:
                run(phone.attach_photo(case_id, path, ffi.PhotoRole.BEFORE))
            self.assertEqual(raised.exception.code, code, path)
            self.assertEqual((snapshot(phone), phone.show_case(case_id)), before, path)
        with self.assertRaises(ffi.FieldError.NotFound):
            run(phone.attach_photo("no-such-case", photo("before.jpg"), ffi.PhotoRole.BEFORE))
        self.assertEqual(os.listdir(os.path.join(data_dir, "photos")), [])

    def test_a_server_answering_html_or_garbage(self):
        data_dir, phone, case_id = self.logged_in()
        del phone
        for content_type, body in [
            ("text/html", b"<html>captive portal</html>"),
            ("application/cbor", b"\xff\x00garbage\x13\x37"),
            ("application/json", b'{"not": "a sync reply"}'),
        ]:
            server, url = stub_server(content_type, body)
            try:
                phone = client(data_dir, url)
                before = snapshot(phone)
                with self.assertRaises(ffi.FieldError.BadServerAnswer) as raised:
                    run(phone.sync_now())
                self.assertIn(content_type, str(raised.exception))
                self.assertEqual(snapshot(phone), before, content_type)
                with self.assertRaises(ffi.FieldError.BadServerAnswer):
                    run(phone.login("officer", PASSWORD))
                self.assertEqual(snapshot(phone), before)
                del phone
            finally:
                server.shutdown()
        # The real server still takes everything.
        phone = client(data_dir)
        report = run(phone.sync_now())
        self.assertEqual(report.outcome, ffi.SyncOutcome.SYNCED, report)
        self.assertEqual(phone.show_case(case_id).summary.status, "dispatched")

    def test_a_phone_clock_hours_ahead_writes_server_time(self):
        three_hours = 3 * 3600 * 1000
        data_dir = new_dir()
        phone = client(data_dir, URL, Clock(three_hours))
        run(phone.login("officer", PASSWORD))
        case_id = phone.report_case(
            ffi.NewReport(category="C0102", position=fix(), address="", description="钟快三小时")
        )
        reported = phone.show_case(case_id).timeline[0].at_ms
        self.assertLess(abs(reported - time.time() * 1000), 60_000, "corrected to server time")
        report = run(phone.sync_now())
        self.assertEqual(report.outcome, ffi.SyncOutcome.SYNCED, report)
        self.assertLess(abs(report.clock_skew_s + 3 * 3600), 120, report.clock_skew_s)
        # The session is not taken for expired by the fast clock.
        self.assertIsNotNone(phone.session())


if __name__ == "__main__":
    unittest.main()
