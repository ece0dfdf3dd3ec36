/*
 * backprop.h — the one public header of libbackprop.
 *
 * backprop trains fully connected neural networks (multi-layer perceptrons)
 * by classic backpropagation, on NVIDIA GPUs (CUDA + cuBLAS) and on any CPU
 * (CBLAS). Both backends run one algorithm over the same GEMM argument lists
 * and the same per-element formulas, so their gradients can be compared.
 *
 * Notation (see DESIGN.md): layer l = 1..L has n_l units, weights W^l
 * (n_l x n_{l-1}) and bias b^l. z^l = W^l a^{l-1} + b^l, a^l = sigma_l(z^l),
 * a^0 = x.
 *
 * Conventions
 *  - Every function that can fail returns a bp_status. On failure,
 *    bp_last_error() returns a message (thread-local, valid until the next
 *    failing call on the same thread) that names the bad argument and value.
 *    The library never prints, aborts or exits.
 *  - Arrays are row-major. A batch of B samples of width n is [B, n], each
 *    sample contiguous. Weights are [n_out, n_in] (PyTorch nn.Linear),
 *    biases [n_out]. Host arrays of real numbers have the network's dtype:
 *    float for BP_F32, double for BP_F64.
 *  - Targets: for BP_LOSS_CROSS_ENTROPY an int32_t array of B class labels
 *    in [0, n_L); for BP_LOSS_MSE and BP_LOSS_BCE a real array [B, n_L].
 *
 * Thread safety
 *  - A network (and the buffers created on it) is used by one thread at a
 *    time. Different networks may be used concurrently from different
 *    threads; they share no state. bp_last_error() is per thread.
 */
#ifndef BACKPROP_H
#define BACKPROP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define BP_API
#elif defined(__GNUC__)
#define BP_API __attribute__((visibility("default")))
#else
#define BP_API
#endif

#define BP_VERSION_MAJOR 0
#define BP_VERSION_MINOR 1
#define BP_VERSION_PATCH 0
#define BP_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Status codes and errors                                                   */
/* ------------------------------------------------------------------------ */

typedef enum bp_status {
    BP_OK = 0,
    BP_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, a bad size, an unknown enum */
    BP_ERR_OUT_OF_MEMORY = 2,    /* host or device allocation failed */
    BP_ERR_NO_DEVICE = 3,        /* no CUDA device or driver present */
    BP_ERR_NOT_BUILT = 4,        /* the backend was not compiled in */
    BP_ERR_CUDA = 5,             /* a CUDA runtime call failed (message names it) */
    BP_ERR_CUBLAS = 6,           /* a cuBLAS call failed (message names it) */
    BP_ERR_IO = 7,               /* a file could not be opened, read or written */
    BP_ERR_FORMAT = 8,           /* a file's contents are malformed */
    BP_ERR_NUMERIC = 9,          /* a loss or value became NaN or infinite */
    BP_ERR_UNSUPPORTED = 10      /* valid request this build/backend cannot do */
} bp_status;

/* A short constant description of a status ("invalid argument", ...).
 * Never NULL; unknown values give "unknown status". */
BP_API const char *bp_status_string(bp_status status);

/* The message of the last failing call on this thread; "" if none. */
BP_API const char *bp_last_error(void);

/* The library version, e.g. "0.1.0". */
BP_API const char *bp_version(void);

/* ------------------------------------------------------------------------ */
/* Enumerations                                                              */
/* ------------------------------------------------------------------------ */

typedef enum bp_activation {
    BP_ACT_IDENTITY = 0,
    BP_ACT_SIGMOID = 1,
    BP_ACT_TANH = 2,
    BP_ACT_RELU = 3,
    BP_ACT_LEAKY_RELU = 4 /* slope from bp_network_config.leaky_slope */
} bp_activation;

typedef enum bp_loss {
    /* L = (1/B) sum_samples 1/2 ||a^L - y||^2. The last layer's activation
     * is any of bp_activation. */
    BP_LOSS_MSE = 0,
    /* L = (1/B) sum_samples -log softmax(z^L)[label]. The last layer must
     * be BP_ACT_IDENTITY (it produces logits); a^L = softmax(z^L), so the
     * network's output is class probabilities. Fused: delta^L = a^L - y. */
    BP_LOSS_CROSS_ENTROPY = 1,
    /* Binary cross-entropy on logits, per output:
     * max(z,0) - z y + log(1 + exp(-|z|)), summed over outputs, averaged
     * over the batch. The last layer must be BP_ACT_IDENTITY;
     * a^L = sigmoid(z^L). Fused: delta^L = a^L - y. */
    BP_LOSS_BCE = 2
} bp_loss;

