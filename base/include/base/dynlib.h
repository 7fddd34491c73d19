/*
 * dynlib.h - loading a vendor library at run time: the candidates tried in
 * order, a table of required and optional entry points resolved into the
 * caller's function table, and one outcome (result and reason) kept for
 * the life of the process.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every backend opens its driver this way (CUDA through cuGetProcAddress,
 * HIP and Level Zero through the loader's own lookup), so a backend that
 * cannot load reads the same everywhere: DV_ERROR_BACKEND_UNAVAILABLE with
 * a reason naming the library and the first thing missing.
 *
 * A candidate is tried in four steps; the first that fails rejects it, the
 * table is zeroed, the library closed and the next candidate tried:
 *   1. open it (dv__lib_open)                "cannot load NAME: <loader>"
 *   2. spec->prepare, if any                 its own text
 *   3. resolve every symbol of spec->syms    "NAME: lacks SYM (<hint>)", or
 *      with spec->resolve (default:           "NAME: lacks SYM: <why>" when
 *      dv__lib_sym); an optional symbol        the resolver says why
 *      that is missing stays NULL
 *   4. spec->finish, if any (a version        its own text
 *      query, the driver's init call)
 * The reasons of rejected candidates are joined with "; ". On success the
 * reason is the note finish wrote, or else the library's name.
 *
 * Candidates: spec->path alone when set; else the library named by the
 * variable spec->env when it is set and not empty; else spec->names in
 * order.
 *
 * Contract:
 *  - dv__dynlib_open(spec, out): one attempt, no shared state (out needs no
 *    initialisation). Fills out->result (DV_OK or
 *    DV_ERROR_BACKEND_UNAVAILABLE), out->lib (the open library on DV_OK,
 *    else NULL), out->name (the library that loaded, or the last one
 *    tried), out->missing (the first missing required symbol of the last
 *    candidate, or "") and out->reason. The table is written in place,
 *    zeroed again when no candidate loads. Thread-safe as long as no other
 *    thread uses the same table.
 *  - dv__dynlib_load(dl, spec): dv__dynlib_open once per dl (initialised
 *    with DV__DYNLIB_INIT, static storage); every later call returns the
 *    first outcome without trying again. Thread-safe: callers racing the
 *    first load wait for it. dl's fields are read-only afterwards. The
 *    outcome is logged once, at debug level, under spec->tag.
 *  - A library that loaded stays open: its table points into it. A caller
 *    of dv__dynlib_open that is done with it closes out->lib itself.
 *  - Entry points are stored as object pointers copied into function
 *    pointer fields (POSIX dlsym and GetProcAddress guarantee the round
 *    trip): every field named in syms must be a function pointer.
 */
#ifndef DV_BASE_DYNLIB_H
#define DV_BASE_DYNLIB_H

#include <stddef.h>

#include "base/os.h"
#include "dynvram.h"

/* One entry point: where its address goes in the caller's table. */
typedef struct dv__dynlib_sym {
    const char *name;
    size_t offset;
    int required; /* 0: may be missing (the field stays NULL) */
} dv__dynlib_sym_t;

/* An entry of a table of type `type` whose field is named as the symbol. */
#define DV__DYNLIB_SYM(type, sym, required)                                    \
    { #sym, offsetof(type, sym), required }

struct dv__dynlib_spec;

/* The address of `name` in the open library `lib`, or NULL; on NULL it may
 * say why in `why` (left "" otherwise). */
typedef void *(*dv__dynlib_resolve_fn)(const struct dv__dynlib_spec *spec,
                                       void *lib, const char *name, char *why,
                                       size_t why_len);
/* A step on candidate `name`: 0 to go on, -1 to reject it with the reason
 * in `why`. finish may also write a note for success into `why`. */
typedef int (*dv__dynlib_step_fn)(const struct dv__dynlib_spec *spec,
                                  const char *name, void *lib, char *why,
                                  size_t why_len);

typedef struct dv__dynlib_spec {
    const char *tag;          /* "cuda", "hip", ...: names the debug log */
    const char *path;         /* [optional] the only candidate */
    const char *env;          /* [optional] variable naming the only one */
    const char *const *names; /* [optional] candidates, NULL-terminated */
    const dv__dynlib_sym_t *syms;
    size_t sym_count;
    void *table; /* the caller's function table */
    size_t table_size;
    const char *hint;              /* [optional] why a symbol may lack */
    dv__dynlib_step_fn prepare;    /* [optional] before resolving */
    dv__dynlib_resolve_fn resolve; /* [optional] default dv__lib_sym */
    dv__dynlib_step_fn finish;     /* [optional] after resolving */
    void *arg;                     /* for the hooks */
} dv__dynlib_spec_t;

#define DV__DYNLIB_REASON 512

typedef struct dv__dynlib {
    dv__mutex_t lock; /* guards the first load (dv__dynlib_load) */
    volatile int done;
    dv_result_t result;
    void *lib;
    char name[256];
    char missing[128];
    char reason[DV__DYNLIB_REASON];
} dv__dynlib_t;

#define DV__DYNLIB_INIT                                                        \
    { DV__MUTEX_INIT, 0, DV_ERROR_BACKEND_UNAVAILABLE, NULL, "", "", "" }

void dv__dynlib_open(const dv__dynlib_spec_t *spec, dv__dynlib_t *out);
dv_result_t dv__dynlib_load(dv__dynlib_t *dl, const dv__dynlib_spec_t *spec);

/* Has dl's first load finished? (Then dl->result and dl->reason hold.) */
static inline int dv__dynlib_done(dv__dynlib_t *dl) {
    return dv__atomic_load_int(&dl->done);
}

#endif /* DV_BASE_DYNLIB_H */
