"""Idempotency-Key on POST /v1/jobs and /v1/jobs/batch against the real jobd:
a repeat gets the first job(s) back (200), a reused key with another body
422, a bad key 400; 50 concurrent repeats create one job; keys outlive a
restart, expire after idempotency_ttl, go with their jobs, and are not kept
when the first submission fails; jobctl submit --idempotency-key."""
import http.client
import json
import os
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from jobdtest import can_mount, fill_disk, Daemon, DaemonTest, jobctl


def post(d, path, body, key=None, raw=None, headers=None):
    """POST JSON (or raw bytes) with an Idempotency-Key; (status, response, body)."""
    hdrs = dict(headers or {})
    if key is not None:
        hdrs["Idempotency-Key"] = key
    if raw is not None:
        hdrs.setdefault("Content-Type", "application/json")
        return d.request("POST", path, headers=hdrs, raw=raw)
    return d.request("POST", path, body, headers=hdrs)


def jobs_labelled(d, label):
    status, _, body = d.request("GET", f"/v1/jobs?label=run={label}&limit=1000")
    assert status == 200, body
    return body["jobs"]


def concurrent_posts(d, n, path, body, key):
    """n clients POST the same body with the same key at once; their
    (status, parsed body) in order."""
    barrier = threading.Barrier(n)
    results = [None] * n
    data = json.dumps(body).encode()

    def client(i):
        conn = http.client.HTTPConnection(d.host, d.port, timeout=60)
        try:
            conn.connect()
            barrier.wait(30)
            conn.request("POST", path, body=data,
                         headers={"Content-Type": "application/json", "Idempotency-Key": key})
            r = conn.getresponse()
            results[i] = (r.status, json.loads(r.read()))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert all(r is not None for r in results), results
    return results


