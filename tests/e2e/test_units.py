"""The files around the daemon: systemd units, man pages, bash completion,
install rules.

- `systemd-analyze verify` on jobd.service and jobd.socket (and on the
  service with the NVIDIA drop-in) prints nothing at all: systemd 252 only
  warns, with exit code 0, about unknown keys and bad values, so any output
  fails. The units are checked from a copy whose ExecStart names the jobd
  just built when /usr/sbin/jobd is not installed, and Documentation=
  man: links are resolved against man/ here.
- `systemd-analyze security --offline=true` rates the service's exposure at
  2.5 or less, with and without the NVIDIA drop-in.
- The settings the issue asks for are in the units.
- Each man page renders with `man --warnings -l` without a message, and
  documents every configuration key and every jobctl command.
- The completion file parses (bash -n) and completes commands, options,
  and task names from a running jobd.
- `cmake --install` puts every file where the package expects it.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from jobdtest import JOBCTL, JOBD, SOURCE_DIR, Daemon, complete

SYSTEMD_DIR = os.path.join(SOURCE_DIR, "systemd")
MAN_DIR = os.path.join(SOURCE_DIR, "man")
COMPLETION = os.path.join(SOURCE_DIR, "completion", "jobctl.bash")
MAN_PAGES = {"jobd.8": "8", "jobctl.1": "1", "jobd.conf.5": "5"}
MAX_EXPOSURE = 2.5
ANALYZE = shutil.which("systemd-analyze")
MAN = shutil.which("man")


def which_bin(path):
    """An absolute path for $JOBD_BIN / $JOBCTL_BIN (which may be a name)."""
    return os.path.abspath(path) if os.sep in path else shutil.which(path)


def read_unit(path):
    """{(section, key): [values]} of a unit file (keys may repeat)."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            out.setdefault((section, key.strip()), []).append(value.strip())
    return out


class UnitCopy:
    """The units copied into a temporary directory, with ExecStart pointing
    at the jobd just built unless /usr/sbin/jobd exists, and a MANPATH in
    which man/*.{1,5,8} resolve."""

    def __init__(self, dropin=False):
        self.tmp = tempfile.mkdtemp(prefix="jobd-units-")
        jobd = which_bin(JOBD)
        for name in ("jobd.service", "jobd.socket"):
            with open(os.path.join(SYSTEMD_DIR, name)) as f:
                text = f.read()
            if not os.access("/usr/sbin/jobd", os.X_OK) and jobd:
                text = text.replace("ExecStart=/usr/sbin/jobd ", f"ExecStart={jobd} ")
            with open(os.path.join(self.tmp, name), "w") as f:
                f.write(text)
        if dropin:
            d = os.path.join(self.tmp, "jobd.service.d")
            os.mkdir(d)
            shutil.copy(os.path.join(SYSTEMD_DIR, "nvidia-gpu.conf"), d)
        self.manpath = os.path.join(self.tmp, "man")
        for page, sec in MAN_PAGES.items():
            os.makedirs(os.path.join(self.manpath, "man" + sec), exist_ok=True)
            os.symlink(os.path.join(MAN_DIR, page),
                       os.path.join(self.manpath, "man" + sec, page))

    def path(self, name):
        return os.path.join(self.tmp, name)

    def env(self):
        return dict(os.environ, MANPATH=self.manpath, SYSTEMD_LOG_COLOR="0",
                    SYSTEMD_PAGER="", LC_ALL="C.UTF-8")

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


