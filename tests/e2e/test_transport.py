"""Transport security and flood limits: jobd on a Unix socket and over TLS
(with curl and jobctl), the certificate swapped on SIGHUP, slow clients cut
off while others are served, connection floods, running out of file
descriptors, huge bodies and deeply nested JSON.

Traffic goes to 127.0.0.0/8 and Unix sockets only. Certificates are made
here with openssl for 127.0.0.1 and localhost. The waits are on events (a
log line, an answer, a socket becoming readable); the only sleeps are the
slow client's, between its lines - the behaviour under test - and the
window in which jobd's CPU time is measured."""
import grp
import http.client
import json
import os
import queue
import select
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
import unittest
import warnings

from jobdtest import JOBD, Daemon, DaemonTest, jobctl

CURL = shutil.which("curl")
OPENSSL = shutil.which("openssl")


def curl(*args, timeout=60):
    return subprocess.run([CURL, "-sS", "--max-time", "30", *args], capture_output=True,
                          text=True, timeout=timeout)


def make_pki(d):
    """A throwaway CA and two server certificates it signed: server.pem for
    127.0.0.1 and localhost, other.pem for other.invalid only."""
    def run(*args):
        subprocess.run([OPENSSL, *args], check=True, capture_output=True, cwd=d, timeout=60)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=jobd test CA")
    for name, san in (("server", "DNS:localhost,IP:127.0.0.1"),
                      ("other", "DNS:other.invalid")):
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    for key in ("ca.key", "server.key", "other.key"):
        os.chmod(os.path.join(d, key), 0o600)
    return {k: os.path.join(d, k) for k in
            ("ca.pem", "server.pem", "server.key", "other.pem", "other.key")}


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def served_cert(host, port, ca):
    """The certificate jobd serves (DER), checked against the CA but not
    against a host name."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    with socket.create_connection((host, port), timeout=30) as s:
        with ctx.wrap_socket(s) as t:
            return t.getpeercert(binary_form=True)


def connect(port, source=None, timeout=30):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0) if source else None)


def read_answer(s):
    """Bytes until the connection closes (or 64 KiB)."""
    data = b""
    try:
        while len(data) < 65536:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


def raw_get(port, path="/v1/health", source=None):
    with connect(port, source) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return read_answer(s)


def readable_within(socks, seconds, want=None):
    """The sockets of `socks` that become readable within `seconds` (or
    as soon as `want` of them have)."""
    ready, pending = set(), list(socks)
    deadline = time.monotonic() + seconds
    while pending and (want is None or len(ready) < want):
        left = max(deadline - time.monotonic(), 0)
        r, _, _ = select.select(pending, [], [], left)
        for s in r:
            ready.add(s)
            pending.remove(s)
        if left == 0:
            break
    return ready


def until(fn, timeout=20):
    """Call fn until it returns something true (jobd learns of closed
    connections asynchronously); returns that value, or fails."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.1)


def metric(d, name, **labels):
    """A value from jobd's /metrics (None when absent). Read to the end of
    the connection, which jobd closes only after it has forgotten it: the
    next count does not include it."""
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
                   if labels else "")
    answer = raw_get(d.port, "/metrics")
    for line in answer.split(b"\r\n\r\n", 1)[-1].decode().splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


def settle(d):
    """Wait until jobd has noticed every connection the test closed: only
    the one asking is open."""
    if not until(lambda: metric(d, "jobd_http_connections") == 1):
        raise AssertionError("connections still open: %s" % metric(d, "jobd_http_connections"))


def other_group():
    """A group the socket can be given: one other than ours if we may."""
    mine = os.getegid()
    candidates = [g for g in os.getgroups() if g != mine]
    if os.geteuid() == 0:
        candidates += [g.gr_gid for g in grp.getgrall() if g.gr_gid != mine]
    return candidates[0] if candidates else mine


def check_stopped(test, d):
    code = d.stop()
    report = d.sanitizer_report()
    log = d.log()
    d.cleanup()
    test.assertIsNone(report, report)
    test.assertEqual(code, 0, log[-4000:])


# ---- Unix socket ----