typedef enum bp_dtype {
    BP_F32 = 0, /* float */
    BP_F64 = 1  /* double */
} bp_dtype;

typedef enum bp_backend {
    BP_BACKEND_CPU = 0,
    BP_BACKEND_CUDA = 1
} bp_backend;

/* Math mode of float32 GEMMs on the CUDA backend. The CPU backend always
 * computes exact FP32; float64 GEMMs are always exact. */
typedef enum bp_math_mode {
    BP_MATH_FP32 = 0, /* exact IEEE float32 (default) */
    BP_MATH_TF32 = 1, /* TF32 tensor cores (10-bit mantissa inputs) */
    BP_MATH_BF16 = 2  /* BF16 tensor cores (7-bit mantissa inputs) */
} bp_math_mode;

/* Names for printing and parsing: "relu", "ce", "f32", "cuda", "tf32"...
 * The _name functions return NULL for an unknown value. The _parse
 * functions accept the names (and common aliases: "cross-entropy",
 * "float32", "linear"...) and return BP_ERR_INVALID_ARGUMENT otherwise. */
BP_API const char *bp_activation_name(bp_activation act);
BP_API const char *bp_loss_name(bp_loss loss);
BP_API const char *bp_dtype_name(bp_dtype dtype);
BP_API const char *bp_backend_name(bp_backend backend);
BP_API bp_status bp_activation_parse(const char *name, bp_activation *out);
BP_API bp_status bp_loss_parse(const char *name, bp_loss *out);
BP_API bp_status bp_dtype_parse(const char *name, bp_dtype *out);

/* Size in bytes of one element of dtype (4 or 8); 0 for unknown. */
BP_API size_t bp_dtype_size(bp_dtype dtype);

/* ------------------------------------------------------------------------ */
/* Networks                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct bp_network bp_network;

#define BP_MAX_LAYERS 64
#define BP_MAX_WIDTH (1 << 20)

typedef struct bp_network_config {
    int n_layers;                     /* L >= 1 dense layers */
    const int *sizes;                 /* L+1 widths: n_0 (inputs) .. n_L */
    const bp_activation *activations; /* L activations, layer 1..L */
    bp_loss loss;                     /* default BP_LOSS_MSE */
    bp_dtype dtype;                   /* default BP_F32 */
    bp_backend backend;               /* default BP_BACKEND_CPU */
    int device;                       /* CUDA device ordinal, default 0 */
    int max_batch;                    /* largest batch any call will pass, default 256 */
    uint64_t seed;                    /* initialisation seed, default 1 */
    double leaky_slope;               /* leaky relu slope for z < 0, default 0.01 */
    bp_math_mode math_mode;           /* default BP_MATH_FP32 */
    void *cuda_stream;                /* a cudaStream_t to run on, or NULL for
                                         a stream the network creates and owns */
} bp_network_config;

/* Fills *cfg with the defaults above (sizes and activations NULL,
 * n_layers 0: the caller must set them). */
BP_API void bp_network_config_init(bp_network_config *cfg);

/* Creates a network and allocates every buffer a training step needs for
 * up to cfg->max_batch samples. Weights are initialised from cfg->seed by a
 * counter-based generator keyed by (seed, layer, index): He uniform
 * (limit sqrt(6/n_in)) for relu and leaky relu layers, Glorot uniform
 * (limit sqrt(6/(n_in+n_out))) for the others; biases zero. The same seed
 * gives bit-identical parameters on every backend and thread count.
 *
 * Reproducibility of training: the same network, seed, data and batches
 * give bit-identical results run after run on the same backend, device
 * model and BLAS thread count (no atomics in any reduction). A different
 * OpenBLAS thread count (OPENBLAS_NUM_THREADS) or GPU model may round the
 * GEMMs differently; results then agree to rounding, not bit for bit. */
BP_API bp_status bp_network_create(const bp_network_config *cfg, bp_network **out);

/* Frees a network and everything it allocated. NULL is a no-op. Buffers
 * created on the network must be freed before it. */
