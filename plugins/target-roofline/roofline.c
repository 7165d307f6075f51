/*
 * roofline.c: the hardware target "roofline", written in plain C99 against supernet_plugin.h only, to show that
 * the plugin ABI does not need Swift.
 *
 * Per layer, at batch 1 in float32:
 *   FLOPs  = 2 x multiply-accumulates, plus one operation per element for the memory-bound parts: a global pool
 *            adds every input element, a squeeze-excite pools and scales its map (2 x C x size^2);
 *   bytes  = 4 x (input activation + output activation + weights and biases), each moved once;
 *   latency_ms = max(FLOPs / peak FLOP/s, bytes / bandwidth) x 1000, summed over the layers (the roofline bound
 *            of each layer: it is either compute-bound or memory-bound);
 *   energy_mj  = (FLOPs x pJ/FLOP + bytes x pJ/byte) x 1e-9, summed.
 * MACs and parameters follow the analytic target's conventions; peak memory is unknown (NaN).
 *
 * configure takes a flat JSON object of numbers with the keys peak_gflops (default 50), bandwidth_gbps (10),
 * pj_per_flop (5) and pj_per_byte (50); the defaults are placeholders of a small CPU, not measurements.
 * TODO: caches are ignored (every byte comes from memory once); small layers whose data stay in cache come out
 * memory-bound when they are not.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supernet_plugin.h"

/* The model's numbers; written only by configure, which the host calls before any cost call. */
struct roofline_settings {
    double peak_gflops;
    double bandwidth_gbps;
    double pj_per_flop;
    double pj_per_byte;
};

static struct roofline_settings settings = {50.0, 10.0, 5.0, 50.0};

/* The work and traffic of one layer. */
struct layer_figures {
    double macs;
    double params;
    double flops;
    double bytes;
};

/* Checks one layer and fills its figures; returns a status and writes a message naming the layer. */
static int layer_figures(const struct supernet_layer *layer, size_t index, struct layer_figures *figures,
                         char *error, size_t error_size) {
    char message[160];
    double in_channels = (double)layer->input_channels;
    double out_channels = (double)layer->output_channels;
    double window = (double)layer->kernel * (double)layer->kernel;
    double in_area = (double)layer->input_size * (double)layer->input_size;
    double out_area = (double)layer->output_size * (double)layer->output_size;
    double extra_flops = 0.0;

    if (layer->op > SUPERNET_OP_LINEAR || layer->activation > SUPERNET_ACTIVATION_HSIGMOID) {
        snprintf(message, sizeof message, "roofline: layer %zu: unknown op %u or activation %u", index,
                 (unsigned)layer->op, (unsigned)layer->activation);
        supernet_copy_message(error, error_size, message);
        return SUPERNET_ERROR_UNSUPPORTED;
    }
    if (layer->input_channels == 0 || layer->output_channels == 0 || layer->kernel == 0 || layer->stride == 0 ||
        layer->input_size == 0 || layer->output_size == 0) {
        snprintf(message, sizeof message, "roofline: layer %zu: channels, kernel, stride and sizes must be positive",
                 index);
        supernet_copy_message(error, error_size, message);
        return SUPERNET_ERROR_INVALID_ARGUMENT;
    }

    switch (layer->op) {
    case SUPERNET_OP_CONV:
    case SUPERNET_OP_POINTWISE:
        figures->macs = out_area * out_channels * in_channels * window;
        figures->params = out_channels * in_channels * window + out_channels;
        break;
    case SUPERNET_OP_DEPTHWISE:
        figures->macs = out_area * out_channels * window;
        figures->params = out_channels * window + out_channels;
        break;
    case SUPERNET_OP_SQUEEZE_EXCITE:
        figures->macs = 2.0 * in_channels * (double)layer->hidden;
        figures->params = 2.0 * in_channels * (double)layer->hidden + (double)layer->hidden + in_channels;
        extra_flops = 2.0 * in_channels * in_area;
        break;
    case SUPERNET_OP_POOL:
        figures->macs = 0.0;
        figures->params = 0.0;
        extra_flops = in_channels * in_area;
        break;
    default:
        figures->macs = in_channels * out_channels;
        figures->params = in_channels * out_channels + out_channels;
        break;
    }
    figures->flops = 2.0 * figures->macs + extra_flops;
    figures->bytes = 4.0 * (in_channels * in_area + out_channels * out_area + figures->params);
    return SUPERNET_OK;
}

/* The roofline time of one layer in milliseconds. */
static double layer_latency_ms(const struct layer_figures *figures) {
    double compute = figures->flops / (settings.peak_gflops * 1e9);
    double memory = figures->bytes / (settings.bandwidth_gbps * 1e9);

    return (compute > memory ? compute : memory) * 1e3;
}

static int roofline_cost(const struct supernet_layer *layers, size_t count, struct supernet_cost *out, char *error,
                         size_t error_size) {
    struct supernet_cost total = {0.0, 0.0, NAN, 0.0, 0.0};

    if (layers == NULL || count == 0 || out == NULL) {
        supernet_copy_message(error, error_size, "roofline: cost needs a non-empty layer list and an output");
        return SUPERNET_ERROR_INVALID_ARGUMENT;
    }
    for (size_t index = 0; index < count; index++) {
        struct layer_figures figures;
        int status = layer_figures(&layers[index], index, &figures, error, error_size);

        if (status != SUPERNET_OK) {
            return status;
        }
        total.latency_ms += layer_latency_ms(&figures);
        total.energy_mj += (figures.flops * settings.pj_per_flop + figures.bytes * settings.pj_per_byte) * 1e-9;
        total.macs += figures.macs;
        total.params += figures.params;
    }
    *out = total;
    return SUPERNET_OK;
}

