"""GET /v1/events (Server-Sent Events) and jobctl watch.

Every wait here is on an event: an SSE frame, a long-poll, a line from
jobctl, a process exit. A stream is subscribed once its response headers
have arrived (jobd registers it before it answers), so a job submitted
after that is seen.
"""
import collections
import http.client
import json
import shutil
import signal
import subprocess
import tempfile
import unittest

from jobdtest import JOBCTL, TERMINAL, Daemon, DaemonTest, stop_and_check
from test_auth import Tokens, auth

Event = collections.namedtuple("Event", "type id data")


class Stream:
    """One GET /v1/events: a small SSE parser over http.client."""

    def __init__(self, d, path="/v1/events", headers=None, timeout=60):
        self.conn = http.client.HTTPConnection(d.host, d.port, timeout=timeout)
        self.conn.request("GET", path, headers=headers or {})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.comments = []
        self.retry = None

    def next(self):
        """The next event (comments noted and skipped); None when the
        stream has ended."""
        fields, data = {}, []
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode("utf-8").rstrip("\n")
            if line == "":
                if data:
                    return Event(fields.get("event", "message"), fields.get("id"),
                                 json.loads("\n".join(data)))
                fields, data = {}, []
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "retry":
                self.retry = int(value)
            else:
                fields[name] = value

    def until(self, pred, limit=100000):
        """Events up to and including the first for which pred is true."""
        out = []
        for _ in range(limit):
            e = self.next()
            if e is None:
                raise AssertionError("stream ended before the expected event; got %r"
                                     % out[-5:])
            out.append(e)
            if pred(e):
                return out
        raise AssertionError("no expected event in %d" % limit)

    def close(self):
        self.resp.close()
        self.conn.close()


def batch(d, specs):
    status, _, body = d.request("POST", "/v1/jobs/batch", {"jobs": specs})
    if status != 202:
        raise AssertionError(f"batch: {status} {body}")
    return body["ids"]


def wait_all(d, ids):
    status, _, r = d.request("POST", "/v1/wait", {"ids": ids, "timeout": 120})
    if status != 200 or r["not_done"]:
        raise AssertionError(f"wait: {status} {r}")


def states_of(events, job_id):
    return [(e.data["state"], e.data["attempt"]) for e in events
            if e.type == "state" and e.data["id"] == job_id]


