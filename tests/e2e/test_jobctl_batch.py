"""jobctl submit --batch and jobctl wait --any / --all / --first-failure
against the real jobd: POST /v1/jobs/batch and POST /v1/wait.

Every wait here is an event: jobctl's own long-poll (POST /v1/wait) ends
when the jobs end; the tests only check how long it took.
"""
import json
import os
import subprocess
import time
import unittest
import uuid

from jobdtest import JOBCTL, DaemonTest

LONG = 60       # seconds a "long" job sleeps; it is always cancelled
PROMPT = 30     # a wait that should end at once ends well within this


def lines(*jobs):
    return "".join(json.dumps(j) + "\n" for j in jobs)


def jobctl(*args, url, input=None, timeout=120):
    """Run jobctl against `url`, `input` on its stdin."""
    return subprocess.run([JOBCTL, *args], capture_output=True, text=True, input=input,
                          env=dict(os.environ, JOBD_URL=url), timeout=timeout)


class BatchSubmit(DaemonTest):
    # max_batch 1000, as many as jobctl puts in one request: a file with
    # more jobs only goes through if jobctl splits it.
    ARGS = ("--threads", "4", "--processes", "1")
    CONFIG = "[jobs]\nmax_batch = 1000\n"

    def ctl(self, *args, **kw):
        return jobctl(*args, url=self.d.url, **kw)

    def write(self, text, name="jobs.jsonl"):
        path = os.path.join(self.d.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def labelled(self, tag):
        """IDs of the jobs with label tag=<tag>, oldest first."""
        status, _, body = self.d.request("GET", f"/v1/jobs?label=tag={tag}&limit=1000")
        self.assertEqual(status, 200, body)
        return [j["id"] for j in reversed(body["jobs"])]

    def wait_all(self, ids):
        for i in range(0, len(ids), 10000):
            status, _, r = self.d.request("POST", "/v1/wait",
                                          {"ids": ids[i:i + 10000], "timeout": 120})
            self.assertEqual((status, r["not_done"]), (200, []), r)

    def test_few_jobs_comments_and_blank_lines(self):
        path = self.write("# three jobs\n\n"
                          + '{"task": "echo", "params": {"value": "a"}}\n'
                          + "   \n  # an indented comment\n"
                          + '{"task":"square","params":{"values":[1,2,3]}}\r\n'
                          + '{"task":"echo","params":{"value":{"n":3}}}')  # no final newline
        r = self.ctl("submit", "--batch", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        ids = r.stdout.split()
        self.assertEqual(len(ids), 3)
        self.assertEqual(ids, sorted(ids))  # created in the order of the file
        results = [self.d.wait(i)["result"] for i in ids]
        self.assertEqual(results, [{"value": "a"}, {"values": [1, 4, 9]},
                                   {"value": {"n": 3}}])

    def test_stdin_and_json(self):
        r = self.ctl("--json", "submit", "--batch", "-",
                     input=lines({"task": "echo", "params": {"value": 1}},
                                 {"task": "echo", "params": {"value": 2}}))
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["count"], 2)
        self.assertEqual([self.d.wait(i)["result"]["value"] for i in doc["ids"]], [1, 2])

    def test_2500_jobs_in_requests_of_1000(self):
        tag = uuid.uuid4().hex
        path = self.write(lines(*[{"task": "echo", "params": {"value": i},
                                   "labels": {"tag": tag}} for i in range(2500)]))
        r = self.ctl("submit", "--batch", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        ids = r.stdout.split()
        self.assertEqual(len(ids), 2500)
        self.assertEqual(len(set(ids)), 2500)
        self.assertEqual(ids, sorted(ids))
        self.wait_all(ids)
        for i in (0, 999, 1000, 1999, 2000, 2499):
            self.assertEqual(self.d.get(ids[i])["result"], {"value": i})

    def test_bad_line_refused_before_anything_is_sent(self):
        tag = uuid.uuid4().hex
        good = json.dumps({"task": "echo", "params": {"value": 1}, "labels": {"tag": tag}})
        for bad, why in (('{"task": "echo", "params": }', "not valid JSON"),
                         ('["echo"]', "not a JSON object"),
                         ('{"params": {"value": 1}}', '"task"')):
            with self.subTest(bad=bad):
                path = self.write("# header\n" + (good + "\n") * 1500 + bad + "\n" + good + "\n")
                r = self.ctl("submit", "--batch", path)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("line 1502", r.stderr)
                self.assertIn(why, r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertEqual(self.labelled(tag), [])
        r = self.ctl("submit", "--batch", self.write("# nothing\n\n"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("no jobs", r.stderr)

    def test_refused_request_names_the_line_and_keeps_what_went_before(self):
        # Line 1502 is well-formed, but jobd refuses it: the first request
        # (lines 1-1000) is in, the second (1001-2000) and the rest are not.
        tag = uuid.uuid4().hex
        job = {"task": "echo", "params": {"value": 1}, "labels": {"tag": tag}}
        jobs = [job] * 2500
        jobs[1501] = {"task": "no-such-task", "labels": {"tag": tag}}
        r = self.ctl("submit", "--batch", self.write(lines(*jobs)))
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("line 1502", r.stderr)
        self.assertIn("lines 1001 to 2500", r.stderr)
        ids = r.stdout.split()
        self.assertEqual(len(ids), 1000)
        self.assertEqual(self.labelled(tag), ids)

    def test_options_that_shape_one_job_are_refused(self):
        path = self.write(lines({"task": "echo", "params": {"value": 1}}))
        for args in (("echo",), ("--priority", "5"), ("--param", "value=2"),
                     ("--executor", "thread")):
            with self.subTest(args=args):
                r = self.ctl("submit", "--batch", path, *args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stdout, "")

    def test_wait_for_the_batch(self):
        r = self.ctl("submit", "--batch", "-", "--wait",
                     input=lines({"task": "echo", "params": {"value": 1}},
                                 {"task": "sleep", "params": {"seconds": 0.2}},
                                 {"task": "echo", "params": {"value": 2}}))
        self.assertEqual(r.returncode, 0, r.stderr)
        out = [line.split() for line in r.stdout.splitlines()]
        self.assertEqual([row[1] for row in out], ["succeeded"] * 3)
        for row in out:
            self.assertEqual(self.d.get(row[0])["state"], "succeeded")
        # One failure: exit 1, and its line says why.
        r = self.ctl("submit", "--batch", "-", "--wait",
                     input=lines({"task": "echo", "params": {"value": 1}},
                                 {"task": "echo", "params": {"value": 1, "fail": "boom"}}))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^\S+ +failed +.*boom$")

    def test_wait_for_the_batch_times_out(self):
        r = self.ctl("--json", "submit", "--batch", "-", "--wait-timeout", "0.3",
                     input=lines({"task": "echo", "params": {"value": 1}},
                                 {"task": "sleep", "params": {"seconds": LONG}}))
        doc = json.loads(r.stdout)
        try:
            self.assertEqual(r.returncode, 124, r.stderr)
            self.assertEqual((len(doc["done"]), len(doc["not_done"])), (1, 1))
        finally:
            for i in doc["not_done"]:
                self.d.request("POST", f"/v1/jobs/{i}/cancel")


class WaitModes(DaemonTest):
    ARGS = ("--threads", "4", "--processes", "1")

    def ctl(self, *args, **kw):
        return jobctl(*args, url=self.d.url, **kw)

    def submit(self, task, **params):
        return self.d.submit({"task": task, "params": params})["id"]

    def long_jobs(self, n=2):
        """n jobs that sleep LONG seconds, started, and cancelled after the
        test."""
        ids = [self.submit("sleep", seconds=LONG) for _ in range(n)]
        for i in ids:
            self.d.wait_running(i)
            self.addCleanup(self.d.request, "POST", f"/v1/jobs/{i}/cancel")
        return ids

    def timed(self, *args):
        t0 = time.monotonic()
        r = self.ctl(*args)
        return r, time.monotonic() - t0

    def test_any_returns_when_the_first_job_ends(self):
        a, b = self.long_jobs()
        short = self.submit("sleep", seconds=0.2)
        r, took = self.timed("wait", a, short, b, "--any")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(took, PROMPT)
        self.assertEqual(r.stdout.split(), [short, "succeeded"])
        self.assertEqual(self.d.get(a)["state"], "running")

    def test_any_exits_1_when_the_first_job_failed(self):
        a, b = self.long_jobs()
        bad = self.submit("echo", value=1, fail="boom")
        r, took = self.timed("wait", a, b, bad, "--any")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertLess(took, PROMPT)
        self.assertEqual(r.stdout.split()[:2], [bad, "failed"])

    def test_any_json_is_done_and_not_done(self):
        (a,) = self.long_jobs(1)
        short = self.submit("echo", value=1)
        r = self.ctl("--json", "wait", "--any", a, short)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"done": [short], "not_done": [a]})

    def test_first_failure_returns_when_a_job_fails(self):
        a, b = self.long_jobs()
        ok = self.submit("echo", value=1)
        bad = self.submit("echo", value=1, fail="boom")
        r, took = self.timed("wait", "--first-failure", a, ok, bad, b)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertLess(took, PROMPT)
        states = dict(line.split()[:2] for line in r.stdout.splitlines())
        self.assertEqual(states[bad], "failed")
        self.assertNotIn(a, states)

    def test_first_failure_exits_0_when_all_succeed(self):
        ids = [self.submit("sleep", seconds=s) for s in (0.1, 0.3, 0)]
        r = self.ctl("wait", "--first-failure", *ids)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 3)
        for i in ids:
            self.assertEqual(self.d.get(i)["state"], "succeeded")

    def test_all_waits_for_every_job(self):
        ids = [self.submit("sleep", seconds=s) for s in (0.5, 0.1, 0.3)]
        ids.append(self.submit("echo", value=1))
        r = self.ctl("wait", "--all", *ids)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([line.split() for line in r.stdout.splitlines()],
                         [[i, "succeeded"] for i in ids])
        for i in ids:
            self.assertEqual(self.d.get(i)["state"], "succeeded")
        # The default is --all; a failure among them: exit 1.
        bad = self.submit("echo", value=1, fail="boom")
        r = self.ctl("--json", "wait", ids[0], bad)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"done": [ids[0], bad], "not_done": []})

    def test_timeout_exits_124(self):
        (a,) = self.long_jobs(1)
        ok = self.submit("echo", value=1)
        self.d.wait(ok)
        for mode, args in (("--all", (a, ok)), ("--any", (a,)), ("--first-failure", (a, ok))):
            with self.subTest(mode=mode):
                r, took = self.timed("wait", mode, "--timeout", "0.3", *args)
                self.assertEqual(r.returncode, 124, r.stderr)
                self.assertIn("timed out", r.stderr)
                self.assertGreaterEqual(took, 0.3)
        # --timeout 0 checks once.
        self.assertEqual(self.ctl("wait", "--timeout", "0", a).returncode, 124)
        self.assertEqual(self.ctl("wait", "--timeout", "0", ok).returncode, 0)

    def test_more_than_10000_ids(self):
        ids = []
        for part in range(2):
            status, _, body = self.d.request("POST", "/v1/jobs/batch", {
                "jobs": [{"task": "echo", "params": {"value": i}} for i in range(5025)]})
            self.assertEqual(status, 202, body)
            ids += body["ids"]
        r = self.ctl("--json", "wait", *ids, "--timeout", "120")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"done": ids, "not_done": []})

    def test_usage_and_unknown_ids(self):
        ok = self.submit("echo", value=1)
        for args in (("--any", "--all", ok), ("--first-failure", "--any", ok),
                     ("--any", *["x"] * 40001)):
            with self.subTest(args=args[:3]):
                self.assertEqual(self.ctl("wait", *args).returncode, 2)
        r = self.ctl("wait", ok, "0190a000-0000-7000-8000-000000000001")
        self.assertEqual(r.returncode, 3)
        self.assertIn("0190a000-0000-7000-8000-000000000001", r.stderr)


if __name__ == "__main__":
    unittest.main()
