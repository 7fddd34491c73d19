/*
 * dynlib.c - loading a vendor library with a table of entry points
 * (dynlib.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/dynlib.h"
#include "base/error.h"

/* Appends "; " + text to the reason, truncating quietly. */
static void reason_add(dv__dynlib_t *out, const char *fmt, ...)
    DV__PRINTF(2, 3);
static void reason_add(dv__dynlib_t *out, const char *fmt, ...) {
    size_t len = strlen(out->reason);
    if (len + 3 >= sizeof(out->reason)) {
        return;
    }
    if (len > 0) {
        memcpy(out->reason + len, "; ", 3);
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason + len, sizeof(out->reason) - len, fmt, ap);
    va_end(ap);
}

static void *default_resolve(const dv__dynlib_spec_t *spec, void *lib,
                             const char *name, char *why, size_t why_len) {
    (void)spec;
    (void)why;
    (void)why_len;
    return dv__lib_sym(lib, name);
}

/* Fills the table in order (a resolver may rely on the entries before the
 * one it is asked for, e.g. CUDA's error names). Returns the index of the
 * first missing required symbol, or sym_count. */
static size_t resolve_all(const dv__dynlib_spec_t *spec, void *lib, char *why,
                          size_t why_len) {
    dv__dynlib_resolve_fn resolve =
        spec->resolve ? spec->resolve : default_resolve;
    for (size_t i = 0; i < spec->sym_count; i++) {
        const dv__dynlib_sym_t *s = &spec->syms[i];
        why[0] = '\0';
        void *p = resolve(spec, lib, s->name, why, why_len);
        if (!p && s->required) {
            return i;
        }
        memcpy((char *)spec->table + s->offset, &p, sizeof(p));
    }
    return spec->sym_count;
}

/* One candidate; 1 when it loaded (out->lib, out->name set). */
static int try_one(const dv__dynlib_spec_t *spec, const char *name,
                   dv__dynlib_t *out) {
    char why[256] = "";
    snprintf(out->name, sizeof(out->name), "%s", name);
    out->missing[0] = '\0';
    void *lib = dv__lib_open(name, why, sizeof(why));
    if (!lib) {
        reason_add(out, "cannot load %s: %s", name,
                   why[0] ? why : "unknown loader error");
        return 0;
    }
    memset(spec->table, 0, spec->table_size);
    why[0] = '\0';
    if (spec->prepare && spec->prepare(spec, name, lib, why, sizeof(why))) {
        reason_add(out, "%s", why[0] ? why : name);
        goto reject;
    }
    size_t miss = resolve_all(spec, lib, why, sizeof(why));
    if (miss < spec->sym_count) {
        const char *sym = spec->syms[miss].name;
        snprintf(out->missing, sizeof(out->missing), "%s", sym);
        if (why[0]) {
            reason_add(out, "%s: lacks %s: %s", name, sym, why);
        } else if (spec->hint) {
            reason_add(out, "%s: lacks %s (%s)", name, sym, spec->hint);
        } else {
            reason_add(out, "%s: lacks %s", name, sym);
        }
        goto reject;
    }
    why[0] = '\0';
    if (spec->finish && spec->finish(spec, name, lib, why, sizeof(why))) {
        reason_add(out, "%s", why[0] ? why : name);
        goto reject;
    }
    /* Success replaces the reasons of the candidates before. */
    snprintf(out->reason, sizeof(out->reason), "%s", why[0] ? why : name);
    out->lib = lib;
    return 1;

reject:
    memset(spec->table, 0, spec->table_size);
    dv__lib_close(lib);
    return 0;
}

void dv__dynlib_open(const dv__dynlib_spec_t *spec, dv__dynlib_t *out) {
    out->result = DV_ERROR_BACKEND_UNAVAILABLE;
    out->lib = NULL;
    out->name[0] = '\0';
    out->missing[0] = '\0';
    out->reason[0] = '\0';
    const char *only = spec->path && spec->path[0] ? spec->path : NULL;
    if (!only && spec->env) {
        const char *v = dv__getenv(spec->env);
        only = v && v[0] ? v : NULL;
    }
    int ok = 0;
    if (only) {
        ok = try_one(spec, only, out);
    } else if (spec->names && spec->names[0]) {
        for (size_t i = 0; spec->names[i] && !ok; i++) {
            ok = try_one(spec, spec->names[i], out);
        }
    } else {
        reason_add(out, "no library to load");
    }
    if (!ok) {
        memset(spec->table, 0, spec->table_size);
        return;
    }
    out->result = DV_OK;
}

dv_result_t dv__dynlib_load(dv__dynlib_t *dl, const dv__dynlib_spec_t *spec) {
    if (dv__dynlib_done(dl)) {
        return dl->result;
    }
    dv__mutex_lock(&dl->lock);
    if (!dl->done) {
        /* Callers that skip the lock read nothing before done is set. */
        dv__dynlib_open(spec, dl);
        dv__log(DV_LOG_DEBUG, "%s: %s: %s", spec->tag ? spec->tag : "dynlib",
                dl->result == DV_OK ? "loaded" : "unavailable", dl->reason);
        /* Publishes the fields written above to them. */
        dv__atomic_store_int(&dl->done, 1);
    }
    dv__mutex_unlock(&dl->lock);
    return dl->result;
}