class Events(DaemonTest):
    ARGS = ("--threads", "2", "--processes", "1", "--durability", "memory")

    def test_queued_running_succeeded(self):
        s = Stream(self.d)
        try:
            self.assertEqual(s.status, 200)
            self.assertEqual(s.resp.getheader("Content-Type"), "text/event-stream")
            self.assertEqual(s.resp.getheader("Cache-Control"), "no-cache")
            job = self.d.submit({"task": "echo", "params": {"value": 7},
                                 "labels": {"team": "a"}})
            jid = job["id"]
            events = s.until(lambda e: e.data.get("id") == jid and
                             e.data["state"] in TERMINAL)
            self.assertEqual(s.retry, 1000)
            mine = [e for e in events if e.data.get("id") == jid]
            self.assertEqual([(e.data["state"], e.data["attempt"]) for e in mine],
                             [("queued", 0), ("running", 1), ("succeeded", 1)])
            ids = [int(e.id) for e in mine]
            self.assertEqual(ids, sorted(set(ids)))
            last = mine[-1].data
            self.assertEqual(last["url"], "/v1/jobs/" + jid)
            self.assertEqual((last["task"], last["labels"]), ("echo", {"team": "a"}))
            # The result is stored before the event: it is there to read.
            got = self.d.get(jid)
            self.assertEqual(got["result"], {"value": 7})
            self.assertEqual(last["at"], got["finished_at"])
        finally:
            s.close()

    def test_each_event_goes_out_at_once(self):
        # No other traffic wakes the stream: a submission's events are
        # decided inside the request's handler (the memory store answers at
        # once), and must still go out then, not at the next keep-alive.
        # One keep-alive connection submits: a new one for each job would
        # wake jobd's HTTP side by itself when it closes.
        s = Stream(self.d, timeout=5)
        c = http.client.HTTPConnection(self.d.host, self.d.port, timeout=30)
        try:
            for i in range(20):
                c.request("POST", "/v1/jobs", body=json.dumps(
                    {"task": "echo", "params": {"value": i}}),
                    headers={"Content-Type": "application/json"})
                r = c.getresponse()
                jid = json.loads(r.read())["id"]
                s.until(lambda e: e.data.get("id") == jid and e.data["state"] == "succeeded")
        finally:
            c.close()
            s.close()

    def test_failed_and_cancelled_carry_the_error(self):
        s = Stream(self.d)
        try:
            bad = self.d.submit({"task": "exec", "params": {"argv": ["/bin/false"]}})["id"]
            ev = s.until(lambda e: e.data.get("id") == bad and e.data["state"] in TERMINAL)
            self.assertEqual(ev[-1].data["state"], "failed")
            self.assertEqual(ev[-1].data["error"]["type"], "exit_status")
            long = self.d.submit({"task": "sleep", "params": {"seconds": 3600}})["id"]
            s.until(lambda e: e.data.get("id") == long and e.data["state"] == "running")
            self.d.request("POST", f"/v1/jobs/{long}/cancel")
            ev = s.until(lambda e: e.data.get("id") == long)
            self.assertEqual((ev[-1].data["state"], ev[-1].data["error"]["type"]),
                             ("cancelled", "cancelled"))
        finally:
            s.close()

    def test_retries_dependencies_and_start_times_are_events(self):
        s = Stream(self.d)
        try:
            flaky = self.d.submit({"task": "echo", "params": {"value": 1, "fail": "on purpose"},
                                   "retries": 1, "retry_backoff": 0.01})["id"]
            events = s.until(lambda e: e.data.get("id") == flaky and
                             e.data["state"] in TERMINAL)
            self.assertEqual(states_of(events, flaky),
                             [("queued", 0), ("running", 1), ("waiting", 1), ("queued", 1),
                              ("running", 2), ("failed", 2)])
            first = self.d.submit({"task": "echo", "params": {"value": 1},
                                   "not_before": 0.05})["id"]
            then = self.d.submit({"task": "echo", "params": {"value": 2},
                                  "after": [first]})["id"]
            events = s.until(lambda e: e.data.get("id") == then and
                             e.data["state"] in TERMINAL)
            for jid in (first, then):
                self.assertEqual(states_of(events, jid),
                                 [("waiting", 0), ("queued", 0), ("running", 1),
                                  ("succeeded", 1)], jid)
        finally:
            s.close()

    def test_ids_filter(self):
        watched = self.d.submit({"task": "sleep", "params": {"seconds": 3600}})["id"]
        self.d.wait_running(watched)
        s = Stream(self.d, f"/v1/events?ids={watched}")
        try:
            # First the job as it is now.
            first = s.next()
            self.assertEqual((first.type, first.data["id"], first.data["state"]),
                             ("state", watched, "running"))
            other = self.d.submit({"task": "echo", "params": {"value": 1}})["id"]
            self.d.wait(other)
            self.d.request("POST", f"/v1/jobs/{watched}/cancel")
            # Events come in order: had the other job's passed the filter,
            # they would come first.
            e = s.next()
            self.assertEqual((e.data["id"], e.data["state"]), (watched, "cancelled"))
            self.assertGreater(int(e.id), int(first.id))
        finally:
            s.close()

    def test_ids_of_ended_jobs_show_their_end(self):
        a = self.d.submit({"task": "echo", "params": {"value": 1}})["id"]
        b = self.d.submit({"task": "echo", "params": {"value": 2}})["id"]
        self.d.wait(a)
        self.d.wait(b)
        s = Stream(self.d, f"/v1/events?ids={b},{a},{a}")
        try:
            got = {}
            for _ in range(2):
                e = s.next()
                got[e.data["id"]] = e.data["state"]
            self.assertEqual(got, {a: "succeeded", b: "succeeded"})
        finally:
            s.close()

    def test_label_filter(self):
        s = Stream(self.d, "/v1/events?label=team=blue&label=env=test")
        try:
            red = self.d.submit({"task": "echo", "params": {"value": 1},
                                 "labels": {"team": "red", "env": "test"}})["id"]
            plain = self.d.submit({"task": "echo", "params": {"value": 1}})["id"]
            self.d.wait(red)
            self.d.wait(plain)
            blue = self.d.submit({"task": "echo", "params": {"value": 1},
                                  "labels": {"team": "blue", "env": "test"}})["id"]
            events = [s.next() for _ in range(3)]
            self.assertEqual([(e.data["id"], e.data["state"]) for e in events],
                             [(blue, "queued"), (blue, "running"), (blue, "succeeded")])
        finally:
            s.close()

    def test_reconnect_with_last_event_id_sees_every_change_once(self):
        spec = {"task": "sleep", "params": {"seconds": 0.01}, "labels": {"run": "reconnect"}}
        q = "/v1/events?label=run=reconnect"
        s = Stream(self.d, q)
        first = batch(self.d, [spec] * 20)
        # Read part of the run, then drop the connection in the middle of it.
        seen = [s.next() for _ in range(25)]
        s.close()
        second = batch(self.d, [spec] * 20)
        wait_all(self.d, first + second)
        s = Stream(self.d, q, headers={"Last-Event-ID": seen[-1].id})
        try:
            ids = set(first + second)
            ended = {e.data["id"] for e in seen if e.data["state"] in TERMINAL}
            while ended != ids:
                e = s.next()
                seen.append(e)
                if e.data["state"] in TERMINAL:
                    ended.add(e.data["id"])
        finally:
            s.close()
        self.assertEqual([e.type for e in seen], ["state"] * len(seen))
        nums = [int(e.id) for e in seen]
        self.assertEqual(nums, sorted(set(nums)), "event IDs repeat or go back")
        for jid in ids:
            self.assertEqual(states_of(seen, jid),
                             [("queued", 0), ("running", 1), ("succeeded", 1)], jid)

    def test_query_last_event_id_resumes_too(self):
        s = Stream(self.d, "/v1/events")
        jid = self.d.submit({"task": "echo", "params": {"value": 1}})["id"]
        queued = s.until(lambda e: e.data.get("id") == jid)[-1]
        s.close()
        self.d.wait(jid)
        s = Stream(self.d, f"/v1/events?last_event_id={queued.id}")
        try:
            events = s.until(lambda e: e.data.get("id") == jid and
                             e.data["state"] == "succeeded")
            self.assertEqual(states_of(events, jid), [("running", 1), ("succeeded", 1)])
        finally:
            s.close()

    def test_bad_requests(self):
        cases = (("/v1/events?ids=nope", "ids"),
                 ("/v1/events?ids=", "ids"),
                 ("/v1/events?ids=01a248b1-d115-703c-8da4-78badb08095e", "ids"),
                 ("/v1/events?label=novalue", "label"),
                 ("/v1/events?last_event_id=x1", "last_event_id"))
        for path, field in cases:
            with self.subTest(path=path):
                status, resp, problem = self.d.request("GET", path)
                self.assertEqual(status, 400, problem)
                self.assertEqual(resp.getheader("Content-Type"), "application/problem+json")
                self.assertEqual(problem["field"], field)
        status, _, problem = self.d.request("GET", "/v1/events",
                                            headers={"Last-Event-ID": "-3"})
        self.assertEqual((status, problem["field"]), (400, "Last-Event-ID"))
        status, resp, _ = self.d.request("POST", "/v1/events")
        self.assertEqual(status, 405)
        self.assertIn("GET", resp.getheader("Allow"))