class UnixSocket(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="jobd-sock-")
        cls.path = os.path.join(cls.dir, "api.sock")
        cls.gid = other_group()
        try:
            group = grp.getgrgid(cls.gid).gr_name  # by name, as a config would
        except KeyError:
            group = str(cls.gid)
        cls.d = Daemon("--listen", f"unix:{cls.path}", "--listen-mode", "0660",
                       "--listen-group", group)

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        report, log = cls.d.sanitizer_report(), cls.d.log()
        cls.d.cleanup()
        gone = not os.path.exists(cls.path)
        shutil.rmtree(cls.dir, ignore_errors=True)
        if report:
            raise AssertionError("sanitizer report:\n" + report)
        if code != 0:
            raise AssertionError(f"jobd exited {code}:\n{log[-4000:]}")
        if not gone:
            raise AssertionError("jobd left its socket behind")

    def test_logged_address(self):
        self.assertEqual(self.d.url, f"unix:{self.path}")

    def test_file_mode_and_group(self):
        st = os.stat(self.path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(st.st_gid, self.gid)

    def test_curl(self):
        r = curl("--unix-socket", self.path, "http://localhost/v1/health")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["status"], "ok")
        r = curl("--unix-socket", self.path, "-H", "Content-Type: application/json",
                 "-d", '{"task":"echo","params":{"value":"via-curl"}}',
                 "http://localhost/v1/jobs")
        self.assertEqual(r.returncode, 0, r.stderr)
        job = self.d.wait(json.loads(r.stdout)["id"])
        self.assertEqual(job["result"], {"value": "via-curl"})

    def test_jobctl(self):
        url = f"unix:{self.path}"
        r = jobctl("--url", url, "health")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ok", r.stdout)
        r = jobctl("submit", "echo", "--param", "value=7", "--wait", url=url)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(json.loads(r.stdout), {"value": 7})
        r = jobctl("run", "--", "sh", "-c", "echo out; echo err >&2; exit 3", url=url)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (3, "out\n", "err\n"))
        r = jobctl("--json", "list", url=url)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_jobctl_no_such_socket(self):
        r = jobctl("--url", f"unix:{self.dir}/nope.sock", "health")
        self.assertEqual(r.returncode, 3)
        self.assertIn("No such file", r.stderr)

    def test_live_socket_is_not_taken_over(self):
        with tempfile.TemporaryDirectory() as state:
            r = subprocess.run([JOBD, "-c", "/dev/null", "--listen", f"unix:{self.path}",
                                "--state-dir", state], capture_output=True, text=True,
                               timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("already listening", r.stderr)
        self.assertEqual(self.d.request("GET", "/v1/health")[0], 200)

    def test_other_file_is_left_alone(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "api.sock")
            with open(path, "w") as f:
                f.write("precious")
            r = subprocess.run([JOBD, "-c", "/dev/null", "--listen", f"unix:{path}",
                                "--state-dir", os.path.join(tmp, "state")],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("not a socket", r.stderr)
            with open(path) as f:
                self.assertEqual(f.read(), "precious")

    def test_stale_socket_is_replaced(self):
        with tempfile.TemporaryDirectory(prefix="jobd-sock-") as tmp:
            path = os.path.join(tmp, "api.sock")
            s = socket.socket(socket.AF_UNIX)
            s.bind(path)  # bound, never listened on, closed: stale
            s.close()
            d = Daemon("--listen", f"unix:{path}")
            try:
                self.assertEqual(d.request("GET", "/v1/health")[0], 200)
                self.assertIn("stale", d.log())
            finally:
                check_stopped(self, d)
            self.assertFalse(os.path.exists(path))


@unittest.skipUnless(shutil.which("systemd-socket-activate"), "needs systemd-socket-activate")
class UnixSocketActivation(unittest.TestCase):
    """A Unix socket from the service manager (jobd.socket with
    ListenStream=/run/jobd/api.sock): served, and left in place at exit."""

    def test_activated_unix_socket(self):
        with tempfile.TemporaryDirectory(prefix="jobd-sock-") as tmp:
            path = os.path.join(tmp, "api.sock")
            proc = subprocess.Popen(
                ["systemd-socket-activate", "-l", path, JOBD, "-c", "/dev/null",
                 "--state-dir", os.path.join(tmp, "state"), "--processes", "1",
                 "--listen", "127.0.0.1:1"],  # the passed socket wins
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                self.assertIn("Listening on", proc.stderr.readline())
                # jobd is started by the first connection, as by a .socket unit.
                r = curl("--unix-socket", path, "http://localhost/v1/health")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(json.loads(r.stdout)["status"], "ok")
                r = jobctl("--url", f"unix:{path}", "submit", "echo", "--param", "value=1",
                           "--wait")
                self.assertEqual((r.returncode, r.stderr), (0, ""))
                proc.send_signal(signal.SIGTERM)
                _, err = proc.communicate(timeout=60)
                self.assertEqual(proc.returncode, 0, err)
                self.assertIn(f"listening on unix:{path}", err)
                self.assertNotIn("runtime error", err)
                # The socket belongs to the service manager: not removed.
                self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode))
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


# ---- TLS ----

@unittest.skipUnless(OPENSSL, "needs openssl")
class TLS(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki_dir = tempfile.mkdtemp(prefix="jobd-pki-")
        cls.pki = make_pki(cls.pki_dir)
        cls.ca = cls.pki["ca.pem"]
        cls.d = Daemon("--tls-cert", cls.pki["server.pem"], "--tls-key", cls.pki["server.key"],
                       ssl_context=ssl.create_default_context(cafile=cls.ca))
        cls.url = cls.d.url

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        report, log = cls.d.sanitizer_report(), cls.d.log()
        cls.d.cleanup()
        shutil.rmtree(cls.pki_dir, ignore_errors=True)
        if report:
            raise AssertionError("sanitizer report:\n" + report)
        if code != 0:
            raise AssertionError(f"jobd exited {code}:\n{log[-4000:]}")

    def test_logged_https_address(self):
        self.assertTrue(self.url.startswith("https://127.0.0.1:"), self.url)
        self.assertRegex(self.d.log(), r"tls: serving .*server\.pem")

    def test_curl_tls12_and_tls13(self):
        for flags in (["--tlsv1.2", "--tls-max", "1.2"], ["--tlsv1.3"]):
            with self.subTest(flags=flags):
                r = curl("--cacert", self.ca, *flags, f"{self.url}/v1/health")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(json.loads(r.stdout)["status"], "ok")
        r = curl("--cacert", self.ca, f"https://localhost:{self.d.port}/v1/health")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_versions_negotiated(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = ssl.create_default_context(cafile=self.ca)
            ctx.minimum_version = ctx.maximum_version = version
            with socket.create_connection(("127.0.0.1", self.d.port), timeout=30) as s:
                with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                    self.assertEqual(t.version(), version.name.replace("v1_", "v1."))

    def test_tls11_and_older_refused(self):
        r = curl("--cacert", self.ca, "--tlsv1.0", "--tls-max", "1.1", f"{self.url}/v1/health")
        self.assertNotEqual(r.returncode, 0)
        # curl's OpenSSL may refuse TLS 1.1 on its own; make sure jobd does,
        # with a client that offers it.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.ca)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.set_ciphers("DEFAULT@SECLEVEL=0")
                ctx.minimum_version = ssl.TLSVersion.TLSv1
                ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ssl.SSLError, ValueError):
            self.skipTest("this OpenSSL cannot offer TLS 1.1")
        with socket.create_connection(("127.0.0.1", self.d.port), timeout=30) as s:
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                ctx.wrap_socket(s, server_hostname="127.0.0.1").close()

    def test_curl_without_cacert_fails_verification(self):
        r = curl(f"{self.url}/v1/health")
        self.assertEqual(r.returncode, 60, r.stderr)  # peer certificate cannot be authenticated

    def test_jobctl_with_cacert(self):
        r = jobctl("--url", self.url, "--cacert", self.ca, "health")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = jobctl("--url", f"https://localhost:{self.d.port}", "--cacert", self.ca, "submit",
                   "echo", "--param", "value=5", "--wait")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(json.loads(r.stdout), {"value": 5})
        r = jobctl("run", "--", "echo", "over tls", url=self.url,
                   env={"JOBD_CACERT": self.ca})
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "over tls\n", ""))

    def test_jobctl_without_cacert_fails(self):
        r = jobctl("--url", self.url, "health", env={"JOBD_CACERT": ""})
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("did not verify", r.stderr)
        self.assertIn("--cacert", r.stderr)
        r = jobctl("--url", self.url, "--cacert", "/nonexistent/ca.pem", "health")
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_harness_over_tls(self):
        status, _, body = self.d.request("GET", "/v1/health")
        self.assertEqual((status, body["status"]), (200, "ok"))

    def test_plain_http_to_the_tls_port(self):
        answer = raw_get(self.d.port)
        self.assertFalse(answer.startswith(b"HTTP/"), answer[:80])
        r = jobctl("--url", f"http://127.0.0.1:{self.d.port}", "health")
        self.assertEqual(r.returncode, 3)
        # and jobd goes on serving TLS
        self.assertEqual(self.d.request("GET", "/v1/health")[0], 200)


