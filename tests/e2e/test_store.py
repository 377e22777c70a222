"""The durable store against the real jobd: kill -9 in the middle of
submissions, recovery, restartable jobs, retention, a full disk, and the
databases jobd refuses to open."""
import http.client
import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

from jobdtest import can_mount, fill_disk, JOBD, Daemon, pids_with_marker


def integrity(state_dir):
    db = sqlite3.connect(os.path.join(state_dir, "jobd.db"))
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


class KillNine(unittest.TestCase):
    ROUNDS = 5
    SUBMISSIONS = 10000
    CLIENTS = 8

    def one_round(self, n):
        d = Daemon("--threads", "2", "--processes", "1", "--durability", "full")
        state = d.state_dir
        acked = []
        lock = threading.Lock()
        stop = threading.Event()
        kill_at = self.SUBMISSIONS // 2 + n * 500  # a different moment each round

        def client(c):
            conn = http.client.HTTPConnection(d.host, d.port, timeout=30)
            try:
                for i in range(self.SUBMISSIONS // self.CLIENTS):
                    if stop.is_set():
                        return
                    conn.request("POST", "/v1/jobs", body=json.dumps(
                        {"task": "echo", "params": {"value": c * 100000 + i}}),
                        headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    body = r.read()
                    if r.status == 202:
                        with lock:
                            acked.append((json.loads(body)["id"], c * 100000 + i))
                            if len(acked) >= kill_at:
                                stop.set()
            except (OSError, http.client.HTTPException):
                return  # jobd was killed under us: that is the test
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(c,)) for c in range(self.CLIENTS)]
        for t in threads:
            t.start()
        stop.wait(120)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        for t in threads:
            t.join(60)
        self.assertGreater(len(acked), 0)
        self.assertEqual(integrity(state), "ok")

        d2 = Daemon("--threads", "2", "--processes", "1", "--durability", "full",
                    "--state-dir", state)
        try:
            for job_id, value in acked:
                job = d2.wait(job_id, 120)
                self.assertEqual(job["state"], "succeeded", job)
                self.assertEqual(job["result"], {"value": value})
                self.assertIn(job["attempt"], (1, 2))
            _, _, health = d2.request("GET", "/v1/health")
            self.assertGreaterEqual(health["jobs"]["total"], len(acked))
            self.assertEqual(d2.stop(), 0)
            self.assertIsNone(d2.sanitizer_report(), d2.log())
            self.assertEqual(integrity(state), "ok")
        finally:
            d2.cleanup()
            d.cleanup()
        return len(acked)

    def test_kill_nine_during_submissions(self):
        for n in range(self.ROUNDS):
            with self.subTest(round=n):
                self.one_round(n)


