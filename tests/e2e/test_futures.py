"""Batches and waiting on many jobs (POST /v1/jobs/batch, POST /v1/wait)."""
import time
import unittest

from jobdtest import DaemonTest


class Batch(DaemonTest):
    ARGS = ("--threads", "2", "--processes", "1")

    def test_10000_jobs_in_one_batch(self):
        jobs = [{"task": "echo", "params": {"value": i}} for i in range(10000)]
        status, _, body = self.d.request("POST", "/v1/jobs/batch", {"jobs": jobs})
        self.assertEqual(status, 202, body)
        self.assertEqual(body["count"], 10000)
        ids = body["ids"]
        self.assertEqual(len(set(ids)), 10000)
        self.assertEqual(ids, sorted(ids))  # in order, and IDs sort by creation
        status, _, done = self.d.request("POST", "/v1/wait", {"ids": ids, "timeout": 120})
        self.assertEqual((status, len(done["done"]), done["not_done"]), (200, 10000, []))
        for i in (0, 4999, 9999):
            self.assertEqual(self.d.get(ids[i])["result"], {"value": i})

    def test_all_or_none(self):
        _, _, before = self.d.request("GET", "/v1/jobs?limit=1000&task=primes")
        jobs = [{"task": "primes", "params": {"below": 10}}] * 5 + \
               [{"task": "primes", "params": {"below": "ten"}}] + \
               [{"task": "primes", "params": {"below": 10}}]
        status, _, problem = self.d.request("POST", "/v1/jobs/batch", {"jobs": jobs})
        self.assertEqual((status, problem["field"]), (400, "jobs[5].params.below"))
        _, _, after = self.d.request("GET", "/v1/jobs?limit=1000&task=primes")
        self.assertEqual(len(after["jobs"]), len(before["jobs"]))  # none created

    def test_bad_batches(self):
        for body, field in (({"jobs": []}, "jobs"), ({"jobs": {}}, "jobs"),
                            ({"jobz": []}, "jobz"), ({"jobs": [1]}, "jobs[0]")):
            with self.subTest(body=body):
                status, _, problem = self.d.request("POST", "/v1/jobs/batch", body)
                self.assertEqual((status, problem.get("field")), (400, field), problem)


class Wait(DaemonTest):
    ARGS = ("--threads", "4", "--processes", "1")

    def submit_many(self, specs):
        status, _, body = self.d.request("POST", "/v1/jobs/batch", {"jobs": specs})
        self.assertEqual(status, 202, body)
        return body["ids"]

    def test_first_completed_answers_when_the_first_of_100_ends(self):
        # The short one first, so it has a thread; 99 long ones behind it.
        fast = self.d.submit({"task": "sleep", "params": {"seconds": 0.3}})["id"]
        ids = self.submit_many([{"task": "sleep", "params": {"seconds": 60}}] * 99)
        try:
            t0 = time.monotonic()
            status, _, r = self.d.request("POST", "/v1/wait", {
                "ids": ids + [fast], "return_when": "first_completed", "timeout": 30})
            self.assertEqual(status, 200)
            self.assertLess(time.monotonic() - t0, 10)
            self.assertEqual(r["done"], [fast])
            self.assertEqual(len(r["not_done"]), 99)
        finally:
            for i in ids:
                self.d.request("POST", f"/v1/jobs/{i}/cancel")

    def test_all_completed_and_timeout(self):
        ids = self.submit_many([{"task": "echo", "params": {"value": i}} for i in range(10)])
        status, _, r = self.d.request("POST", "/v1/wait", {"ids": ids})
        self.assertEqual((sorted(r["done"]), r["not_done"]), (sorted(ids), []))
        slow = self.d.submit({"task": "sleep", "params": {"seconds": 60}})["id"]
        t0 = time.monotonic()
        status, _, r = self.d.request("POST", "/v1/wait", {"ids": ids + [slow],
                                                           "timeout": 0.3})
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)
        self.assertEqual(r["not_done"], [slow])
        self.d.request("POST", f"/v1/jobs/{slow}/cancel")

    def test_first_exception(self):
        slow = self.d.submit({"task": "sleep", "params": {"seconds": 60}})["id"]
        bad = self.d.submit({"task": "echo", "params": {"value": 1, "fail": "no"}})["id"]
        status, _, r = self.d.request("POST", "/v1/wait", {
            "ids": [slow, bad], "return_when": "first_exception", "timeout": 30})
        self.assertEqual((r["done"], r["not_done"]), ([bad], [slow]))
        self.d.request("POST", f"/v1/jobs/{slow}/cancel")

    def test_bad_waits(self):
        ok = self.d.submit({"task": "echo", "params": {"value": 1}})["id"]
        for body, status, field in (
                ({"ids": []}, 400, "ids"),
                ({"ids": [ok], "return_when": "soon"}, 400, "return_when"),
                ({"ids": [ok], "timeout": -1}, 400, "timeout"),
                ({"ids": [ok], "colour": 1}, 400, "colour"),
                ({"ids": [ok, "0190a000-0000-7000-8000-000000000009"]}, 404, "ids[1]")):
            with self.subTest(body=body):
                st, _, problem = self.d.request("POST", "/v1/wait", body)
                self.assertEqual((st, problem["field"]), (status, field), problem)


if __name__ == "__main__":
    unittest.main()
