"""Plugins loaded by the real jobd: listed like built-ins, run on threads and
in worker processes, and a plugin task that crashes fails only its job."""
import os
import unittest

from jobdtest import DaemonTest, zombies_of

PLUGIN_DIR = os.environ.get("JOBD_PLUGIN_DIR", "")


@unittest.skipUnless(os.path.isfile(os.path.join(PLUGIN_DIR, "example.so")),
                     "the example plugin is not built")
class Plugins(DaemonTest):
    ARGS = ("--plugin-dir", PLUGIN_DIR, "--processes", "2", "--threads", "2")

    @classmethod
    def setUpClass(cls):
        # Let a segfault kill the worker as it would without ASan, rather
        # than ASan reporting it and exiting 1; and keep no quarantine of
        # freed memory, so RSS shows real growth.
        opts = os.environ.get("ASAN_OPTIONS", "")
        os.environ["ASAN_OPTIONS"] = ((opts + ":" if opts else "")
                                      + "handle_segv=0:quarantine_size_mb=0")
        try:
            super().setUpClass()
        finally:
            os.environ["ASAN_OPTIONS"] = opts

    def test_listed_like_builtins(self):
        _, _, tasks = self.d.request("GET", "/v1/tasks")
        by_name = {t["name"]: t for t in tasks["tasks"]}
        self.assertEqual(by_name["fib"]["plugin"], "example")
        self.assertEqual(set(by_name["fib"]["executors"]), {"thread", "process"})
        self.assertEqual(by_name["crash"]["executors"], ["process"])
        self.assertNotIn("plugin", by_name["square"])

    def test_fib_on_both_executors(self):
        for ex in ("thread", "process"):
            job = self.d.wait(self.d.submit({"task": "fib", "executor": ex,
                                             "params": {"n": 50}})["id"])
            self.assertEqual(job["state"], "succeeded", job)
            self.assertEqual(job["result"]["value"], 12586269025)
        status, _, problem = self.d.request("POST", "/v1/jobs",
                                            {"task": "fib", "params": {"n": 1000}})
        self.assertEqual((status, problem["field"]), (400, "params.n"))

    def test_crash_fails_only_its_job(self):
        ok = self.d.submit({"task": "sleep", "executor": "process", "params": {"seconds": 0.5}})
        job = self.d.wait(self.d.submit({"task": "crash", "params": {}})["id"])
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["error"]["type"], "worker_crashed")
        self.assertIn("SIGSEGV", job["error"]["message"])
        self.assertEqual(self.d.wait(ok["id"])["state"], "succeeded")

    def test_every_way_of_dying_is_named(self):
        for how, says in (("abort", "SIGABRT"), ("exit", "exited with status 3"),
                          ("segv", "SIGSEGV")):
            with self.subTest(how=how):
                job = self.d.wait(self.d.submit({"task": "crash",
                                                 "params": {"how": how}})["id"])
                self.assertEqual((job["state"], job["error"]["type"]),
                                 ("failed", "worker_crashed"))
                self.assertIn(says, job["error"]["message"])
        status, _, problem = self.d.request("POST", "/v1/jobs", {"task": "crash",
                                                                "params": {"how": "x"}})
        self.assertEqual((status, problem["field"]), (400, "params.how"))
        # The pool is whole again: both workers take jobs.
        jobs = [self.d.submit({"task": "echo", "executor": "process", "params": {"value": i}})
                for i in range(4)]
        for j in jobs:
            self.assertEqual(self.d.wait(j["id"])["state"], "succeeded")

    def test_1000_crashes_in_a_row(self):
        pid = self.d.proc.pid

        def fds():
            return len(os.listdir(f"/proc/{pid}/fd"))

        def rss():
            with open(f"/proc/{pid}/status") as f:
                return int([l for l in f if l.startswith("VmRSS:")][0].split()[1])
        for _ in range(20):  # warm up
            self.d.wait(self.d.submit({"task": "crash", "params": {}})["id"])
        fd0, rss0 = fds(), rss()
        ids = [self.d.submit({"task": "crash", "params": {}})["id"] for _ in range(1000)]
        for job_id in ids:
            job = self.d.wait(job_id, timeout=120)
            self.assertEqual(job["error"]["type"], "worker_crashed")
        self.assertLessEqual(fds(), fd0 + 2)
        self.assertLess(rss() - rss0, 20 * 1024)  # KiB: no growth per crash
        self.assertEqual(zombies_of(pid), [])
        status, _, health = self.d.request("GET", "/v1/health")
        self.assertEqual(status, 200)
        job = self.d.wait(self.d.submit({"task": "fib", "executor": "process",
                                         "params": {"n": 10}})["id"])
        self.assertEqual(job["result"]["value"], 55)


if __name__ == "__main__":
    unittest.main()
