/* quickstart.c: a model of 8 layers, 4 MiB each, on a device limited to
 * 24 MiB. Build: cc quickstart.c $(pkg-config --cflags --libs dynvram) */
#include <dynvram.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_LAYERS 8
#define LAYER (4ull << 20)

static int failed(dv_result_t r, const char *what) {
    if (r == DV_OK) {
        return 0;
    }
    fprintf(stderr, "%s: %s: %s\n", what, dv_result_name(r), dv_last_error());
    return 1;
}

int main(void) {
    dv_device_options_t o;
    dv_device_options_init(&o); /* backend NULL: cuda, hip, levelzero, host */
    o.vram_limit = 24ull << 20; /* optional: behave like a 24 MiB GPU */
    o.page_size = LAYER;        /* the unit of residency (default 32 MiB) */
    dv_device_t *dev;
    if (failed(dv_device_open(&o, &dev), "open")) {
        return 1;
    }
    /* The weights in host memory, and the generation each copy came from. */
    unsigned char *host = malloc(N_LAYERS * LAYER);
    uint64_t saved[N_LAYERS] = {0};
    if (!host) {
        return 1;
    }
    memset(host, 0x5a, N_LAYERS * LAYER);

    dv_vbar_t *model, *scratch; /* address space: no memory used yet */
    dv_vbar_info_t vi, si;
    uint64_t gen;
    if (failed(dv_vbar_create(dev, N_LAYERS * LAYER, &model), "model") ||
        failed(dv_vbar_get_info(dev, model, &vi), "info") ||
        /* one layer's buffer for what is offloaded, pinned throughout */
        failed(dv_vbar_create(dev, LAYER, &scratch), "scratch") ||
        failed(dv_fault(dev, scratch, 0, LAYER, &gen), "scratch fault") ||
        failed(dv_vbar_get_info(dev, scratch, &si), "scratch info")) {
        return 1;
    }
    for (int step = 0; step < 3; step++) {
        int resident = 0, copied = 0, streamed = 0;
        for (int i = 0; i < N_LAYERS; i++) {
            uint64_t off = i * LAYER;
            dv_result_t r = dv_fault(dev, model, off, LAYER, &gen);
            if (r == DV_OK) { /* resident and pinned at vi.base + off */
                resident++;
                if (gen != saved[i]) { /* new memory: bring the bytes in */
                    if (failed(dv_copy_h2d(dev, vi.base + off, host + off,
                                           LAYER, NULL), "copy")) {
                        return 1;
                    }
                    saved[i] = gen;
                    copied++;
                }
                /* launch the layer's work on vi.base + off here, then: */
                if (failed(dv_unpin(dev, model, off, LAYER, NULL), "unpin")) {
                    return 1;
                }
            } else if (r == DV_OFFLOADED) { /* stream it through scratch */
                if (failed(dv_copy_h2d(dev, si.base, host + off, LAYER, NULL),
                           "stream")) {
                    return 1;
                }
                streamed++; /* launch the layer's work on si.base here */
            } else {
                failed(r, "fault");
                return 1;
            }
        }
        printf("step %d: %d resident (%d copied), %d streamed\n", step + 1,
               resident, copied, streamed);
    }
    dv_unpin(dev, scratch, 0, LAYER, NULL);
    dv_vbar_destroy(dev, scratch);
    dv_vbar_destroy(dev, model);
    dv_device_close(dev);
    free(host);
    return 0;
}
