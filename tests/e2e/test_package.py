"""The .deb: built with CPack from a clean Release tree, its metadata read
with dpkg-deb -I, unpacked into a scratch root with dpkg -x, and the
installed man pages rendered with man -l."""
import os
import shutil
import subprocess
import tempfile
import unittest

from jobdtest import SOURCE_DIR

NEEDED = ("cmake", "cpack", "dpkg-deb", "dpkg", "man", "lintian")


@unittest.skipUnless(all(shutil.which(t) for t in NEEDED), "packaging tools missing")
class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="jobd-deb-")
        build = os.path.join(cls.tmp, "build")
        env = dict(os.environ)
        env.pop("ASAN_OPTIONS", None)

        def run(*cmd):
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
            if r.returncode != 0:
                raise AssertionError(f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n"
                                     f"{r.stderr[-3000:]}")
            return r.stdout
        run("cmake", "-S", SOURCE_DIR, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
            "-DBUILD_TESTING=OFF", "-DCMAKE_INSTALL_PREFIX=/usr")
        run("cmake", "--build", build, "-j", str(os.cpu_count() or 2))
        run("cpack", "-G", "DEB", "--config", os.path.join(build, "CPackConfig.cmake"),
            "-B", build)
        debs = [f for f in os.listdir(build) if f.endswith(".deb")]
        assert len(debs) == 1, debs
        cls.deb = os.path.join(build, debs[0])
        cls.info = run("dpkg-deb", "-I", cls.deb)
        cls.root = os.path.join(cls.tmp, "root")
        run("dpkg", "-x", cls.deb, cls.root)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_metadata(self):
        self.assertRegex(self.info, r"(?m)^ Package: jobd$")
        depends = [l for l in self.info.splitlines() if l.startswith(" Depends:")][0]
        for lib in ("libmicrohttpd", "libevent", "libcjson", "libsqlite3", "procps"):
            self.assertIn(lib, depends)
        self.assertIn("conffiles", self.info)

    def test_files(self):
        for path in ("usr/sbin/jobd", "usr/bin/jobctl", "etc/jobd/jobd.conf",
                     "usr/include/jobd/task.h", "usr/include/jobd/plugin.h",
                     "usr/share/bash-completion/completions/jobctl"):
            with self.subTest(path=path):
                self.assertTrue(os.path.exists(os.path.join(self.root, path)), path)
        units = [os.path.join(d, f) for d, _, fs in os.walk(self.root) for f in fs
                 if f in ("jobd.service", "jobd.socket")]
        self.assertEqual(len(units), 2, units)
        r = subprocess.run([os.path.join(self.root, "usr/sbin/jobd"), "-c",
                            os.path.join(self.root, "etc/jobd/jobd.conf"), "--check-config"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_lintian_clean(self):
        # lintian exits non-zero on errors; warnings and notes are shown
        # in the failure message too, so that they get a look.
        r = subprocess.run(["lintian", "--tag-display-limit", "0", self.deb],
                           capture_output=True, text=True, timeout=600)
        tags = [l for l in r.stdout.splitlines() if l[:2] in ("E:", "W:")]
        self.assertEqual((r.returncode, tags), (0, []), r.stdout + r.stderr)

    def test_man_pages_render(self):
        pages = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(self.root, "usr"))
                 for f in fs if ".gz" in f and "/man" in d]
        names = {os.path.basename(p) for p in pages}
        self.assertTrue({"jobd.8.gz", "jobctl.1.gz", "jobd.conf.5.gz"} <= names, names)
        for page in pages:
            r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True,
                               text=True, env=dict(os.environ, MANWIDTH="80"), timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr.strip(), "", page)
            self.assertGreater(len(r.stdout), 500)


if __name__ == "__main__":
    unittest.main()
