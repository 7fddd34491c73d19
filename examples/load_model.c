/* load_model.c: a model file read straight into device memory by the read
 * pool, and into a pinned host buffer. Usage: load_model FILE
 * Build: cc load_model.c $(pkg-config --cflags --libs dynvram) */
#include <dynvram.h>
#include <dynvram_io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed(dv_result_t r, const char *what) {
    if (r == DV_OK) {
        return 0;
    }
    fprintf(stderr, "%s: %s: %s\n", what, dv_result_name(r), dv_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: load_model FILE\n");
        return 2;
    }
    dv_device_t *dev;
    dv_file_t *file;
    dv_file_info_t fi;
    if (failed(dv_device_open(NULL, &dev), "open") ||
        failed(dv_file_open(argv[1], &file), "file") ||
        failed(dv_file_get_info(file, &fi), "file info")) {
        return 1;
    }
    /* A reader: 8 threads (at most the CPUs), 8 MiB chunks, 16 pinned
     * staging slots made on the first read to device memory. */
    dv_reader_t *reader;
    dv_vbar_t *model;
    dv_vbar_info_t vi;
    uint64_t gen;
    if (failed(dv_reader_create(dev, NULL, &reader), "reader") ||
        failed(dv_vbar_create(dev, fi.size, &model), "vbar") ||
        failed(dv_vbar_get_info(dev, model, &vi), "vbar info") ||
        failed(dv_fault(dev, model, 0, fi.size, &gen), "fault")) {
        return 1;
    }
    /* Disk reads overlap the copies; NULL stream: back when it is there. */
    if (failed(
            dv_read_to_device(dev, reader, file, 0, fi.size, vi.base, NULL, 0),
            "read to device")) {
        return 1;
    }
    /* The same bytes into a pinned host buffer that grows at a fixed
     * address, then back from the device to compare. */
    dv_hostbuf_t *hb;
    dv_hostbuf_info_t hi;
    uint32_t pin = DV_HOSTBUF_REGISTER;
    dv_device_caps_t caps;
    if (failed(dv_device_get_caps(dev, &caps), "caps")) {
        return 1;
    }
    if (!(caps.flags & DV_CAP_HOST_REGISTER)) {
        pin = 0; /* Level Zero cannot pin existing host memory */
    }
    if (failed(dv_hostbuf_create(dev, fi.size, &hb), "host buffer") ||
        failed(dv_hostbuf_extend(dev, hb, fi.size, pin, NULL), "extend") ||
        failed(dv_read_to_host(dev, reader, file, 0, fi.size, hb, 0, 0),
               "read to host") ||
        failed(dv_hostbuf_get_info(dev, hb, &hi), "host buffer info")) {
        return 1;
    }
    unsigned char *back = malloc(fi.size);
    if (!back ||
        failed(dv_copy_d2h(dev, back, vi.base, fi.size, NULL), "d2h")) {
        return 1;
    }
    int same = memcmp(back, hi.base, fi.size) == 0;
    printf("read %llu bytes to the device and to a pinned host buffer "
           "(%u registration): %s\n",
           (unsigned long long)fi.size, hi.registrations,
           same ? "identical" : "DIFFERENT");
    free(back);
    dv_hostbuf_destroy(dev, hb);
    dv_unpin(dev, model, 0, fi.size, NULL);
    dv_vbar_destroy(dev, model);
    dv_reader_destroy(dev, reader);
    dv_file_close(file);
    dv_device_close(dev);
    return same ? 0 : 1;
}