BP_API void bp_network_free(bp_network *net);

/* What a network is, as created. Pointers stay valid while net lives. */
typedef struct bp_network_desc {
    int n_layers;
    const int *sizes;                 /* n_layers + 1 */
    const bp_activation *activations; /* n_layers */
    bp_loss loss;
    bp_dtype dtype;
    bp_backend backend;
    int device;
    int max_batch;
    uint64_t seed;
    double leaky_slope;
    bp_math_mode math_mode;
    size_t n_params; /* total weights + biases */
} bp_network_desc;

BP_API bp_status bp_network_describe(const bp_network *net, bp_network_desc *out);

/* Inference: a^L for a batch of `batch` samples, x [batch, n_0] host array,
 * out [batch, n_L] host array. For cross-entropy the outputs are softmax
 * probabilities, for BCE sigmoid probabilities. */
BP_API bp_status bp_network_forward(bp_network *net, const void *x, int batch, void *out);

/* Loss and gradients of a batch without updating the parameters. The
 * gradients stay in the network (read them with bp_network_get_gradients).
 * loss may be NULL; when given, it receives the mean batch loss. */
BP_API bp_status bp_network_gradients(bp_network *net, const void *x, const void *targets,
                                      int batch, double *loss);

/* Stochastic gradient descent with PyTorch's torch.optim.SGD semantics:
 *   g = grad + weight_decay * w
 *   buf = g (first step), else buf = momentum * buf + (1 - dampening) * g
 *   g = nesterov ? g + momentum * buf : buf        (when momentum != 0)
 *   w = w - lr * g
 * Weight decay applies to weights and biases alike, as with
 * SGD(model.parameters(), ...). */
typedef struct bp_sgd {
    double lr;           /* learning rate > 0, default 0.01 */
    double momentum;     /* in [0, 1), default 0 */
    double dampening;    /* in [0, 1], default 0 */
    double weight_decay; /* >= 0, default 0 */
    int nesterov;        /* 0 or 1; needs momentum > 0 and dampening 0 */
} bp_sgd;

BP_API void bp_sgd_init(bp_sgd *opt);

/* One training step: forward, output delta, deltas, gradients and an SGD
 * update. loss may be NULL (then the step never waits for the device);
 * when given, it receives the mean batch loss before the update. */
BP_API bp_status bp_network_train_step(bp_network *net, const void *x, const void *targets,
                                       int batch, const bp_sgd *opt, double *loss);

/* Clears the momentum buffers, so the next step is a "first step". */
BP_API bp_status bp_network_reset_optimizer(bp_network *net);

/* Parameters of layer (1..L) as host arrays: weight [n_l, n_{l-1}],
 * bias [n_l]. Either pointer may be NULL to skip it. */
BP_API bp_status bp_network_get_params(const bp_network *net, int layer, void *weight, void *bias);
BP_API bp_status bp_network_set_params(bp_network *net, int layer, const void *weight,
                                       const void *bias);

/* dL/dW^l and dL/db^l of layer (1..L) from the last bp_network_gradients or
 * bp_network_train_step call. Either pointer may be NULL. */
BP_API bp_status bp_network_get_gradients(const bp_network *net, int layer, void *dweight,
                                          void *dbias);

/* The state of layer l (1..L) from the last forward pass (and, for delta,
 * the last backward pass), for the first `batch` samples: z^l, a^l and
 * delta^l as [batch, n_l] arrays. Any pointer may be NULL. batch must not
 * exceed the batch of that pass. */
BP_API bp_status bp_network_get_layer_state(const bp_network *net, int layer, int batch, void *z,
                                            void *a, void *delta);

/* Gradient check by central differences: for each layer, the largest
 * relative error |g - g_fd| / max(|g| + |g_fd|, floor) over the checked
 * weights and biases, where g is the backprop gradient and
 * g_fd = (L(p + eps) - L(p - eps)) / (2 eps). Parameters are restored
 * bit-exactly afterwards. Meaningful in float64. */
typedef struct bp_gradcheck_config {
    double eps;            /* default 1e-5 */
    double floor;          /* default 1e-3 */
    int max_per_layer;     /* parameters checked per layer, spread evenly;
                              0 = all. Default 0. */
} bp_gradcheck_config;

