"""A phone app that gets killed: run by test_killed.py as a child process.

`offline DIR`: reports a case with a photo, checks in, comments, records 100 track
points, all offline; prints `WRITTEN <case id>` once every call has returned, then
waits to be killed.

`comments DIR CASE_ID START`: comments on the case (`c<n>` from START on), printing
`DONE <n>` after each returned call and syncing every third one, until killed."""

import sys
import time

from helpers import DEAD_URL, client, ffi, fix, photo, run


def offline(data_dir):
    phone = client(data_dir, DEAD_URL)
    case_id = phone.report_case(
        ffi.NewReport(
            category="C0102",
            position=fix(),
            address="经三路",
            description="井盖缺失",
        )
    )
    run(phone.attach_photo(case_id, photo("before.jpg"), ffi.PhotoRole.BEFORE))
    phone.check_in(fix(), None)
    phone.act(case_id, ffi.CaseAction.COMMENT(), "离线备注")
    now = int(time.time() * 1000)
    lon, lat = fix().lon, fix().lat
    phone.record_track(
        [
            ffi.GpsFix(lon=lon + i * 1e-5, lat=lat, accuracy_m=8.0, at_ms=now - (100 - i) * 5000)
            for i in range(100)
        ]
    )
    print("WRITTEN", case_id, flush=True)
    time.sleep(3600)


def comments(data_dir, case_id, start):
    from helpers import URL

    phone = client(data_dir, URL)
    n = start
    while True:
        phone.act(case_id, ffi.CaseAction.COMMENT(), f"c{n}")
        print("DONE", n, flush=True)
        if n % 3 == 0:
            run(phone.sync_now())
        n += 1


if __name__ == "__main__":
    if sys.argv[1] == "offline":
        offline(sys.argv[2])
    else:
        comments(sys.argv[2], sys.argv[3], int(sys.argv[4]))
