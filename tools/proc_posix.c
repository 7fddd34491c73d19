/*
 * proc_posix.c - proc.h on POSIX systems.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#define _XOPEN_SOURCE 700 /* POSIX 2008 with realpath */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

/* In the child, before exec: what can fail here is reported through the
 * exit status 127, as a shell does. */
static void child(const char *const *argv, const char *const *env,
                  const char *out_path) {
    /* Its own process group, so a timeout kills the suite's own children
     * (Criterion runs every test in one) along with it. */
    setpgid(0, 0);
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (eq) {
            char name[256];
            size_t n = (size_t)(eq - env[i]);
            if (n < sizeof(name)) {
                memcpy(name, env[i], n);
                name[n] = '\0';
                setenv(name, eq + 1, 1);
            }
        }
    }
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
        _exit(127);
    }
    close(fd);
    execv(argv[0], (char *const *)argv);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int dv_tool_can_run(char *why, size_t why_len) {
    (void)why;
    (void)why_len;
    return 1;
}

int dv_tool_run(const char *const *argv, const char *const *env,
                const char *out_path, int timeout_s, int *status, char *why,
                size_t why_len) {
    fflush(NULL); /* the child must not repeat our buffered output */
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_len, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        child(argv, env, out_path);
    }
    setpgid(pid, pid); /* also here: whichever runs first */
    struct timespec tick = {0, 20 * 1000 * 1000};
    long waited_ms = 0;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            *status = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
            break;
        }
        if (r < 0 && errno != EINTR) {
            snprintf(why, why_len, "waitpid: %s", strerror(errno));
            return -1;
        }
        if (waited_ms >= (long)timeout_s * 1000) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            *status = DV_TOOL_TIMED_OUT;
            break;
        }
        nanosleep(&tick, NULL);
        waited_ms += 20;
    }
    /* Whatever the suite left running in its group goes with it. */
    kill(-pid, SIGKILL);
    return 0;
}

int dv_tool_self_dir(const char *argv0, char *buf, size_t len) {
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n > 0) {
        path[n] = '\0';
    } else if (!argv0 || !realpath(argv0, path)) {
        return -1;
    }
    char *slash = strrchr(path, '/');
    if (!slash) {
        return -1;
    }
    *slash = '\0';
    if ((size_t)snprintf(buf, len, "%s", path[0] ? path : "/") >= len) {
        return -1;
    }
    return 0;
}

int dv_tool_abspath(const char *path, char *buf, size_t len) {
    char full[PATH_MAX];
    if (!realpath(path, full) ||
        (size_t)snprintf(buf, len, "%s", full) >= len) {
        return -1;
    }
    return 0;
}

int dv_tool_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int dv_tool_tempdir(char *buf, size_t len) {
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) {
        tmp = "/tmp";
    }
    if ((size_t)snprintf(buf, len, "%s/dynvram-conformance-XXXXXX", tmp) >=
        len) {
        return -1;
    }
    return mkdtemp(buf) ? 0 : -1;
}

void dv_tool_remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
                (size_t)snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) <
                    sizeof(p)) {
                unlink(p);
            }
        }
        closedir(d);
    }
    rmdir(dir);
}

double dv_tool_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
