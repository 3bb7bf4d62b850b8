"""Photos to look at (issue 29): a phone shows the photos of the cases it holds — its
own before upload from its local copy, anyone's after, as the server's thumbnail or
display image — kept for offline, bounded, and dropped with the case."""

import os
import unittest

from helpers import (
    DEAD_URL,
    PASSWORD,
    client,
    ffi,
    fix,
    jpeg_size,
    new_dir,
    photo,
    run,
)


def cache_files(data_dir):
    d = os.path.join(data_dir, "photo-cache")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


class PhotoView(unittest.TestCase):
    def test_another_phones_photo_is_shown_after_sync_and_offline(self):
        officer_dir = new_dir()
        officer = client(officer_dir)
        run(officer.login("officer", PASSWORD))
        # A missing sewage cover: dispatched at once to the maintenance worker.
        case_id = officer.report_case(
            ffi.NewReport(category="C0102", position=fix(), address="", description="看照片")
        )
        before = run(officer.attach_photo(case_id, photo("before.jpg"), ffi.PhotoRole.BEFORE))
        # Not uploaded yet: the phone's own copy.
        local = run(officer.photo_file(before.sha256, ffi.PhotoVariant.THUMBNAIL))
        self.assertTrue(local.startswith(os.path.join(officer_dir, "photos")), local)
        # The same picture again is the same photo, not a second entry.
        again = run(officer.attach_photo(case_id, photo("before.jpg"), ffi.PhotoRole.BEFORE))
        self.assertEqual(again.sha256, before.sha256)
        self.assertEqual(len(officer.show_case(case_id).photos), 1)
        report = run(officer.sync_now())
        self.assertEqual(report.photos_uploaded, 1)
        self.assertGreater(report.bytes_up, before.size, "photo bytes are counted")

        maint_dir = new_dir()
        maint = client(maint_dir)
        run(maint.login("maint", PASSWORD))
        run(maint.sync_now())
        shown = maint.show_case(case_id)
        self.assertEqual([p.sha256 for p in shown.photos], [before.sha256])
        thumb = run(maint.photo_file(before.sha256, ffi.PhotoVariant.THUMBNAIL))
        display = run(maint.photo_file(before.sha256, ffi.PhotoVariant.DISPLAY))
        with open(thumb, "rb") as f:
            width, height = jpeg_size(f.read())
        self.assertLessEqual(max(width, height), 320)
        with open(display, "rb") as f:
            width, height = jpeg_size(f.read())
        self.assertLessEqual(max(width, height), 1280)
        self.assertGreater(max(width, height), 320)
        del maint

        # Offline: the same files, no network.
        offline = client(maint_dir, url=DEAD_URL)
        self.assertEqual(run(offline.photo_file(before.sha256, ffi.PhotoVariant.THUMBNAIL)), thumb)
        self.assertEqual(run(offline.photo_file(before.sha256, ffi.PhotoVariant.DISPLAY)), display)
        # Bad and unknown hashes.
        with self.assertRaises(ffi.FieldError.InvalidInput):
            run(offline.photo_file("../../etc/passwd", ffi.PhotoVariant.THUMBNAIL))
        with self.assertRaises(ffi.FieldError.NotFound):
            run(offline.photo_file("0" * 64, ffi.PhotoVariant.THUMBNAIL))
        # The case leaves the phone: its photos go with it.
        offline.discard_local_changes(case_id)
        self.assertEqual(cache_files(maint_dir), [])
        with self.assertRaises(ffi.FieldError.NotFound):
            run(offline.photo_file(before.sha256, ffi.PhotoVariant.THUMBNAIL))

        # The officer's own photo after upload (the local copy is gone): downloaded.
        own = run(officer.photo_file(before.sha256, ffi.PhotoVariant.DISPLAY))
        self.assertTrue(own.startswith(os.path.join(officer_dir, "photo-cache")), own)

    def test_the_cache_is_bounded(self):
        officer = client(new_dir())
        run(officer.login("officer", PASSWORD))
        case_id = officer.report_case(
            ffi.NewReport(category="C0102", position=fix(), address="", description="缓存")
        )
        hashes = [
            run(officer.attach_photo(case_id, photo(name), ffi.PhotoRole.OTHER)).sha256
            for name in ("before.jpg", "more.jpg", "after.jpg")
        ]
        run(officer.sync_now())
        viewer_dir = new_dir()
        viewer = client(viewer_dir, photo_cache_mb=1)
        run(viewer.login("maint", PASSWORD))
        run(viewer.sync_now())
        paths = []
        for _ in range(2):
            for sha in hashes:
                for variant in (ffi.PhotoVariant.DISPLAY, ffi.PhotoVariant.THUMBNAIL):
                    path = run(viewer.photo_file(sha, variant))
                    self.assertTrue(os.path.isfile(path), "the path returned exists")
                    paths.append(path)
        sizes = [
            os.path.getsize(os.path.join(viewer_dir, "photo-cache", f))
            for f in cache_files(viewer_dir)
        ]
        self.assertTrue(sum(sizes) <= 1 << 20 or len(sizes) == 1, sizes)
        self.assertGreater(len(sizes), 0)


if __name__ == "__main__":
    unittest.main()