class TinyReplay(DaemonTest):
    ARGS = ("--threads", "2", "--processes", "1", "--durability", "memory",
            "--events-replay", "4", "--events-keepalive", "0.2")

    def test_resume_older_than_the_buffer_gets_lost(self):
        s = Stream(self.d)
        jid = self.d.submit({"task": "echo", "params": {"value": 1}})["id"]
        old = s.until(lambda e: e.data.get("id") == jid)[-1]
        s.close()
        wait_all(self.d, batch(self.d, [{"task": "echo", "params": {"value": 1}}] * 5))
        s = Stream(self.d, headers={"Last-Event-ID": old.id})
        try:
            lost = s.next()
            self.assertEqual(lost.type, "lost")
            self.assertEqual(lost.data["last_event_id"], int(old.id))
            self.assertGreater(lost.data["oldest_event_id"], int(old.id) + 1)
            # Then on from the present.
            new = self.d.submit({"task": "echo", "params": {"value": 1}})["id"]
            events = s.until(lambda e: e.data.get("id") == new and
                             e.data["state"] == "succeeded")
            self.assertEqual(states_of(events, new),
                             [("queued", 0), ("running", 1), ("succeeded", 1)])
            self.assertTrue(all(int(e.id) > int(lost.id) for e in events))
        finally:
            s.close()

    def test_a_reader_further_behind_than_the_buffer_gets_lost(self):
        # Ten jobs taken in at once are ten events before the stream can
        # read one: more than the buffer holds.
        s = Stream(self.d)
        try:
            ids = batch(self.d, [{"task": "echo", "params": {"value": 1}}] * 10)
            e = s.next()
            self.assertEqual(e.type, "lost")
            wait_all(self.d, ids)
            new = self.d.submit({"task": "echo", "params": {"value": 1}})["id"]
            events = s.until(lambda e: e.data.get("id") == new and
                             e.data["state"] == "succeeded")
            self.assertEqual(states_of(events, new),
                             [("queued", 0), ("running", 1), ("succeeded", 1)])
        finally:
            s.close()

    def test_events_a_filter_does_not_take_are_not_lost(self):
        watched = self.d.submit({"task": "sleep", "params": {"seconds": 3600}})["id"]
        self.d.wait_running(watched)
        s = Stream(self.d, f"/v1/events?ids={watched}")
        try:
            self.assertEqual(s.next().data["state"], "running")
            wait_all(self.d, batch(self.d, [{"task": "echo", "params": {"value": 1}}] * 10))
            self.d.request("POST", f"/v1/jobs/{watched}/cancel")
            e = s.next()
            self.assertEqual((e.type, e.data["state"]), ("state", "cancelled"))
        finally:
            s.close()

    def test_keep_alive_comments(self):
        s = Stream(self.d)
        try:
            while True:
                line = s.resp.readline()
                self.assertTrue(line, "the stream ended")
                if line == b": keep-alive\n":
                    break
        finally:
            s.close()


