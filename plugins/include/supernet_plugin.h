/*
 * supernet_plugin.h: the C ABI between supernetd and its plugins (hardware targets and search strategies).
 *
 * Plain C99. A plugin is a shared object that exports one function, supernet_plugin_entry, returning a static
 * header that describes the plugin and points at a table of function pointers for its kind.
 *
 * Rules that hold for every function and struct below:
 *  - Only these plain structs, integers, doubles and pointers cross the boundary; no language runtime objects.
 *  - Strings are NUL-terminated UTF-8. Strings in the plugin header are owned by the plugin and must stay valid
 *    for the life of the process (static storage). Strings and arrays passed by the host are owned by the host
 *    and are valid only during the call that receives them: copy what you keep.
 *  - Arrays are a pointer plus a count; the pointer may be NULL when the count is 0.
 *  - Functions return an int status: SUPERNET_OK (0) on success, a negative SUPERNET_ERROR_* code on failure.
 *    On failure a function may write a NUL-terminated UTF-8 message into the host's buffer (error, error_size);
 *    it must never write more than error_size bytes, and must write nothing when error is NULL or error_size
 *    is 0. supernet_copy_message below does this.
 *  - The host never unloads a plugin (no dlclose): function pointers and static strings stay valid forever.
 *  - cost, layer_cost and search may be called concurrently from several threads and must be thread-safe.
 *    configure and calibrate are called by the host right after loading, from one thread, before any other
 *    function of the plugin is called; they are never called concurrently with anything.
 *
 * Versioning: the first two fields of struct supernet_plugin_header (abi_version, struct_size) keep their
 * type and place in every future ABI version, so a host can always read them. Any change to a struct in this
 * file bumps SUPERNET_PLUGIN_ABI_VERSION; the host refuses a plugin whose abi_version or struct_size differs
 * from its own.
 */
#ifndef SUPERNET_PLUGIN_H
#define SUPERNET_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version described by this header; a plugin stores it in supernet_plugin_header.abi_version. */
#define SUPERNET_PLUGIN_ABI_VERSION 1

/** The name of the one symbol every plugin exports (see supernet_plugin_entry_fn). */
#define SUPERNET_PLUGIN_ENTRY_SYMBOL "supernet_plugin_entry"

/** Most stages an architecture can have: the size of supernet_arch.depths. */
#define SUPERNET_MAX_STAGES 8

/** Most blocks a stage can have: the stride between stages in supernet_arch.kernels and .expand_ratios. */
#define SUPERNET_MAX_DEPTH 8

/** Size of supernet_arch.kernels and .expand_ratios: SUPERNET_MAX_STAGES * SUPERNET_MAX_DEPTH. */
#define SUPERNET_MAX_BLOCKS 64

/** Status codes returned by every plugin function (int). */
enum supernet_status {
    /** Success. */
    SUPERNET_OK = 0,
    /** An argument is malformed or out of range (bad layer, empty choice set, NULL where data is required). */
    SUPERNET_ERROR_INVALID_ARGUMENT = -1,
    /** The request is well formed but the plugin does not support it (an unknown op or budget kind). */
    SUPERNET_ERROR_UNSUPPORTED = -2,
    /** search only: no architecture meeting every budget was found before the limits ran out. */
    SUPERNET_ERROR_INFEASIBLE = -3,
    /** search only: a host callback returned a negative status; the search was abandoned. */
    SUPERNET_ERROR_CALLBACK = -4,
    /** configure only: the JSON configuration was rejected. */
    SUPERNET_ERROR_CONFIG = -5,
    /** calibrate only: reading or writing the state directory failed. */
    SUPERNET_ERROR_IO = -6,
    /** Anything else that went wrong inside the plugin. */
    SUPERNET_ERROR_INTERNAL = -7
};

/** Values returned by supernet_search_callbacks.evaluate. */
enum supernet_evaluate_status {
    /** Every entry of the batch was scored; go on. */
    SUPERNET_EVALUATE_CONTINUE = 0,
    /**
     * Stop the search and return the best feasible architecture found so far (deadline passed or request
     * cancelled). Entries the host did not score have accuracy NaN and must be ignored.
     */
    SUPERNET_EVALUATE_STOP = 1
    /* Any negative value: the host failed to score the batch; nothing in it is valid. Return
       SUPERNET_ERROR_CALLBACK. */
};