class Recovery(unittest.TestCase):
    def test_running_jobs_after_kill_nine(self):
        tag = f"jobd-store-test-{os.getpid()}"
        d = Daemon("--threads", "2", "--processes", "2")
        state = d.state_dir
        try:
            rerun = d.submit({"task": "sleep", "params": {"seconds": 3600}})
            once = d.submit({"task": "exec", "restartable": False,
                             "params": {"argv": ["sleep", "3600"], "env": {"TAG": tag}}})
            d.wait_running(rerun["id"])
            d.wait_running(once["id"])
            # Its 202 comes once it is stored, and the store keeps order:
            # the two jobs' "running" is on disk too after this.
            queued = d.submit({"task": "echo", "executor": "process", "params": {"value": 7}})
            _, _, ex = d.request("GET", "/v1/executors")
            workers = [p["pid"] for e in ex["executors"] if e["name"] == "process"
                       for p in e["processes"]]
            pidfds = [os.pidfd_open(p) for p in workers]
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            for fd in pidfds:  # the old instance's workers die with it
                self.assertEqual(select.select([fd], [], [], 10)[0], [fd])
                os.close(fd)
            d2 = Daemon("--threads", "2", "--processes", "2", "--state-dir", state)
            try:
                again = d2.wait_running(rerun["id"])
                self.assertEqual(again["attempt"], 2)
                failed = d2.get(once["id"])
                self.assertEqual(failed["state"], "failed")
                self.assertEqual(failed["error"]["type"], "restarted")
                self.assertIn("restarted", failed["error"]["message"])
                self.assertFalse(failed["restartable"])
                self.assertEqual(d2.wait(queued["id"])["result"], {"value": 7})
                # The exec job's process did not outlive the crash.
                self.assertEqual([p for p in pids_with_marker("sleep")
                                  if tag in open(f"/proc/{p}/environ", "rb").read().decode(
                                      "latin-1")], [])
            finally:
                d2.cleanup()
        finally:
            d.cleanup()

    def test_sigterm_keeps_queued_and_running_jobs(self):
        d = Daemon("--threads", "1", "--processes", "1", "--shutdown-grace", "0.3")
        state = d.state_dir
        try:
            running = d.submit({"task": "sleep", "params": {"seconds": 3600}})
            d.wait_running(running["id"])
            queued = [d.submit({"task": "echo", "params": {"value": i}}) for i in range(3)]
            self.assertEqual(d.stop(), 0)
            d2 = Daemon("--threads", "1", "--processes", "1", "--state-dir", state)
            try:
                again = d2.wait_running(running["id"])
                self.assertEqual(again["state"], "running")
                d2.request("POST", f"/v1/jobs/{running['id']}/cancel")
                for i, q in enumerate(queued):
                    self.assertEqual(d2.wait(q["id"])["result"], {"value": i})
            finally:
                d2.cleanup()
        finally:
            d.cleanup()


class Retention(unittest.TestCase):
    def test_expired_jobs_go_with_their_output(self):
        d = Daemon("--processes", "1", "--retention", "3600")
        try:
            short = d.wait(d.submit({"task": "exec", "retention": 1,
                                     "params": {"command": "echo bye"}})["id"])
            keep = d.wait(d.submit({"task": "exec", "params": {"command": "echo stay"}})["id"])
            out = os.path.join(d.state_dir, "output")
            self.assertTrue(os.path.exists(os.path.join(out, short["id"] + ".stdout")))
            # Retention is time itself: look again until it has passed.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                status, _, _ = d.request("GET", f"/v1/jobs/{short['id']}")
                if status == 404:
                    break
                time.sleep(0.2)
            self.assertEqual(status, 404)
            self.assertFalse(os.path.exists(os.path.join(out, short["id"] + ".stdout")))
            self.assertEqual(d.get(keep["id"])["state"], "succeeded")
            self.assertTrue(os.path.exists(os.path.join(out, keep["id"] + ".stdout")))
            state = d.state_dir
            self.assertEqual(d.stop(), 0)
            db = sqlite3.connect(os.path.join(state, "jobd.db"))
            ids = {r[0] for r in db.execute("SELECT hex(id) FROM jobs")}
            db.close()
            self.assertNotIn(short["id"].replace("-", "").upper(), ids)
            self.assertIn(keep["id"].replace("-", "").upper(), ids)
        finally:
            d.cleanup()


