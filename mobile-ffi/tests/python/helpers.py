"""Shared pieces of the end-to-end scripts: the generated bindings, the environment
the Rust driver (tests/tests/mobile_python.rs) passes, the supervisor's HTTP calls,
and a push listener that queues what it hears."""

import asyncio
import json
import os
import queue
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
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


def client(data_dir, url=URL, clock=None, **settings):
    config = ffi.ClientConfig(
        data_dir=data_dir, server_url=url, device_name="Redmi 12", **settings
    )
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


def login_as_device(user, device_id):
    """Logs in as `user` claiming the device `device_id`: (status, body)."""
    return api(
        "POST",
        "/v1/auth/login",
        body={"user": user, "password": PASSWORD, "device": {"id": device_id, "name": "phone"}},
    )


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


def jpeg_size(data):
    """(width, height) from a JPEG's frame header, without an image library."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    i = 2
    while i < len(data):
        assert data[i] == 0xFF, f"bad marker at {i}"
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + length
    raise AssertionError("no frame header")


class _Listening:
    """A loopback listener with a thread that hands each connection to `serve`."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.held = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.held.append(connection)
            threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def serve(self, connection):
        pass

    def close(self):
        self.sock.close()
        with self.lock:
            for c in self.held:
                try:
                    c.close()
                except OSError:
                    pass


class Silent(_Listening):
    """Accepts every connection and never says a word (a dead proxy, a hung server)."""

    def serve(self, connection):
        pass


class Trickle(_Listening):
    """Answers headers, then one byte of body every `every` seconds, forever: never
    silent long enough for an idle timeout, so only the request timeout ends it."""

    def __init__(self, every=0.3):
        self.every = every
        super().__init__()

    def serve(self, connection):
        try:
            connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000000\r\n\r\n"
            )
            while True:
                time.sleep(self.every)
                connection.sendall(b" ")
        except OSError:
            pass


class Proxy(_Listening):
    """Forwards to the real server; `cut()` drops every connection and refuses new
    ones until `resume()` (the phone's network going away and coming back)."""

    def __init__(self, target=URL):
        self.retarget(target)
        self.up = True
        self.frozen = False
        super().__init__()

    def serve(self, connection):
        if not self.up:
            connection.close()
            return
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            connection.close()
            return
        with self.lock:
            self.held.append(upstream)

        def pump(source, sink):
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    if not self.frozen:
                        sink.sendall(data)
            except OSError:
                pass
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

        threading.Thread(target=pump, args=(connection, upstream), daemon=True).start()
        pump(upstream, connection)

    def retarget(self, target):
        """New connections go to `target` (a restarted server on another port)."""
        parsed = urllib.parse.urlparse(target)
        self.target = (parsed.hostname, parsed.port)

    def cut(self):
        self.up = False
        with self.lock:
            held, self.held = self.held, []
        for c in held:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def resume(self):
        self.up = True

    def freeze(self, frozen=True):
        """Keeps every connection open but carries nothing (a NAT that dropped the
        mapping without a word): only timeouts notice."""
        self.frozen = frozen


def private_ca(directory):
    """A city's private certificate authority and a certificate for 127.0.0.1 it
    signed, made with the openssl tool: (authority PEM path, cert path, key path)."""
    import subprocess

    def path(name):
        return os.path.join(directory, name)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run_ = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)
    run_("req", "-x509", *ec, "-days", "2", "-subj", "/CN=city CA",
         "-keyout", path("ca-key.pem"), "-out", path("ca.pem"))
    run_("req", *ec, "-subj", "/CN=wangge", "-keyout", path("key.pem"), "-out", path("csr.pem"))
    with open(path("ext.cnf"), "w") as f:
        f.write(
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
            "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        )
    run_("x509", "-req", "-days", "2", "-CAcreateserial", "-in", path("csr.pem"),
         "-CA", path("ca.pem"), "-CAkey", path("ca-key.pem"), "-extfile", path("ext.cnf"),
         "-out", path("cert.pem"))
    return path("ca.pem"), path("cert.pem"), path("key.pem")


def serve(extra_env):
    """A second `wangge serve` on the same database (its users and signing keys), with
    `extra_env`: (process, base URL). Stop it with `process.terminate()`."""
    import subprocess

    env = dict(os.environ, WANGGE_LOG="warn", **extra_env)
    process = subprocess.Popen(
        [os.environ["WANGGE_BIN"], "serve", "--listen", "127.0.0.1:0",
         "--database", os.environ["WANGGE_DATABASE"]],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    for line in process.stdout:
        if "listening on " in line:
            return process, line.split("listening on ", 1)[1].strip()
    process.kill()
    raise AssertionError("the second server did not start")
