/*
 * fake_hip_mem.c - simulated HIP runtime: physical allocations (memfds),
 * address reservations (inaccessible anonymous mappings) and mappings, with
 * the unmap_needs_reprotect, multi_unmap and reserve_free_corrupts defects
 * (see fake_hip.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Linux only (memfd_create, /proc/self/maps). Caller-visible state is
 * guarded by dvsim__hip_lock.
 */
#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fakes/hip/fake_hip_internal.h"

typedef struct sim_chunk {
    struct sim_chunk *next;
    int fd;
    ino_t ino;
    uint64_t size;
    int device;
    int released;
    int maps;      /* live mapping records */
    int lingering; /* unmapped under unmap_needs_reprotect: maybe still mapped */
} sim_chunk_t;

typedef struct sim_res {
    uintptr_t va;
    size_t size;
} sim_res_t;

typedef struct sim_map {
    uintptr_t va;
    size_t size;
    sim_chunk_t *chunk;
    int access;
} sim_map_t;

static sim_chunk_t *sim_chunks;
static uint64_t sim_used[DVSIM_MAX_DEVICES];
static sim_res_t sim_res[1024];
static int sim_res_count;
static sim_map_t sim_maps[8192];
static int sim_map_count;
static int sim_frees;

/* ---- physical memory accounting --------------------------------------------- */

/* Inodes of every memfd mapped into the process right now. */
static int sim_mapped_inodes(ino_t *out, int max) {
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0;
    if (!f) {
        return -1;
    }
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi, off, ino;
        unsigned maj, mnr;
        char perms[8];
        if (strstr(line, "/memfd:dvsim_hip") &&
            sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &off,
                   &maj, &mnr, &ino) == 7 &&
            n < max) {
            out[n++] = (ino_t)ino;
        }
    }
    fclose(f);
    return n;
}

/* Frees every released chunk nothing refers to any more. With
 * unmap_needs_reprotect, a chunk that was unmapped may still be mapped in
 * the process (the defect): it is only gone once that mapping was replaced.
 * Caller holds the lock. */
static void sim_sweep(void) {
    static ino_t inodes[16384];
    int n = -1;
    sim_chunk_t **pp = &sim_chunks;
    while (*pp) {
        sim_chunk_t *c = *pp;
        int gone = c->released && c->maps == 0;
        if (gone && c->lingering) {
            if (n < 0) {
                n = sim_mapped_inodes(inodes, 16384);
            }
            for (int i = 0; i < n && gone; i++) {
                gone = inodes[i] != c->ino;
            }
            gone = gone && n >= 0;
        }
        if (!gone) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        sim_used[c->device] -= c->size;
        close(c->fd);
        free(c);
    }
}

static sim_chunk_t *sim_find_chunk(dv_hip_mem_handle_t h) {
    for (sim_chunk_t *c = sim_chunks; c; c = c->next) {
        if ((void *)c == (void *)h && !c->released) {
            return c;
        }
    }
    return NULL;
}

/* Reads the location out of `prop`, in the layout of the simulated
 * version; -1 if the properties are not those of pinned device memory. */
static int sim_prop_device(const void *prop) {
    if (!prop) {
        return -1;
    }
    if (DV_HIP_VERSION_MAJOR(dvsim__hip_config()->version) >= 6) {
        const dv_hip_mem_alloc_prop_t *p = prop;
        if (p->type != DV_HIP_MEM_ALLOCATION_TYPE_PINNED ||
            p->location.type != DV_HIP_MEM_LOCATION_TYPE_DEVICE ||
            p->alloc_flags.compression_type != 0) {
            return -1;
        }
        return dvsim__hip_valid_device(p->location.id) ? p->location.id : -1;
    }
    const dv_hip_mem_alloc_prop_v5_t *p = prop;
    if (p->type != DV_HIP_MEM_ALLOCATION_TYPE_PINNED ||
        p->location.type != DV_HIP_MEM_LOCATION_TYPE_DEVICE ||
        p->compression_type != 0) {
        return -1;
    }
    return dvsim__hip_valid_device(p->location.id) ? p->location.id : -1;
}

