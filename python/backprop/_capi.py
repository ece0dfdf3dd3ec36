"""The part of include/backprop.h this package calls, in the header's words,
and the loaded library.

The library is the package's own copy (libbackprop.so beside this file,
built by `pip install` from the project's CMake), or the file named by the
environment variable BACKPROP_LIBRARY (a development build, e.g.
build/libbackprop.so). Every call goes through ctypes, which releases the
GIL for the duration of the call.

Growing structs: a struct that begins with struct_size is handed to the
library with struct_size = ctypes.sizeof of this binding's struct (the
header's "Growing structs" rule), so a newer library reads only the fields
this binding knows and takes its defaults for the rest.
"""

import ctypes
import os

from ._cdecl import Declarations
from .errors import raise_for_status

# The header version this binding was written against: a library of another
# 0.MINOR has another ABI (include/backprop.h, "Compatibility").
ABI_VERSION = (0, 3)

# Constants of the header this binding relies on (checked against the C
# compiler by python/tests/test_abi.py).
CONSTANTS = {
    "BP_OK": 0,
    "BP_ERR_INVALID_ARGUMENT": 1,
    "BP_ERR_OUT_OF_MEMORY": 2,
    "BP_ERR_NO_DEVICE": 3,
    "BP_ERR_NOT_BUILT": 4,
    "BP_ERR_CUDA": 5,
    "BP_ERR_CUBLAS": 6,
    "BP_ERR_IO": 7,
    "BP_ERR_FORMAT": 8,
    "BP_ERR_NUMERIC": 9,
    "BP_ERR_UNSUPPORTED": 10,
    "BP_ERR_COMM": 11,
    "BP_F32": 0,
    "BP_F64": 1,
    "BP_BACKEND_CPU": 0,
    "BP_BACKEND_CUDA": 1,
    "BP_LOSS_MSE": 0,
    "BP_LOSS_CROSS_ENTROPY": 1,
    "BP_LOSS_BCE": 2,
    "BP_ACT_IDENTITY": 0,
    "BP_MAX_LAYERS": 64,
    "BP_MAX_WIDTH": 1 << 20,
    "BP_STATE_MOMENTUM_BUFFER": 0,
    "BP_STATE_EXP_AVG": 1,
    "BP_STATE_EXP_AVG_SQ": 2,
    "BP_STATE_MAX_EXP_AVG_SQ": 3,
}

C = Declarations(CONSTANTS)
C.enum(
    "bp_status",
    "bp_activation",
    "bp_loss",
    "bp_dtype",
    "bp_backend",
    "bp_math_mode",
    "bp_optimizer_type",
    "bp_optimizer_state",
    "bp_hyperparam_kind",
    "bp_schedule",
    "bp_precision",
)