/** Values of supernet_plugin_header.kind. */
enum supernet_plugin_kind {
    /** A hardware target: functions points at a struct supernet_target_functions. */
    SUPERNET_PLUGIN_KIND_TARGET = 1,
    /** A search strategy: functions points at a struct supernet_strategy_functions. */
    SUPERNET_PLUGIN_KIND_STRATEGY = 2
};

/** Values of supernet_layer.op. */
enum supernet_op {
    /** Dense convolution, kernel x kernel, one group. */
    SUPERNET_OP_CONV = 0,
    /** 1 x 1 convolution; kernel must be 1. */
    SUPERNET_OP_POINTWISE = 1,
    /** Depthwise convolution, kernel x kernel, one filter per channel; input_channels == output_channels. */
    SUPERNET_OP_DEPTHWISE = 2,
    /**
     * Squeeze-and-excite: global average pool, fully connected channels -> hidden, activation, fully connected
     * hidden -> channels, hsigmoid, channel-wise scale. input_channels == output_channels, input_size ==
     * output_size, hidden > 0.
     */
    SUPERNET_OP_SQUEEZE_EXCITE = 3,
    /** Average pooling, kernel x kernel window; a global pool has kernel == input_size and output_size 1. */
    SUPERNET_OP_POOL = 4,
    /** Fully connected layer with bias; input_size and output_size are 1. */
    SUPERNET_OP_LINEAR = 5
};

/** Values of supernet_layer.activation (the activation applied after the layer). */
enum supernet_activation {
    /** Identity. */
    SUPERNET_ACTIVATION_NONE = 0,
    /** max(x, 0). */
    SUPERNET_ACTIVATION_RELU = 1,
    /** x * relu6(x + 3) / 6. */
    SUPERNET_ACTIVATION_HSWISH = 2,
    /** relu6(x + 3) / 6. */
    SUPERNET_ACTIVATION_HSIGMOID = 3
};

/** Values of supernet_budget.kind. */
enum supernet_budget_kind {
    /** supernet_cost.latency_ms <= value (milliseconds). */
    SUPERNET_BUDGET_LATENCY_MS = 1,
    /** supernet_cost.macs <= value (multiply-accumulates). */
    SUPERNET_BUDGET_MACS = 2,
    /** supernet_cost.params <= value (parameters). */
    SUPERNET_BUDGET_PARAMS = 3,
    /** supernet_cost.peak_memory_bytes / 1024 <= value (KiB); a NaN peak memory never meets this budget. */
    SUPERNET_BUDGET_MEMORY_KB = 4
};

/** One layer of a concrete subnet, in execution order, batch 1, square feature maps. */
struct supernet_layer {
    /** What the layer computes: an enum supernet_op value. */
    uint32_t op;
    /** The activation applied after it: an enum supernet_activation value. */
    uint32_t activation;
    /** Channels read. */
    uint32_t input_channels;
    /** Channels written. */
    uint32_t output_channels;
    /** Window side in pixels (1 for pointwise and linear). */
    uint32_t kernel;
    /** Step in pixels (1 for pointwise, squeeze-excite and linear). */
    uint32_t stride;
    /** Side of the square input feature map in pixels (1 for linear). */
    uint32_t input_size;
    /** Side of the square output feature map in pixels (1 for linear and a global pool). */
    uint32_t output_size;
    /** Squeeze-and-excite hidden units; 0 for every other op. */
    uint32_t hidden;
};

/** What running a subnet costs on one hardware target. */
struct supernet_cost {
    /** Time for one batch-1 forward pass, milliseconds. */
    double latency_ms;
    /** Energy for one batch-1 forward pass, millijoules; NaN if the target does not know. */
    double energy_mj;
    /** Largest memory held at once for activations during the pass, bytes; NaN if the target does not know. */
    double peak_memory_bytes;
    /** Multiply-accumulates of one forward pass. */
    double macs;
    /** Parameters (weights and biases). */
    double params;
};

/** One budget a searched architecture must meet. */
struct supernet_budget {
    /** What is limited: an enum supernet_budget_kind value. */
    uint32_t kind;
    /** Always 0 (explicit padding). */
    uint32_t reserved;
    /** The limit, in the unit of kind; met when the cost is <= value. */
    double value;
};