BP_API void bp_gradcheck_config_init(bp_gradcheck_config *cfg);

/* max_rel_error receives n_layers values (layer 1 first). cfg may be NULL
 * for the defaults. */
BP_API bp_status bp_network_gradcheck(bp_network *net, const void *x, const void *targets,
                                      int batch, const bp_gradcheck_config *cfg,
                                      double *max_rel_error);


/* ------------------------------------------------------------------------ */
/* Backends and CUDA devices                                                 */
/* ------------------------------------------------------------------------ */

/* *built = 1 when the backend was compiled into this library. */
BP_API bp_status bp_backend_is_built(bp_backend backend, int *built);

typedef struct bp_device_info {
    int ordinal;
    char name[256];
    size_t total_memory; /* bytes */
    size_t free_memory;  /* bytes, when queried */
    int cc_major;        /* compute capability */
    int cc_minor;
    int multiprocessors;
} bp_device_info;

/* Number of CUDA devices. Returns BP_OK with *count = 0 when the CUDA
 * backend is built but no device or driver is present;
 * BP_ERR_NOT_BUILT when it is not built. */
BP_API bp_status bp_cuda_device_count(int *count);
BP_API bp_status bp_cuda_device_info(int ordinal, bp_device_info *out);

/* ------------------------------------------------------------------------ */
/* Buffers on a network's device                                             */
/* ------------------------------------------------------------------------ */

/* A block of memory where the network computes: device memory on the CUDA
 * backend, host memory on the CPU backend (so the same code runs on both).
 * Upload a data set once, then train on mini-batches gathered on the
 * device by row index. */
typedef struct bp_buffer bp_buffer;

BP_API bp_status bp_buffer_create(bp_network *net, size_t bytes, bp_buffer **out);
/* NULL is a no-op. */
BP_API void bp_buffer_free(bp_buffer *buf);
BP_API bp_status bp_buffer_size(const bp_buffer *buf, size_t *bytes);
/* The raw pointer (a device pointer on CUDA), for interoperation. */
BP_API bp_status bp_buffer_data(bp_buffer *buf, void **ptr);
/* Copies bytes between host memory and [offset, offset + bytes) of buf.
 * These wait until the copy is complete. */
BP_API bp_status bp_buffer_upload(bp_buffer *buf, size_t offset, const void *src, size_t bytes);
BP_API bp_status bp_buffer_download(const bp_buffer *buf, size_t offset, void *dst, size_t bytes);

/* The buffer forms of forward, gradients and train_step. x holds rows of
 * n_0 reals, targets rows of the loss's target (one int32_t label for
 * cross-entropy, n_L reals otherwise). rows is a HOST array of `batch` row
 * indices into x and targets, each checked against the buffers' sizes; NULL
 * means rows 0..batch-1. out receives [batch, n_L] at offset 0. Labels in a
 * buffer are not read back to be checked: an out-of-range label makes that
 * sample's loss and deltas NaN (and train_step with a loss pointer then
 * returns BP_ERR_NUMERIC without updating). */
BP_API bp_status bp_network_forward_buffer(bp_network *net, const bp_buffer *x,
                                           const int32_t *rows, int batch, bp_buffer *out);
BP_API bp_status bp_network_gradients_buffer(bp_network *net, const bp_buffer *x,
                                             const bp_buffer *targets, const int32_t *rows,
                                             int batch, double *loss);
BP_API bp_status bp_network_train_step_buffer(bp_network *net, const bp_buffer *x,
                                              const bp_buffer *targets, const int32_t *rows,
                                              int batch, const bp_sgd *opt, double *loss);

/* ------------------------------------------------------------------------ */
/* Comparing backends                                                        */
/* ------------------------------------------------------------------------ */

/* Differences of one layer between two runs. abs is the largest absolute
 * element difference; rel is abs divided by the largest magnitude of that
 * quantity in run a (a norm-wise relative difference, 0 when both are 0). */
typedef struct bp_layer_diff {
    double weight_grad_abs, weight_grad_rel;
    double bias_grad_abs, bias_grad_rel;
    double activation_abs, activation_rel; /* a^l over the batch */
} bp_layer_diff;

/* Creates the network cfg describes on backend a and on backend b (cfg's
 * own backend field is ignored), same seed and so the same initial
 * parameters, computes the loss and gradients of one batch on each, and
 * writes cfg->n_layers differences to per_layer. loss_a and loss_b may be
 * NULL. */
