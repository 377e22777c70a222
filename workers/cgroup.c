/*
 * cgroup.c - per-job cgroups (cgroup v2).
 *
 * The directory is <cgroup2 mount><jobd's own cgroup>/jobd-<pid>.jobs: under
 * systemd with Delegate=yes that is inside jobd's service; run by hand as
 * root it is inside whatever cgroup started it. Creating it is the test of
 * whether we may: no permission, no cgroup2 mount, or a read-only one all
 * mean "no cgroups", and jobd carries on with process groups.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"
#include "workers/cgroup.h"

static int find_cgroup2_mount(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int found = 0;
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		/* ... mount-point ... - fstype source options */
		char *sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		char *p = line;
		for (int i = 0; i < 4 && p; i++) {
			p = strchr(p, ' ');
			if (p)
				p++;
		}
		if (!p)
			continue;
		size_t n = strcspn(p, " ");
		if (n >= len)
			continue;
		memcpy(out, p, n);
		out[n] = '\0';
		found = 1;
	}
	fclose(f);
	return found;
}

static int own_cgroup(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];
	int found = 0;
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(out, len, "%s", line + 3);
		found = 1;
	}
	fclose(f);
	return found;
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t w = write(fd, text, strlen(text));
		(void)w;
		close(fd);
	}
}

char *jd_cgroup_setup(void)
{
	char mnt[PATH_MAX], own[PATH_MAX], dir[PATH_MAX * 2 + 64];
	if (!find_cgroup2_mount(mnt, sizeof(mnt)) || !own_cgroup(own, sizeof(own))) {
		jd_info("no cgroup v2 hierarchy: exec jobs are contained by process groups only");
		return NULL;
	}
	if (strcmp(own, "/") == 0)
		own[0] = '\0';
	snprintf(dir, sizeof(dir), "%s%s/jobd-%d.jobs", mnt, own, (int)getpid());
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		jd_info("cannot create cgroup %s (%s): exec jobs are contained by process groups "
			"only",
			dir, strerror(errno));
		return NULL;
	}
	/* Let job cgroups take memory and pids limits where the parent allows
	 * it; failure only means the RLIMIT_AS fallback. */
	char ctl[sizeof(dir) + 32];
	snprintf(ctl, sizeof(ctl), "%s/cgroup.subtree_control", dir);
	write_file(ctl, "+memory");
	write_file(ctl, "+pids");
	return strdup(dir);
}

int jd_cgroup_has_memory(const char *dir)
{
	char ctl[PATH_MAX + 32], buf[256] = "";
	snprintf(ctl, sizeof(ctl), "%s/cgroup.subtree_control", dir);
	int fd = open(ctl, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0)
		buf[n] = '\0';
	return strstr(buf, "memory") != NULL;
}

static void kill_and_remove(const char *cg)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/cgroup.kill", cg);
	if (access(path, W_OK) == 0) {
		write_file(path, "1");
	} else {
		snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
		FILE *f = fopen(path, "re");
		long pid;
		while (f && fscanf(f, "%ld", &pid) == 1)
			kill((pid_t)pid, SIGKILL);
		if (f)
			fclose(f);
	}
	/* rmdir succeeds once the killed processes are gone: try for a
	 * moment, not forever (loop thread). */
	for (int i = 0; i < 50 && rmdir(cg) < 0 && errno == EBUSY; i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

void jd_cgroup_kill_job(const char *dir, const char *id)
{
	char cg[PATH_MAX + 64];
	snprintf(cg, sizeof(cg), "%s/job-%s", dir, id);
	if (access(cg, F_OK) == 0)
		kill_and_remove(cg);
}

void jd_cgroup_teardown(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "job-", 4) != 0)
			continue;
		char cg[PATH_MAX + 300];
		snprintf(cg, sizeof(cg), "%.4000s/%.255s", dir, e->d_name);
		kill_and_remove(cg);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

void jd_cgroup_reap_stale(const char *dir)
{
	/* dir is <parent>/jobd-<pid>.jobs: look at its siblings. */
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	if (!slash)
		return;
	*slash = '\0';
	DIR *d = opendir(parent);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		int pid;
		char tail[16];
		if (sscanf(e->d_name, "jobd-%d.%15s", &pid, tail) != 2 ||
		    strcmp(tail, "jobs") != 0 || pid == (int)getpid() || kill(pid, 0) == 0 ||
		    errno != ESRCH)
			continue;
		/* A jobd that died without cleaning up: whatever its jobs left
		 * behind goes now. */
		char path[PATH_MAX + 300];
		snprintf(path, sizeof(path), "%.4000s/%.255s", parent, e->d_name);
		jd_info("removing job cgroups left by jobd %d, which is gone", pid);
		jd_cgroup_teardown(path);
	}
	if (d)
		closedir(d);
}