/**
 * The choices of a weight-sharing search space. Every choice set applies to every stage and block.
 * All arrays are owned by the host and valid during the search call.
 */
struct supernet_search_space {
    /** Number of searchable stages, 1..SUPERNET_MAX_STAGES. */
    uint32_t stages;
    /** Most blocks a stage can have, 1..SUPERNET_MAX_DEPTH; every allowed depth is <= max_depth. */
    uint32_t max_depth;
    /** Allowed blocks per stage (each 1..max_depth); depth_count >= 1. */
    const uint32_t *depths;
    /** Entries in depths. */
    size_t depth_count;
    /** Allowed depthwise kernel sides in pixels (odd, >= 1); kernel_count >= 1. */
    const uint32_t *kernels;
    /** Entries in kernels. */
    size_t kernel_count;
    /** Allowed expansion ratios (expanded channels / block input channels, >= 1); expand_ratio_count >= 1. */
    const uint32_t *expand_ratios;
    /** Entries in expand_ratios. */
    size_t expand_ratio_count;
    /** Allowed input resolutions in pixels (side of the square image); resolution_count >= 1. */
    const uint32_t *resolutions;
    /** Entries in resolutions. */
    size_t resolution_count;
};

/**
 * One subnet. Block b (0-based) of stage s (0-based) lives at index s * SUPERNET_MAX_DEPTH + b of kernels and
 * expand_ratios. Entries of stages >= stages and of blocks >= depths[s] are 0, so two equal architectures are
 * equal bytewise.
 */
struct supernet_arch {
    /** Input resolution in pixels, one of the space's resolutions. */
    uint32_t resolution;
    /** Number of stages in use: the space's stages. */
    uint32_t stages;
    /** Blocks of each stage, each one of the space's depths; 0 for unused stages. */
    uint32_t depths[SUPERNET_MAX_STAGES];
    /** Depthwise kernel side of each block, one of the space's kernels; 0 for unused blocks. */
    uint32_t kernels[SUPERNET_MAX_BLOCKS];
    /** Expansion ratio of each block, one of the space's expand_ratios; 0 for unused blocks. */
    uint32_t expand_ratios[SUPERNET_MAX_BLOCKS];
};

/**
 * Scores a batch of architectures: writes accuracy[i] (predicted top-1 accuracy in [0, 1]) and costs[i] (the
 * cost on the request's hardware target) for i < count. archs, accuracy and costs are owned by the caller
 * (the strategy) and hold count entries each. Returns an enum supernet_evaluate_status value or a negative
 * error.
 */
typedef int (*supernet_evaluate_fn)(void *context, const struct supernet_arch *archs, size_t count,
                                    double *accuracy, struct supernet_cost *costs);

/** Returns the host's monotonic clock in milliseconds; deadline_ms of search is on this clock. */
typedef double (*supernet_now_ms_fn)(void *context);

/**
 * How a strategy reaches the host during search. The callbacks are called only from the thread that called
 * search and only before search returns; context is passed back unchanged and is opaque to the plugin.
 */
struct supernet_search_callbacks {
    /** Host state for the callbacks; never dereferenced by the plugin. */
    void *context;
    /** Scores a batch; see supernet_evaluate_fn. */
    supernet_evaluate_fn evaluate;
    /** The clock; see supernet_now_ms_fn. */
    supernet_now_ms_fn now_ms;
};

/** What a search did, written by the strategy whether or not it found something. */
struct supernet_search_stats {
    /** Architectures sent to evaluate, counted once per batch entry. */
    uint64_t evaluations;
    /** Generations (evolution) or iterations (other strategies) completed. */
    uint64_t generations;
    /** Time spent in search on the now_ms clock, milliseconds. */
    double wall_ms;
};

/**
 * Writes the latency, energy, peak memory, MACs and parameters of the layer list into *out.
 * layers: count layers in execution order, owned by the host. Required.
 */
typedef int (*supernet_cost_fn)(const struct supernet_layer *layers, size_t count, struct supernet_cost *out,
                                char *error, size_t error_size);

/**
 * Writes the latency of each layer in milliseconds into latency_ms[i] for i < count (owned by the host). For
 * targets whose latency is additive, the sum equals supernet_cost.latency_ms of the same list. Optional.
 */