BP_API bp_status bp_compare_backends(const bp_network_config *cfg, bp_backend a, bp_backend b,
                                     const void *x, const void *targets, int batch,
                                     bp_layer_diff *per_layer, double *loss_a, double *loss_b);

/* The tolerance on rel that the comparison of two backends is held to:
 * 1e-12 for float64, 1e-5 for float32 with BP_MATH_FP32. */
BP_API double bp_compare_tolerance(bp_dtype dtype);

/* ------------------------------------------------------------------------ */
/* Model files (safetensors)                                                 */
/* ------------------------------------------------------------------------ */

/* Saves the parameters as safetensors: tensors "layers.{i}.weight"
 * [n_out, n_in] and "layers.{i}.bias" [n_out], i from 0, in the network's
 * dtype; __metadata__ holds the activations, the loss, the leaky slope and
 * the format version. Written through bp_file_replace_begin (below): an
 * existing file is replaced whole or not at all and keeps its permissions;
 * a new file gets 0666 minus the umask; a symlink is written through; a
 * path that is a device, FIFO, socket or directory is refused. */
BP_API bp_status bp_model_save(const bp_network *net, const char *path);

/* Loads a model saved by bp_model_save (or any safetensors file with those
 * tensor names and the metadata) into a new network. The architecture and
 * dtype come from the file; backend, device, max_batch, seed, math_mode and
 * cuda_stream come from base (NULL: the defaults). Every byte of the file
 * is checked before use; as in the reference safetensors implementation,
 * the tensors must be packed (no gaps, overlaps or trailing bytes). A file
 * without backprop's metadata is a BP_ERR_FORMAT error here. A path that
 * is not a regular file (FIFO, device, directory) is refused with
 * BP_ERR_IO before it is opened; an allocation failure is
 * BP_ERR_OUT_OF_MEMORY (the JSON header's parser included). */
BP_API bp_status bp_model_load(const char *path, const bp_network_config *base,
                               bp_network **out);

/* Loads the parameters of a file into an existing network whose layer
 * sizes match (BP_ERR_INVALID_ARGUMENT otherwise); values are converted to
 * the network's dtype. Only the tensors are needed: other writers'
 * __metadata__ (PyTorch's {"format": "pt"}) is ignored. A file that fails
 * its checks or cannot be read leaves the network's parameters unchanged. */
BP_API bp_status bp_model_load_params(bp_network *net, const char *path);

/* ------------------------------------------------------------------------ */
/* Data sets                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct bp_dataset bp_dataset;

typedef struct bp_dataset_options {
    bp_dtype dtype;   /* type of the features (and targets); default BP_F32 */
    int label_column; /* CSV: 0-based label column for classification;
                         -1 (default) = the last column */
    int n_targets;    /* CSV: 0 (default) = classification with one label
                         column; k > 0 = regression, the last k columns are
                         real-valued targets */
    int header;       /* CSV: -1 (default) detect a header row, 0 none, 1 one */
    int unlabeled;    /* CSV: 1 = every column is a feature, no labels or
                         targets (data to predict on); default 0 */
} bp_dataset_options;

BP_API void bp_dataset_options_init(bp_dataset_options *opt);

/* Loads a data set: an IDX images file (raw or gzip, recognised by its
 * magic bytes whatever its name) with its labels file beside it (the name
 * with "images-idx3" replaced by "labels-idx1"), or a numeric CSV file.
 * IDX: type 0x08 (uint8), images rank 3 (n, rows, cols) or 2 (n, features),
 * labels rank 1 with the same n; pixels are scaled to [0, 1]; the CSV
 * options are ignored.
 * CSV (raw or gzip): comma separated, numbers [+-]digits[.digits][e[+-]digits]
 * with a decimal point under every locale; NaN, infinities, empty fields
 * and ragged rows are errors naming the line and column. Blanks around
 * fields, CRLF, blank lines and a UTF-8 byte order mark are allowed. With
 * header -1 the first row is a header when a field in it is text: not
 * empty and not read as a number by strtod (so a row of "nan", "inf" or
 * hex floats is data, and rejected as such); header_rows in the
 * description says when one was skipped. Labels are integers from 0 to
 * 1000000 (1.0 counts); label_column applies to classification only.
 * n_classes is the largest label + 1.
 * Every file is read once, front to back (pipes, FIFOs and process
 * substitution work), and validated as it is read: memory grows with the
 * data actually delivered, never with what a header claims (an IDX
 * header's total is also checked against the machine's memory), binary
 * input is rejected at its first line, and an allocation failure anywhere
 * (zlib included) is BP_ERR_OUT_OF_MEMORY. */
