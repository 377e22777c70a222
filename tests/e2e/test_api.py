"""End-to-end tests of the jobs API against the real jobd."""
import json
import subprocess
import threading
import time
import unittest

from jobdtest import Daemon, DaemonTest, TERMINAL


class SeedExample(DaemonTest):
    ARGS = ("--threads", "2")

    def test_square_through_python(self):
        job = self.d.submit({"task": "square", "executor": "thread",
                             "params": {"values": list(range(10))}})
        self.assertIn(job["state"], ("queued", "running", "succeeded"))
        done = self.d.wait(job["id"])
        self.assertEqual(done["state"], "succeeded")
        self.assertEqual(done["result"]["values"], [i * i for i in range(10)])
        self.assertEqual(done["executor"], "thread")
        self.assertEqual(done["attempt"], 1)
        self.assertRegex(done["worker"], r"^thread-\d+$")
        for key in ("created_at", "started_at", "finished_at"):
            self.assertRegex(done[key], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertLessEqual(done["created_at"], done["started_at"])
        self.assertLessEqual(done["started_at"], done["finished_at"])

    def test_square_through_curl(self):
        out = subprocess.run(
            ["curl", "-sS", "-i", "--json",
             '{"task": "square", "executor": "thread", '
             '"params": {"values": [0,1,2,3,4,5,6,7,8,9]}}',
             f"{self.d.url}/v1/jobs"],
            capture_output=True, text=True, check=True).stdout
        head, _, body = out.partition("\n\n")  # text mode turned \r\n into \n
        self.assertTrue(head.startswith("HTTP/1.1 202"), head)
        job = json.loads(body)
        self.assertIn(f"Location: /v1/jobs/{job['id']}", head)
        out = subprocess.run(
            ["curl", "-sS", f"{self.d.url}/v1/jobs/{job['id']}?wait=10"],
            capture_output=True, text=True, check=True).stdout
        self.assertEqual(json.loads(out)["result"]["values"],
                         [0, 1, 4, 9, 16, 25, 36, 49, 64, 81])

    def test_every_task_on_threads(self):
        cases = [
            ({"task": "echo", "params": {"value": {"a": [1, "x", None]}}},
             {"value": {"a": [1, "x", None]}}),
            ({"task": "sleep", "params": {"seconds": 0.01}}, {}),
            ({"task": "saxpy", "params": {"a": 2, "x": [1, 2, 3], "y": [10, 20, 30]}},
             {"values": [12, 24, 36]}),
            ({"task": "sum", "params": {"values": [1, 2, 3.5]}}, {"sum": 6.5}),
            ({"task": "sum", "params": {"values": [1, 2, 3], "dtype": "int64"}}, {"sum": 6}),
            ({"task": "primes", "params": {"below": 100}}, {"count": 25}),
            ({"task": "sgemm", "params": {"m": 2, "n": 2, "k": 3,
                                          "a": [1, 2, 3, 4, 5, 6],
                                          "b": [7, 8, 9, 10, 11, 12]}},
             {"c": [58, 64, 139, 154]}),
        ]
        for spec, want in cases:
            with self.subTest(task=spec["task"]):
                job = self.d.wait(self.d.submit(spec)["id"])
                self.assertEqual(job["state"], "succeeded", job)
                self.assertEqual(job["result"], want)

    def test_base64_arrays(self):
        import base64
        import struct
        raw = struct.pack("<4f", 1.5, -2.0, 3.0, 0.25)
        job = self.d.wait(self.d.submit({"task": "square", "params": {
            "values": {"dtype": "float32", "b64": base64.b64encode(raw).decode()}}})["id"])
        self.assertEqual(job["state"], "succeeded", job)
        out = job["result"]["values"]
        self.assertEqual(out["dtype"], "float32")
        self.assertEqual(struct.unpack("<4f", base64.b64decode(out["b64"])),
                         (2.25, 4.0, 9.0, 0.0625))

    def test_labels_and_fields_round_trip(self):
        job = self.d.submit({"task": "echo", "params": {"value": 1}, "priority": 7,
                             "timeout": 30, "labels": {"team": "a b", "run": "1"}})
        self.assertEqual(job["labels"], {"team": "a b", "run": "1"})
        self.assertEqual(job["priority"], 7)
        self.assertEqual(job["timeout"], 30)
        self.assertEqual(job["params"], {"value": 1})
        self.assertEqual(job["attempt"], 0)
        self.assertIsNone(job["error"])

    def test_unknown_job_is_404(self):
        status, resp, body = self.d.request("GET", "/v1/jobs/0190a000-0000-7000-8000-000000000000")
        self.assertEqual(status, 404)
        self.assertEqual(resp.getheader("Content-Type"), "application/problem+json")
        self.assertEqual(body["status"], 404)


class States(DaemonTest):
    """One thread, so the test controls what runs when."""
    ARGS = ("--threads", "1")

    def blocker(self, seconds=60):
        job = self.d.submit({"task": "sleep", "params": {"seconds": seconds}})
        self.d.wait_running(job["id"])
        return job

    def test_queued_running_cancelled_and_succeeded(self):
        block = self.blocker()
        queued = self.d.submit({"task": "echo", "params": {"value": 1}})
        self.assertEqual(self.d.get(queued["id"])["state"], "queued")
        self.assertEqual(self.d.get(block["id"])["state"], "running")
        status, _, body = self.d.request("POST", f"/v1/jobs/{block['id']}/cancel")
        self.assertEqual(status, 200)
        self.assertEqual(body["state"], "cancelled")
        self.assertEqual(body["error"]["type"], "cancelled")
        done = self.d.wait(queued["id"])
        self.assertEqual(done["state"], "succeeded")
        # A terminal job cannot be cancelled.
        status, resp, body = self.d.request("POST", f"/v1/jobs/{queued['id']}/cancel")
        self.assertEqual(status, 409)
        self.assertEqual(resp.getheader("Content-Type"), "application/problem+json")

    def test_cancel_queued(self):
        block = self.blocker()
        queued = self.d.submit({"task": "echo", "params": {"value": 1}})
        status, _, body = self.d.request("POST", f"/v1/jobs/{queued['id']}/cancel")
        self.assertEqual((status, body["state"]), (200, "cancelled"))
        self.assertIsNone(body["started_at"])
        self.assertEqual(body["attempt"], 0)
        self.d.request("POST", f"/v1/jobs/{block['id']}/cancel")
        # It never runs later either.
        self.assertEqual(self.d.get(queued["id"])["state"], "cancelled")

    def test_cancel_running_frees_the_thread_at_once(self):
        block = self.blocker(3600)
        t0 = time.monotonic()
        status, _, body = self.d.request("POST", f"/v1/jobs/{block['id']}/cancel")
        self.assertEqual(body["state"], "cancelled")
        nxt = self.d.wait(self.d.submit({"task": "echo", "params": {"value": 2}})["id"], 10)
        self.assertEqual(nxt["state"], "succeeded")
        self.assertLess(time.monotonic() - t0, 5)

    def test_failed(self):
        job = self.d.wait(self.d.submit(
            {"task": "echo", "params": {"value": 1, "fail": "asked to fail"}})["id"])
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["error"]["type"], "task_failed")
        self.assertIn("asked to fail", job["error"]["message"])
        self.assertIsNone(job["result"])
        self.assertEqual(job["attempt"], 1)

    def test_timeout(self):
        job = self.d.submit({"task": "sleep", "params": {"seconds": 3600}, "timeout": 0.2})
        done = self.d.wait(job["id"], 30)
        self.assertEqual(done["state"], "timed_out")
        self.assertEqual(done["error"]["type"], "timed_out")
        self.assertIsNotNone(done["finished_at"])
        # The thread is free again.
        nxt = self.d.wait(self.d.submit({"task": "echo", "params": {"value": 3}})["id"], 10)
        self.assertEqual(nxt["state"], "succeeded")

    def test_priority_beats_fifo(self):
        block = self.blocker()
        low = self.d.submit({"task": "echo", "params": {"value": "low"}, "priority": -5})
        mid1 = self.d.submit({"task": "echo", "params": {"value": "mid1"}})
        mid2 = self.d.submit({"task": "echo", "params": {"value": "mid2"}})
        high = self.d.submit({"task": "echo", "params": {"value": "high"}, "priority": 50})
        self.d.request("POST", f"/v1/jobs/{block['id']}/cancel")
        jobs = [self.d.wait(j["id"]) for j in (low, mid1, mid2, high)]
        order = [j["params"]["value"] for j in sorted(jobs, key=lambda j: j["started_at"])]
        self.assertEqual(order, ["high", "mid1", "mid2", "low"])

    def test_long_poll_wakes_when_job_ends(self):
        job = self.d.submit({"task": "sleep", "params": {"seconds": 0.3}})
        t0 = time.monotonic()
        done = self.d.get(job["id"], wait=30)
        elapsed = time.monotonic() - t0
        self.assertEqual(done["state"], "succeeded")
        self.assertLess(elapsed, 10)  # woke on the event, not at the 30 s mark

    def test_long_poll_times_out_with_job_as_is(self):
        block = self.blocker()
        t0 = time.monotonic()
        job = self.d.get(block["id"], wait=0.3)
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)
        self.assertEqual(job["state"], "running")
        self.d.request("POST", f"/v1/jobs/{block['id']}/cancel")

    def test_many_long_polls_on_one_job(self):
        block = self.blocker()
        results = []

        def poll():
            results.append(self.d.get(block["id"], wait=30)["state"])
        threads = [threading.Thread(target=poll) for _ in range(20)]
        for t in threads:
            t.start()
        # The long-polls are parked; cancelling the job answers them all.
        time.sleep(0.2)  # let them arrive; correctness does not depend on it
        self.d.request("POST", f"/v1/jobs/{block['id']}/cancel")
        for t in threads:
            t.join(30)
        self.assertEqual(results, ["cancelled"] * 20)