typedef int (*supernet_layer_cost_fn)(const struct supernet_layer *layers, size_t count, double *latency_ms,
                                      char *error, size_t error_size);

/** Applies a JSON configuration (a NUL-terminated UTF-8 object, owned by the host). Optional. */
typedef int (*supernet_configure_fn)(const char *json_config, char *error, size_t error_size);

/**
 * Calibrates the target, reading and writing its state under state_dir (an existing directory, path owned by
 * the host). Optional.
 */
typedef int (*supernet_calibrate_fn)(const char *state_dir, char *error, size_t error_size);

/**
 * Searches the space for the most accurate architecture meeting every budget.
 *  space: the choices; budgets: budget_count budgets, all of which must be met (budget_count may be 0).
 *  deadline_ms: on the now_ms clock; the strategy returns soon after it passes.
 *  seed: seeds the strategy's random numbers; the same seed and the same callback answers give the same search.
 *  best: on SUPERNET_OK, the best feasible architecture found. stats: always written.
 * Returns SUPERNET_OK, SUPERNET_ERROR_INFEASIBLE when nothing feasible was found (also when stopped early), or
 * another negative status.
 */
typedef int (*supernet_search_fn)(const struct supernet_search_space *space, const struct supernet_budget *budgets,
                                  size_t budget_count, double deadline_ms,
                                  const struct supernet_search_callbacks *callbacks, uint64_t seed,
                                  struct supernet_arch *best, struct supernet_search_stats *stats, char *error,
                                  size_t error_size);

/** The functions of a hardware target; the header's struct_size is sizeof(struct supernet_target_functions). */
struct supernet_target_functions {
    /** Required. */
    supernet_cost_fn cost;
    /** NULL if the target has no per-layer latency. */
    supernet_layer_cost_fn layer_cost;
    /** NULL if the target takes no configuration. */
    supernet_configure_fn configure;
    /** NULL if the target needs no calibration. */
    supernet_calibrate_fn calibrate;
};

/** The functions of a search strategy; the header's struct_size is sizeof(struct supernet_strategy_functions). */
struct supernet_strategy_functions {
    /** Required. */
    supernet_search_fn search;
    /** NULL if the strategy takes no configuration. */
    supernet_configure_fn configure;
};

/** What a plugin is: returned by supernet_plugin_entry, static, owned by the plugin. */
struct supernet_plugin_header {
    /** SUPERNET_PLUGIN_ABI_VERSION of the header the plugin was built against. Frozen in place. */
    uint32_t abi_version;
    /** sizeof the struct functions points at (struct supernet_target_functions or ..._strategy_...). Frozen. */
    uint32_t struct_size;
    /** An enum supernet_plugin_kind value. */
    uint32_t kind;
    /** Always 0 (explicit padding). */
    uint32_t reserved;
    /** Registry name: 1 to 64 bytes of [a-z0-9_-]; unique among loaded plugins. */
    const char *name;
    /** Free-form version string, non-empty (for example "1.2.0"). */
    const char *version;
    /** One sentence saying what the plugin does (may be empty, not NULL). */
    const char *description;
    /** The kind's function table (see kind), static, owned by the plugin. */
    const void *functions;
};

/** The type of supernet_plugin_entry: returns the plugin's static header (never NULL). */
typedef const struct supernet_plugin_header *(*supernet_plugin_entry_fn)(void);

/**
 * Copies message into error (error_size bytes) NUL-terminated, cutting it at a UTF-8 character boundary when it
 * does not fit. Writes nothing when error is NULL or error_size is 0. A helper for plugin authors.
 */
static inline void supernet_copy_message(char *error, size_t error_size, const char *message) {
    size_t length = 0;

    if (error == NULL || error_size == 0) {
        return;
    }
    if (message == NULL) {
        message = "";
    }
    while (message[length] != '\0' && length + 1 < error_size) {
        length++;
    }
    if (message[length] != '\0') {
        /* Cut: step back over UTF-8 continuation bytes (10xxxxxx) so no character is split. */
        while (length > 0 && (((unsigned char)message[length]) & 0xC0u) == 0x80u) {
            length--;
        }
    }
    for (size_t index = 0; index < length; index++) {
        error[index] = message[index];
    }
    error[length] = '\0';
}

#ifdef __cplusplus
}
#endif

#endif /* SUPERNET_PLUGIN_H */