@unittest.skipUnless(OPENSSL, "needs openssl")
class TLSReload(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="jobd-pki-")
        self.pki = make_pki(self.tmp)
        self.ca = self.pki["ca.pem"]
        # The files jobd reads, replaced by the test.
        self.cert = os.path.join(self.tmp, "live.pem")
        self.key = os.path.join(self.tmp, "live.key")
        shutil.copy(self.pki["server.pem"], self.cert)
        shutil.copy(self.pki["server.key"], self.key)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def install(self, name):
        for src, dst in ((f"{name}.pem", self.cert), (f"{name}.key", self.key)):
            shutil.copy(self.pki[src], dst + ".new")
            os.replace(dst + ".new", dst)

    def test_sighup_serves_the_new_certificate(self):
        d = Daemon("--tls-cert", self.cert, "--tls-key", self.key,
                   ssl_context=ssl.create_default_context(cafile=self.ca))
        try:
            self.assertEqual(served_cert("127.0.0.1", d.port, self.ca),
                             der_of(self.pki["server.pem"]))
            # A connection opened before the reload lives through it.
            kept = d.connection()
            kept.request("GET", "/v1/health")
            resp = kept.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)

            self.install("other")
            mark = len(d.lines)
            d.signal(signal.SIGHUP)
            d.wait_log(r"tls: now serving .*other\.invalid|CN=other", start=mark)
            self.assertEqual(served_cert("127.0.0.1", d.port, self.ca),
                             der_of(self.pki["other.pem"]))
            kept.request("GET", "/v1/health")
            resp = kept.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
            kept.close()
            # jobctl checks the name: other.invalid is not 127.0.0.1.
            r = jobctl("--url", d.url, "--cacert", self.ca, "health")
            self.assertEqual(r.returncode, 3)
            self.assertIn("mismatch", r.stderr)

            # A bad certificate on reload: the old one stays.
            with open(self.cert, "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
            mark = len(d.lines)
            d.signal(signal.SIGHUP)
            d.wait_log(r"still serving the previous certificate", start=mark)
            self.assertEqual(served_cert("127.0.0.1", d.port, self.ca),
                             der_of(self.pki["other.pem"]))

            self.install("server")
            mark = len(d.lines)
            d.signal(signal.SIGHUP)
            d.wait_log(r"tls: now serving", start=mark)
            r = jobctl("--url", d.url, "--cacert", self.ca, "health")
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            check_stopped(self, d)

    def test_bad_tls_configuration_exits_78(self):
        garbage = os.path.join(self.tmp, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("hello\n")
        cases = [
            (["--tls-cert", garbage, "--tls-key", self.key], "tls_cert"),
            (["--tls-cert", self.cert, "--tls-key", self.pki["other.key"]], "does not belong"),
            (["--tls-cert", self.cert], "tls_key"),
            (["--tls-cert", self.cert, "--tls-key", self.key, "--tls-priorities", "NOPE"],
             "tls_priorities"),
            (["--tls-cert", self.cert, "--tls-key", self.key, "--listen",
              f"unix:{self.tmp}/api.sock"], "TLS is for TCP"),
        ]
        for args, message in cases:
            for check in ([], ["--check-config"]):
                with self.subTest(args=args, check=check):
                    r = subprocess.run([JOBD, "-c", "/dev/null", "--state-dir",
                                        os.path.join(self.tmp, "state"), *args, *check],
                                       capture_output=True, text=True, timeout=60)
                    self.assertEqual(r.returncode, 78, r.stderr)
                    self.assertIn(message, r.stderr)


# ---- slow clients ----

class SlowClients(DaemonTest):
    ARGS = ("--request-timeout", "3", "--threads", "1")

    def dribble(self, first, line, result, limit=20):
        """Send `first`, then `line` every second, until jobd cuts the
        connection off; result gets the seconds that took and what was
        read."""
        s = connect(self.d.port)
        t0 = time.monotonic()
        answer = b""
        try:
            s.sendall(first)
            for _ in range(limit):
                time.sleep(1)  # the slowness under test
                if readable_within([s], 0):
                    break
                s.sendall(line)
        except OSError:
            pass
        result["seconds"] = time.monotonic() - t0
        s.settimeout(5)
        answer = read_answer(s)
        s.close()
        result["answer"] = answer

    def check_cut_off_while_others_are_served(self, first, line):
        result = {}
        t = threading.Thread(target=self.dribble, args=(first, line, result))
        t.start()
        served = 0
        while t.is_alive():
            t0 = time.monotonic()
            status, _, _ = self.d.request("GET", "/v1/health", timeout=10)
            self.assertEqual(status, 200)
            self.assertLess(time.monotonic() - t0, 2)
            served += 1
            t.join(0.2)
        self.assertGreaterEqual(served, 3)
        # Cut off after request_timeout (3 s), noticed at its next line.
        self.assertGreaterEqual(result["seconds"], 2.5)
        self.assertLess(result["seconds"], 7, result)
        self.assertTrue(result["answer"] == b"" or
                        result["answer"].startswith(b"HTTP/1.1 408"), result["answer"][:80])
        self.d.wait_log(r"cut off .*request_timeout")
        self.assertGreaterEqual(metric(self.d, "jobd_http_connections_refused_total",
                                       reason="request_timeout"), 1)

    def test_slow_headers_are_cut_off(self):
        self.check_cut_off_while_others_are_served(
            b"GET /v1/health HTTP/1.1\r\nHost: x\r\n", b"X-Slow: 1\r\n")

    def test_slow_body_is_cut_off(self):
        self.check_cut_off_while_others_are_served(
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n", b" " * 10)

    def test_idle_kept_alive_connection_is_not_cut_at_request_timeout(self):
        conn = self.d.connection()
        conn.request("GET", "/v1/health")
        resp = conn.getresponse()
        resp.read()
        self.assertEqual(resp.status, 200)
        sock = conn.sock
        time.sleep(4)  # idle longer than request_timeout, shorter than connection_timeout
        conn.request("GET", "/v1/health")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        resp.read()
        self.assertIs(conn.sock, sock)
        conn.close()

    def test_long_poll_outlives_request_timeout(self):
        job = self.d.submit({"task": "sleep", "params": {"seconds": 4}})
        self.d.wait_running(job["id"])
        t0 = time.monotonic()
        done = self.d.get(job["id"], wait=30)
        self.assertEqual(done["state"], "succeeded")
        self.assertGreater(time.monotonic() - t0, 3)


# ---- connection floods ----

class Flood(DaemonTest):
    ARGS = ("--max-connections", "24", "--max-connections-per-ip", "8")

    def setUp(self):
        settle(self.d)  # the connections of the test before are gone

    def test_per_ip_limit_and_health_from_elsewhere(self):
        socks = [connect(self.d.port) for _ in range(40)]
        try:
            answered = readable_within(socks, 30, want=32)
            refused = [read_answer(s) for s in answered]
            self.assertEqual(len(refused), 32)
            self.assertEqual(readable_within(set(socks) - answered, 0), set())
            for a in refused:
                self.assertTrue(a.startswith(b"HTTP/1.1 429"), a[:80])
                self.assertIn(b"Retry-After: 1", a)
                self.assertIn(b"max_connections_per_ip", a)
            # The 8 held ones are all jobd gives 127.0.0.1, but a fresh
            # connection from elsewhere is served.
            self.assertTrue(raw_get(self.d.port).startswith(b"HTTP/1.1 429"))
            self.assertTrue(raw_get(self.d.port, source="127.0.0.2").startswith(
                b"HTTP/1.1 200"))
        finally:
            for s in socks:
                s.close()
        settle(self.d)
        self.assertTrue(raw_get(self.d.port).startswith(b"HTTP/1.1 200"))
        self.assertGreaterEqual(metric(self.d, "jobd_http_connections_refused_total",
                                       reason="max_connections_per_ip"), 33)

    def test_beyond_max_connections_503_then_served_again(self):
        socks = [connect(self.d.port, f"127.0.0.{i}") for i in (1, 2, 3) for _ in range(8)]
        try:
            answer = raw_get(self.d.port, source="127.0.0.4")
            self.assertTrue(answer.startswith(b"HTTP/1.1 503"), answer[:80])
            self.assertIn(b"Retry-After: 1", answer)
            head, body = answer.split(b"\r\n\r\n", 1)
            self.assertIn(b"application/problem+json", head)
            self.assertEqual(json.loads(body)["status"], 503)
        finally:
            for s in socks:
                s.close()
        settle(self.d)
        self.assertEqual(self.d.request("GET", "/v1/health")[0], 200)
        self.assertRegex(self.d.log(), r"refused .*max_connections reached")
        self.assertGreaterEqual(metric(self.d, "jobd_http_connections_refused_total",
                                       reason="max_connections"), 1)


class OutOfFileDescriptors(unittest.TestCase):
    def cpu_seconds(self, pid):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def test_200_idle_connections_with_64_descriptors(self):
        d = Daemon("--threads", "1", "--processes", "1", "--devices", "none", nofile=64)
        try:
            socks = [connect(d.port) for _ in range(200)]
            try:
                # jobd takes what its descriptors allow; the rest are told
                # 503 through the reserve descriptor.
                taken = int(d.wait_log(r"out of file descriptors \((\d+) connections").group(1))
                self.assertLess(taken, 64)
                answered = readable_within(socks, 30, want=200 - taken)
                answers = [read_answer(s) for s in answered]
                self.assertEqual(len(answers), 200 - taken)
                for a in answers:
                    self.assertTrue(a.startswith(b"HTTP/1.1 503"), a[:80])
                self.assertTrue(raw_get(d.port).startswith(b"HTTP/1.1 503"))
                # A connection jobd did take is served: a job is accepted
                # and runs.
                held = next(s for s in socks if s not in answered)
                held.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 41\r\n\r\n"
                             b'{"task":"echo","params":{"value":"held"}}')
                answer = read_answer(held)
                self.assertTrue(answer.startswith(b"HTTP/1.1 202"), answer[:200])
                job_id = json.loads(answer.split(b"\r\n\r\n", 1)[1])["id"]
                # No busy loop while it is out of descriptors.
                before = self.cpu_seconds(d.proc.pid)
                time.sleep(3)  # the window measured
                self.assertLess(self.cpu_seconds(d.proc.pid) - before, 1.0)
                self.assertIsNone(d.proc.poll())
            finally:
                for s in socks:
                    s.close()
            self.assertTrue(until(lambda: raw_get(d.port).startswith(b"HTTP/1.1 200")))
            d.wait_log(r"file descriptors are available again")
            self.assertGreaterEqual(metric(d, "jobd_http_connections_refused_total",
                                           reason="out_of_fds"), 200 - taken)
            self.assertEqual(d.log().count("out of file descriptors"), 1)
            self.assertEqual(d.wait(job_id)["result"], {"value": "held"})
            job = d.submit({"task": "echo", "params": {"value": "after"}})
            self.assertEqual(d.wait(job["id"])["result"], {"value": "after"})
        finally:
            check_stopped(self, d)


# ---- request limits ----

class Limits(DaemonTest):
    ARGS = ("--threads", "1", "--max-waiting-requests", "2")

    def send_big_body(self, head, chunked):
        """Send a 50 MiB body after `head`; returns (bytes sent, answer)."""
        total, sent, block = 50 << 20, 0, b"x" * 65536
        with connect(self.d.port) as s:
            s.sendall(head)
            try:
                while sent < total:
                    s.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                    sent += len(block)
            except OSError:
                pass
            return sent, read_answer(s)

    def test_50_mib_body_with_content_length(self):
        sent, answer = self.send_big_body(
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 52428800\r\n\r\n", chunked=False)
        self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer[:80])
        self.assertIn(b"application/problem+json", answer)
        self.assertLess(sent, 50 << 20)

    def test_50_mib_chunked_body(self):
        sent, answer = self.send_big_body(
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n", chunked=True)
        self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer[:80])
        self.assertLess(sent, 50 << 20)
        self.assertEqual(self.d.request("GET", "/v1/health")[0], 200)

    def test_json_nested_10000_deep(self):
        bodies = [
            b"[" * 10000 + b"]" * 10000,
            b'{"task":"echo","params":{"value":' + b"[" * 10000 + b"]" * 10000 + b"}}",
            b'{"task":"echo","params":{"value":' + b'{"a":' * 10000 + b"1" + b"}" * 10000
            + b"}}",
        ]
        for body in bodies:
            with self.subTest(size=len(body)):
                status, resp, problem = self.d.request(
                    "POST", "/v1/jobs", raw=body, headers={"Content-Type": "application/json"})
                self.assertEqual(status, 400, problem)
                self.assertEqual(resp.getheader("Content-Type"), "application/problem+json")
                self.assertEqual(problem["status"], 400)
        self.assertEqual(self.d.request("GET", "/v1/health")[0], 200)

    def test_arrays_are_bounded(self):
        ids = ["0190a000-0000-7000-8000-000000000001"] * 10001
        status, _, problem = self.d.request("POST", "/v1/wait", {"ids": ids})
        self.assertEqual((status, problem.get("field")), (400, "ids"), problem)

    def test_header_too_large_431(self):
        with connect(self.d.port) as s:
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536
                      + b"\r\n\r\n")
            answer = read_answer(s)
        self.assertTrue(answer.startswith(b"HTTP/1.1 431"), answer[:80])
        with connect(self.d.port) as s:
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Fine: " + b"a" * 8000
                      + b"\r\nConnection: close\r\n\r\n")
            self.assertTrue(read_answer(s).startswith(b"HTTP/1.1 200"))

    def test_waiting_requests_are_bounded(self):
        job = self.d.submit({"task": "sleep", "params": {"seconds": 60}})
        self.d.wait_running(job["id"])
        done = queue.Queue()

        def wait_for_job():
            status, resp, problem = self.d.request("GET", f"/v1/jobs/{job['id']}?wait=60")
            done.put((status, resp.getheader("Retry-After"), problem))

        # Three waits for two places: one is refused at once, whichever it
        # is, and the other two wait.
        waiters = [threading.Thread(target=wait_for_job) for _ in range(3)]
        for t in waiters:
            t.start()
        status, retry_after, problem = done.get(timeout=60)
        self.assertEqual((status, retry_after), (503, "1"), problem)
        self.assertIn("max_waiting_requests", problem["detail"])
        self.assertTrue(done.empty())
        status, _, _ = self.d.request("POST", "/v1/wait", {"ids": [job["id"]], "timeout": 5})
        self.assertEqual(status, 503)
        # Answers that need no waiting are not refused.
        self.assertEqual(self.d.request("GET", f"/v1/jobs/{job['id']}")[0], 200)
        self.d.request("POST", f"/v1/jobs/{job['id']}/cancel")
        for t in waiters:
            t.join(60)
        self.assertEqual([done.get_nowait()[0] for _ in range(2)], [200, 200])
        # The places are free again.
        other = self.d.submit({"task": "sleep", "params": {"seconds": 0.5}})
        self.assertEqual(self.d.get(other["id"], wait=30)["state"], "succeeded")


if __name__ == "__main__":
    unittest.main()
