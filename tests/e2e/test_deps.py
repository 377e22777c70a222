"""Jobs that wait: dependencies (after), start times (not_before), retries."""
import os
import shutil
import tempfile
import unittest
from datetime import datetime, timedelta, timezone

from jobdtest import Daemon, DaemonTest


def parse_time(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


class Dependencies(DaemonTest):
    ARGS = ("--threads", "2", "--processes", "2")

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="jobd-deps-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def sh(self, command, **fields):
        return self.d.submit({"task": "exec", "params": {"command": command, "cwd": self.dir},
                              **fields})

    def test_diamond_runs_in_order_and_the_last_sees_both(self):
        # A -> B, A -> C, (B, C) -> D. B and C each write a file; D prints
        # both, so D's output shows it ran after both had finished.
        a = self.d.submit({"task": "sleep", "params": {"seconds": 0.3}})
        b = self.sh("echo b > b", after=[a["id"]])
        c = self.sh("echo c > c", after=[a["id"]])
        d = self.sh("cat b c", after=[b["id"], c["id"]])
        for j in (b, c, d):
            self.assertEqual(j["state"], "waiting")
        self.assertEqual(d["after"], [b["id"], c["id"]])
        done = {k: self.d.wait(j["id"]) for k, j in zip("abcd", (a, b, c, d))}
        for k, j in done.items():
            self.assertEqual(j["state"], "succeeded", (k, j))
        self.assertEqual(done["d"]["result"]["stdout"], "b\nc\n")
        for k in "bc":
            self.assertGreaterEqual(parse_time(done[k]["started_at"]),
                                    parse_time(done["a"]["finished_at"]))
            self.assertGreaterEqual(parse_time(done["d"]["started_at"]),
                                    parse_time(done[k]["finished_at"]))

    def test_a_failed_parent_cancels_its_whole_subtree(self):
        a = self.sh("sleep 0.2; exit 3")
        b = self.d.submit({"task": "echo", "params": {"value": 1}, "after": [a["id"]]})
        c = self.d.submit({"task": "echo", "params": {"value": 2}, "after": [b["id"]]})
        d = self.d.submit({"task": "echo", "params": {"value": 3}, "after": [c["id"]]})
        e = self.d.submit({"task": "echo", "params": {"value": 4}, "after": [a["id"]]})
        self.assertEqual(self.d.wait(a["id"])["state"], "failed")
        parents = {b["id"]: a, c["id"]: b, d["id"]: c, e["id"]: a}
        for job in (b, c, d, e):
            done = self.d.wait(job["id"])
            self.assertEqual(done["state"], "cancelled")
            self.assertEqual(done["error"]["type"], "dependency_failed")
            parent = parents[job["id"]]
            self.assertEqual(done["error"]["dependency"], parent["id"])
            self.assertIn(parent["id"], done["error"]["message"])
            self.assertIsNone(done["started_at"])

    def test_a_long_chain_cancelled_at_its_root(self):
        root = self.d.submit({"task": "sleep", "params": {"seconds": 60}})
        prev, chain = root["id"], []
        for i in range(300):
            prev = self.d.submit({"task": "echo", "params": {"value": i},
                                  "after": [prev]})["id"]
            chain.append(prev)
        status, _, _ = self.d.request("POST", f"/v1/jobs/{root['id']}/cancel")
        self.assertEqual(status, 200)
        last = self.d.wait(chain[-1])
        self.assertEqual((last["state"], last["error"]["type"]),
                         ("cancelled", "dependency_failed"))
        self.assertEqual(last["error"]["dependency"], chain[-2])
        _, _, listed = self.d.request("GET", "/v1/jobs?task=echo&state=waiting&limit=1000")
        self.assertEqual([j for j in listed["jobs"] if j["id"] in set(chain)], [])

    def test_cancelling_a_waiting_job_cancels_its_dependents(self):
        a = self.d.submit({"task": "sleep", "params": {"seconds": 60}})
        b = self.d.submit({"task": "echo", "params": {"value": 1}, "after": [a["id"]]})
        c = self.d.submit({"task": "echo", "params": {"value": 1}, "after": [b["id"]]})
        status, _, body = self.d.request("POST", f"/v1/jobs/{b['id']}/cancel")
        self.assertEqual((status, body["state"]), (200, "cancelled"))
        done = self.d.wait(c["id"])
        self.assertEqual((done["state"], done["error"]["dependency"]), ("cancelled", b["id"]))
        self.assertEqual(self.d.get(a["id"])["state"], "running")
        self.d.request("POST", f"/v1/jobs/{a['id']}/cancel")

    def test_parents_that_already_ended(self):
        ok = self.d.wait(self.d.submit({"task": "echo", "params": {"value": 1}})["id"])
        bad = self.d.wait(self.sh("exit 1")["id"])
        self.assertEqual((ok["state"], bad["state"]), ("succeeded", "failed"))
        runs = self.d.wait(self.d.submit({"task": "echo", "params": {"value": 2},
                                          "after": [ok["id"]]})["id"])
        self.assertEqual(runs["state"], "succeeded")
        never = self.d.wait(self.d.submit({"task": "echo", "params": {"value": 3},
                                           "after": [ok["id"], bad["id"]]})["id"])
        self.assertEqual((never["state"], never["error"]["dependency"]),
                         ("cancelled", bad["id"]))

    def test_bad_after(self):
        known = self.d.submit({"task": "echo", "params": {"value": 1}})["id"]
        unknown = "01a00000-0000-7000-8000-000000000000"
        for after, field in (([unknown], "after[0]"), ([known, unknown], "after[1]"),
                             (["nope"], "after"), ([1], "after"), ("x", "after"),
                             ({"a": 1}, "after")):
            with self.subTest(after=after):
                status, resp, problem = self.d.request(
                    "POST", "/v1/jobs", {"task": "echo", "params": {"value": 1},
                                         "after": after})
                self.assertEqual((status, problem.get("field")), (400, field), problem)
                self.assertEqual(resp.getheader("Content-Type"), "application/problem+json")
        # In a batch, the index of the job is named.
        status, _, problem = self.d.request("POST", "/v1/jobs/batch", {"jobs": [
            {"task": "echo", "params": {"value": 1}},
            {"task": "echo", "params": {"value": 1}, "after": [unknown]}]})
        self.assertEqual((status, problem["field"]), (400, "jobs[1].after[0]"))


class StartTime(DaemonTest):
    ARGS = ("--threads", "2", "--processes", "1")

    def test_seconds_from_now(self):
        t0 = datetime.now(timezone.utc)
        job = self.d.submit({"task": "echo", "params": {"value": 1}, "not_before": 1.0})
        self.assertEqual(job["state"], "waiting")
        not_before = parse_time(job["not_before"])
        self.assertGreaterEqual(not_before, t0 + timedelta(seconds=0.99))
        status, _, early = self.d.request("GET", f"/v1/jobs/{job['id']}?wait=0.3")
        self.assertEqual(early["state"], "waiting")
        done = self.d.wait(job["id"])
        self.assertEqual(done["state"], "succeeded")
        self.assertGreaterEqual(parse_time(done["started_at"]), not_before)

    def test_rfc3339_times(self):
        past = (datetime.now(timezone.utc) - timedelta(hours=1)).astimezone(
            timezone(timedelta(hours=2)))
        job = self.d.submit({"task": "echo", "params": {"value": 1},
                             "not_before": past.isoformat(timespec="seconds")})
        self.assertEqual(self.d.wait(job["id"])["state"], "succeeded")
        soon = datetime.now(timezone.utc) + timedelta(seconds=0.8)
        job = self.d.submit({"task": "echo", "params": {"value": 1},
                             "not_before": soon.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
        self.assertEqual(job["state"], "waiting")
        self.assertEqual(abs(parse_time(job["not_before"]) - soon) < timedelta(microseconds=2),
                         True, (job["not_before"], soon))
        done = self.d.wait(job["id"])
        self.assertGreaterEqual(parse_time(done["started_at"]), soon)

    def test_cancel_while_waiting(self):
        job = self.d.submit({"task": "echo", "params": {"value": 1}, "not_before": 3600})
        status, _, body = self.d.request("POST", f"/v1/jobs/{job['id']}/cancel")
        self.assertEqual((status, body["state"]), (200, "cancelled"))

    def test_bad_not_before(self):
        for v in ("tomorrow", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                  "2026-01-01T00:00:00", "2026-01-01", -1, 1e12, True, [],
                  "3026-01-01T00:00:00Z"):
            with self.subTest(not_before=v):
                status, _, problem = self.d.request(
                    "POST", "/v1/jobs", {"task": "echo", "params": {"value": 1},
                                         "not_before": v})
                self.assertEqual((status, problem.get("field")), (400, "not_before"), problem)


class Retries(DaemonTest):
    ARGS = ("--threads", "2", "--processes", "2", "--retry-backoff", "0.05")

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="jobd-retry-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    # Fails until it has run `n` times (a counter file in its cwd).
    def flaky(self, n, **fields):
        command = ("c=$(cat count 2>/dev/null || echo 0); c=$((c+1)); echo $c > count; "
                   f"[ $c -ge {n} ]")
        return self.d.submit({"task": "exec", "params": {"command": command,
                                                          "cwd": self.dir}, **fields})

    def test_fails_twice_then_succeeds(self):
        job = self.flaky(3, retries=3)
        self.assertEqual(job["retries"], 3)
        done = self.d.wait(job["id"])
        self.assertEqual((done["state"], done["attempt"]), ("succeeded", 3))
        attempts = done["attempts"]
        self.assertEqual([a["attempt"] for a in attempts], [1, 2, 3])
        self.assertEqual([a["state"] for a in attempts], ["failed", "failed", "succeeded"])
        for a in attempts[:2]:
            self.assertEqual(a["error"]["type"], "exit_status")
            self.assertLessEqual(parse_time(a["started_at"]), parse_time(a["finished_at"]))
        self.assertIsNone(attempts[2]["error"])
        # Each attempt starts after the one before it ended (the back-off).
        for before, after in zip(attempts, attempts[1:]):
            self.assertGreater(parse_time(after["started_at"]), parse_time(before["finished_at"]))
        with open(os.path.join(self.dir, "count")) as f:
            self.assertEqual(f.read().strip(), "3")

    def test_retries_run_out(self):
        done = self.d.wait(self.flaky(100, retries=2)["id"])
        self.assertEqual((done["state"], done["attempt"]), ("failed", 3))
        self.assertEqual([a["state"] for a in done["attempts"]], ["failed"] * 3)
        self.assertEqual(done["error"]["type"], "exit_status")

    def test_time_outs_are_retried(self):
        done = self.d.wait(self.d.submit({"task": "sleep", "params": {"seconds": 30},
                                          "timeout": 0.2, "retries": 1})["id"])
        self.assertEqual((done["state"], done["attempt"]), ("timed_out", 2))
        self.assertEqual([a["state"] for a in done["attempts"]], ["timed_out", "timed_out"])

    def test_a_dependent_waits_for_the_last_attempt(self):
        parent = self.flaky(2, retries=1, retry_backoff=0.3)
        child = self.d.submit({"task": "echo", "params": {"value": 1}, "after": [parent["id"]]})
        done = self.d.wait(child["id"])
        self.assertEqual(done["state"], "succeeded")
        self.assertEqual(self.d.get(parent["id"])["attempt"], 2)

    def test_no_retry_after_cancel(self):
        job = self.d.submit({"task": "sleep", "params": {"seconds": 30}, "retries": 5})
        self.d.wait_running(job["id"])
        self.d.request("POST", f"/v1/jobs/{job['id']}/cancel")
        done = self.d.wait(job["id"])
        self.assertEqual((done["state"], done["attempt"]), ("cancelled", 1))

    def test_bad_retries(self):
        for field, v in (("retries", -1), ("retries", 1.5), ("retries", 101),
                         ("retries", "3"), ("retry_backoff", 0), ("retry_backoff", "1")):
            with self.subTest(field=field, v=v):
                status, _, problem = self.d.request(
                    "POST", "/v1/jobs", {"task": "echo", "params": {"value": 1}, field: v})
                self.assertEqual((status, problem.get("field")), (400, field), problem)


class Jobctl(DaemonTest):
    ARGS = ("--threads", "2", "--processes", "1", "--retry-backoff", "0.05")

    def test_submit_after_not_before_retries(self):
        from jobdtest import jobctl
        a = jobctl("submit", "sleep", "--param", "seconds=0.3", url=self.d.url)
        self.assertEqual(a.returncode, 0, a.stderr)
        a = a.stdout.strip()
        b = jobctl("submit", "echo", "--param", "value=1", "--after", a, "--after", a,
                   "--not-before", "0.2", "--retries", "2", "--json", url=self.d.url)
        self.assertEqual(b.returncode, 0, b.stderr)
        job = __import__("json").loads(b.stdout)
        self.assertEqual((job["state"], job["after"], job["retries"]), ("waiting", [a], 2))
        self.assertIsNotNone(job["not_before"])
        r = jobctl("wait", job["id"], "--timeout", "30", url=self.d.url)
        self.assertEqual(r.returncode, 0, r.stderr)
        done = self.d.get(job["id"])
        self.assertGreaterEqual(done["started_at"], self.d.get(a)["finished_at"])
        # A dependency that fails: the dependent is cancelled, wait exits 1.
        f = jobctl("submit", "echo", "--param", "value=1", "--param", "fail=no",
                   url=self.d.url).stdout.strip()
        c = jobctl("submit", "echo", "--param", "value=2", "--after", f,
                   url=self.d.url).stdout.strip()
        r = jobctl("wait", c, "--timeout", "30", url=self.d.url)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("cancelled", r.stdout)
        bad = jobctl("submit", "echo", "--param", "value=1", "--after",
                     "01a00000-0000-7000-8000-000000000000", url=self.d.url)
        self.assertEqual(bad.returncode, 3)
        self.assertIn("after[0]", bad.stderr)


class Restart(unittest.TestCase):
    """Waiting jobs, their links and their attempts survive a restart."""

    def test_waiting_jobs_survive_a_restart(self):
        d = Daemon("--threads", "2", "--processes", "1", "--durability", "full")
        state = d.state_dir
        try:
            gate = d.submit({"task": "echo", "params": {"value": 1}, "not_before": 3600})
            child = d.submit({"task": "echo", "params": {"value": 2}, "after": [gate["id"]]})
            soon = d.submit({"task": "echo", "params": {"value": 3}, "not_before": 2})
            retried = d.submit({"task": "sleep", "params": {"seconds": 30}, "timeout": 0.1,
                                "retries": 1, "retry_backoff": 3600})
            # Wait until the first attempt has timed out and the retry waits.
            d.wait_log(retried["id"] + ": attempt 1 timed_out; retrying")
            job = d.get(retried["id"])
            self.assertEqual((job["state"], job["attempts"][0]["state"]),
                             ("waiting", "timed_out"))
            self.assertEqual(d.stop(), 0)
            d2 = Daemon("--threads", "2", "--processes", "1", "--durability", "full",
                        "--state-dir", state)
        finally:
            d.cleanup()
        try:
            for j in (gate, child, retried):
                self.assertEqual(d2.get(j["id"])["state"], "waiting")
            again = d2.get(retried["id"])
            self.assertEqual([a["state"] for a in again["attempts"]], ["timed_out"])
            self.assertEqual(d2.wait(soon["id"])["state"], "succeeded")
            status, _, _ = d2.request("POST", f"/v1/jobs/{gate['id']}/cancel")
            self.assertEqual(status, 200)
            done = d2.wait(child["id"])
            self.assertEqual((done["state"], done["error"]["dependency"]),
                             ("cancelled", gate["id"]))
            self.assertEqual(d2.stop(), 0)
            self.assertIsNone(d2.sanitizer_report())
        finally:
            d2.cleanup()


if __name__ == "__main__":
    unittest.main()
