"""The OpenCL executor against the real jobd and PoCL: built-in kernels,
user kernels, bad kernels, timeouts, the program cache, device choice.
Skips (not fails) where jobd has no OpenCL device; GPU tests skip without
a GPU."""
import base64
import os
import signal
import struct
import time
import unittest

from jobdtest import Daemon, DaemonTest

SQUARE_SRC = """
__kernel void sq(__global const float *x, __global float *y, __global float *z) {
    size_t i = get_global_id(0);
    y[i] = x[i] * x[i];
    z[i] = x[i] + 1.0f;
}
"""


def opencl_devices(d):
    _, _, ex = d.request("GET", "/v1/executors")
    cl = [e for e in ex["executors"] if e["name"] == "opencl"]
    if not cl or not cl[0]["enabled"]:
        return None, (cl[0].get("reason") if cl else "no opencl executor")
    return cl[0]["devices"], None


class OpenCLTest(DaemonTest):
    ARGS = ("--threads", "2", "--processes", "1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.devices, why = opencl_devices(cls.d)
        if not cls.devices:
            cls.skip_reason = f"no OpenCL device: {why}"
        else:
            cls.skip_reason = None
        # Hosts warm up (build built-in kernels) before they take jobs; the
        # first job simply waits in the queue.

    def setUp(self):
        if self.skip_reason:
            self.skipTest(self.skip_reason)

    def run_job(self, job, timeout=120):
        return self.d.wait(self.d.submit(job)["id"], timeout)


class BuiltinKernels(OpenCLTest):
    def test_seed_example_on_all_three_executors(self):
        want = [i * i for i in range(10)]
        for ex in ("thread", "process", "opencl"):
            with self.subTest(executor=ex):
                job = self.run_job({"task": "square", "executor": ex,
                                    "params": {"values": list(range(10))}})
                self.assertEqual(job["state"], "succeeded", job)
                self.assertEqual(job["result"]["values"], want)
        job = self.run_job({"task": "square", "executor": "opencl",
                            "params": {"values": list(range(10))}})
        self.assertIn(job["worker"], [d["id"] for d in self.devices])

    def same_as_thread(self, task, params, tol=None):
        t = self.run_job({"task": task, "executor": "thread", "params": params})
        o = self.run_job({"task": task, "executor": "opencl", "params": params})
        self.assertEqual(o["state"], "succeeded", o)
        if tol is None:
            self.assertEqual(o["result"], t["result"])
        return t["result"], o["result"]

    def test_each_builtin_against_threads(self):
        vals = [float(i % 97) - 40.5 for i in range(1000)]
        for dtype in ("int32", "int64", "float32", "float64"):
            v = [int(x) for x in vals] if dtype.startswith("int") else vals
            with self.subTest(task="square", dtype=dtype):
                self.same_as_thread("square", {"values": v, "dtype": dtype})
            with self.subTest(task="saxpy", dtype=dtype):
                self.same_as_thread("saxpy", {"a": 3, "x": v, "y": v[::-1], "dtype": dtype})
            with self.subTest(task="sum", dtype=dtype):
                t, o = self.same_as_thread("sum", {"values": v, "dtype": dtype}, tol=True)
                if dtype.startswith("int"):
                    self.assertEqual(o["sum"], t["sum"])
                else:
                    self.assertAlmostEqual(o["sum"], t["sum"],
                                           delta=abs(t["sum"]) * 1e-5 + 1e-3)
        with self.subTest(task="primes"):
            self.same_as_thread("primes", {"below": 1000000})
        with self.subTest(task="sgemm"):
            m, n, k = 33, 17, 29
            a = [((i * 7) % 13) / 4.0 for i in range(m * k)]
            b = [((i * 5) % 11) / 8.0 for i in range(k * n)]
            t, o = self.same_as_thread("sgemm", {"m": m, "n": n, "k": k, "a": a, "b": b},
                                       tol=True)
            for x, y in zip(t["c"], o["c"]):
                self.assertAlmostEqual(x, y, delta=abs(x) * 1e-4 + 1e-4)

    def test_base64_in_base64_out(self):
        raw = struct.pack("<5f", 1, 2, 3, 4.5, -2)
        job = self.run_job({"task": "square", "executor": "opencl", "params": {
            "values": {"dtype": "float32", "b64": base64.b64encode(raw).decode()}}})
        out = job["result"]["values"]
        self.assertEqual(out["dtype"], "float32")
        self.assertEqual(struct.unpack("<5f", base64.b64decode(out["b64"])),
                         (1, 4, 9, 20.25, 4))

    def test_device_field(self):
        dev = self.devices[0]
        for want in (dev["id"], dev["type"]):
            job = self.run_job({"task": "square", "device": want,
                                "params": {"values": [3]}})
            self.assertEqual(job["executor"], "opencl")
            self.assertEqual(job["device"], want)
            self.assertEqual(job["result"]["values"], [9])
        status, _, problem = self.d.request("POST", "/v1/jobs", {
            "task": "square", "device": "gpu-99", "params": {"values": [1]}})
        self.assertEqual((status, problem["field"]), (400, "device"))

    def test_executors_describe_devices(self):
        for dev in self.devices:
            for key in ("id", "platform", "name", "type", "compute_units", "global_mem",
                        "local_mem", "driver_version", "running", "queued", "cache"):
                self.assertIn(key, dev)


class UserKernels(OpenCLTest):
    def test_user_kernel_with_two_outputs(self):
        job = self.run_job({"task": "opencl", "params": {
            "source": SQUARE_SRC, "kernel": "sq", "global": 4,
            "args": [{"buffer": [1, 2, 3, 4], "dtype": "float32", "access": "read"},
                     {"size": 4, "dtype": "float32", "access": "write"},
                     {"size": 4, "dtype": "float32", "access": "write"}]}})
        self.assertEqual(job["state"], "succeeded", job)
        r = job["result"]
        self.assertEqual(r["outputs"], [[1, 4, 9, 16], [2, 3, 4, 5]])
        t = r["timings"]
        self.assertLessEqual(t["queued_ns"], t["submit_ns"])
        self.assertLessEqual(t["start_ns"], t["end_ns"])
        self.assertIn(r["device"], [d["id"] for d in self.devices])

    def test_build_error(self):
        job = self.run_job({"task": "opencl", "params": {
            "source": "__kernel void k(__global int *x) { x[0] = ; }", "kernel": "k",
            "global": 1, "args": [{"size": 1, "dtype": "int32", "access": "write"}]}})
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["error"]["type"], "build_failed")
        self.assertIn("error", job["error"]["message"].lower())
        self.assertNotIn(self.d.state_dir, job["error"]["message"])

    def test_missing_kernel_and_bad_args(self):
        job = self.run_job({"task": "opencl", "params": {
            "source": SQUARE_SRC, "kernel": "nope", "global": 1, "args": []}})
        self.assertEqual((job["state"], job["error"]["type"]), ("failed", "kernel_not_found"))
        job = self.run_job({"task": "opencl", "params": {
            "source": SQUARE_SRC, "kernel": "sq", "global": 4,
            "args": [{"buffer": [1, 2, 3, 4], "dtype": "float32", "access": "read"}]}})
        self.assertEqual((job["state"], job["error"]["type"]), ("failed", "invalid_args"))
        self.assertIn("CL_", job["error"]["message"])

    def test_global_zero_refused_at_submission(self):
        status, _, problem = self.d.request("POST", "/v1/jobs", {"task": "opencl", "params": {
            "source": SQUARE_SRC, "kernel": "sq", "global": 0, "args": []}})
        self.assertEqual(status, 400)
        self.assertTrue(problem["field"].startswith("params.global"))

    def test_sizes_beyond_the_device(self):
        dev = self.devices[0]
        big = dev["max_work_group_size"] * 2
        job = self.run_job({"task": "opencl", "device": dev["id"], "params": {
            "source": SQUARE_SRC, "kernel": "sq", "global": big, "local": big,
            "args": [{"buffer": [1.0] * big, "dtype": "float32", "access": "read"},
                     {"size": big, "dtype": "float32", "access": "write"},
                     {"size": big, "dtype": "float32", "access": "write"}]}})
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["error"]["type"], "invalid_params")
        self.assertIn("CL_", job["error"]["message"])
        nxt = self.run_job({"task": "square", "device": dev["id"], "params": {"values": [3]}})
        self.assertEqual(nxt["result"]["values"], [9])

    def test_buffer_too_large_for_device(self):
        """Too large for the device: refused at submission when it is beyond
        what any job may ask (the field named), else the job fails clearly."""
        dev = self.devices[0]
        n = dev["max_alloc"] // 4 + 1024
        status, _, body = self.d.request("POST", "/v1/jobs", {
            "task": "opencl", "device": dev["id"], "params": {
                "source": SQUARE_SRC, "kernel": "sq", "global": 1,
                "args": [{"buffer": [1.0], "dtype": "float32", "access": "read"},
                         {"size": n, "dtype": "float32", "access": "write"},
                         {"size": 1, "dtype": "float32", "access": "write"}]}})
        if status == 400:
            self.assertEqual(body["field"], "params.args[1].size")
            return
        self.assertEqual(status, 202)
        job = self.d.wait(body["id"], 120)
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["error"]["type"], "invalid_params")

    def test_endless_kernel_stopped_by_timeout_then_next_job(self):
        dev = self.devices[0]["id"]
        job = self.run_job({"task": "opencl", "device": dev, "timeout": 1, "params": {
            "source": "__kernel void spin(__global int *x) { while (x[0] == 0) { } }",
            "kernel": "spin", "global": 1,
            "args": [{"size": 1, "dtype": "int32", "access": "read_write"}]}})
        self.assertEqual(job["state"], "timed_out")
        t0 = time.monotonic()
        nxt = self.run_job({"task": "square", "device": dev, "params": {"values": [2]}})
        self.assertEqual(nxt["result"]["values"], [4])
        self.assertLess(time.monotonic() - t0, 5)