class Listing(DaemonTest):
    ARGS = ("--threads", "2")

    def test_list_filters_and_cursor(self):
        ids = []
        for i in range(25):
            job = self.d.submit({"task": "echo", "params": {"value": i},
                                 "labels": {"batch": "L", "parity": str(i % 2)}})
            ids.append(job["id"])
        for i in ids:
            self.d.wait(i)
        seen = []
        cursor = None
        while True:
            q = "/v1/jobs?label=batch=L&limit=10" + (f"&cursor={cursor}" if cursor else "")
            status, _, page = self.d.request("GET", q)
            self.assertEqual(status, 200)
            self.assertLessEqual(len(page["jobs"]), 10)
            seen += [j["id"] for j in page["jobs"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(seen, list(reversed(ids)))  # newest first, each once
        _, _, odd = self.d.request("GET", "/v1/jobs?label=batch=L&label=parity=1&limit=100")
        self.assertEqual(len(odd["jobs"]), 12)
        _, _, done = self.d.request("GET", "/v1/jobs?state=succeeded&task=echo&limit=1000")
        self.assertTrue(set(ids) <= {j["id"] for j in done["jobs"]})
        _, _, none = self.d.request("GET", "/v1/jobs?state=running,queued&label=batch=L")
        self.assertEqual(none["jobs"], [])

    def test_service_endpoints(self):
        status, _, ex = self.d.request("GET", "/v1/executors")
        self.assertEqual(status, 200)
        thread = [e for e in ex["executors"] if e["name"] == "thread"][0]
        self.assertEqual(thread["workers"], 2)
        self.assertTrue(thread["enabled"])
        for key in ("busy", "idle", "queued", "running"):
            self.assertIsInstance(thread[key], int)
        status, _, tasks = self.d.request("GET", "/v1/tasks")
        names = {t["name"] for t in tasks["tasks"]}
        self.assertTrue({"echo", "sleep", "square", "saxpy", "sum", "sgemm", "primes"} <= names)
        sq = [t for t in tasks["tasks"] if t["name"] == "square"][0]
        self.assertIn("thread", sq["executors"])
        self.assertIn("values", [p["name"] for p in sq["params"]])
        status, _, health = self.d.request("GET", "/v1/health")
        self.assertEqual((status, health["status"]), (200, "ok"))
        self.assertRegex(health["version"], r"^\d+\.\d+\.\d+")


if __name__ == "__main__":
    unittest.main()