BP_API bp_status bp_dataset_load(const char *path, const bp_dataset_options *opt,
                                 bp_dataset **out);
BP_API bp_status bp_dataset_load_idx(const char *images_path, const char *labels_path,
                                     const bp_dataset_options *opt, bp_dataset **out);
BP_API bp_status bp_dataset_load_csv(const char *path, const bp_dataset_options *opt,
                                     bp_dataset **out);
/* A data set from arrays in memory (copied): x [n, n_features] of dtype;
 * labels int32 [n] when n_targets == 0, else targets [n, n_targets]. */
BP_API bp_status bp_dataset_create(int n, int n_features, int n_targets, bp_dtype dtype,
                                   const void *x, const int32_t *labels, const void *targets,
                                   bp_dataset **out);
BP_API void bp_dataset_free(bp_dataset *ds);

typedef struct bp_dataset_desc {
    int n_samples;
    int n_features;
    int n_targets;          /* 0: classification (labels); k: regression */
    int n_classes;          /* classification: largest label + 1; 0 unlabeled */
    bp_dtype dtype;
    const void *x;          /* [n_samples, n_features] */
    const int32_t *labels;  /* [n_samples], or NULL (regression, unlabeled) */
    const void *targets;    /* [n_samples, n_targets], or NULL */
    int header_rows;        /* CSV: 1 when the first row was a header and skipped */
} bp_dataset_desc;

BP_API bp_status bp_dataset_describe(const bp_dataset *ds, bp_dataset_desc *out);

/* ------------------------------------------------------------------------ */
/* Replacing files safely                                                    */
/* ------------------------------------------------------------------------ */

/* An output file replaced whole or not at all; bp_model_save and the
 * backprop command write every output through it. The contents go to a
 * new temporary file "<name>.tmp-<pid>-<hex>" in the target's directory
 * (created with O_EXCL|O_NOFOLLOW, so never an existing file or a planted
 * link); commit fsyncs it, renames it over the target and fsyncs the
 * directory. Every failure (and abort) closes and removes the temporary
 * file, and the target is left as it was.
 *  - A new file gets mode 0666 minus the umask; a replaced file keeps its
 *    permission bits (and its owner and group where the process may set
 *    them).
 *  - A symbolic link is written through: the file it points to is
 *    replaced and the link stays. A dangling link is refused.
 *  - A target that exists and is not a regular file (device, FIFO, socket,
 *    directory) is refused with BP_ERR_IO: only regular files are replaced.
 *  - Temporary files left beside the target by processes that no longer
 *    run (killed during a write) are removed by the next replacement.
 * Allocation failures are BP_ERR_OUT_OF_MEMORY, a name too long for the
 * temporary file BP_ERR_INVALID_ARGUMENT, system errors BP_ERR_IO. */
typedef struct bp_file_replace bp_file_replace;

/* Checks, without writing anything, that begin would succeed as far as can
 * be known: the target's type, the directory's existence and permissions,
 * the length of the temporary name. For checking outputs before long work. */
BP_API bp_status bp_file_replace_check(const char *path);
BP_API bp_status bp_file_replace_begin(const char *path, bp_file_replace **out);
/* Writes are buffered; a failed write makes every later call fail. */
BP_API bp_status bp_file_replace_write(bp_file_replace *r, const void *data, size_t bytes);
BP_API bp_status bp_file_replace_printf(bp_file_replace *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Writes the buffered bytes to the temporary file (not to the target). */
BP_API bp_status bp_file_replace_flush(bp_file_replace *r);
/* Puts the new contents in place and frees r, whatever the result; on
 * failure the temporary file is removed and the target is unchanged. */
BP_API bp_status bp_file_replace_commit(bp_file_replace *r);
/* Removes the temporary file and frees r (NULL is allowed). */
BP_API void bp_file_replace_abort(bp_file_replace *r);

#ifdef __cplusplus
}
#endif

#endif /* BACKPROP_H */