@unittest.skipUnless(ANALYZE, "systemd-analyze is not installed")
class UnitFiles(unittest.TestCase):
    def run_analyze(self, units, *args):
        return subprocess.run([ANALYZE, *args], capture_output=True, text=True,
                              env=units.env(), timeout=120)

    def verify(self, dropin):
        units = UnitCopy(dropin=dropin)
        self.addCleanup(units.cleanup)
        r = self.run_analyze(units, "verify", units.path("jobd.service"),
                             units.path("jobd.socket"))
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""),
                         "systemd-analyze verify must print nothing")

    def test_verify_units(self):
        self.verify(dropin=False)

    def test_verify_units_with_nvidia_dropin(self):
        self.verify(dropin=True)

    def exposure(self, dropin):
        units = UnitCopy(dropin=dropin)
        self.addCleanup(units.cleanup)
        r = self.run_analyze(units, "security", "--offline=true", "--no-pager",
                             units.path("jobd.service"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"Overall exposure level for jobd\.service: ([0-9.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        score = float(m.group(1))
        self.assertLessEqual(score, MAX_EXPOSURE, r.stdout)
        # Drop-ins are read (the NVIDIA one turns PrivateDevices off).
        self.assertEqual(dropin, "char-nvidia-frontend" in r.stdout, r.stdout)
        return score

    def test_exposure(self):
        self.exposure(dropin=False)

    def test_exposure_with_nvidia_dropin(self):
        self.exposure(dropin=True)


class UnitSettings(unittest.TestCase):
    """What the issue asks of the units, so that an edit cannot drop it."""

    def test_service(self):
        u = read_unit(os.path.join(SYSTEMD_DIR, "jobd.service"))
        want = {
            "Type": "notify",
            "NotifyAccess": "main",
            "ExecStart": "/usr/sbin/jobd -c /etc/jobd/jobd.conf",
            "ExecReload": "/bin/kill -HUP $MAINPID",
            "WatchdogSec": "30s",
            "KillMode": "mixed",
            "Restart": "on-failure",
            "DynamicUser": "yes",
            "StateDirectory": "jobd",
            "ConfigurationDirectory": "jobd",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "PrivateDevices": "yes",
            "NoNewPrivileges": "yes",
            "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
            "SystemCallFilter": "@system-service",
            "SystemCallArchitectures": "native",
            "ProtectKernelTunables": "yes",
            "ProtectKernelModules": "yes",
            "ProtectKernelLogs": "yes",
            "Delegate": "yes",
            "ProtectControlGroups": "no",
            "LockPersonality": "yes",
            "RestrictRealtime": "yes",
            "RestrictSUIDSGID": "yes",
            "CapabilityBoundingSet": "",
            "LimitNOFILE": "65536",
        }
        for key, value in want.items():
            self.assertEqual(u.get(("Service", key)), [value], key)
        # A bad configuration (78) must not restart-loop.
        self.assertIn("78", u[("Service", "RestartPreventExitStatus")][0].split())
        # Off on purpose: exec jobs run JIT runtimes (see the unit).
        self.assertNotIn(("Service", "MemoryDenyWriteExecute"), u)
        # Long enough for the default shutdown_grace (10 s) and kill_grace.
        stop = u[("Service", "TimeoutStopSec")][0]
        self.assertGreaterEqual(int(stop.rstrip("s")), 30)
        self.assertEqual(u[("Install", "WantedBy")], ["multi-user.target"])

    def test_socket(self):
        u = read_unit(os.path.join(SYSTEMD_DIR, "jobd.socket"))
        self.assertEqual(u[("Socket", "ListenStream")], ["127.0.0.1:7070"])
        self.assertNotEqual(u.get(("Socket", "Accept")), ["yes"])
        self.assertNotIn(("Socket", "Service"), u)  # jobd.service, by name
        self.assertEqual(u[("Install", "WantedBy")], ["sockets.target"])

    def test_nvidia_dropin(self):
        u = read_unit(os.path.join(SYSTEMD_DIR, "nvidia-gpu.conf"))
        self.assertEqual(u[("Service", "PrivateDevices")], ["no"])
        self.assertEqual(u[("Service", "DevicePolicy")], ["closed"])
        self.assertIn("char-nvidia-frontend rw", u[("Service", "DeviceAllow")])
        self.assertIn("char-nvidia-uvm rw", u[("Service", "DeviceAllow")])


@unittest.skipUnless(MAN, "man is not installed")
class ManPages(unittest.TestCase):
    def render(self, page):
        r = subprocess.run([MAN, "--warnings", "-l", os.path.join(MAN_DIR, page)],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
        self.assertEqual((r.returncode, r.stderr), (0, ""), page)
        self.assertIn("NAME", r.stdout)
        return r.stdout

    def test_render_without_warnings(self):
        for page in MAN_PAGES:
            with self.subTest(page=page):
                self.render(page)

    def test_every_config_key_documented(self):
        example = subprocess.run([JOBD, "--print-example-config"], capture_output=True,
                                 text=True, timeout=30, check=True).stdout
        keys = re.findall(r"^;(\w+) = ", example, re.M)
        sections = re.findall(r"^\[(\w+)\]", example, re.M)
        self.assertGreater(len(keys), 10)
        conf5 = self.render("jobd.conf.5")
        jobd8 = self.render("jobd.8")
        for key in keys:
            self.assertRegex(conf5, rf"(?m)^ +{key} = ", f"jobd.conf(5) lacks {key}")
            self.assertIn("--" + key.replace("_", "-"), jobd8, f"jobd(8) lacks {key}")
        for section in sections:
            self.assertRegex(conf5, rf"(?m)^\[{section}\]")

    def test_every_jobctl_command_documented(self):
        usage = subprocess.run([JOBCTL, "--help"], capture_output=True, text=True,
                               timeout=30).stdout
        commands = re.findall(r"^  (\w+) ", usage.split("Options:")[0], re.M)
        self.assertIn("submit", commands)
        page = self.render("jobctl.1")
        for cmd in commands:
            self.assertRegex(page, rf"(?m)^ {{7}}{cmd}\b", f"jobctl(1) lacks {cmd}")


class Completion(unittest.TestCase):
    def complete(self, line, url=None):
        return complete(line, url)

    def test_parses(self):
        r = subprocess.run(["bash", "-n", COMPLETION], capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_commands_and_options(self):
        jobctl = which_bin(JOBCTL)
        self.assertIn("submit", self.complete(f"{jobctl} s"))
        self.assertEqual(self.complete(f"{jobctl} ca"), {"cancel"})
        self.assertIn("--wait-timeout", self.complete(f"{jobctl} submit echo --w"))
        self.assertEqual(self.complete(f"{jobctl} submit echo --executor p"), {"process"})
        self.assertEqual(self.complete(f"{jobctl} output x --f"), {"--follow"})
        self.assertEqual(self.complete(f"{jobctl} list --state succeeded,fa"),
                         {"succeeded,failed"})

    def test_task_names_from_jobd(self):
        jobctl = which_bin(JOBCTL)
        d = Daemon()
        try:
            url = f"http://{d.host}:{d.port}"
            self.assertTrue({"square", "sleep", "exec"} <= self.complete(
                f"{jobctl} --url {url} submit "))
            self.assertEqual(self.complete(f"{jobctl} submit squ", url=url), {"square"})
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()
        # jobd gone: no task names, no error.
        self.assertEqual(self.complete(f"{jobctl} --url {url} submit "), set())


class Install(unittest.TestCase):
    """`cmake --install` of the tree the tests were built in."""

    @unittest.skipUnless(shutil.which("cmake"), "cmake is not installed")
    def test_layout(self):
        jobd = which_bin(JOBD)
        build = os.path.dirname(jobd)
        if not os.path.exists(os.path.join(build, "cmake_install.cmake")):
            self.skipTest("JOBD_BIN is not in a CMake build tree")
        dest = tempfile.mkdtemp(prefix="jobd-install-")
        self.addCleanup(shutil.rmtree, dest, True)
        r = subprocess.run(["cmake", "--install", build], capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, DESTDIR=dest))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            cache = f.read()
        prefix = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", cache, re.M).group(1)
        unitdir = re.search(r"^JOBD_SYSTEMD_UNITDIR:PATH=(.*)$", cache, re.M).group(1)
        unitdir = os.path.join(prefix, unitdir)  # absolute stays absolute
        sysconf = "/etc" if prefix == "/usr" else prefix + "/etc"
        files = [f"{prefix}/sbin/jobd", f"{prefix}/bin/jobctl",
                 f"{sysconf}/jobd/jobd.conf",
                 f"{unitdir}/jobd.service", f"{unitdir}/jobd.socket",
                 f"{prefix}/include/jobd/plugin.h", f"{prefix}/include/jobd/task.h",
                 f"{prefix}/share/man/man1/jobctl.1.gz",
                 f"{prefix}/share/man/man5/jobd.conf.5.gz",
                 f"{prefix}/share/man/man8/jobd.8.gz",
                 f"{prefix}/share/bash-completion/completions/jobctl",
                 f"{prefix}/share/doc/jobd/api.md",
                 f"{prefix}/share/doc/jobd/examples/nvidia-gpu.conf"]
        if os.path.exists(os.path.join(build, "jobd-opencl-host")):
            files.append(f"{prefix}/libexec/jobd/jobd-opencl-host")
        for f in files:
            self.assertTrue(os.path.isfile(dest + f), f)
        with open(f"{dest}{unitdir}/jobd.service") as f:
            self.assertIn(f"ExecStart={prefix}/sbin/jobd -c {sysconf}/jobd/jobd.conf\n",
                          f.read())
        # A second install keeps an edited configuration.
        with open(f"{dest}{sysconf}/jobd/jobd.conf", "a") as f:
            f.write("# edited\n")
        r = subprocess.run(["cmake", "--install", build], capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, DESTDIR=dest))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(f"{dest}{sysconf}/jobd/jobd.conf") as f:
            self.assertTrue(f.read().endswith("# edited\n"))


if __name__ == "__main__":
    unittest.main()