class Crashes(OpenCLTest):
    @classmethod
    def setUpClass(cls):
        # A kernel that segfaults should kill its host as it would without
        # ASan, rather than ASan reporting it in jobd's log.
        opts = os.environ.get("ASAN_OPTIONS", "")
        os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "handle_segv=0"
        try:
            super().setUpClass()
        finally:
            os.environ["ASAN_OPTIONS"] = opts

    def test_out_of_bounds_write_fails_only_its_job(self):
        dev = self.devices[0]["id"]
        job = self.run_job({"task": "opencl", "device": dev, "params": {
            "source": "__kernel void oob(__global int *x) { x[get_global_id(0) * 1000000000L]"
                      " = 1; }",
            "kernel": "oob", "global": 64,
            "args": [{"size": 1, "dtype": "int32", "access": "write"}]}})
        self.assertIn(job["state"], ("failed", "succeeded"))  # PoCL may not fault
        nxt = self.run_job({"task": "square", "device": dev, "params": {"values": [5]}})
        self.assertEqual(nxt["result"]["values"], [25])
        if job["state"] == "failed":
            self.assertEqual(job["error"]["type"], "device_host_crashed")


    def test_host_killed_mid_job_fails_only_that_job(self):
        dev = self.devices[0]["id"]
        job = self.d.submit({"task": "opencl", "device": dev, "timeout": 60, "params": {
            "source": "__kernel void spin2(__global int *x) { while (x[0] == 0) { } }",
            "kernel": "spin2", "global": 1,
            "args": [{"size": 1, "dtype": "int32", "access": "read_write"}]}})
        self.d.wait_running(job["id"])
        _, _, ex = self.d.request("GET", "/v1/executors")
        ocl = [e for e in ex["executors"] if e["name"] == "opencl"][0]
        host = [d for d in ocl["devices"] if d["id"] == dev][0]
        os.kill(host["pid"], signal.SIGKILL)
        done = self.d.wait(job["id"])
        self.assertEqual((done["state"], done["error"]["type"]), ("failed", "device_host_crashed"))
        self.assertIn("SIGKILL", done["error"]["message"])
        nxt = self.run_job({"task": "square", "device": dev, "params": {"values": [6]}})
        self.assertEqual(nxt["result"]["values"], [36])
        _, _, ex = self.d.request("GET", "/v1/executors")
        ocl = [e for e in ex["executors"] if e["name"] == "opencl"][0]
        again = [d for d in ocl["devices"] if d["id"] == dev][0]
        self.assertNotEqual(again["pid"], host["pid"])
        self.assertGreaterEqual(again["crashes"], host["crashes"] + 1)


