"""Start-up, configuration and shut-down of the real jobd."""
import os
import signal
import subprocess
import tempfile
import time
import unittest

from jobdtest import JOBD, SOURCE_DIR, Daemon


def run_jobd(*args):
    return subprocess.run([JOBD, *args], capture_output=True, text=True, timeout=30)


class Config(unittest.TestCase):
    def write(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def test_check_config_ok(self):
        path = self.write("[server]\nlisten = 127.0.0.1:7171\n[thread]\nthreads = 3\n")
        r = run_jobd("-c", path, "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_check_config_reports_every_error_with_line(self):
        path = self.write(
            "[server]\n"                     # 1
            "listen = 127.0.0.1:7171\n"      # 2
            "log_level = loud\n"             # 3
            "no_such_key = 1\n"              # 4
            "[thread]\n"                     # 5
            "threads = many\n"               # 6
            "this line is wrong\n"           # 7
            "[jobs]\n"                       # 8
            "max_queued = 0\n"               # 9
            "threads = 2\n"                  # 10
            "[nowhere]\n")                   # 11
        r = run_jobd("-c", path, "--check-config")
        self.assertEqual(r.returncode, 78)
        for line, word in ((3, "log_level"), (4, "no_such_key"), (6, "threads"),
                           (7, "key = value"), (9, "max_queued"), (10, "belongs in"),
                           (11, "nowhere")):
            self.assertIn(f"{path}:{line}: ", r.stderr)
            self.assertRegex(r.stderr, rf"{path}:{line}: .*{word}")

    def test_flags_override_and_are_checked(self):
        path = self.write("[thread]\nthreads = 3\n")
        r = run_jobd("-c", path, "--threads", "-4", "--check-config")
        self.assertEqual(r.returncode, 78)
        self.assertIn("--threads", r.stderr)
        r = run_jobd("-c", path, "--no-such-flag", "1")
        self.assertEqual(r.returncode, 2)

    def test_missing_config_file(self):
        r = run_jobd("-c", "/nonexistent/jobd.conf", "--check-config")
        self.assertEqual(r.returncode, 78)
        self.assertIn("/nonexistent/jobd.conf", r.stderr)

    def test_example_config_is_current_and_valid(self):
        """conf/jobd.conf is generated from the key table; it must not drift."""
        example = run_jobd("--print-example-config").stdout
        with open(os.path.join(SOURCE_DIR, "conf", "jobd.conf")) as f:
            self.assertEqual(f.read(), example,
                             "conf/jobd.conf is stale: regenerate with "
                             "jobd --print-example-config > conf/jobd.conf")
        r = run_jobd("-c", os.path.join(SOURCE_DIR, "conf", "jobd.conf"), "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_help_lists_every_key(self):
        help_text = run_jobd("--help").stdout
        example = run_jobd("--print-example-config").stdout
        for line in example.splitlines():
            if line.startswith(";") and " = " in line:
                key = line[1:].split(" = ")[0]
                self.assertIn("--" + key.replace("_", "-"), help_text)


class Logging(unittest.TestCase):
    def test_journal_priority_prefixes(self):
        d = Daemon(env={"JOURNAL_STREAM": "8:12345"})
        try:
            self.assertEqual(d.stop(), 0)
            lines = [l for l in d.log().splitlines() if l.strip()]
            self.assertTrue(lines)
            for line in lines:
                self.assertRegex(line, r"^<[3-7]>")
            self.assertTrue(any(l.startswith("<5>") and "listening on" in l for l in lines))
        finally:
            d.cleanup()

    def test_plain_lines_have_time_and_level(self):
        d = Daemon("--log-level", "debug")
        try:
            self.assertEqual(d.stop(), 0)
            for line in d.log().splitlines():
                self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z jobd\[\d+\] "
                                       r"(error|warning|notice|info|debug): ")
        finally:
            d.cleanup()


class Reload(unittest.TestCase):
    """SIGHUP: what is reloadable changes while jobs run."""

    def reload(self, d, config):
        with open(os.path.join(d.tmp, "jobd.conf"), "w") as f:
            f.write(config)
        mark = len(d.lines)
        d.signal(signal.SIGHUP)
        d.wait_log("configuration reloaded", start=mark)

    def executors(self, d):
        _, _, ex = d.request("GET", "/v1/executors")
        return {e["name"]: e for e in ex["executors"]}

    def test_pool_sizes_and_limits_change_live(self):
        d = Daemon(config="[thread]\nthreads = 1\n[process]\nprocesses = 1\n"
                          "[jobs]\nmax_queued = 1000\n")
        try:
            first = d.submit({"task": "sleep", "params": {"seconds": 60}})
            d.wait_running(first["id"])
            second = d.submit({"task": "sleep", "params": {"seconds": 60}})
            self.assertEqual(d.get(second["id"])["state"], "queued")
            self.reload(d, "[thread]\nthreads = 3\n[process]\nprocesses = 3\n"
                           "[jobs]\nmax_queued = 1\n")
            # The queued job starts on a new thread; the new limit holds.
            d.wait_running(second["id"])
            ex = self.executors(d)
            self.assertEqual(ex["thread"]["workers"], 3)
            self.assertEqual(ex["process"]["workers"], 3)
            queued = [d.submit({"task": "sleep", "params": {"seconds": 60}, "priority": -1})
                      for _ in range(1)]
            d.wait_running(queued[0]["id"])
            extra = d.submit({"task": "sleep", "params": {"seconds": 60}})  # the one queued
            status, _, _ = d.request("POST", "/v1/jobs", {"task": "echo",
                                                          "params": {"value": 1}})
            self.assertEqual(status, 429)
            # Worker processes say nothing when they are up: look again.
            deadline = time.monotonic() + 20
            while self.executors(d)["process"]["alive"] != 3:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            # Shrink: running jobs keep their threads until they end.
            self.reload(d, "[thread]\nthreads = 1\n[process]\nprocesses = 1\n")
            ex = self.executors(d)
            self.assertEqual((ex["thread"]["workers"], ex["thread"]["running"]), (1, 3))
            for j in (extra, first, second, queued[0]):
                d.request("POST", f"/v1/jobs/{j['id']}/cancel")
            deadline = time.monotonic() + 20
            while self.executors(d)["process"]["alive"] != 1:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            # One thread left: two jobs run one after the other.
            a = d.submit({"task": "sleep", "params": {"seconds": 0.2}})
            b = d.submit({"task": "sleep", "params": {"seconds": 0.2}})
            a, b = d.wait(a["id"]), d.wait(b["id"])
            self.assertGreaterEqual(b["started_at"], a["finished_at"])
            self.assertEqual(d.stop(), 0)
            self.assertIsNone(d.sanitizer_report(), d.log())
        finally:
            d.cleanup()


class Shutdown(unittest.TestCase):
    def test_sigterm_with_running_jobs_exits_0_within_grace(self):
        d = Daemon("--threads", "2", "--shutdown-grace", "1")
        try:
            long = d.submit({"task": "sleep", "params": {"seconds": 3600}})
            short = d.submit({"task": "sleep", "params": {"seconds": 0.2}})
            queued = d.submit({"task": "echo", "params": {"value": 1}})
            d.wait_running(long["id"])
            d.wait_running(short["id"])
            t0 = time.monotonic()
            d.signal(signal.SIGTERM)
            code = d.proc.wait(20)
            elapsed = time.monotonic() - t0
            self.assertEqual(code, 0, d.log())
            self.assertLess(elapsed, 1 + 5)  # the grace, plus start-up slack
            self.assertIn("shutting down", d.log())
            self.assertIsNone(d.sanitizer_report(), d.log())
        finally:
            d.cleanup()

    def test_while_draining_submissions_get_503(self):
        d = Daemon("--threads", "1", "--shutdown-grace", "2")
        try:
            job = d.submit({"task": "sleep", "params": {"seconds": 1.5}})
            d.wait_running(job["id"])
            d.signal(signal.SIGTERM)
            d.wait_log("shutting down")
            # A new connection, after the signal: still answered.
            status, resp, problem = d.request("POST", "/v1/jobs",
                                              {"task": "echo", "params": {"value": 1}})
            self.assertEqual((status, problem["type"].rsplit("/", 1)[1]),
                             (503, "shutting-down"), problem)
            self.assertTrue(resp.getheader("Retry-After"))
            status, _, ready = d.request("GET", "/v1/ready")
            self.assertEqual((status, ready["ready"]), (503, False))
            status, _, health = d.request("GET", "/v1/health")
            self.assertEqual((status, health["status"]), (503, "draining"))
            # The running job still finishes, within the grace.
            self.assertEqual(d.get(job["id"], wait=10)["state"], "succeeded")
            self.assertEqual(d.proc.wait(20), 0, d.log())
            self.assertIsNone(d.sanitizer_report(), d.log())
        finally:
            d.cleanup()

    def test_sigterm_idle_exits_at_once(self):
        d = Daemon("--shutdown-grace", "30")
        try:
            t0 = time.monotonic()
            code = d.stop()
            self.assertEqual(code, 0, d.log())
            self.assertLess(time.monotonic() - t0, 10)
            self.assertIsNone(d.sanitizer_report(), d.log())
        finally:
            d.cleanup()

    def test_long_poll_answered_on_shutdown(self):
        # The memory store cancels what is left; the durable ones keep it
        # (test_store.py).
        d = Daemon("--threads", "1", "--shutdown-grace", "0.2", "--durability", "memory")
        try:
            job = d.submit({"task": "sleep", "params": {"seconds": 3600}})
            d.wait_running(job["id"])
            import threading
            got = []
            t = threading.Thread(target=lambda: got.append(d.get(job["id"], wait=60)))
            t.start()
            time.sleep(0.1)  # let the long-poll park; the test holds either way
            d.signal(signal.SIGTERM)
            t.join(30)
            self.assertEqual(d.proc.wait(20), 0)
            self.assertEqual(len(got), 1)
            self.assertEqual(got[0]["state"], "cancelled")
            self.assertEqual(got[0]["error"]["type"], "shutdown")
        finally:
            d.cleanup()

    def test_listen_in_use_exits_1(self):
        d = Daemon()
        try:
            r = subprocess.run([JOBD, "-c", "/dev/null", "--listen", f"127.0.0.1:{d.port}",
                                "--state-dir", d.state_dir], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot listen", r.stderr)
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