class Tenants(unittest.TestCase):
    """With tokens, a stream shows a token only its own tenant's jobs."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="jobd-test-events-")
        cls.tokens = Tokens(cls.tmp)
        for name, role in (("alice", "submit"), ("bob", "submit"), ("root", "admin")):
            cls.tokens.add(name, name, role)
        cls.tokens.write()
        cls.d = Daemon("--threads", "2", "--processes", "1", "--durability", "memory",
                       config=f"[auth]\ntokens_file = {cls.tokens.path}\n")

    @classmethod
    def tearDownClass(cls):
        try:
            stop_and_check(cls.d)
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def submit(self, who):
        status, _, job = self.d.request("POST", "/v1/jobs", {"task": "echo", "params": {"value": 1}},
                                        headers=auth(self.tokens.token[who]))
        self.assertEqual(status, 202, job)
        return job["id"]

    def test_a_stream_carries_only_the_tokens_jobs(self):
        alice = Stream(self.d, headers=auth(self.tokens.token["alice"]))
        root = Stream(self.d, headers=auth(self.tokens.token["root"]))
        try:
            b = self.submit("bob")
            a = self.submit("alice")
            # Events come in order: bob's would come first.
            got = alice.until(lambda e: e.data["id"] == a and e.data["state"] == "succeeded")
            self.assertEqual({e.data["id"] for e in got}, {a})
            got = root.until(lambda e: e.data["id"] == a and e.data["state"] == "succeeded")
            self.assertEqual({e.data["id"] for e in got}, {a, b})
        finally:
            alice.close()
            root.close()

    def test_another_tenants_job_is_refused_like_an_unknown_one(self):
        b = self.submit("bob")
        unknown = "01a248b1-d115-703c-8da4-78badb08095e"
        details = []
        for jid in (b, unknown):
            status, _, problem = self.d.request("GET", f"/v1/events?ids={jid}",
                                                headers=auth(self.tokens.token["alice"]))
            self.assertEqual((status, problem["field"]), (400, "ids"))
            details.append(problem["detail"].replace(jid, "ID"))
        self.assertEqual(details[0], details[1])
        status, _, _ = self.d.request("GET", "/v1/events")
        self.assertEqual(status, 401)

    def test_jobctl_watch_sends_the_token(self):
        jid = self.submit("alice")
        r = subprocess.run([JOBCTL, "--url", self.d.url, "--token", self.tokens.token["alice"],
                            "watch", jid], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, jid + r"\s+succeeded")


class StreamLimit(DaemonTest):
    ARGS = ("--threads", "1", "--processes", "1", "--durability", "memory",
            "--max-event-streams", "2")

    def test_beyond_the_limit_is_503(self):
        a, b = Stream(self.d), Stream(self.d)
        try:
            self.assertEqual((a.status, b.status), (200, 200))
            status, resp, problem = self.d.request("GET", "/v1/events")
            self.assertEqual(status, 503)
            self.assertEqual(resp.getheader("Content-Type"), "application/problem+json")
            self.assertTrue(resp.getheader("Retry-After"))
            self.assertIn("max_event_streams", problem["detail"])
        finally:
            a.close()
            b.close()


class Shutdown(unittest.TestCase):
    def test_sigterm_ends_open_streams_and_exits_0(self):
        d = Daemon("--threads", "1", "--processes", "1", "--durability", "memory")
        streams = []
        try:
            idle = Stream(d)
            s = Stream(d)
            streams += [idle, s]
            long = d.submit({"task": "sleep", "params": {"seconds": 3600}})["id"]
            s.until(lambda e: e.data.get("id") == long and e.data["state"] == "running")
            d.signal(signal.SIGTERM)
            # The job is stopped by the shut-down; its end still comes, then
            # the stream ends cleanly (the chunked body is terminated).
            events = s.until(lambda e: e.data.get("id") == long and
                             e.data["state"] in TERMINAL)
            self.assertEqual(events[-1].data["state"], "cancelled")
            self.assertIsNone(s.next())
            self.assertIsNotNone(idle.until(lambda e: e.data.get("state") == "cancelled"))
            self.assertIsNone(idle.next())
            self.assertEqual(d.stop(), 0)
            self.assertIsNone(d.sanitizer_report())
        finally:
            for st in streams:
                st.close()
            d.cleanup()

    def test_client_gone_mid_stream_leaks_nothing(self):
        d = Daemon("--threads", "2", "--processes", "1", "--durability", "memory")
        try:
            streams = [Stream(d) for _ in range(5)]
            ids = batch(d, [{"task": "echo", "params": {"value": 1}}] * 50)
            streams[0].next()
            for s in streams:
                s.close()
            wait_all(d, ids)
            # Still serving streams after they went.
            s = Stream(d)
            jid = d.submit({"task": "echo", "params": {"value": 1}})["id"]
            s.until(lambda e: e.data.get("id") == jid and e.data["state"] == "succeeded")
            s.close()
            self.assertEqual(d.stop(), 0)
            self.assertIsNone(d.sanitizer_report())
        finally:
            d.cleanup()


class Watch(DaemonTest):
    ARGS = ("--threads", "2", "--processes", "1", "--durability", "memory")

    def watch(self, *args):
        return subprocess.Popen([JOBCTL, "--url", self.d.url, "watch", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def rest(p):
        """Wait for jobctl to exit; the rest of its stdout (after what
        readline() took, which communicate() would bypass) and its stderr."""
        p.wait(timeout=60)
        return p.stdout.read(), p.stderr.read()

    @staticmethod
    def end(p):
        """Kill a jobctl watch that is still running, and close its pipes."""
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()

    def test_watch_prints_changes_and_exits_when_the_jobs_end(self):
        long = self.d.submit({"task": "sleep", "params": {"seconds": 3600}})["id"]
        done = self.d.submit({"task": "echo", "params": {"value": 1}})["id"]
        self.d.wait(done)
        self.d.wait_running(long)
        p = self.watch(long, done)
        try:
            lines = []
            while not any("running" in l for l in lines):
                line = p.stdout.readline()
                self.assertTrue(line, p.stderr.read() if p.poll() is not None else "")
                lines.append(line)
            self.d.request("POST", f"/v1/jobs/{long}/cancel")
            out, err = self.rest(p)
            self.assertEqual(p.returncode, 0, err)
        finally:
            self.end(p)
        text = "".join(lines) + out
        self.assertRegex(text, done + r"\s+succeeded\s+1")
        self.assertRegex(text, long + r"\s+running\s+1")
        self.assertRegex(text, long + r"\s+cancelled\s+1")

    def test_watch_json(self):
        jid = self.d.submit({"task": "sleep", "params": {"seconds": 3600}})["id"]
        self.d.wait_running(jid)
        p = self.watch("--json", jid)
        try:
            first = json.loads(p.stdout.readline())
            self.assertEqual((first["id"], first["state"]), (jid, "running"))
            self.d.request("POST", f"/v1/jobs/{jid}/cancel")
            out, err = self.rest(p)
            self.assertEqual(p.returncode, 0, err)
        finally:
            self.end(p)
        last = json.loads(out.splitlines()[-1])
        self.assertEqual((last["id"], last["state"], last["url"]),
                         (jid, "cancelled", "/v1/jobs/" + jid))

    def test_watch_unknown_job_exits_3(self):
        p = self.watch("01a248b1-d115-703c-8da4-78badb08095e")
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 3)
        self.assertIn("no job", err)


class WatchAcrossRestart(unittest.TestCase):
    def test_watch_reconnects_after_jobd_restarts(self):
        args = ("--threads", "1", "--processes", "1", "--durability", "normal",
                "--shutdown-grace", "0")
        a = Daemon(*args)
        b = None
        p = None
        try:
            jid = a.submit({"task": "sleep", "params": {"seconds": 3600}})["id"]
            a.wait_running(jid)
            p = subprocess.Popen([JOBCTL, "--url", a.url, "watch", jid],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertIn("running", p.stdout.readline())
            # Stopped with no grace, the job is stored queued; jobctl sees
            # that, then the stream end, and keeps trying the same address.
            a.signal(signal.SIGTERM)
            self.assertIn("queued", p.stdout.readline())
            self.assertEqual(a.stop(), 0)
            b = Daemon(*args, "--state-dir", a.state_dir, "--listen", f"{a.host}:{a.port}")
            # The job runs again. jobd's event IDs start over, so jobctl's
            # Last-Event-ID is one jobd no longer has: it is told, and gets
            # the job's state as it is now.
            b.wait_running(jid)
            while True:
                line = p.stdout.readline()
                self.assertTrue(line, "jobctl stopped early")
                if "running" in line:
                    break
            self.assertRegex(line, jid + r"\s+running\s+2")
            b.request("POST", f"/v1/jobs/{jid}/cancel")
            p.wait(timeout=60)
            out, err = p.stdout.read(), p.stderr.read()
            self.assertEqual(p.returncode, 0, err)
            self.assertRegex(out, jid + r"\s+cancelled\s+2")
            self.assertIn("reconnecting", err)
            self.assertIn("no longer has some events", err)
            self.assertEqual(b.stop(), 0)
            self.assertIsNone(b.sanitizer_report())
        finally:
            if p:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
                p.stderr.close()
            if b:
                b.cleanup()
            a.cleanup()


if __name__ == "__main__":
    unittest.main()