class Cache(unittest.TestCase):
    def test_cache_survives_restart(self):
        src = SQUARE_SRC.replace("1.0f", "2.0f")  # a program no other test built
        job = {"task": "opencl", "params": {
            "source": src, "kernel": "sq", "global": 2,
            "args": [{"buffer": [1, 2], "dtype": "float32", "access": "read"},
                     {"size": 2, "dtype": "float32", "access": "write"},
                     {"size": 2, "dtype": "float32", "access": "write"}]}}
        d = Daemon("--processes", "1")
        try:
            devs, why = opencl_devices(d)
            if not devs:
                self.skipTest(f"no OpenCL device: {why}")
            job["device"] = devs[0]["id"]
            first = d.wait(d.submit(job)["id"], 120)
            self.assertEqual(first["result"]["build"]["cache"], "compiled")
            again = d.wait(d.submit(job)["id"], 120)
            self.assertEqual(again["result"]["build"]["cache"], "memory")
            state = d.state_dir
            self.assertEqual(d.stop(), 0)
            d2 = Daemon("--processes", "1", "--state-dir", state)
            try:
                third = d2.wait(d2.submit(job)["id"], 120)
                self.assertEqual(third["result"]["build"]["cache"], "disk")
                self.assertLess(third["result"]["build"]["ms"],
                                max(first["result"]["build"]["ms"] / 5, 50))
                self.assertEqual(third["result"]["outputs"], first["result"]["outputs"])
            finally:
                d2.cleanup()
        finally:
            d.cleanup()


