"""Shared pieces of the end-to-end scripts: the generated bindings, the environment
the Rust driver (tests/tests/mobile_python.rs) passes, the supervisor's HTTP calls,
and a push listener that queues what it hears."""

import asyncio
import json
import os
import queue
import tempfile
import urllib.error
import urllib.request

import wangge_mobile_ffi as ffi

URL = os.environ["WANGGE_URL"]
# A port nothing listens on: the phone is "offline".
DEAD_URL = os.environ["WANGGE_DEAD_URL"]
PASSWORD = os.environ["WANGGE_PASSWORD"]
GRID_A = os.environ["WANGGE_GRID_A"]
PHOTO_DIR = os.environ["WANGGE_PHOTO_DIR"]


def fix(name="WANGGE_POS_A", accuracy=5.0, at_ms=None):
    lon, lat = (float(x) for x in os.environ[name].split(","))
    return ffi.GpsFix(lon=lon, lat=lat, accuracy_m=accuracy, at_ms=at_ms)


def photo(name):
    return os.path.join(PHOTO_DIR, name)


def run(coroutine):
    return asyncio.run(coroutine)


def client(data_dir, url=URL, clock=None):
    config = ffi.ClientConfig(data_dir=data_dir, server_url=url, device_name="Redmi 12")
    if clock is None:
        return ffi.FieldClient.open(config)
    return ffi.FieldClient.open_with_clock(config, clock)


def new_dir():
    return tempfile.mkdtemp(prefix="wangge-phone-")


def api(method, path, token=None, body=None):
    """The server's JSON API (the supervisor's desk): (status, body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(URL + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def fetch(path, token):
    """GET `path` as bytes: (status, body)."""
    request = urllib.request.Request(URL + path)
    request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def token(user):
    status, body = api(
        "POST",
        "/v1/auth/login",
        body={"user": user, "password": PASSWORD, "device": {"name": "desk"}},
    )
    assert status == 200, body
    return body["access_token"]


class Listener(ffi.PushListener):
    """Queues every notice as (kind, value)."""

    def __init__(self):
        self.events = queue.Queue()

    def on_dispatch(self, case_id):
        self.events.put(("dispatch", case_id))

    def on_double_report(self, case_id):
        self.events.put(("double_report", case_id))

    def on_sync_needed(self, document_ids):
        self.events.put(("sync_needed", list(document_ids)))

    def on_revoked(self):
        self.events.put(("revoked", None))

    def on_connection_changed(self, online):
        self.events.put(("online", online))

    def wait_for(self, kind, timeout=30):
        """The next event of `kind`, skipping others; fails after `timeout` s."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {kind} notice within {timeout} s"
            try:
                event, value = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event == kind:
                return value


def settle(*clients, times=2):
    """Syncs each client in turn, `times` rounds, so every edit has gone both ways."""
    reports = []
    for _ in range(times):
        for c in clients:
            reports.append(run(c.sync_now()))
    return reports