C.struct(
    """typedef struct bp_device_info {
    size_t struct_size;
    int ordinal;
    char name[256];
    size_t total_memory;
    size_t free_memory;
    int cc_major;
    int cc_minor;
    int multiprocessors;
} bp_device_info;"""
)
C.struct(
    """typedef struct bp_network_config {
    size_t struct_size;
    int n_layers;
    const int *sizes;
    const bp_activation *activations;
    bp_loss loss;
    bp_dtype dtype;
    bp_backend backend;
    int max_batch;
    uint64_t seed;
    double leaky_slope;
    int device;
    bp_math_mode math_mode;
    void *cuda_stream;
    int cuda_graphs;
    int fused_epilogues;
    bp_precision precision;
} bp_network_config;"""
)
C.struct(
    """typedef struct bp_network_desc {
    size_t struct_size;
    int n_layers;
    const int *sizes;
    const bp_activation *activations;
    bp_loss loss;
    bp_dtype dtype;
    bp_backend backend;
    int max_batch;
    uint64_t seed;
    double leaky_slope;
    size_t n_params;
    int device;
    bp_math_mode math_mode;
    int cuda_graphs;
    int fused_epilogues;
    bp_precision precision;
} bp_network_desc;"""
)
C.struct(
    """typedef struct bp_optimizer {
    size_t struct_size;
    bp_optimizer_type type;
    double lr;
    double weight_decay;
    double momentum;
    double dampening;
    int nesterov;
    int amsgrad;
    double beta1, beta2;
    double eps;
    double clip_grad_norm;
    double alpha;
    int centered;
} bp_optimizer;"""
)
C.struct(
    """typedef struct bp_hyperparam {
    size_t struct_size;
    const char *name;
    const char *flag;
    const char *help;
    bp_hyperparam_kind kind;
    double default_value;
    double min, max;
    int min_open, max_open;
    const char *range;
} bp_hyperparam;"""
)
C.struct(
    """typedef struct bp_gradcheck_config {
    size_t struct_size;
    double eps;
    double floor;
    int max_per_layer;
    double perturb;
    int *skipped;
} bp_gradcheck_config;"""
)
C.struct(
    """typedef struct bp_checkpoint_info {
    size_t struct_size;
    int64_t epoch;
    int64_t step_in_epoch;
    int64_t total_epochs;
    int64_t batch;
    uint64_t shuffle_seed;
    uint64_t shuffle_state;
    int64_t schedule_step;
    double base_lr;
    char schedule[32];
} bp_checkpoint_info;"""
)
C.struct(
    """typedef struct bp_dataset_options {
    size_t struct_size;
    bp_dtype dtype;
    int label_column;
    int n_targets;
    int header;
    int unlabeled;
    int n_features;
    char delimiter;
    const char *const *class_names;
    int n_class_names;
} bp_dataset_options;"""
)
C.struct(
    """typedef struct bp_dataset_desc {
    size_t struct_size;
    int n_samples;
    int n_features;
    int n_targets;
    int n_classes;
    bp_dtype dtype;
    const void *x;
    const int32_t *labels;
    const void *targets;
    int header_rows;
    int label_column;
    const char *const *class_names;
} bp_dataset_desc;"""
)
C.struct(
    """typedef struct bp_evaluation {
    size_t struct_size;
    int n_samples;
    double loss;
    int correct;
    double accuracy;
} bp_evaluation;"""
)
C.struct(
    """typedef struct bp_evaluation_outputs {
    size_t struct_size;
    void *outputs;
    int32_t *predictions;
    int64_t *confusion;
} bp_evaluation_outputs;"""
)
C.struct(
    """typedef struct bp_layer_diff {
    size_t struct_size;
    double weight_grad_abs, weight_grad_rel;
    double bias_grad_abs, bias_grad_rel;
    double activation_abs, activation_rel;
} bp_layer_diff;"""
)

C.struct(
    """typedef struct bp_trainer_step {
    size_t struct_size;
    int64_t epoch;
    int64_t step;
    int64_t steps_per_epoch;
    int64_t samples;
    double loss;
    double lr;
} bp_trainer_step;"""
)
C.struct(
    """typedef struct bp_trainer_epoch {
    size_t struct_size;
    int64_t epoch;
    int64_t epochs;
    double lr;
    double train_loss;
    double train_accuracy;
    int64_t samples;
    double val_loss;
    double val_accuracy;
    int64_t val_samples;
    double seconds;
    int improved;
    int64_t best_epoch;
    double best_loss;
    int stopping;
    int rank;
    bp_network *network;
} bp_trainer_epoch;"""
)
C.callback("typedef void (*bp_trainer_step_fn)(void *user, const bp_trainer_step *step);")
C.callback("typedef void (*bp_trainer_epoch_fn)(void *user, const bp_trainer_epoch *epoch);")
C.callback("typedef int (*bp_trainer_stop_fn)(void *user);")
C.struct(
    """typedef struct bp_trainer_config {
    size_t struct_size;
    int64_t epochs;
    int batch;
    uint64_t seed;
    int shuffle;
    double validation_fraction;
    bp_schedule schedule;
    int64_t warmup_epochs;
    int64_t step_epochs;
    double step_gamma;
    double plateau_factor;
    int64_t plateau_patience;
    double min_lr;
    int64_t patience;
    double min_delta;
    int restore_best;
    const char *checkpoint;
    int64_t checkpoint_epochs;
    int64_t checkpoint_steps;
    int64_t report_every;
    bp_trainer_step_fn on_step;
    bp_trainer_epoch_fn on_epoch;
    bp_trainer_stop_fn should_stop;
    void *user;
    int n_devices;
    const int *devices;
    bp_comm *comm;
} bp_trainer_config;"""
)
C.struct(
    """typedef struct bp_trainer_result {
    size_t struct_size;
    int64_t epochs;
    int64_t steps;
    int stopped;
    int early_stopped;
    int64_t best_epoch;
    double best_loss;
    double train_loss;
    double val_loss;
    double val_accuracy;
} bp_trainer_result;"""
)
C.struct(
    """typedef struct bp_trainer_desc {
    size_t struct_size;
    int64_t train_rows;
    int64_t val_rows;
    int64_t steps_per_epoch;
    int rank, size;
    int replicas;
} bp_trainer_desc;"""
)