DVSIM_EXPORT dv_hip_error_t hipMemGetInfo(size_t *free_bytes,
                                          size_t *total_bytes) {
    if (!free_bytes || !total_bytes) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    int d = dvsim__hip_current_device();
    pthread_mutex_lock(&dvsim__hip_lock);
    sim_sweep();
    uint64_t cap = dvsim__hip_config()->capacity[d];
    *total_bytes = (size_t)cap;
    *free_bytes = (size_t)(cap > sim_used[d] ? cap - sim_used[d] : 0);
    pthread_mutex_unlock(&dvsim__hip_lock);
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipMemGetAllocationGranularity(
    size_t *granularity, const void *prop,
    dv_hip_mem_granularity_flags_t option) {
    if (!granularity || sim_prop_device(prop) < 0) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    uint64_t g = dvsim__hip_config()->granularity;
    if (option == DV_HIP_MEM_ALLOC_GRANULARITY_RECOMMENDED) {
        g = g > (2u << 20) ? g : (2u << 20);
    } else if (option != DV_HIP_MEM_ALLOC_GRANULARITY_MINIMUM) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    *granularity = (size_t)g;
    return DV_HIP_SUCCESS;
}

static dv_hip_error_t sim_mem_create(dv_hip_mem_handle_t *handle, size_t size,
                                     const void *prop,
                                     unsigned long long flags) {
    uint64_t g = dvsim__hip_config()->granularity;
    int d = sim_prop_device(prop);
    if (!handle || d < 0 || flags != 0 || size == 0 || size % g != 0) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    sim_sweep();
    if (sim_used[d] + size > dvsim__hip_config()->capacity[d]) {
        return DV_HIP_ERROR_OUT_OF_MEMORY;
    }
    sim_chunk_t *c = calloc(1, sizeof(*c));
    if (!c) {
        return DV_HIP_ERROR_OUT_OF_MEMORY;
    }
    struct stat st;
    c->fd = memfd_create("dvsim_hip", MFD_CLOEXEC);
    if (c->fd < 0 || ftruncate(c->fd, (off_t)size) != 0 ||
        fstat(c->fd, &st) != 0) {
        if (c->fd >= 0) {
            close(c->fd);
        }
        free(c);
        return DV_HIP_ERROR_OUT_OF_MEMORY;
    }
    c->ino = st.st_ino;
    c->size = size;
    c->device = d;
    c->next = sim_chunks;
    sim_chunks = c;
    sim_used[d] += size;
    *handle = (dv_hip_mem_handle_t)(void *)c;
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipMemCreate(dv_hip_mem_handle_t *handle,
                                         size_t size, const void *prop,
                                         unsigned long long flags) {
    SIM_VMM_BEGIN();
    dv_hip_error_t e = sim_mem_create(handle, size, prop, flags);
    SIM_VMM_END(e);
}

DVSIM_EXPORT dv_hip_error_t hipMemRelease(dv_hip_mem_handle_t handle) {
    SIM_VMM_BEGIN();
    dv_hip_error_t e = DV_HIP_ERROR_INVALID_VALUE;
    sim_chunk_t *c = sim_find_chunk(handle);
    if (c) {
        c->released = 1; /* freed once nothing maps it (sim_sweep) */
        sim_sweep();
        e = DV_HIP_SUCCESS;
    }
    SIM_VMM_END(e);
}

/* ---- address reservations ---------------------------------------------------- */

static int sim_find_res(uintptr_t va, size_t size) {
    for (int i = 0; i < sim_res_count; i++) {
        if (va >= sim_res[i].va && size <= sim_res[i].size &&
            va - sim_res[i].va <= sim_res[i].size - size) {
            return i;
        }
    }
    return -1;
}

static void *sim_reserve_at(void *addr, size_t size, size_t alignment) {
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    if (addr) {
        void *p = mmap(addr, size, PROT_NONE, flags | MAP_FIXED_NOREPLACE, -1,
                       0);
        if (p == addr) {
            return p;
        }
        if (p != MAP_FAILED) {
            munmap(p, size); /* old kernels ignore the flag */
        }
    }
    char *p = mmap(NULL, size + alignment, PROT_NONE, flags, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    uintptr_t a = ((uintptr_t)p + alignment - 1) & ~(uintptr_t)(alignment - 1);
    if (a > (uintptr_t)p) {
        munmap(p, a - (uintptr_t)p);
    }
    size_t tail = (size_t)((uintptr_t)p + size + alignment - (a + size));
    if (tail) {
        munmap((void *)(a + size), tail);
    }
    return (void *)a;
}

static dv_hip_error_t sim_address_reserve(void **ptr, size_t size,
                                          size_t alignment, void *addr,
                                          unsigned long long flags) {
    const dvsim_config_t *cfg = dvsim__hip_config();
    if (!ptr || size == 0 || size % cfg->granularity != 0 || flags != 0 ||
        (alignment & (alignment - 1)) != 0) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    int corrupt_after = cfg->corrupt_after > 0 ? cfg->corrupt_after : 1;
    if ((cfg->defects & DVSIM_DEFECT_RESERVE_FREE_CORRUPTS) &&
        sim_frees >= corrupt_after) {
        fprintf(stderr, "dvsim-hip: reserve after %d address frees: runtime "
                        "state corrupted (reserve_free_corrupts)\n",
                sim_frees);
        return DV_HIP_ERROR_UNKNOWN;
    }
    if (sim_res_count == (int)(sizeof(sim_res) / sizeof(sim_res[0]))) {
        return DV_HIP_ERROR_OUT_OF_MEMORY;
    }
    if (alignment < cfg->granularity) {
        alignment = (size_t)cfg->granularity;
    }
    void *p = sim_reserve_at(addr, size, alignment);
    if (!p) {
        return DV_HIP_ERROR_OUT_OF_MEMORY;
    }
    sim_res[sim_res_count++] = (sim_res_t){.va = (uintptr_t)p, .size = size};
    *ptr = p;
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipMemAddressReserve(void **ptr, size_t size,
                                                 size_t alignment, void *addr,
                                                 unsigned long long flags) {
    SIM_VMM_BEGIN();
    dv_hip_error_t e = sim_address_reserve(ptr, size, alignment, addr, flags);
    SIM_VMM_END(e);
}

static dv_hip_error_t sim_address_free(void *ptr, size_t size) {
    uintptr_t va = (uintptr_t)ptr;
    int i = 0;
    while (i < sim_res_count && sim_res[i].va != va) {
        i++;
    }
    if (i == sim_res_count || sim_res[i].size != size) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    for (int m = 0; m < sim_map_count; m++) {
        if (sim_maps[m].va >= va && sim_maps[m].va < va + size) {
            return DV_HIP_ERROR_INVALID_VALUE; /* still in use */
        }
    }
    munmap(ptr, size); /* also drops mappings left by the defect */
    sim_res[i] = sim_res[--sim_res_count];
    sim_frees++;
    sim_sweep();
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipMemAddressFree(void *ptr, size_t size) {
    SIM_VMM_BEGIN();
    dv_hip_error_t e = sim_address_free(ptr, size);
    SIM_VMM_END(e);
}

/* ---- mappings ----------------------------------------------------------------- */

static int sim_overlaps_mapping(uintptr_t va, size_t size) {
    for (int m = 0; m < sim_map_count; m++) {
        if (sim_maps[m].va < va + size && va < sim_maps[m].va + sim_maps[m].size) {
            return 1;
        }
    }
    return 0;
}

static dv_hip_error_t sim_mem_map(void *ptr, size_t size, size_t offset,
                                  dv_hip_mem_handle_t handle,
                                  unsigned long long flags) {
    uint64_t g = dvsim__hip_config()->granularity;
    uintptr_t va = (uintptr_t)ptr;
    sim_chunk_t *c = sim_find_chunk(handle);
    if (!c || flags != 0 || size == 0 || size % g || offset % g || va % g ||
        offset > c->size || size > c->size - offset ||
        sim_find_res(va, size) < 0 || sim_overlaps_mapping(va, size) ||
        sim_map_count == (int)(sizeof(sim_maps) / sizeof(sim_maps[0]))) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    void *p = mmap(ptr, size, PROT_NONE, MAP_SHARED | MAP_FIXED, c->fd,
                   (off_t)offset);
    if (p != ptr) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    sim_maps[sim_map_count++] =
        (sim_map_t){.va = va, .size = size, .chunk = c, .access = 0};
    c->maps++;
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipMemMap(void *ptr, size_t size, size_t offset,
                                      dv_hip_mem_handle_t handle,
                                      unsigned long long flags) {
    SIM_VMM_BEGIN();
    dv_hip_error_t e = sim_mem_map(ptr, size, offset, handle, flags);
    /* A remap over a lingering mapping may have freed an old chunk. */
    sim_sweep();
    SIM_VMM_END(e);
}

/* Indices of the mappings inside [va, va + size), sorted by address;
 * returns their count, or -1 if one straddles the range or a gap is left
 * at either end. */
static int sim_collect(uintptr_t va, size_t size, int *idx, int max) {
    int n = 0;
    for (int m = 0; m < sim_map_count; m++) {
        const sim_map_t *s = &sim_maps[m];
        if (s->va < va + size && va < s->va + s->size) {
            if (s->va < va || s->va + s->size > va + size || n == max) {
                return -1;
            }
            int j = n++;
            while (j > 0 && sim_maps[idx[j - 1]].va > s->va) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = m;
        }
    }
    return n;
}

static void sim_remove_maps(int *idx, int n) {
    /* Highest index first, so the swaps never move one still to remove. */
    for (int k = 0; k < n; k++) {
        int best = 0;
        for (int j = 1; j < n; j++) {
            if (idx[j] > idx[best]) {
                best = j;
            }
        }
        sim_maps[idx[best]] = sim_maps[--sim_map_count];
        idx[best] = -1;
    }
}

static dv_hip_error_t sim_mem_unmap(void *ptr, size_t size) {
    static int idx[8192];
    uintptr_t va = (uintptr_t)ptr;
    int n = sim_collect(va, size, idx, 8192);
    if (n <= 0 || sim_maps[idx[0]].va != va) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    if (n > 1 && dvsim__hip_defect(DVSIM_DEFECT_MULTI_UNMAP)) {
        n = 1; /* the defect: the others stay mapped, and no error */
    }
    for (int k = 0; k < n; k++) {
        sim_map_t *s = &sim_maps[idx[k]];
        if (dvsim__hip_defect(DVSIM_DEFECT_UNMAP_NEEDS_REPROTECT)) {
            /* The defect: the pages stay mapped (and accessible) in the
             * process, holding the memory, until that mapping is replaced. */
            s->chunk->lingering = 1;
        } else {
            mmap((void *)s->va, s->size, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
                 0);
        }
        s->chunk->maps--;
    }
    sim_remove_maps(idx, n);
    sim_sweep();
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipMemUnmap(void *ptr, size_t size) {
    SIM_VMM_BEGIN();
    dv_hip_error_t e = sim_mem_unmap(ptr, size);
    SIM_VMM_END(e);
}

static dv_hip_error_t sim_set_access(void *ptr, size_t size,
                                     const dv_hip_mem_access_desc_t *desc,
                                     size_t count) {
    static int idx[8192];
    if (!desc || count == 0) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    int access = 0;
    for (size_t i = 0; i < count; i++) {
        if (desc[i].location.type != DV_HIP_MEM_LOCATION_TYPE_DEVICE ||
            !dvsim__hip_valid_device(desc[i].location.id) ||
            (desc[i].flags != DV_HIP_MEM_ACCESS_FLAGS_PROT_NONE &&
             desc[i].flags != DV_HIP_MEM_ACCESS_FLAGS_PROT_READ &&
             desc[i].flags != DV_HIP_MEM_ACCESS_FLAGS_PROT_READ_WRITE)) {
            return DV_HIP_ERROR_INVALID_VALUE;
        }
        access |= (int)desc[i].flags;
    }
    uintptr_t va = (uintptr_t)ptr;
    int n = sim_collect(va, size, idx, 8192);
    if (n <= 0) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    uintptr_t at = va; /* the mappings must tile the range */
    for (int k = 0; k < n; k++) {
        if (sim_maps[idx[k]].va != at) {
            return DV_HIP_ERROR_INVALID_VALUE;
        }
        at += sim_maps[idx[k]].size;
    }
    if (at != va + size) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    int prot = access == DV_HIP_MEM_ACCESS_FLAGS_PROT_READ_WRITE
                   ? PROT_READ | PROT_WRITE
                   : (access ? PROT_READ : PROT_NONE);
    if (mprotect(ptr, size, prot) != 0) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    for (int k = 0; k < n; k++) {
        sim_maps[idx[k]].access = access;
    }
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipMemSetAccess(void *ptr, size_t size,
                                            const dv_hip_mem_access_desc_t *desc,
                                            size_t count) {
    SIM_VMM_BEGIN();
    dv_hip_error_t e = sim_set_access(ptr, size, desc, count);
    SIM_VMM_END(e);
}

int dvsim__hip_accessible(uintptr_t va, size_t size, int need) {
    uintptr_t at = va, end = va + size;
    while (at < end) {
        int found = 0;
        for (int m = 0; m < sim_map_count && !found; m++) {
            const sim_map_t *s = &sim_maps[m];
            if (at >= s->va && at < s->va + s->size) {
                if ((s->access & need) != need) {
                    return 0;
                }
                at = s->va + s->size;
                found = 1;
            }
        }
        if (!found) {
            return 0;
        }
    }
    return 1;
}

/* ---- test hooks ---------------------------------------------------------------- */

DVSIM_EXPORT uint64_t dvsim_hip_used(int device) {
    if (device < 0 || device >= DVSIM_MAX_DEVICES) {
        return 0;
    }
    pthread_mutex_lock(&dvsim__hip_lock);
    sim_sweep();
    uint64_t u = sim_used[device];
    pthread_mutex_unlock(&dvsim__hip_lock);
    return u;
}

DVSIM_EXPORT int dvsim_hip_mapping_count(void) {
    pthread_mutex_lock(&dvsim__hip_lock);
    int n = sim_map_count;
    pthread_mutex_unlock(&dvsim__hip_lock);
    return n;
}

DVSIM_EXPORT int dvsim_hip_reservation_count(void) {
    pthread_mutex_lock(&dvsim__hip_lock);
    int n = sim_res_count;
    pthread_mutex_unlock(&dvsim__hip_lock);
    return n;
}