def poll(fn, timeout=20, interval=0.1):
    """Call fn until it returns a true value, or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met after {timeout} s")
        time.sleep(interval)


class Keys(DaemonTest):
    ARGS = ("--threads", "2", "--processes", "1")

    def echo(self, value, label=None):
        job = {"task": "echo", "params": {"value": value}}
        if label:
            job["labels"] = {"run": label}
        return job

    def test_repeat_returns_the_first_job(self):
        key = f"k-{uuid.uuid4()}"
        body = json.dumps(self.echo(1)).encode()
        s1, r1, j1 = post(self.d, "/v1/jobs", None, key, raw=body)
        self.assertEqual(s1, 202, j1)
        self.assertIsNone(r1.getheader("Idempotent-Replayed"))
        self.d.wait(j1["id"])
        s2, r2, j2 = post(self.d, "/v1/jobs", None, key, raw=body)
        self.assertEqual(s2, 200, j2)
        self.assertEqual(j2["id"], j1["id"])
        self.assertEqual(r2.getheader("Location"), f"/v1/jobs/{j1['id']}")
        self.assertEqual(r2.getheader("Idempotent-Replayed"), "true")
        # The job as it is now, not as it was.
        self.assertEqual((j2["state"], j2["result"]), ("succeeded", {"value": 1}))
        # Without a key, the same body is a new job.
        s3, _, j3 = post(self.d, "/v1/jobs", None, None, raw=body)
        self.assertEqual(s3, 202)
        self.assertNotEqual(j3["id"], j1["id"])

    def test_different_body_is_422(self):
        key = f"k-{uuid.uuid4()}"
        s1, _, j1 = post(self.d, "/v1/jobs", self.echo(1), key)
        self.assertEqual(s1, 202, j1)
        s2, r2, j2 = post(self.d, "/v1/jobs", self.echo(2), key)
        self.assertEqual(s2, 422)
        self.assertEqual(r2.getheader("Content-Type"), "application/problem+json")
        self.assertTrue(j2["type"].endswith("/idempotency-key-reused"), j2)
        self.assertEqual((j2["status"], j2["field"]), (422, "Idempotency-Key"))
        self.assertIn("Idempotency-Key", j2["detail"])
        # The body's bytes count: the same job written differently is
        # another body.
        s3, _, _ = post(self.d, "/v1/jobs", None, key,
                        raw=json.dumps(self.echo(1), indent=1).encode())
        self.assertEqual(s3, 422)

    def test_bad_keys_are_400(self):
        for key in ("", "x" * 256, "caf\u00e9", "a\x01b"):
            with self.subTest(key=key[:20]):
                status, resp, body = post(self.d, "/v1/jobs", self.echo(1), key)
                self.assertEqual(status, 400, body)
                self.assertEqual(resp.getheader("Content-Type"), "application/problem+json")
                self.assertEqual(body["field"], "Idempotency-Key")
                self.assertIn("Idempotency-Key", body["detail"])
        for path in ("/v1/jobs/batch",):
            status, _, body = post(self.d, path, {"jobs": [self.echo(1)]}, "")
            self.assertEqual((status, body["field"]), (400, "Idempotency-Key"))
        # The longest key, and all of printable ASCII, are fine.
        for key in ("y" * 255, "".join(map(chr, range(0x21, 0x7f)))):
            status, _, body = post(self.d, "/v1/jobs", self.echo(str(uuid.uuid4())), key)
            self.assertEqual(status, 202, body)

    def test_a_refused_request_does_not_keep_its_key(self):
        key = f"k-{uuid.uuid4()}"
        status, _, body = post(self.d, "/v1/jobs", {"task": "echo", "bogus": 1}, key)
        self.assertEqual(status, 400, body)
        status, _, body = post(self.d, "/v1/jobs", self.echo(5), key)
        self.assertEqual(status, 202, body)

    def test_fifty_concurrent_repeats_create_one_job(self):
        key = f"k-{uuid.uuid4()}"
        label = uuid.uuid4().hex
        results = concurrent_posts(self.d, 50, "/v1/jobs", self.echo(42, label), key)
        statuses = sorted(s for s, _ in results)
        self.assertEqual(statuses, [200] * 49 + [202], statuses)
        ids = {b["id"] for _, b in results}
        self.assertEqual(len(ids), 1, ids)
        jobs = jobs_labelled(self.d, label)
        self.assertEqual([j["id"] for j in jobs], list(ids))
        self.assertEqual(self.d.wait(jobs[0]["id"])["result"], {"value": 42})

    def test_batch(self):
        key = f"k-{uuid.uuid4()}"
        label = uuid.uuid4().hex
        batch = {"jobs": [self.echo(i, label) for i in range(3)]}
        s1, _, b1 = post(self.d, "/v1/jobs/batch", batch, key)
        self.assertEqual(s1, 202, b1)
        self.assertEqual(b1["count"], 3)
        s2, r2, b2 = post(self.d, "/v1/jobs/batch", batch, key)
        self.assertEqual((s2, b2), (200, b1))
        self.assertEqual(r2.getheader("Idempotent-Replayed"), "true")
        self.assertEqual(len(jobs_labelled(self.d, label)), 3)
        batch["jobs"].pop()
        s3, _, b3 = post(self.d, "/v1/jobs/batch", batch, key)
        self.assertEqual((s3, b3["field"]), (422, "Idempotency-Key"))
        # Keys are per route: the same name on /v1/jobs is another key.
        s4, _, b4 = post(self.d, "/v1/jobs", self.echo(9, label), key)
        self.assertEqual(s4, 202, b4)
        self.assertNotIn(b4["id"], b1["ids"])

    def test_jobctl_submit_idempotency_key(self):
        key = f"k-{uuid.uuid4()}"
        args = ("submit", "echo", "--param", "value=hello", "--idempotency-key", key)
        r1 = jobctl(*args, url=self.d.url)
        self.assertEqual(r1.returncode, 0, r1.stderr)
        r2 = jobctl(*args, url=self.d.url)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        self.assertRegex(r1.stdout.strip(), r"^[0-9a-f-]{36}$")
        self.assertEqual(r2.stdout, r1.stdout)
        r3 = jobctl("submit", "echo", "--param", "value=other", "--idempotency-key", key,
                    url=self.d.url)
        self.assertEqual(r3.returncode, 3)
        self.assertIn("Idempotency-Key", r3.stderr)
        r4 = jobctl("submit", "echo", "--param", "value=1", "--idempotency-key", "",
                    url=self.d.url)
        self.assertEqual(r4.returncode, 2)
        self.assertIn("--idempotency-key", r4.stderr)

    def test_jobctl_run_idempotency_key_follows_the_first_job(self):
        key = f"k-{uuid.uuid4()}"
        args = ("run", "--idempotency-key", key, "--", "sh", "-c", "date +%s%N; exit 3")
        r1 = jobctl(*args, url=self.d.url)
        self.assertEqual(r1.returncode, 3, r1.stderr)
        r2 = jobctl(*args, url=self.d.url)
        # The same job's output and exit code: the command ran once.
        self.assertEqual((r2.returncode, r2.stdout), (3, r1.stdout))


class KeysAfterRestart(unittest.TestCase):
    def test_keys_are_honoured_after_a_restart(self):
        d = Daemon("--threads", "1", "--processes", "1", "--durability", "full")
        state = d.state_dir
        try:
            job = {"task": "echo", "params": {"value": "before"}}
            batch = {"jobs": [job, job]}
            s1, _, j1 = post(d, "/v1/jobs", job, "restart-1")
            s2, _, b1 = post(d, "/v1/jobs/batch", batch, "restart-1")
            self.assertEqual((s1, s2), (202, 202))
            d.wait(j1["id"])
            self.assertEqual(d.stop(), 0)
            d2 = Daemon("--threads", "1", "--processes", "1", "--durability", "full",
                        "--state-dir", state)
            try:
                s, _, j2 = post(d2, "/v1/jobs", job, "restart-1")
                self.assertEqual((s, j2["id"], j2["state"]), (200, j1["id"], "succeeded"))
                s, _, b2 = post(d2, "/v1/jobs/batch", batch, "restart-1")
                self.assertEqual((s, b2), (200, b1))
                s, _, p = post(d2, "/v1/jobs", {"task": "echo", "params": {"value": 2}},
                               "restart-1")
                self.assertEqual((s, p["field"]), (422, "Idempotency-Key"))
                self.assertIn("idempotency: 2 key(s) loaded", d2.log())
                self.assertEqual(d2.stop(), 0)
                self.assertIsNone(d2.sanitizer_report())
            finally:
                d2.cleanup()
        finally:
            d.cleanup()

    def test_memory_durability_keeps_keys_in_memory(self):
        d = Daemon("--threads", "1", "--processes", "1", "--durability", "memory")
        try:
            job = {"task": "echo", "params": {"value": 1}}
            s1, _, j1 = post(d, "/v1/jobs", job, "mem")
            s2, _, j2 = post(d, "/v1/jobs", job, "mem")
            self.assertEqual((s1, s2, j2["id"]), (202, 200, j1["id"]))
            self.assertEqual(d.stop(), 0)
            self.assertIsNone(d.sanitizer_report())
        finally:
            d.cleanup()


class KeysExpire(unittest.TestCase):
    def test_expired_key_is_a_new_request(self):
        d = Daemon("--threads", "1", "--processes", "1",
                   config="[jobs]\nidempotency_ttl = 1\n")
        try:
            job = {"task": "echo", "params": {"value": 1}}
            s1, _, j1 = post(d, "/v1/jobs", job, "short")
            self.assertEqual(s1, 202, j1)

            def replay():
                s, _, j = post(d, "/v1/jobs", job, "short")
                if s == 200:
                    self.assertEqual(j["id"], j1["id"])
                    return None
                self.assertEqual(s, 202, j)
                return j

            # 200 with the first job until the key's second is up, then a
            # new job, whose key is remembered in turn.
            j2 = poll(replay)
            self.assertNotEqual(j2["id"], j1["id"])
            s3, _, j3 = post(d, "/v1/jobs", job, "short")
            self.assertIn(s3, (200, 202))
            if s3 == 200:
                self.assertEqual(j3["id"], j2["id"])
            self.assertEqual(d.stop(), 0)
            self.assertIsNone(d.sanitizer_report())
        finally:
            d.cleanup()

    def test_key_goes_with_its_job(self):
        """A key whose job retention removed counts as expired."""
        d = Daemon("--threads", "1", "--processes", "1")
        try:
            job = {"task": "echo", "params": {"value": 1}, "retention": 1}
            s1, _, j1 = post(d, "/v1/jobs", job, "kept-a-day")
            self.assertEqual(s1, 202, j1)
            d.wait(j1["id"])
            poll(lambda: d.request("GET", f"/v1/jobs/{j1['id']}")[0] == 404)
            s2, _, j2 = post(d, "/v1/jobs", job, "kept-a-day")
            self.assertEqual(s2, 202, j2)
            self.assertNotEqual(j2["id"], j1["id"])
            self.assertEqual(d.stop(), 0)
            self.assertIsNone(d.sanitizer_report())
        finally:
            d.cleanup()


class FailedSubmission(unittest.TestCase):
    def test_a_failed_submission_releases_its_key(self):
        d = Daemon("--threads", "1", "--processes", "1",
                   config="[jobs]\nmax_queued = 1\n")
        try:
            running = d.submit({"task": "sleep", "params": {"seconds": 60}})
            d.wait_running(running["id"])
            queued = d.submit({"task": "sleep", "params": {"seconds": 60}})
            job = {"task": "echo", "params": {"value": 1}}
            s1, r1, p1 = post(d, "/v1/jobs", job, "full")
            self.assertEqual(s1, 429, p1)
            self.assertEqual(r1.getheader("Retry-After"), "1")
            d.request("POST", f"/v1/jobs/{queued['id']}/cancel")
            s2, _, j2 = post(d, "/v1/jobs", job, "full")
            self.assertEqual(s2, 202, j2)
            s3, _, j3 = post(d, "/v1/jobs", job, "full")
            self.assertEqual((s3, j3["id"]), (200, j2["id"]))
            d.request("POST", f"/v1/jobs/{running['id']}/cancel")
            self.assertEqual(d.stop(), 0)
            self.assertIsNone(d.sanitizer_report())
        finally:
            d.cleanup()


@unittest.skipUnless(can_mount(), "cannot mount a tmpfs here")
class DiskFull(unittest.TestCase):
    def test_repeats_held_on_a_failing_submission_go_again(self):
        """The store fails the first request of a key (disk full) while
        repeats are held on it: the key is released, and each repeat goes
        again as a new request instead of getting the failed one's answer
        or creating a second job."""
        mnt = tempfile.mkdtemp(prefix="jobd-idem-full-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt], check=True)
        try:
            d = Daemon("--processes", "1", "--state-dir", mnt)
            try:
                d.submit({"task": "echo", "params": {"value": 1}})
                filler = fill_disk(mnt)
                label = uuid.uuid4().hex
                big = {"task": "echo", "labels": {"run": label},
                       "params": {"value": "x" * 200000}}
                results = concurrent_posts(d, 20, "/v1/jobs", big, "full-disk")
                statuses = sorted(s for s, _ in results)
                ids = {b.get("id") for _, b in results} - {None}
                # Each request ends on its own: refused (503), or, should
                # the disk have found room for one, that one job for all.
                self.assertLessEqual(len(ids), 1, ids)
                self.assertEqual(len(jobs_labelled(d, label)), len(ids))
                if not ids:
                    self.assertEqual(statuses, [503] * 20)
                os.unlink(filler)
                s1, _, j1 = post(d, "/v1/jobs", big, "full-disk")
                self.assertEqual(s1, 200 if ids else 202, j1)
                s2, _, j2 = post(d, "/v1/jobs", big, "full-disk")
                self.assertEqual((s2, j2["id"]), (200, j1["id"]))
                self.assertEqual(len(jobs_labelled(d, label)), 1)
                self.assertEqual(d.stop(), 0)
                self.assertIsNone(d.sanitizer_report())
            finally:
                d.cleanup()
        finally:
            subprocess.run(["umount", mnt])
            os.rmdir(mnt)


if __name__ == "__main__":
    unittest.main()
