/* backend.c - device names and moving a model's weights to a device (lq_model.h). */
#include <string.h>

#include "backend.h"

static const char *const g_names[LQ_DEVICE_COUNT] = {[LQ_DEVICE_CPU] = "cpu", [LQ_DEVICE_CUDA] = "cuda"};

lq_device lq_device_from_name(const char *name) {
    if (!name) return LQ_DEVICE_COUNT;
    for (int d = 0; d < LQ_DEVICE_COUNT; d++)
        if (strcmp(g_names[d], name) == 0) return (lq_device)d;
    return LQ_DEVICE_COUNT;
}

const char *lq_device_name(lq_device d) {
    return ((int)d >= 0 && d < LQ_DEVICE_COUNT) ? g_names[d] : "?";
}

lq_status lq_model_to_device(lq_model *m, lq_device d) {
    if ((int)d < 0 || d >= LQ_DEVICE_COUNT)
        return lq_fail(LQ_ERR_INVALID_ARG, "unknown device %d", (int)d);
    if (lq_model_device(m) == d) return LQ_OK;
    lq_backend_model_free(m->dev);
    m->dev = NULL;
    if (d == LQ_DEVICE_CPU) return LQ_OK;
    return lq_backend_model_create(m, d, &m->dev);
}

lq_device lq_model_device(const lq_model *m) {
    return m->dev ? lq_backend_model_device(m->dev) : LQ_DEVICE_CPU;
}