static int roofline_layer_cost(const struct supernet_layer *layers, size_t count, double *latency_ms, char *error,
                               size_t error_size) {
    if (layers == NULL || count == 0 || latency_ms == NULL) {
        supernet_copy_message(error, error_size, "roofline: layer_cost needs a non-empty layer list and an output");
        return SUPERNET_ERROR_INVALID_ARGUMENT;
    }
    for (size_t index = 0; index < count; index++) {
        struct layer_figures figures;
        int status = layer_figures(&layers[index], index, &figures, error, error_size);

        if (status != SUPERNET_OK) {
            return status;
        }
        latency_ms[index] = layer_latency_ms(&figures);
    }
    return SUPERNET_OK;
}

/* Skips JSON white space. */
static const char *skip_space(const char *text) {
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r') {
        text++;
    }
    return text;
}

/* Reports a configuration error and returns SUPERNET_ERROR_CONFIG. */
static int config_error(char *error, size_t error_size, const char *what, const char *key) {
    char message[200];

    snprintf(message, sizeof message, "roofline configure: %s%s%s", what, key[0] != '\0' ? ": " : "", key);
    supernet_copy_message(error, error_size, message);
    return SUPERNET_ERROR_CONFIG;
}

/*
 * Reads {"key": number, ...}: keys of at most 31 bytes without escapes, finite numbers, no nesting. Applies the
 * values only when the whole object is good.
 */
static int roofline_configure(const char *json, char *error, size_t error_size) {
    struct roofline_settings next = settings;
    const char *cursor;

    if (json == NULL) {
        supernet_copy_message(error, error_size, "roofline configure: needs a JSON object, got NULL");
        return SUPERNET_ERROR_INVALID_ARGUMENT;
    }
    cursor = skip_space(json);
    if (*cursor++ != '{') {
        return config_error(error, error_size, "the configuration must be a flat JSON object of numbers", "");
    }
    cursor = skip_space(cursor);
    if (*cursor == '}') {
        cursor++;
    } else {
        for (;;) {
            char key[32];
            size_t length = 0;
            char *end;
            double value;
            double *field;

            if (*cursor++ != '"') {
                return config_error(error, error_size, "expected a quoted key", "");
            }
            while (*cursor != '"' && *cursor != '\0' && *cursor != '\\' && length + 1 < sizeof key) {
                key[length++] = *cursor++;
            }
            key[length] = '\0';
            if (*cursor++ != '"') {
                return config_error(error, error_size, "keys are at most 31 bytes without escapes", key);
            }
            cursor = skip_space(cursor);
            if (*cursor++ != ':') {
                return config_error(error, error_size, "expected ':' after the key", key);
            }
            cursor = skip_space(cursor);
            if (*cursor != '-' && (*cursor < '0' || *cursor > '9')) {
                return config_error(error, error_size, "the value must be a number", key);
            }
            errno = 0;
            value = strtod(cursor, &end);
            if (end == cursor || errno != 0 || !isfinite(value)) {
                return config_error(error, error_size, "the value must be a finite number", key);
            }
            cursor = skip_space(end);

            if (strcmp(key, "peak_gflops") == 0) {
                field = &next.peak_gflops;
            } else if (strcmp(key, "bandwidth_gbps") == 0) {
                field = &next.bandwidth_gbps;
            } else if (strcmp(key, "pj_per_flop") == 0) {
                field = &next.pj_per_flop;
            } else if (strcmp(key, "pj_per_byte") == 0) {
                field = &next.pj_per_byte;
            } else {
                return config_error(error, error_size,
                                    "unknown key (known: peak_gflops, bandwidth_gbps, pj_per_flop, pj_per_byte)", key);
            }
            if (field == &next.peak_gflops || field == &next.bandwidth_gbps ? value <= 0.0 : value < 0.0) {
                return config_error(error, error_size, "rates must be positive and energies at least 0", key);
            }
            *field = value;

            if (*cursor == ',') {
                cursor = skip_space(cursor + 1);
                continue;
            }
            if (*cursor++ != '}') {
                return config_error(error, error_size, "expected ',' or '}' after the value of", key);
            }
            break;
        }
    }
    if (*skip_space(cursor) != '\0') {
        return config_error(error, error_size, "unexpected text after the object", "");
    }
    settings = next;
    return SUPERNET_OK;
}

static const struct supernet_target_functions roofline_functions = {roofline_cost, roofline_layer_cost,
                                                                    roofline_configure, NULL};

static const struct supernet_plugin_header roofline_header = {
    SUPERNET_PLUGIN_ABI_VERSION,
    sizeof(struct supernet_target_functions),
    SUPERNET_PLUGIN_KIND_TARGET,
    0,
    "roofline",
    "1.0.0",
    "roofline latency (compute- or memory-bound per layer) and energy from FLOPs and bytes moved",
    &roofline_functions};

__attribute__((visibility("default"))) const struct supernet_plugin_header *supernet_plugin_entry(void) {
    return &roofline_header;
}