class Bounds(unittest.TestCase):
    def test_a_result_over_max_result_fails_its_job(self):
        d = Daemon("--threads", "1", "--processes", "1", "--max-result", "2K")
        try:
            big = d.wait(d.submit({"task": "echo", "params": {"value": "x" * 3000}})["id"])
            self.assertEqual((big["state"], big["error"]["type"]),
                             ("failed", "result_too_large"))
            self.assertIsNone(big["result"])
            self.assertIn("max_result", big["error"]["message"])
            small = d.wait(d.submit({"task": "echo", "params": {"value": "x" * 100}})["id"])
            self.assertEqual(small["state"], "succeeded")
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()

    def test_orphaned_output_files_go_at_start(self):
        d = Daemon("--processes", "1")
        state = d.state_dir  # in d.tmp, removed at the end
        self.addCleanup(shutil.rmtree, d.tmp, ignore_errors=True)
        try:
            kept = d.wait(d.submit({"task": "exec", "params": {"command": "echo kept"}})["id"])
        finally:
            self.assertEqual(d.stop(), 0)
        out = os.path.join(state, "output")
        orphan = os.path.join(out, "01a00000-0000-7000-8000-000000000001.stdout")
        with open(orphan, "w") as f:
            f.write("left by a crash\n")
        d2 = Daemon("--processes", "1", "--state-dir", state)
        try:
            self.assertFalse(os.path.exists(orphan))
            self.assertTrue(os.path.exists(os.path.join(out, kept["id"] + ".stdout")))
            self.assertIn("removed 1 orphaned output file", d2.log())
            self.assertEqual(d2.stop(), 0)
        finally:
            d2.cleanup()


@unittest.skipUnless(can_mount(), "cannot mount a tmpfs here")
class DiskFull(unittest.TestCase):
    def test_503_while_full_then_recovers(self):
        mnt = tempfile.mkdtemp(prefix="jobd-full-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt], check=True)
        try:
            d = Daemon("--processes", "1", "--state-dir", mnt)
            try:
                ok = d.submit({"task": "echo", "params": {"value": 1}})
                filler = fill_disk(mnt)
                big = {"task": "echo", "params": {"value": "x" * 200000}}
                status, resp, problem = d.request("POST", "/v1/jobs", big)
                self.assertEqual(status, 503, problem)
                self.assertTrue(resp.getheader("Retry-After"))
                os.unlink(filler)
                job = d.submit(big)  # room again: accepted
                self.assertEqual(d.wait(job["id"])["state"], "succeeded")
                self.assertEqual(d.wait(ok["id"])["state"], "succeeded")
            finally:
                d.cleanup()
        finally:
            subprocess.run(["umount", mnt])
            os.rmdir(mnt)


@unittest.skipUnless(can_mount(), "cannot mount a tmpfs here")
class ReadOnly(unittest.TestCase):
    def test_a_read_only_state_directory_exits_73(self):
        mnt = tempfile.mkdtemp(prefix="jobd-ro-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", mnt], check=True)
        try:
            r = subprocess.run([JOBD, "-c", "/dev/null", "--listen", "127.0.0.1:0",
                                "--state-dir", mnt, "--processes", "1"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 73, r.stderr)
            self.assertIn(mnt, r.stderr)
        finally:
            subprocess.run(["umount", mnt])
            os.rmdir(mnt)


class BadDatabases(unittest.TestCase):
    def start(self, state):
        return subprocess.run([JOBD, "-c", "/dev/null", "--listen", "127.0.0.1:0",
                               "--state-dir", state, "--processes", "1"],
                              capture_output=True, text=True, timeout=60)

    def test_corrupt_newer_and_locked(self):
        tmp = tempfile.mkdtemp(prefix="jobd-baddb-")
        try:
            with open(os.path.join(tmp, "jobd.db"), "wb") as f:
                f.write(b"this is not a database" * 100)
            r = self.start(tmp)
            self.assertEqual(r.returncode, 65, r.stderr)
            self.assertIn("jobd.db", r.stderr)
            os.unlink(os.path.join(tmp, "jobd.db"))

            d = Daemon("--processes", "1", "--state-dir", tmp)
            try:
                r = self.start(tmp)  # a second jobd on the same state
                self.assertEqual(r.returncode, 75, r.stderr)
                self.assertIn("in use by another jobd", r.stderr)
            finally:
                self.assertEqual(d.stop(), 0)
                d.cleanup()
            db = sqlite3.connect(os.path.join(tmp, "jobd.db"))
            db.execute("PRAGMA user_version = 99")
            db.commit()
            db.close()
            r = self.start(tmp)
            self.assertEqual(r.returncode, 65, r.stderr)
            self.assertIn("newer", r.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