C.functions_from(
    """
const char *bp_status_string(bp_status status);
const char *bp_last_error(void);
const char *bp_version(void);
bp_status bp_backend_is_built(bp_backend backend, int *built);
bp_status bp_cuda_device_count(int *count);
bp_status bp_cuda_device_info_sized(int ordinal, bp_device_info *out, size_t size);

const char *bp_activation_name(bp_activation act);
const char *bp_loss_name(bp_loss loss);
const char *bp_dtype_name(bp_dtype dtype);
const char *bp_backend_name(bp_backend backend);
const char *bp_math_mode_name(bp_math_mode mode);
bp_status bp_activation_parse(const char *name, bp_activation *out);
bp_status bp_loss_parse(const char *name, bp_loss *out);
bp_status bp_dtype_parse(const char *name, bp_dtype *out);
bp_status bp_backend_parse(const char *name, bp_backend *out);
bp_status bp_math_mode_parse(const char *name, bp_math_mode *out);
const char *bp_precision_name(bp_precision precision);
bp_status bp_precision_parse(const char *name, bp_precision *out);

void bp_network_config_init_sized(bp_network_config *cfg, size_t size);
bp_status bp_network_create(const bp_network_config *cfg, bp_network **out);
void bp_network_free(bp_network *net);
bp_status bp_network_describe_sized(const bp_network *net, bp_network_desc *out, size_t size);
bp_status bp_network_forward(bp_network *net, const void *x, int batch, void *out);
bp_status bp_network_gradients(bp_network *net, const void *x, const void *targets,
                               int batch, double *loss);
bp_status bp_network_reset_optimizer(bp_network *net);

void bp_optimizer_init_sized(bp_optimizer *opt, bp_optimizer_type type, size_t size);
const char *bp_optimizer_name(bp_optimizer_type type);
bp_status bp_optimizer_parse(const char *name, bp_optimizer_type *out);
bp_status bp_optimizer_hyperparams(bp_optimizer_type type, int *count);
bp_status bp_optimizer_hyperparam_sized(bp_optimizer_type type, int index,
                                        bp_hyperparam *out, size_t size);
bp_status bp_optimizer_get_value(const bp_optimizer *opt, const char *name, double *value);
bp_status bp_optimizer_set_value(bp_optimizer *opt, const char *name, double value);
bp_status bp_network_set_optimizer(bp_network *net, const bp_optimizer *opt);
bp_status bp_network_get_optimizer_sized(const bp_network *net, bp_optimizer *out, size_t size);
bp_status bp_network_set_lr(bp_network *net, double lr);
bp_status bp_network_step(bp_network *net, const void *x, const void *targets, int batch,
                          double *loss);
bp_status bp_network_get_optimizer_state(const bp_network *net, bp_optimizer_state which,
                                         int layer, void *weight, void *bias);
bp_status bp_network_get_optimizer_step(const bp_network *net, int64_t *step);

bp_status bp_network_get_params(const bp_network *net, int layer, void *weight, void *bias);
bp_status bp_network_set_params(bp_network *net, int layer, const void *weight,
                                const void *bias);
bp_status bp_network_get_gradients(const bp_network *net, int layer, void *dweight,
                                   void *dbias);
bp_status bp_network_get_layer_state(const bp_network *net, int layer, int batch, void *z,
                                     void *a, void *delta);

void bp_gradcheck_config_init_sized(bp_gradcheck_config *cfg, size_t size);
bp_status bp_network_gradcheck(bp_network *net, const void *x, const void *targets, int batch,
                               const bp_gradcheck_config *cfg, double *max_rel_error);

bp_status bp_compare_backends_sized(const bp_network_config *cfg, bp_backend a, bp_backend b, const void *x, const void *targets, int batch, bp_layer_diff *per_layer, size_t per_layer_size, double *loss_a, double *loss_b);
bp_status bp_compare_tolerance_precision(bp_precision precision, bp_dtype dtype,
                                         bp_math_mode mode, double *tolerance,
                                         int *judges_gradients);

bp_status bp_model_save(const bp_network *net, const char *path);
bp_status bp_model_save_16bit(const bp_network *net, const char *path, bp_precision precision);
bp_status bp_model_load(const char *path, const bp_network_config *base, bp_network **out);
bp_status bp_model_load_params(bp_network *net, const char *path);

void bp_checkpoint_info_init_sized(bp_checkpoint_info *info, size_t size);
bp_status bp_checkpoint_save(const bp_network *net, const bp_checkpoint_info *info,
                             const char *path);
bp_status bp_checkpoint_load(bp_network *net, const char *path, bp_checkpoint_info *info);

void bp_dataset_options_init_sized(bp_dataset_options *opt, size_t size);
bp_status bp_dataset_load_idx(const char *images_path, const char *labels_path,
                              const bp_dataset_options *opt, bp_dataset **out);
bp_status bp_dataset_create(int n, int n_features, int n_targets, bp_dtype dtype,
                            const void *x, const int32_t *labels, const void *targets,
                            bp_dataset **out);
bp_status bp_dataset_wrap(int n, int n_features, int n_targets, bp_dtype dtype, const void *x,
                          const int32_t *labels, const void *targets, bp_dataset **out);
void bp_dataset_free(bp_dataset *ds);
const char *bp_fashion_mnist_dir(const char *dir);
bp_status bp_dataset_load_fashion_mnist(const char *dir, bp_dtype dtype, bp_dataset **train,
                                        bp_dataset **test);
bp_status bp_dataset_spirals(int n, uint64_t seed, bp_dtype dtype, bp_dataset **out);
bp_status bp_dataset_describe_sized(const bp_dataset *ds, bp_dataset_desc *out, size_t size);

void bp_evaluation_outputs_init_sized(bp_evaluation_outputs *out, size_t size);
bp_status bp_network_evaluate_sized(bp_network *net, const void *x, const void *targets, const int32_t *labels, int n, const bp_evaluation_outputs *outputs, bp_evaluation *result, size_t result_size);

bp_status bp_file_replace_check(const char *path);

const char *bp_schedule_name(bp_schedule schedule);
bp_status bp_schedule_parse(const char *name, bp_schedule *out);
void bp_trainer_config_init_sized(bp_trainer_config *cfg, size_t size);
bp_status bp_trainer_create(bp_network *net, const bp_dataset *train,
                            const bp_dataset *validation, const bp_trainer_config *cfg,
                            bp_trainer **out);
bp_status bp_trainer_resume(bp_trainer *t, const char *checkpoint);
bp_status bp_trainer_fit_sized(bp_trainer *t, bp_trainer_result *result, size_t result_size);
bp_status bp_trainer_describe_sized(const bp_trainer *t, bp_trainer_desc *out, size_t size);
void bp_trainer_free(bp_trainer *t);
"""
)