class TwoDevices(unittest.TestCase):
    def test_two_pocl_devices_side_by_side(self):
        d = Daemon("--processes", "1", env={"POCL_DEVICES": "pthread basic"})
        try:
            devs, why = opencl_devices(d)
            if not devs or len(devs) < 2:
                self.skipTest(f"two PoCL devices not available: {why or devs}")
            # One job pinned to each device: both hosts are up after these.
            for dev in devs:
                job = d.wait(d.submit({"task": "square", "device": dev["id"],
                                       "params": {"values": [2]}})["id"], 120)
                self.assertEqual(job["worker"], dev["id"])
            ids = [d.submit({"task": "sgemm", "executor": "opencl", "params": {
                "m": 64, "n": 64, "k": 64, "a": [1.0] * 4096, "b": [0.5] * 4096}})["id"]
                for _ in range(24)]
            used = set()
            for i in ids:
                job = d.wait(i, 120)
                self.assertEqual(job["state"], "succeeded", job)
                self.assertEqual(job["result"]["c"][0], 32.0)
                used.add(job["worker"])
            self.assertEqual(used, {dev["id"] for dev in devs})
            _, _, ex = d.request("GET", "/v1/executors")
            cl = [e for e in ex["executors"] if e["name"] == "opencl"][0]
            self.assertTrue(all(dev["jobs_done"] > 0 for dev in cl["devices"]))

            # Earliest expected finish counts what a device already has: with
            # one device busy on a long kernel, new jobs go to the other.
            busy, idle = devs[0]["id"], devs[1]["id"]
            spin = d.submit({"task": "opencl", "device": busy, "timeout": 60, "params": {
                "source": "__kernel void spin3(__global int *x) { while (x[0] == 0) { } }",
                "kernel": "spin3", "global": 1,
                "args": [{"size": 1, "dtype": "int32", "access": "read_write"}]}})
            d.wait_running(spin["id"])
            for _ in range(3):
                job = d.wait(d.submit({"task": "square", "executor": "opencl",
                                       "params": {"values": [3]}})["id"], 120)
                self.assertEqual((job["worker"], job["result"]["values"]), (idle, [9]))
            d.request("POST", f"/v1/jobs/{spin['id']}/cancel")
            self.assertEqual(d.wait(spin["id"])["state"], "cancelled")

        finally:
            d.cleanup()


class NoGPU(OpenCLTest):
    def test_gpu_job_where_there_is_none(self):
        if any(dev["type"] == "gpu" for dev in self.devices):
            self.skipTest("this machine has a GPU")
        status, _, problem = self.d.request("POST", "/v1/jobs", {
            "task": "square", "device": "gpu", "params": {"values": [1]}})
        self.assertEqual((status, problem["field"]), (400, "device"))


if __name__ == "__main__":
    unittest.main()
