/*
 * iotest.c - see iotest.h.
 * SPDX-License-Identifier: Apache-2.0
 */
#define _GNU_SOURCE
#include "iotest.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dynvram_host.h"

static char dir[256];

static void cleanup(void) {
    DIR *d = opendir(dir);
    if (!d) {
        return;
    }
    struct dirent *e;
    char p[600];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

const char *tio_dir(void) {
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/dvio-XXXXXX", t && *t ? t : "/tmp");
        cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
        atexit(cleanup);
    }
    return dir;
}

const char *tio_file(const char *name, uint64_t size) {
    static char paths[8][600];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 600, "%s/%s", tio_dir(), name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0, "create %s", p);
    uint8_t buf[65536];
    for (uint64_t off = 0; off < size;) {
        size_t n =
            size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            buf[i] = tio_byte(off + i);
        }
        cr_assert_eq(write(fd, buf, n), (ssize_t)n, "write %s", p);
        off += n;
    }
    /* On disk, not dirty: the page cache can then drop it (mark cold). */
    cr_assert_eq(fsync(fd), 0);
    close(fd);
    return p;
}

int64_t tio_mismatch(const void *buf, uint64_t n, uint64_t foff) {
    const uint8_t *b = buf;
    for (uint64_t i = 0; i < n; i++) {
        if (b[i] != tio_byte(foff + i)) {
            return (int64_t)i;
        }
    }
    return -1;
}

int64_t tio_device_mismatch(dv_device_t *dev, uint64_t dst, uint64_t n,
                            uint64_t foff) {
    uint8_t *buf = malloc(n);
    if (!buf || dv_copy_d2h(dev, buf, dst, n, NULL) != DV_OK) {
        free(buf);
        return -2;
    }
    int64_t m = tio_mismatch(buf, n, foff);
    free(buf);
    return m;
}

uint64_t tio_host_regs(void) {
    uint64_t n = 0;
    if (strcmp(td_backend(), "host") == 0) {
        dv_host_registrations(&n, NULL);
    }
    return n;
}

int tio_can_register(dv_device_t *dev) {
    dv_device_caps_t c;
    TD_OK(dv_device_get_caps(dev, &c));
    return (c.flags & DV_CAP_HOST_REGISTER) != 0;
}

void tio_msg_has(const char *s) {
    cr_assert(strstr(dv_last_error(), s) != NULL, "message '%s' lacks '%s'",
              dv_last_error(), s);
}