def _library_path():
    path = os.environ.get("BACKPROP_LIBRARY")
    if path:
        return path
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "libbackprop.so")


def _load():
    path = _library_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(
            f"backprop: cannot load the C library {path}: {e} "
            "(install the package with pip, or set BACKPROP_LIBRARY to a libbackprop.so)"
        ) from None
    lib.bp_version.restype = ctypes.c_char_p
    version = lib.bp_version().decode()
    major, minor = (int(v) for v in version.split(".")[:2])
    if (major, minor) != ABI_VERSION:
        raise ImportError(
            f"backprop: the C library {path} is version {version}; this binding "
            f"speaks the ABI of {ABI_VERSION[0]}.{ABI_VERSION[1]}"
        )
    last_error = lib.bp_last_error
    last_error.restype = ctypes.c_char_p
    last_error.argtypes = []

    def errcheck(status, func, args):
        if status != 0:
            raise_for_status(status, last_error().decode(errors="replace"), func.__name__)
        return status

    C.bind(lib, errcheck)
    return lib, path


lib, library_path = _load()
S = C.structs  # the structs by C name


def sized(struct_name, init=None, *init_args):
    """A struct that grows, initialised by its _init_sized function with this
    binding's size (the library then reads exactly the fields declared
    here)."""
    cls = S[struct_name]
    value = cls()
    if init is not None:
        init(ctypes.byref(value), *init_args, ctypes.sizeof(cls))
    return value
