/*
 * cgroup.h - per-job cgroups for exec jobs, when jobd can make them.
 *
 * With a writable cgroup v2 hierarchy, every exec job runs in a cgroup of
 * its own under one directory per jobd instance, so that everything it
 * starts - even a process that detached with setsid - can be found and
 * killed (cgroup.kill). Without one, jobd falls back to process groups;
 * docs/design.md says what can escape then. Main or loop thread.
 */
#ifndef JD_CGROUP_H
#define JD_CGROUP_H

/* Make this instance's directory for job cgroups. Returns its path
 * (malloc'd) or NULL when cgroups cannot be used (logged once). */
char *jd_cgroup_setup(void);
/* Kill every process of job `id`'s cgroup and remove it. */
void jd_cgroup_kill_job(const char *dir, const char *id);
/* Whether job cgroups under dir can take a memory limit. */
int jd_cgroup_has_memory(const char *dir);
/* Kill and remove the job cgroups of jobd instances that died (their
 * jobd-<pid>.jobs directories beside `dir`). */
void jd_cgroup_reap_stale(const char *dir);
/* Remove the directory (and any job cgroups left in it). */
void jd_cgroup_teardown(const char *dir);

#endif
