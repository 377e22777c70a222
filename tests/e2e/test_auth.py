"""Bearer tokens, roles, tenants and per-token limits, end to end.

Every rule against the real jobd: no token and a wrong token get 401 with
WWW-Authenticate: Bearer; /v1/health stays open; a read token may not
submit (403); one tenant cannot get, list, wait on, cancel, read the output
of, or depend on another's jobs (404, 400 for "after"), while admin can; the
per-token queue and rate limits answer 429 with Retry-After; tokens reload
on SIGHUP (a bad file keeps the old ones); a bad tokens file or a listener
beyond this machine without tokens stops jobd at start (78); ownership
survives a restart; and jobctl sends tokens from --token, JOBD_TOKEN and
JOBD_TOKEN_FILE, and makes new ones.
"""
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from jobdtest import JOBCTL, JOBD, SOURCE_DIR, Daemon, complete, jobctl, stop_and_check


def make_token():
    """A token as jobctl makes them, and its tokens-file hash."""
    t = "jobd_" + base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    return t, "sha256:" + hashlib.sha256(t.encode()).hexdigest()


class Tokens:
    """A tokens file under `directory`, written with mode 0600."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "tokens")
        self.token = {}
        self.lines = {}

    def add(self, key, name, role, extra=""):
        t, h = make_token()
        self.token[key] = t
        self.lines[key] = f"{name} {role} {h} {extra}".rstrip()
        return t

    def remove(self, key):
        del self.lines[key]

    def write(self, text=None):
        body = text if text is not None else (
            "# jobd tokens\n" + "".join(line + "\n" for line in self.lines.values()))
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(body)


def auth(token):
    return {"Authorization": f"Bearer {token}"}


ECHO = {"task": "echo", "params": {"value": 1}}


def waiting_job(value=1):
    """A job that waits an hour before it may start: it stays waiting (counted
    as queued) until cancelled, and costs nothing."""
    return {"task": "echo", "params": {"value": value}, "not_before": 3600}


class AuthBase(unittest.TestCase):
    """One jobd with tokens for the whole class."""

    EXTRA_CONFIG = ""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="jobd-test-auth-")
        cls.tokens = Tokens(cls.tmp)
        cls.add_tokens(cls.tokens)
        cls.tokens.write()
        cls.d = Daemon("--threads", "2", "--processes", "1",
                       config=f"[auth]\ntokens_file = {cls.tokens.path}\n" + cls.EXTRA_CONFIG)

    @classmethod
    def add_tokens(cls, tokens):
        tokens.add("alice", "alice", "submit")
        tokens.add("alice_ro", "alice", "read")
        tokens.add("bob", "bob", "submit")
        tokens.add("reader", "reader", "read")
        tokens.add("root", "root", "admin")
        tokens.add("limited", "limited", "submit", "max_queued=2")
        tokens.add("slow", "slow", "submit", "rate=0.5 burst=2")

    @classmethod
    def tearDownClass(cls):
        try:
            stop_and_check(cls.d)
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def req(self, method, path, who=None, body=None, headers=None, d=None):
        h = dict(headers or {})
        if who:
            h.update(auth(self.tokens.token[who]))
        return (d or self.d).request(method, path, body, headers=h)

    def submit(self, who, job, expect=202):
        status, _, body = self.req("POST", "/v1/jobs", who, job)
        self.assertEqual(status, expect, body)
        return body

    def assert_problem(self, status, resp, body, want):
        self.assertEqual(status, want, body)
        self.assertEqual(resp.getheader("Content-Type"), "application/problem+json")
        self.assertEqual(body["status"], want)
        self.assertTrue(body["detail"])


class Authentication(AuthBase):
    def test_no_token_is_401_with_www_authenticate(self):
        for method, path, body in (("GET", "/v1/jobs", None),
                                   ("POST", "/v1/jobs", ECHO),
                                   ("GET", "/v1/tasks", None),
                                   ("GET", "/metrics", None),
                                   ("GET", "/", None),
                                   ("GET", "/v1/no-such-route", None),
                                   ("DELETE", "/v1/jobs", None)):
            with self.subTest(method=method, path=path):
                status, resp, doc = self.req(method, path, body=body)
                self.assert_problem(status, resp, doc, 401)
                self.assertRegex(resp.getheader("WWW-Authenticate"), r"^Bearer\b")
                self.assertIn("token", doc["detail"])

    def test_wrong_token_is_401(self):
        bad = ["Bearer " + make_token()[0], "Bearer nope", "Bearer", "Bearer  ",
               "Basic YWxpY2U6c2VjcmV0", "bearer " + make_token()[0],
               "Bearer " + self.tokens.token["alice"] + "x",
               "Bearer " + self.tokens.token["alice"] + " extra",
               "Bearer " + "a" * 600]
        for value in bad:
            with self.subTest(header=value[:40]):
                status, resp, doc = self.d.request("GET", "/v1/jobs",
                                                   headers={"Authorization": value})
                self.assert_problem(status, resp, doc, 401)
                self.assertEqual(resp.getheader("WWW-Authenticate"),
                                 'Bearer realm="jobd", error="invalid_token"')

    def test_scheme_is_case_insensitive(self):
        status, _, _ = self.d.request(
            "GET", "/v1/jobs", headers={"Authorization": "bEaReR " + self.tokens.token["alice"]})
        self.assertEqual(status, 200)

    def test_health_and_ready_are_open(self):
        for path in ("/v1/health", "/v1/ready"):
            status, _, doc = self.d.request("GET", path)
            self.assertEqual(status, 200, doc)
        status, _, doc = self.d.request("GET", "/v1/health",
                                        headers={"Authorization": "Bearer wrong"})
        self.assertEqual(status, 200, doc)

    def test_read_token_may_read_not_submit_or_cancel(self):
        for path in ("/v1/jobs", "/v1/tasks", "/v1/executors", "/metrics", "/"):
            status, _, doc = self.req("GET", path, "reader")
            self.assertEqual(status, 200, (path, doc))
        job = self.submit("alice", waiting_job())
        for method, path, body in (("POST", "/v1/jobs", ECHO),
                                   ("POST", "/v1/jobs/batch", {"jobs": [ECHO]}),
                                   ("POST", f"/v1/jobs/{job['id']}/cancel", None)):
            with self.subTest(path=path):
                status, resp, doc = self.req(method, path, "alice_ro", body)
                self.assert_problem(status, resp, doc, 403)
                self.assertIn("read", doc["detail"])
                self.assertIn("insufficient_scope", resp.getheader("WWW-Authenticate"))
        self.assertEqual(self.req("GET", f"/v1/jobs/{job['id']}", "alice")[2]["state"],
                         "waiting")
        self.req("POST", f"/v1/jobs/{job['id']}/cancel", "alice")


class Tenants(AuthBase):
    def not_found_like_unknown(self, status, doc, job_id):
        """A foreign job's 404 reads exactly as an unknown ID's."""
        self.assertEqual(status, 404, doc)
        unknown = "01a00000-0000-7000-8000-000000000000"
        _, _, ref = self.req("GET", f"/v1/jobs/{unknown}", "bob")
        self.assertEqual(doc["type"], ref["type"])
        self.assertEqual(doc["detail"].replace(job_id, unknown), ref["detail"])

    def test_a_job_records_its_owner(self):
        job = self.submit("alice", {"task": "echo", "params": {"value": 1}})
        self.assertEqual(job["owner"], "alice")
        self.assertEqual(self.submit("bob", ECHO)["owner"], "bob")

    def test_other_tenants_jobs_are_not_found(self):
        mine = self.submit("alice", {"task": "exec", "params": {"argv": ["echo", "hi"]}})
        waiting = self.submit("alice", waiting_job())
        self.d.request("GET", f"/v1/jobs/{mine['id']}?wait=30",
                       headers=auth(self.tokens.token["alice"]))
        bobs = self.submit("bob", {"task": "echo", "params": {"value": 2}})
        aid, wid = mine["id"], waiting["id"]

        # bob: get, long-poll, wait, cancel, output: as if there were no job
        for method, path in (("GET", f"/v1/jobs/{aid}"),
                             ("GET", f"/v1/jobs/{wid}?wait=5"),
                             ("POST", f"/v1/jobs/{wid}/cancel"),
                             ("GET", f"/v1/jobs/{aid}/output/stdout"),
                             ("GET", f"/v1/jobs/{aid}/output/stderr?wait=5")):
            with self.subTest(method=method, path=path):
                status, _, doc = self.req(method, path, "bob")
                self.not_found_like_unknown(status, doc, aid if aid in path else wid)
        status, _, doc = self.req("POST", "/v1/wait", "bob",
                                  {"ids": [bobs["id"], wid], "timeout": 5})
        self.assertEqual((status, doc.get("field")), (404, "ids[1]"), doc)
        self.assertIn(wid, doc["detail"])
        # ... nor list it, nor depend on it
        _, _, listed = self.req("GET", "/v1/jobs?limit=1000", "bob")
        ids = {j["id"] for j in listed["jobs"]}
        self.assertIn(bobs["id"], ids)
        self.assertFalse(ids & {aid, wid})
        self.assertEqual({j["owner"] for j in listed["jobs"]}, {"bob"})
        status, _, doc = self.req("POST", "/v1/jobs", "bob",
                                  {**ECHO, "after": [aid]})
        self.assertEqual((status, doc["field"]), (400, "after[0]"), doc)
        self.assertIn("there is no job", doc["detail"])
        # A cursor naming another tenant's job tells nothing either.
        status, _, page = self.req("GET", f"/v1/jobs?cursor={aid}", "bob")
        self.assertEqual(status, 200)
        self.assertFalse({j["id"] for j in page["jobs"]} & {aid, wid})

        # The waiting job was not cancelled by bob's try.
        _, _, still = self.req("GET", f"/v1/jobs/{wid}", "alice")
        self.assertEqual(still["state"], "waiting")

        # alice's read token sees alice's jobs.
        status, _, doc = self.req("GET", f"/v1/jobs/{aid}", "alice_ro")
        self.assertEqual((status, doc["owner"]), (200, "alice"))
        status, resp, out = self.req("GET", f"/v1/jobs/{aid}/output/stdout", "alice_ro")
        self.assertEqual((status, out), (200, b"hi\n"))
        status, _, doc = self.req("POST", "/v1/wait", "alice_ro", {"ids": [aid], "timeout": 5})
        self.assertEqual((status, doc["done"]), (200, [aid]))
        _, _, listed = self.req("GET", "/v1/jobs?limit=1000", "alice_ro")
        self.assertTrue({aid, wid} <= {j["id"] for j in listed["jobs"]})
        self.assertNotIn(bobs["id"], {j["id"] for j in listed["jobs"]})
        # alice may depend on her own job
        self.submit("alice", {**ECHO, "after": [aid]})

        # admin sees and does everything, and can pick a tenant's jobs.
        status, _, doc = self.req("GET", f"/v1/jobs/{aid}", "root")
        self.assertEqual((status, doc["owner"]), (200, "alice"))
        _, _, listed = self.req("GET", "/v1/jobs?limit=1000", "root")
        self.assertTrue({aid, wid, bobs["id"]} <= {j["id"] for j in listed["jobs"]})
        _, _, listed = self.req("GET", "/v1/jobs?limit=1000&owner=alice", "root")
        self.assertEqual({j["owner"] for j in listed["jobs"]}, {"alice"})
        status, _, doc = self.req("POST", "/v1/wait", "root",
                                  {"ids": [aid, bobs["id"]], "timeout": 30})
        self.assertEqual(status, 200, doc)
        self.submit("root", {**ECHO, "after": [aid, bobs["id"]]})
        status, _, doc = self.req("POST", f"/v1/jobs/{wid}/cancel", "root")
        self.assertEqual((status, doc["state"]), (200, "cancelled"), doc)

    def test_cancel_own_job(self):
        job = self.submit("bob", waiting_job())
        status, _, doc = self.req("POST", f"/v1/jobs/{job['id']}/cancel", "bob")
        self.assertEqual((status, doc["state"]), (200, "cancelled"))

    def test_idempotency_keys_are_per_tenant(self):
        key = {"Idempotency-Key": "same-key-" + make_token()[0][5:15]}
        body = {"task": "echo", "params": {"value": 7}}
        s1, _, a = self.req("POST", "/v1/jobs", "alice", body, key)
        s2, _, b = self.req("POST", "/v1/jobs", "bob", body, key)
        s3, _, a2 = self.req("POST", "/v1/jobs", "alice", body, key)
        self.assertEqual((s1, s2, s3), (202, 202, 200))
        self.assertNotEqual(a["id"], b["id"])
        self.assertEqual(a["id"], a2["id"])


class Limits(AuthBase):
    def test_queue_limit_per_token(self):
        jobs = [self.submit("limited", waiting_job(i)) for i in range(2)]
        status, resp, doc = self.req("POST", "/v1/jobs", "limited", waiting_job(3))
        self.assert_problem(status, resp, doc, 429)
        self.assertEqual(resp.getheader("Retry-After"), "1")
        self.assertIn("max_queued", doc["detail"])
        status, resp, doc = self.req("POST", "/v1/jobs/batch", "limited",
                                     {"jobs": [waiting_job()]})
        self.assertEqual(status, 429, doc)
        # Other tokens are not held back by it.
        other = self.submit("bob", waiting_job())
        # One fewer waiting: room for one more, and only one.
        self.req("POST", f"/v1/jobs/{jobs[0]['id']}/cancel", "limited")
        jobs[0] = self.submit("limited", waiting_job(4))
        self.assertEqual(self.req("POST", "/v1/jobs", "limited", waiting_job(5))[0], 429)
        # Jobs that ran to their end count no more.
        for j in jobs + [other]:
            self.req("POST", f"/v1/jobs/{j['id']}/cancel", "root")
        done = [self.submit("limited", {"task": "echo", "params": {"value": i}})
                for i in range(2)]
        for j in done:
            self.d.request("GET", f"/v1/jobs/{j['id']}?wait=30",
                           headers=auth(self.tokens.token["limited"]))
        self.submit("limited", ECHO)

    def test_rate_limit_per_token(self):
        # rate=0.5 burst=2: two at once, then one every two seconds.
        self.submit("slow", ECHO)
        self.submit("slow", ECHO)
        status, resp, doc = self.req("POST", "/v1/jobs", "slow", ECHO)
        self.assert_problem(status, resp, doc, 429)
        self.assertIn(resp.getheader("Retry-After"), ("1", "2"))
        self.assertIn("rate_per_token", doc["detail"])
        # Reading is not rate limited, nor are other tokens.
        self.assertEqual(self.req("GET", "/v1/jobs", "slow")[0], 200)
        self.submit("bob", ECHO)
        # A batch takes as many as it holds.
        status, _, _ = self.req("POST", "/v1/jobs/batch", "slow",
                                {"jobs": [ECHO, ECHO]})
        self.assertEqual(status, 429)
        time.sleep(float(resp.getheader("Retry-After")))
        self.submit("slow", ECHO)


class JobctlTokens(AuthBase):
    def ctl(self, *args, env=None):
        e = {"JOBD_TOKEN": "", "JOBD_TOKEN_FILE": ""}
        e.update(env or {})
        return jobctl(*args, url=self.d.url, env=e)

    def test_token_flag_env_and_file(self):
        r = self.ctl("--token", self.tokens.token["alice"], "submit", "echo",
                     "--param", "value=5", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl("submit", "echo", "--param", "value=6",
                     env={"JOBD_TOKEN": self.tokens.token["alice"]})
        self.assertEqual(r.returncode, 0, r.stderr)
        job_id = r.stdout.strip()
        path = os.path.join(self.tmp, "alice.token")
        with open(path, "w") as f:
            f.write("  " + self.tokens.token["alice"] + "  \n")
        r = self.ctl("status", job_id, env={"JOBD_TOKEN_FILE": path})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(job_id, r.stdout)
        # --token wins over the environment.
        r = self.ctl("--token", self.tokens.token["bob"], "--json", "list",
                     env={"JOBD_TOKEN_FILE": path})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(job_id, r.stdout)

    def test_refusals_exit_3_with_jobds_message(self):
        r = self.ctl("list")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("needs a token", r.stderr)
        r = self.ctl("--token", "jobd_wrong", "list")
        self.assertEqual(r.returncode, 3)
        self.assertIn("not valid", r.stderr)
        r = self.ctl("--token", self.tokens.token["reader"], "submit", "echo")
        self.assertEqual(r.returncode, 3)
        self.assertIn("role read", r.stderr)
        r = self.ctl("health")  # open
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_token_sources_are_usage_errors(self):
        r = self.ctl("list", env={"JOBD_TOKEN_FILE": os.path.join(self.tmp, "missing")})
        self.assertEqual(r.returncode, 2)
        self.assertIn("JOBD_TOKEN_FILE", r.stderr)
        r = self.ctl("--token", "two words", "list")
        self.assertEqual(r.returncode, 2)


class Reload(AuthBase):
    @classmethod
    def add_tokens(cls, tokens):
        tokens.add("alice", "alice", "submit")

    def wait_log(self, text, start):
        deadline = time.monotonic() + 20
        while not any(text in line for line in self.d.lines[start:]):
            self.assertLess(time.monotonic(), deadline, self.d.log())
            time.sleep(0.01)

    def hup(self, expect="configuration reloaded"):
        mark = len(self.d.lines)
        self.d.signal(signal.SIGHUP)
        self.wait_log(expect, mark)
        return "".join(self.d.lines[mark:])

    def status(self, token, path="/v1/jobs"):
        return self.d.request("GET", path, headers=auth(token))[0]

    def test_tokens_change_on_sighup(self):
        alice = self.tokens.token["alice"]
        # jobctl token new appends a line; it works after the reload.
        r = jobctl("token", "new", "carol", "submit", "--file", self.tokens.path)
        self.assertEqual(r.returncode, 0, r.stderr)
        carol = r.stdout.strip()
        self.assertRegex(carol, r"^jobd_[A-Za-z0-9_-]{43}$")
        self.assertEqual(os.stat(self.tokens.path).st_mode & 0o777, 0o600)
        with open(self.tokens.path) as f:
            line = f.read().splitlines()[-1]
        h = subprocess.run([JOBD, "--hash-token"], input=carol + "\n", capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(h.returncode, 0, h.stderr)
        self.assertEqual(line, f"carol submit {h.stdout.strip()}")
        self.assertEqual(h.stdout.strip(),
                         "sha256:" + hashlib.sha256(carol.encode()).hexdigest())
        self.assertEqual(self.status(carol), 401)
        self.hup()
        self.assertEqual(self.status(carol), 200)
        job = self.d.request("POST", "/v1/jobs", ECHO, headers=auth(carol))[2]
        self.assertEqual(job["owner"], "carol")

        # A removed token is refused at once.
        with open(self.tokens.path) as f:
            lines = f.read().splitlines()
        self.tokens.write("\n".join(l for l in lines if not l.startswith("alice ")) + "\n")
        self.hup()
        self.assertEqual(self.status(alice), 401)
        self.assertEqual(self.status(carol), 200)

        # A bad tokens file keeps the tokens in use, and says where it is bad.
        self.tokens.write("\n".join(lines) + "\nbroken line\n")
        log = self.hup("reload failed")
        self.assertIn(f"{self.tokens.path}:{len(lines) + 1}: ", log)
        self.assertIn("keeping the running configuration and tokens", log)
        self.assertEqual(self.status(alice), 401)
        self.assertEqual(self.status(carol), 200)
        os.chmod(self.tokens.path, 0o666)
        log = self.hup("reload failed")
        self.assertIn("writable by every user", log)
        self.assertEqual(self.status(carol), 200)

        # Back to a good file: the limits of the config reload too.
        self.tokens.write("\n".join(lines) + "\n")
        os.chmod(self.tokens.path, 0o600)
        conf = os.path.join(self.d.tmp, "jobd.conf")
        with open(conf, "w") as f:
            f.write(f"[auth]\ntokens_file = {self.tokens.path}\nmax_queued_per_token = 1\n")
        self.hup()
        self.assertEqual(self.status(alice), 200)
        first = self.d.request("POST", "/v1/jobs", waiting_job(), headers=auth(alice))
        self.assertEqual(first[0], 202, first[2])
        second = self.d.request("POST", "/v1/jobs", waiting_job(), headers=auth(alice))
        self.assertEqual(second[0], 429, second[2])
        self.assertIn("max_queued_per_token", second[2]["detail"])
        self.d.request("POST", f"/v1/jobs/{first[2]['id']}/cancel", headers=auth(alice))


class Restart(unittest.TestCase):
    def test_ownership_survives_a_restart(self):
        tmp = tempfile.mkdtemp(prefix="jobd-test-auth-")
        self.addCleanup(shutil.rmtree, tmp, True)
        tokens = Tokens(tmp)
        alice = tokens.add("alice", "alice", "submit")
        bob = tokens.add("bob", "bob", "submit")
        root = tokens.add("root", "root", "admin")
        tokens.write()
        config = f"[auth]\ntokens_file = {tokens.path}\n"
        d = Daemon("--durability", "full", config=config)
        try:
            done = d.request("POST", "/v1/jobs", ECHO, headers=auth(alice))[2]
            waiting = d.request("POST", "/v1/jobs", waiting_job(), headers=auth(alice))[2]
            d.request("GET", f"/v1/jobs/{done['id']}?wait=30", headers=auth(alice))
            self.assertEqual(d.stop(), 0)
            state = d.state_dir
            d2 = Daemon("--durability", "full", "--state-dir", state, config=config)
            try:
                for jid in (done["id"], waiting["id"]):
                    s, _, doc = d2.request("GET", f"/v1/jobs/{jid}", headers=auth(alice))
                    self.assertEqual((s, doc["owner"]), (200, "alice"))
                    self.assertEqual(d2.request("GET", f"/v1/jobs/{jid}",
                                                headers=auth(bob))[0], 404)
                _, _, listed = d2.request("GET", "/v1/jobs?owner=alice", headers=auth(root))
                self.assertEqual({j["id"] for j in listed["jobs"]},
                                 {done["id"], waiting["id"]})
                # The restored waiting job still counts against alice: bob
                # cannot cancel it, alice can.
                self.assertEqual(d2.request("POST", f"/v1/jobs/{waiting['id']}/cancel",
                                            headers=auth(bob))[0], 404)
                self.assertEqual(d2.request("POST", f"/v1/jobs/{waiting['id']}/cancel",
                                            headers=auth(alice))[0], 200)
                self.assertEqual(d2.stop(), 0)
                self.assertIsNone(d2.sanitizer_report(), d2.log())
            finally:
                d2.cleanup()
        finally:
            d.cleanup()


class StartUp(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="jobd-test-auth-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def jobd(self, *args, config="", timeout=30):
        conf = os.path.join(self.tmp, "jobd.conf")
        with open(conf, "w") as f:
            f.write(config)
        return subprocess.run([JOBD, "-c", conf, "--state-dir",
                               os.path.join(self.tmp, "state"), *args],
                              capture_output=True, text=True, timeout=timeout)

    def test_bad_tokens_file_exits_78_naming_file_and_line(self):
        tokens = Tokens(self.tmp)
        tokens.add("ok", "ok", "read")
        tokens.write("# tokens\n" + tokens.lines["ok"] + "\nalice writer sha256:00\n")
        config = f"[auth]\ntokens_file = {tokens.path}\n"
        for args in (("--check-config",), ("--listen", "127.0.0.1:0")):
            with self.subTest(args=args):
                r = self.jobd(*args, config=config)
                self.assertEqual(r.returncode, 78, r.stderr)
                self.assertIn(f"{tokens.path}:3: unknown role \"writer\"", r.stderr)
                self.assertNotIn("listening on", r.stderr)
        r = self.jobd("--check-config", "--tokens-file", os.path.join(self.tmp, "none"))
        self.assertEqual(r.returncode, 78)
        self.assertIn("cannot open the tokens file", r.stderr)

    def test_remote_listener_without_tokens_is_refused(self):
        # jobd must exit before it listens: nothing is opened on 0.0.0.0.
        for args in (("--listen", "0.0.0.0:0"), ("--listen", "[::]:0"),
                     ("--listen", ":0"), ("--listen", "0.0.0.0:0", "--check-config")):
            with self.subTest(args=args):
                r = self.jobd(*args)
                self.assertEqual(r.returncode, 78, r.stderr)
                self.assertIn("not a loopback address", r.stderr)
                self.assertIn("allow_insecure_remote", r.stderr)
                self.assertNotIn("listening on", r.stderr)
        # Loopback needs no tokens; another loopback address neither.
        r = self.jobd("--listen", "127.0.0.2:7070", "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        # With tokens, any address will do.
        tokens = Tokens(self.tmp)
        tokens.add("a", "a", "admin")
        tokens.write()
        r = self.jobd("--listen", "0.0.0.0:7070", "--tokens-file", tokens.path,
                      "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_allow_insecure_remote(self):
        d = Daemon("--listen", "0.0.0.0:0", "--allow-insecure-remote", "yes")
        try:
            self.assertIn("anyone who can reach it", d.log())
            d.host = "127.0.0.1"  # talk over loopback only
            status, _, _ = d.request("GET", "/v1/jobs")
            self.assertEqual(status, 200)
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()

    def test_hash_token(self):
        t, h = make_token()
        r = subprocess.run([JOBD, "--hash-token"], input=t, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual((r.returncode, r.stdout), (0, h + "\n"))
        r = subprocess.run([JOBD, "--hash-token"], input="two words\n", capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2)

    def test_token_new_without_file_prints_the_line(self):
        r = jobctl("token", "new", "ci", "read")
        self.assertEqual(r.returncode, 0, r.stderr)
        token = r.stdout.strip()
        self.assertRegex(token, r"^jobd_[A-Za-z0-9_-]{43}$")
        want = "ci read sha256:" + hashlib.sha256(token.encode()).hexdigest()
        self.assertIn(want, r.stderr.splitlines())
        self.assertNotEqual(jobctl("token", "new", "ci", "read").stdout, r.stdout)
        for args in (("token", "new", "c i", "read"), ("token", "new", "ci", "writer"),
                     ("token", "old", "ci", "read"), ("token", "new", "ci")):
            self.assertEqual(jobctl(*args).returncode, 2, args)

    def test_completion(self):
        self.assertEqual(complete(f"{JOBCTL} tok"), {"token"})
        self.assertEqual(complete(f"{JOBCTL} --to"), {"--token"})
        self.assertEqual(complete(f"{JOBCTL} token "), {"new"})
        self.assertEqual(complete(f"{JOBCTL} token new ci "), {"read", "submit", "admin"})
        self.assertEqual(complete(f"{JOBCTL} token new ci read --f"), {"--file"})


if __name__ == "__main__":
    unittest.main()
