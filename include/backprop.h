/*
 * backprop.h — the one public header of libbackprop.
 *
 * backprop trains fully connected neural networks (multi-layer perceptrons)
 * by classic backpropagation, on NVIDIA GPUs (CUDA + cuBLAS) and on any CPU
 * (CBLAS). Both backends run one algorithm over the same GEMM argument lists
 * and the same per-element formulas, so their gradients can be compared.
 *
 * Notation (see docs/design.md): layer l = 1..L has n_l units, weights W^l
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
 *  - Configuration structs (bp_network_config, bp_optimizer,
 *    bp_gradcheck_config, bp_dataset_options, bp_comm_config,
 *    bp_evaluation_outputs) each have an _init function that fills in the
 *    defaults; initialise with it, then set the fields you need, so that
 *    fields added later get their defaults. _init(NULL) does nothing.
 *    NULL means the defaults: wherever a call takes a pointer to a
 *    configuration struct, passing NULL is the same as passing a struct
 *    just filled by its _init function. (bp_network_config's defaults
 *    name no layers, so bp_network_create and bp_compare_backends answer
 *    NULL, as they answer the defaults, with BP_ERR_INVALID_ARGUMENT.)
 *  - What concerns the CUDA backend only is grouped in the section
 *    "CUDA backend only" below and at the end of bp_network_config and
 *    bp_network_desc, under a "CUDA backend only" mark. A library built
 *    without CUDA declares it all the same; its calls then return
 *    BP_ERR_NOT_BUILT.
 *
 * Compatibility: one growth rule for every struct that crosses the ABI
 *  - Every struct begins with size_t struct_size: the size of the struct
 *    as the caller was compiled (so with the caller's header version). The
 *    library reads, and writes, only that many bytes of a caller's struct.
 *  - Structs a caller fills (configurations, options) get it from their
 *    _init, a macro passing sizeof. The library takes its defaults for the
 *    fields a smaller (older) struct lacks, and accepts a larger (newer)
 *    one only when the fields it does not know are zero. struct_size 0 (a
 *    struct filled by hand, without _init) means this header's size.
 *  - Structs the library fills (descriptions, results, metrics) are filled
 *    by calls whose plain names are macros passing the struct's sizeof to
 *    the _sized function: bp_network_describe(net, &d) fills only the fields
 *    the caller's struct has, never a byte past it, and sets its
 *    struct_size. A struct that is both (bp_optimizer, bp_checkpoint_info)
 *    follows the first rule where the library reads it and the second
 *    where it fills it; an optional output (bp_checkpoint_load's info)
 *    takes its size from struct_size, set by its _init.
 *  - New fields go at the end. bp_nccl_id is NCCL's 128 opaque bytes and
 *    never grows.
 *  - The shared library's SONAME is libbackprop.so.MAJOR from 1.0 on and
 *    libbackprop.so.0.MINOR before. Within one SONAME the ABI only grows:
 *    functions and enum values are added, never removed or changed;
 *    structs grow by the struct_size rule. Anything else raises MAJOR (in
 *    0.x, MINOR) and so the SONAME.
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
#define BP_VERSION_MINOR 3
#define BP_VERSION_PATCH 0
#define BP_VERSION_STRING "0.3.0"

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
    BP_ERR_UNSUPPORTED = 10,     /* a valid request that the chosen backend cannot
                                    carry out, e.g. a cuda_stream for a network on
                                    the CPU backend (a backend missing from the
                                    build altogether is BP_ERR_NOT_BUILT) */
    BP_ERR_COMM = 11             /* a collective failed, timed out or a rank is gone */
} bp_status;

/* A short constant description of a status ("invalid argument", ...).
 * Never NULL; unknown values give "unknown status". */
BP_API const char *bp_status_string(bp_status status);

/* The message of the last failing call on this thread; "" if none. */
BP_API const char *bp_last_error(void);

/* The library version, "MAJOR.MINOR.PATCH" (BP_VERSION_STRING of the
 * header it was built with), e.g. "0.3.0". */
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

/* What a network stores and computes in, named as PyTorch Lightning names
 * its precision settings (docs/design.md, "Mixed precision"):
 *
 *  64-true     float64 everything (dtype BP_F64)
 *  32-true     float32 everything (dtype BP_F32); on CUDA, math_mode may
 *              still pick TF32 or BF16 tensor-core GEMMs
 *  bf16-mixed  float32 master weights, optimizer state and weight and bias
 *              gradients; a bfloat16 working copy of the weights and biases
 *              made at every forward pass; activations, pre-activations and
 *              deltas of the hidden layers stored in bfloat16; every
 *              product with 16-bit inputs and float32 accumulation; the
 *              output layer (its bias, activation, softmax, loss and
 *              delta) in float32
 *  16-mixed    the same with IEEE half (float16) storage, and dynamic loss
 *              scaling exactly as torch.cuda.amp.GradScaler (initial scale
 *              65536, x2 after 2000 clean steps in a row, x0.5 and the step
 *              skipped when a gradient is not finite), on the device
 *
 * The mixed modes take and return float32 host arrays (dtype BP_F32):
 * inputs, targets, outputs, parameters, gradients and optimizer state are
 * the float32 masters. Every rounding to 16 bits is to nearest, ties to
 * even, at the same points on the CPU and on CUDA, so the two backends can
 * still be compared. BP_PRECISION_AUTO (the default) is the dtype's true
 * precision. */
typedef enum bp_precision {
    BP_PRECISION_AUTO = 0,       /* 64-true for BP_F64, 32-true for BP_F32 */
    BP_PRECISION_64_TRUE = 1,    /* "64-true" */
    BP_PRECISION_32_TRUE = 2,    /* "32-true" */
    BP_PRECISION_BF16_MIXED = 3, /* "bf16-mixed" */
    BP_PRECISION_16_MIXED = 4    /* "16-mixed" */
} bp_precision;

typedef enum bp_backend { BP_BACKEND_CPU = 0, BP_BACKEND_CUDA = 1 } bp_backend;

/* *built = 1 when the backend was compiled into this library. */
BP_API bp_status bp_backend_is_built(bp_backend backend, int *built);

/* ------------------------------------------------------------------------ */
/* CUDA backend only                                                         */
/* ------------------------------------------------------------------------ */

/* Math mode of float32 GEMMs on the CUDA backend. The CPU backend always
 * computes exact FP32 (it accepts every mode, so one configuration serves
 * both backends in a comparison); float64 GEMMs are always exact. */
typedef enum bp_math_mode {
    BP_MATH_FP32 = 0, /* exact IEEE float32 (default) */
    BP_MATH_TF32 = 1, /* TF32 tensor cores (10-bit mantissa inputs) */
    BP_MATH_BF16 = 2  /* BF16 tensor cores (7-bit mantissa inputs) */
} bp_math_mode;

typedef struct bp_device_info {
    size_t struct_size; /* the caller's size (the call sets it) */
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

BP_API bp_status bp_cuda_device_info_sized(int ordinal, bp_device_info *out, size_t size);
#define bp_cuda_device_info(ordinal, out) \
    bp_cuda_device_info_sized((ordinal), (out), sizeof(bp_device_info))

/* The threads a CPU network with config threads = 0 runs on: the
 * processors this process may run on (its affinity mask: taskset, cgroup
 * cpusets, an MPI launcher's binding), divided among the ranks an MPI
 * launcher or Slurm's srun started on this node (OMPI_COMM_WORLD_LOCAL_SIZE,
 * MPI_LOCALNRANKS, MV2_COMM_WORLD_LOCAL_SIZE, SLURM_STEP_TASKS_PER_NODE):
 * min(affinity, online processors / local ranks), at least 1, at most
 * 256. Set config threads to choose another number. */
BP_API bp_status bp_cpu_thread_count(int *threads);

/* ------------------------------------------------------------------------ */
/* Names of the enumerations                                                 */
/* ------------------------------------------------------------------------ */

/* Names for printing and parsing: "relu", "ce", "f32", "cuda", "tf32"...
 * The _name functions return NULL for an unknown value. The _parse
 * functions accept the names, in any case, and common aliases
 * ("cross-entropy", "float32", "linear", "gpu"...); for anything else
 * (or a NULL argument) they return BP_ERR_INVALID_ARGUMENT with a message
 * that quotes the name and lists the accepted ones, and leave *out as it
 * was. _parse(_name(v)) gives v back for every value v. */
BP_API const char *bp_activation_name(bp_activation act);
BP_API const char *bp_loss_name(bp_loss loss);
BP_API const char *bp_dtype_name(bp_dtype dtype);
BP_API const char *bp_backend_name(bp_backend backend);
BP_API const char *bp_math_mode_name(bp_math_mode mode); /* "fp32", "tf32", "bf16" */
BP_API bp_status bp_activation_parse(const char *name, bp_activation *out);
BP_API bp_status bp_loss_parse(const char *name, bp_loss *out);
BP_API bp_status bp_dtype_parse(const char *name, bp_dtype *out);
BP_API bp_status bp_backend_parse(const char *name, bp_backend *out);
BP_API bp_status bp_math_mode_parse(const char *name, bp_math_mode *out);
/* "auto", "64-true", "32-true", "bf16-mixed", "16-mixed"; parsing also
 * takes Lightning's short forms "64", "32", "bf16", "16" and "fp16-mixed". */
BP_API const char *bp_precision_name(bp_precision precision);
BP_API bp_status bp_precision_parse(const char *name, bp_precision *out);

/* Size in bytes of one element of dtype (4 or 8); 0 for unknown. */
BP_API size_t bp_dtype_size(bp_dtype dtype);

/* ------------------------------------------------------------------------ */
/* Networks                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct bp_network bp_network;

#define BP_MAX_LAYERS 64
#define BP_MAX_WIDTH (1 << 20)
#define BP_MAX_THREADS 1024 /* config threads */

typedef struct bp_network_config {
    size_t struct_size;               /* set by bp_network_config_init (see
                                         "Growing structs" below) */
    int n_layers;                     /* L >= 1 dense layers */
    const int *sizes;                 /* L+1 widths: n_0 (inputs) .. n_L */
    const bp_activation *activations; /* L activations, layer 1..L */
    bp_loss loss;                     /* default BP_LOSS_MSE */
    bp_dtype dtype;                   /* default BP_F32 */
    bp_backend backend;               /* default BP_BACKEND_CPU */
    int max_batch;                    /* largest batch any call will pass, default 256 */
    uint64_t seed;                    /* initialisation seed, default 1 */
    double leaky_slope;               /* leaky relu slope for z < 0, default 0.01 */
    /* CUDA backend only */
    int device;             /* CUDA device ordinal, default 0 */
    bp_math_mode math_mode; /* default BP_MATH_FP32 */
    void *cuda_stream;      /* a cudaStream_t to run on, or NULL (default) for a
                               stream the network creates and owns; with
                               another backend: BP_ERR_UNSUPPORTED */
    int cuda_graphs;        /* 1 (default): bp_network_epoch_step records
                               each batch size's step once as a CUDA graph and
                               replays it; 0: every step issues its kernels one
                               by one (set 0 to capture the network's stream
                               yourself). Results are bit-identical. No effect
                               on the CPU. */
    int fused_epilogues;    /* 1 (default): in a float32 training step
                               (bp_network_step*, bp_network_epoch_step),
                               each hidden ReLU layer runs
                               its product, bias and ReLU as one operation
                               (keeping a ReLU bit-mask instead of z^l),
                               and its delta and bias gradient as another:
                               on CUDA cuBLASLt calls, whose results agree
                               with the unfused step to float32 rounding,
                               not bit for bit; on the CPU each block of
                               the product gets its epilogue on the thread
                               that computed it (blocks of samples leave
                               the bias gradient to a pass after them),
                               with the unfused step's bits. z^l of such a layer
                               is then not stored (bp_network_get_layer_state
                               says so; bp_network_forward computes it).
                               0: GEMM, then the bias+activation pass. No
                               effect on float64, on the mixed precisions on
                               the CPU, or on
                               bp_network_forward, bp_network_gradients,
                               comparisons and gradient checks, which stay
                               unfused. */
    /* All backends */
    bp_precision precision; /* default BP_PRECISION_AUTO (dtype's true
                               precision). The mixed modes need dtype
                               BP_F32 and math_mode BP_MATH_FP32, 64-true
                               needs BP_F64, 32-true BP_F32: another
                               combination is BP_ERR_INVALID_ARGUMENT. A
                               backend without mixed precision refuses it
                               (BP_ERR_UNSUPPORTED); nothing falls back to
                               float32. */
    /* CPU backend only */
    int threads; /* the threads the network's operations run on: the
                    caller's and threads - 1 that the network starts (they
                    sleep while it is not used). 0 (default): automatic,
                    bp_cpu_thread_count(). Results are bit-identical for
                    every thread count. The BLAS is run single-threaded
                    (with OpenBLAS: openblas_set_num_threads(1), which in
                    its pthreads build holds for the whole process): the
                    network's threads share each product among them.
                    No effect on CUDA. */
} bp_network_config;

/* Fills *cfg with the defaults above (sizes and activations NULL,
 * n_layers 0: the caller must set them). NULL does nothing. */
BP_API void bp_network_config_init_sized(bp_network_config *cfg, size_t size);
/* The unsized name, for programs built against 0.1 headers. */
BP_API void bp_network_config_init(bp_network_config *cfg);
#define bp_network_config_init(cfg) bp_network_config_init_sized((cfg), sizeof(bp_network_config))

/* Creates a network and allocates every buffer a training step needs for
 * up to cfg->max_batch samples. Weights are initialised from cfg->seed by a
 * counter-based generator keyed by (seed, layer, index): He uniform
 * (limit sqrt(6/n_in)) for relu and leaky relu layers, Glorot uniform
 * (limit sqrt(6/(n_in+n_out))) for the others; biases zero. The same seed
 * gives bit-identical parameters on every backend and thread count.
 *
 * Reproducibility of training: the same network, seed, data and batches
 * give bit-identical results run after run on the same backend, device
 * model and BLAS (no atomics in any reduction), and on the CPU for every
 * thread count (config threads). Another BLAS, CPU model (whose kernels
 * the BLAS picks) or GPU model may round the GEMMs differently; results
 * then agree to rounding, not bit for bit. */
BP_API bp_status bp_network_create(const bp_network_config *cfg, bp_network **out);

/* Frees a network and everything it allocated. NULL is a no-op. Buffers
 * created on the network must be freed before it. */
BP_API void bp_network_free(bp_network *net);

/* What a network is, as created. Pointers stay valid while net lives. */
typedef struct bp_network_desc {
    size_t struct_size; /* the caller's size (the call sets it) */
    int n_layers;
    const int *sizes;                 /* n_layers + 1 */
    const bp_activation *activations; /* n_layers */
    bp_loss loss;
    bp_dtype dtype;
    bp_backend backend;
    int max_batch;
    uint64_t seed;
    double leaky_slope;
    size_t n_params; /* total weights + biases */
    /* CUDA backend only (on the CPU backend: as configured, without effect) */
    int device;
    bp_math_mode math_mode;
    int cuda_graphs;     /* since 0.3: as configured */
    int fused_epilogues; /* since 0.3: as configured */
    /* All backends */
    bp_precision precision; /* since 0.3; never BP_PRECISION_AUTO: what it resolved to */
} bp_network_desc;

BP_API bp_status bp_network_describe_sized(const bp_network *net, bp_network_desc *out, size_t size);
#define bp_network_describe(net, out) \
    bp_network_describe_sized((net), (out), sizeof(bp_network_desc))

/* The memory a network holds, in bytes, as allocated by bp_network_create
 * (and by bp_network_set_optimizer for Adam's second moments). */
typedef struct bp_network_memory {
    size_t struct_size;  /* the caller's size (the call sets it) */
    size_t parameters;   /* the (master) weights and biases */
    size_t working_copy; /* mixed precision: their 16-bit copy; else 0 */
    size_t gradients;    /* the weight and bias gradients */
    size_t optimizer;    /* the optimizer's state buffers */
    size_t per_sample;   /* a training step's buffers per sample of the
                            batch: the input, every layer's activations,
                            pre-activations and deltas, the targets and
                            the sample's loss */
    size_t activations;  /* of per_sample: the layers' activations,
                            pre-activations and deltas alone (a^1..a^L,
                            z^l, delta^l; the 16-bit copy of the input in
                            the mixed modes) */
    size_t step_buffers; /* per_sample * max_batch, plus ReLU masks */
} bp_network_memory;

BP_API bp_status bp_network_memory_report_sized(const bp_network *net, bp_network_memory *out,
                                                size_t size);
#define bp_network_memory_report(net, out) \
    bp_network_memory_report_sized((net), (out), sizeof(bp_network_memory))

/* Inference: a^L for a batch of `batch` samples, x [batch, n_0] host array,
 * out [batch, n_L] host array. For cross-entropy the outputs are softmax
 * probabilities, for BCE sigmoid probabilities. */
BP_API bp_status bp_network_forward(bp_network *net, const void *x, int batch, void *out);

/* Loss and gradients of a batch without updating the parameters. The
 * gradients stay in the network (read them with bp_network_get_gradients).
 * loss may be NULL; when given, it receives the mean batch loss. */
BP_API bp_status bp_network_gradients(bp_network *net, const void *x, const void *targets,
                                      int batch, double *loss);

/* Clears the optimizer's state and step count, so the next step is a
 * "first step". */
BP_API bp_status bp_network_reset_optimizer(bp_network *net);

/* ------------------------------------------------------------------------ */
/* Optimizers: SGD, Adam, AdamW, RMSprop; gradient clipping                  */
/* ------------------------------------------------------------------------ */

/* A network holds one optimizer: its description (below) and its state, in
 * buffers with the parameters' layout. A new network has SGD with
 * bp_optimizer_init's defaults (lr 0.02, momentum 0.9: the backprop
 * command's defaults too, measured on Fashion-MNIST; README.md,
 * "Optimizers"). Every rule follows torch.optim exactly (the
 * single-tensor code path, operation for operation), with t the number of
 * the update (1 for the first):
 *
 *  SGD     g = grad + weight_decay * w
 *          buf = g (t = 1), else momentum * buf + (1 - dampening) * g
 *          g = nesterov ? g + momentum * buf : buf     (momentum != 0)
 *          w = w - lr * g
 *  Adam    g = grad + weight_decay * w                 (L2, into the gradient)
 *  AdamW   w = w * (1 - lr * weight_decay)             (decoupled, first)
 *  both    m = lerp(m, g, 1 - beta1)                   exp_avg
 *          v = beta2 * v + (1 - beta2) * g * g         exp_avg_sq
 *          vmax = max(vmax, v), v = vmax               (amsgrad)
 *          w = w - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *  RMSprop g = grad + weight_decay * w
 *          v = alpha * v + (1 - alpha) * g * g             square_avg
 *          c = alpha * c + (1 - alpha) * g                 grad_avg (centered)
 *          d = sqrt(v - c * c) (centered), else sqrt(v); d = d + eps
 *          buf = momentum * buf + g / d, w = w - lr * buf  (momentum > 0)
 *          w = w - lr * g / d                          (momentum 0)
 *
 * Gradient clipping (clip_grad_norm > 0) is torch.nn.utils.clip_grad_norm_
 * over all weights and biases together: grad *= min(1, clip_grad_norm /
 * (||grad||_2 + 1e-6)) before the rule. The norm is reduced on the device
 * and never read by the host. Weight decay applies to weights and biases
 * alike, as with Optimizer(model.parameters(), ...).
 *
 * (Every struct here grows by one rule: "Compatibility" at the top.) */
typedef enum bp_optimizer_type {
    BP_OPTIMIZER_SGD = 0,
    BP_OPTIMIZER_ADAM = 1,
    BP_OPTIMIZER_ADAMW = 2,
    BP_OPTIMIZER_RMSPROP = 3
} bp_optimizer_type;

typedef struct bp_optimizer {
    size_t struct_size;     /* set by bp_optimizer_init */
    bp_optimizer_type type; /* default: the type passed to _init */
    /* The hyperparameters. Which ones a type reads, their defaults and
     * their ranges are the library's table (bp_optimizer_hyperparam); in
     * short: */
    double lr;             /* >= 0; default 0.02 (SGD), 1e-3 (Adam, AdamW), 1e-2 (RMSprop) */
    double weight_decay;   /* >= 0; default 0, 1e-2 for AdamW */
    double momentum;       /* SGD: in [0, 1), default 0.9; RMSprop: default 0 */
    double dampening;      /* SGD: in [0, 1], default 0 */
    int nesterov;          /* SGD: 0 or 1; needs momentum > 0, dampening 0 */
    int amsgrad;           /* Adam, AdamW: 0 or 1, default 0 */
    double beta1, beta2;   /* Adam, AdamW: in [0, 1), default 0.9, 0.999 */
    double eps;            /* Adam, AdamW, RMSprop: >= 0, default 1e-8 */
    double clip_grad_norm; /* every type: > 0 clips by global norm; 0 (default): off */
    double alpha;          /* RMSprop: in [0, 1], default 0.99 */
    int centered;          /* RMSprop: 0 or 1, default 0 */
} bp_optimizer;

/* Fills *opt with type's defaults (every field another type reads is 0). */
BP_API void bp_optimizer_init_sized(bp_optimizer *opt, bp_optimizer_type type, size_t size);
#define bp_optimizer_init(opt, type) bp_optimizer_init_sized((opt), (type), sizeof(bp_optimizer))

/* "sgd", "adam", "adamw", "rmsprop"; NULL for an unknown value. Every type from 0 up
 * to the first NULL is an optimizer. */
BP_API const char *bp_optimizer_name(bp_optimizer_type type);
BP_API bp_status bp_optimizer_parse(const char *name, bp_optimizer_type *out);

/* An optimizer's hyperparameters, described: the one table the library
 * initialises, validates and checkpoints them from, and the backprop
 * command makes its flags, defaults and help from. */
typedef enum bp_hyperparam_kind {
    BP_HYPERPARAM_REAL = 0,  /* a double field of bp_optimizer */
    BP_HYPERPARAM_SWITCH = 1 /* an int field, 0 or 1 */
} bp_hyperparam_kind;

typedef struct bp_hyperparam {
    size_t struct_size; /* the caller's size (bp_optimizer_hyperparam sets it) */
    const char *name;   /* the bp_optimizer field and the checkpoint's
                           metadata key: "lr", "beta1", "amsgrad" */
    const char *flag;   /* the backprop command's flag: "--lr", "--beta1" */
    const char *help;   /* one line, for --help */
    bp_hyperparam_kind kind;
    double default_value;   /* this type's default */
    double min, max;        /* the valid range (switches: 0 and 1) */
    int min_open, max_open; /* 1: the bound itself is outside the range */
    const char *range;      /* the range as text: "in [0, 1)", ">= 0", "0 or 1" */
} bp_hyperparam;

/* *count receives the number of type's hyperparameters. */
BP_API bp_status bp_optimizer_hyperparams(bp_optimizer_type type, int *count);
/* The index-th (0-based) hyperparameter of type into *out, filling only
 * the bytes of the caller's struct (the macro passes its size). Strings
 * are the library's, valid for as long as it is loaded. */
BP_API bp_status bp_optimizer_hyperparam_sized(bp_optimizer_type type, int index,
                                               bp_hyperparam *out, size_t size);
#define bp_optimizer_hyperparam(type, index, out) \
    bp_optimizer_hyperparam_sized((type), (index), (out), sizeof(bp_hyperparam))

/* A hyperparameter of opt by name (a switch as 0 or 1). set checks that
 * opt's type has it and that value is in its range (BP_ERR_INVALID_ARGUMENT
 * naming the value and the range otherwise; opt is then unchanged). */
BP_API bp_status bp_optimizer_get_value(const bp_optimizer *opt, const char *name, double *value);
BP_API bp_status bp_optimizer_set_value(bp_optimizer *opt, const char *name, double value);

/* Checks a whole description: the type, every hyperparameter's range and
 * the rules between them (SGD's nesterov needs momentum > 0 and dampening
 * 0); what bp_network_set_optimizer checks. */
BP_API bp_status bp_optimizer_validate(const bp_optimizer *opt);

/* Sets the network's optimizer (allocating its state buffers, outside any
 * training step). The state (and the step count t) is kept while the type
 * and the states it keeps stay the same, so a schedule may change lr, or
 * any other hyperparameter, between steps; another type, or a change that
 * adds or drops a state (SGD's momentum from or to 0, Adam's amsgrad),
 * clears it. */
BP_API bp_status bp_network_set_optimizer(bp_network *net, const bp_optimizer *opt);
BP_API bp_status bp_network_get_optimizer_sized(const bp_network *net, bp_optimizer *out,
                                                size_t size);
#define bp_network_get_optimizer(net, out) \
    bp_network_get_optimizer_sized((net), (out), sizeof(bp_optimizer))
/* Only the learning rate (a schedule's step); lr >= 0 and finite. Written
 * to the device in stream order: the step never waits for it. */
BP_API bp_status bp_network_set_lr(bp_network *net, double lr);

/* One training step with the network's optimizer (bp_network_set_optimizer;
 * a new network's is bp_optimizer_init's SGD): forward, output delta,
 * deltas, gradients, clipping, update. This, its buffer form and
 * bp_network_epoch_step are the one way to train: nothing else changes the
 * network's optimizer. loss may be NULL (then the step never waits for the
 * device); when given, it receives the mean batch loss before the update.
 * A batch whose loss or gradients are not finite changes no parameter or
 * optimizer state (checked on the device): with loss given the call returns
 * BP_ERR_NUMERIC, otherwise bp_network_read_metrics reports the step. */
BP_API bp_status bp_network_step(bp_network *net, const void *x, const void *targets, int batch,
                                 double *loss);
typedef struct bp_buffer bp_buffer; /* see "Buffers on a network's device" */
BP_API bp_status bp_network_step_buffer(bp_network *net, const bp_buffer *x,
                                        const bp_buffer *targets, const int32_t *rows, int batch,
                                        double *loss);

/* The optimizer's state, per layer (1..L), in the parameters' layout and
 * the network's dtype: weight [n_l, n_{l-1}] and bias [n_l] slices, either
 * may be NULL. BP_ERR_INVALID_ARGUMENT names the state the optimizer lacks
 * (exp_avg under SGD, momentum_buffer under Adam, max_exp_avg_sq without
 * amsgrad). The names are torch.optim's state keys. */
typedef enum bp_optimizer_state {
    BP_STATE_MOMENTUM_BUFFER = 0, /* SGD, RMSprop with momentum */
    BP_STATE_EXP_AVG = 1,         /* Adam, AdamW */
    BP_STATE_EXP_AVG_SQ = 2,      /* Adam, AdamW */
    BP_STATE_MAX_EXP_AVG_SQ = 3,  /* Adam, AdamW with amsgrad */
    BP_STATE_SQUARE_AVG = 4,      /* RMSprop */
    BP_STATE_GRAD_AVG = 5         /* RMSprop centered */
} bp_optimizer_state;

BP_API const char *bp_optimizer_state_name(bp_optimizer_state which);
BP_API bp_status bp_network_get_optimizer_state(const bp_network *net, bp_optimizer_state which,
                                                int layer, void *weight, void *bias);
BP_API bp_status bp_network_set_optimizer_state(bp_network *net, bp_optimizer_state which,
                                                int layer, const void *weight, const void *bias);
/* The number of updates applied since the optimizer was set or reset
 * (torch's state['step']; a step the non-finite guard skipped does not
 * count). Setting it (0..BP_MAX_OPTIMIZER_STEP) with the state restores a
 * saved optimizer. The count stops at BP_MAX_OPTIMIZER_STEP, 2^53, the
 * largest the double of Adam's bias corrections holds exactly (where they
 * are 1 to the last bit anyway). */
#define BP_MAX_OPTIMIZER_STEP ((int64_t)1 << 53)
BP_API bp_status bp_network_get_optimizer_step(const bp_network *net, int64_t *step);
BP_API bp_status bp_network_set_optimizer_step(bp_network *net, int64_t step);

/* 16-mixed's dynamic loss scale (torch.cuda.amp.GradScaler, on the
 * device): the output layer's delta is multiplied by `scale` before it is
 * rounded to float16, so every gradient is; the gradients are unscaled
 * (multiplied by the float32 reciprocal) before the guard and the update.
 * A step whose scaled gradients are not finite updates nothing, halves the
 * scale and counts in skipped_steps, and is not an error; a step call then
 * returns BP_OK and bp_network_read_metrics does not report it. A step
 * whose loss is not finite is still BP_ERR_NUMERIC. The scale starts at
 * 65536 and doubles after growth_interval (2000) clean steps in a row.
 * When it falls to 0 (no scale gives finite gradients: the forward pass
 * overflows float16) or would grow past float32's range, the step calls
 * and bp_network_read_metrics return BP_ERR_NUMERIC saying so. Checkpoints
 * save and restore it. Other precisions have no loss scale:
 * BP_ERR_INVALID_ARGUMENT. */
typedef struct bp_loss_scale {
    size_t struct_size;     /* set by bp_loss_scale_init; the get call sets it */
    double scale;           /* a float32 value > 0; default 65536 */
    int64_t growth_tracker; /* clean steps in a row since the last change, >= 0 */
    int64_t skipped_steps;  /* steps skipped for non-finite gradients, >= 0 */
} bp_loss_scale;

/* The initial scale: 65536, no steps. */
BP_API void bp_loss_scale_init_sized(bp_loss_scale *ls, size_t size);
#define bp_loss_scale_init(ls) bp_loss_scale_init_sized((ls), sizeof(bp_loss_scale))
BP_API bp_status bp_network_get_loss_scale_sized(const bp_network *net, bp_loss_scale *out,
                                                 size_t size);
#define bp_network_get_loss_scale(net, out) \
    bp_network_get_loss_scale_sized((net), (out), sizeof(bp_loss_scale))
/* Outside a step; the scale must be finite, > 0 and exactly a float32. */
BP_API bp_status bp_network_set_loss_scale(bp_network *net, const bp_loss_scale *in);

/* Parameters of layer (1..L) as host arrays: weight [n_l, n_{l-1}],
 * bias [n_l]. Either pointer may be NULL to skip it. */
BP_API bp_status bp_network_get_params(const bp_network *net, int layer, void *weight, void *bias);
BP_API bp_status bp_network_set_params(bp_network *net, int layer, const void *weight,
                                       const void *bias);

/* dL/dW^l and dL/db^l of layer (1..L) from the last bp_network_gradients or
 * bp_network_step call. Either pointer may be NULL. */
BP_API bp_status bp_network_get_gradients(const bp_network *net, int layer, void *dweight,
                                          void *dbias);

/* The state of layer l (1..L) from the last forward pass (and, for delta,
 * the last backward pass), for the first `batch` samples: z^l, a^l and
 * delta^l as [batch, n_l] arrays. Any pointer may be NULL. batch must not
 * exceed the batch of that pass. When that pass was a training step whose
 * layer l ran fused (config fused_epilogues), z^l was not stored: asking
 * for it fails with BP_ERR_UNSUPPORTED naming the layer (a^l and delta^l
 * are there; bp_network_forward, or fused_epilogues = 0, gives z^l). */
BP_API bp_status bp_network_get_layer_state(const bp_network *net, int layer, int batch, void *z,
                                            void *a, void *delta);

/* Gradient check by central differences: for each layer, the largest
 * relative error |g - g_fd| / max(|g| + |g_fd|, floor) over the checked
 * weights and biases, where g is the backprop gradient and
 * g_fd = (L(p + eps) - L(p - eps)) / (2 eps). Parameters are restored
 * bit-exactly afterwards. Meaningful in float64. */
typedef struct bp_gradcheck_config {
    size_t struct_size; /* set by bp_gradcheck_config_init */
    double eps;         /* the step; default 0: the network's dtype's
                           (bp_gradcheck_defaults) */
    double floor;       /* the relative error's smallest denominator;
                           default 0: the dtype's */
    int max_per_layer;  /* parameters checked per layer, spread evenly;
                           0 = all. Default 0. */
    double perturb;     /* checking the check: backprop's gradients are
                           taken as g (1 + perturb); default 0 */
    int *skipped;       /* optional output, [n_layers]: parameters left out
                           because a ReLU or leaky ReLU kink lies within eps
                           of them (the loss's one-sided differences
                           disagree); default NULL */
} bp_gradcheck_config;

BP_API void bp_gradcheck_config_init_sized(bp_gradcheck_config *cfg, size_t size);
#define bp_gradcheck_config_init(cfg) \
    bp_gradcheck_config_init_sized((cfg), sizeof(bp_gradcheck_config))

/* The step, the floor and the verdict's tolerance on the relative error
 * for a dtype: float64 eps 1e-5, floor 1e-3, below 1e-7; float32 eps 1e-2,
 * floor 1e-2, below 1e-2 (the loss is summed in float32: a smaller step
 * drowns in its rounding). Correct gradients pass and gradients 5% off
 * fail (tests/test_gradcheck.cpp). Any pointer may be NULL. */
BP_API bp_status bp_gradcheck_defaults(bp_dtype dtype, double *eps, double *floor,
                                       double *tolerance);

/* max_rel_error receives n_layers values (layer 1 first). cfg may be NULL
 * for the defaults. */
BP_API bp_status bp_network_gradcheck(bp_network *net, const void *x, const void *targets, int batch,
                                      const bp_gradcheck_config *cfg, double *max_rel_error);

/* ------------------------------------------------------------------------ */
/* Data-parallel training (MPI, NCCL)                                        */
/* ------------------------------------------------------------------------ */

/* Several processes (ranks), or several GPUs of one process, train one
 * network together. Every rank holds the same parameters and runs each
 * step on its own shard of the global batch; after the backward pass the
 * weight and bias gradients are averaged over the global batch, each
 * rank's gradients weighted by its number of samples (so uneven shards,
 * such as a short last batch, give exactly the gradients of one process
 * training on the whole batch); every rank then applies the same update,
 * and the parameters stay bit-identical on every rank.
 *
 * What a joined network changes (step and gradients calls, plain and
 * _buffer; leave the communicator before bp_network_gradcheck):
 *  - the loss a step reports is the mean over the global batch, and the
 *    gradients left in the network are those of the global batch;
 *  - the non-finite guard is collective: when the global loss is NaN or
 *    infinite (or a reduced gradient is), every rank returns BP_ERR_NUMERIC
 *    at the same step with the same message, and no rank updates its
 *    parameters (the guard runs on every step, loss pointer or not: these
 *    calls read each step's loss on a joined network);
 *  - the epoch steps (bp_network_epoch_step)
 *    on CUDA ranks issue nothing the host waits for: with cuda_graphs each
 *    step, its all-reduces included, is one CUDA graph, and a skipped step
 *    is reported as for a network alone (the loss pointer, or
 *    bp_network_read_metrics). Each rank passes its own part of the
 *    global batch; the ranks learn the global batch by one host all-reduce
 *    before each step (outside the graph), or not at all when the trainer
 *    (bp_trainer_*) steps them, which knows it;
 *  - each layer's gradient all-reduce starts as soon as the backward pass
 *    has produced it (last layer first) and runs while the earlier layers'
 *    gradients are computed; the update waits for all of them;
 *  - every rank must make the same sequence of step calls, each with at
 *    least one sample (the shards of one step may differ in size);
 *  - a collective that fails, or that has not completed within the
 *    communicator's timeout (a rank died or stopped calling), returns
 *    BP_ERR_COMM; the communicator is then broken and every later step on
 *    it returns BP_ERR_COMM at once (free it; the network can leave it).
 *
 * Engines: CPU networks reduce with MPI (non-blocking MPI_Iallreduce per
 * layer); CUDA networks with NCCL (ncclAllReduce on a stream of its own,
 * ordered after the layer's gradients with CUDA events, each rank's share
 * b_r / B applied by a pre-multiplied sum whose scalar is in device
 * memory). Both are optional at build time (BP_MPI, BP_NCCL);
 * bp_comm_engine_info says what is in. The trainer (bp_trainer_*, below)
 * runs whole data-parallel training runs over either. */

typedef struct bp_comm bp_comm;

typedef enum bp_comm_engine { BP_COMM_MPI = 0, BP_COMM_NCCL = 1 } bp_comm_engine;

/* *built = 1 when engine is compiled into this library; version (may be
 * NULL) receives its library's version string, "" when not built. */
BP_API bp_status bp_comm_engine_info(bp_comm_engine engine, int *built, char *version,
                                     size_t version_size);

typedef struct bp_comm_config {
    size_t struct_size; /* set by bp_comm_config_init */
    bp_backend backend; /* the backend of the networks that will join:
                           BP_BACKEND_CPU (reduce with MPI, default) or
                           BP_BACKEND_CUDA (NCCL, bootstrapped over MPI) */
    int device;         /* CUDA: this rank's device ordinal, default 0 */
    double timeout_s;   /* a collective not complete after this many seconds
                           fails with BP_ERR_COMM; default 300 */
} bp_comm_config;

BP_API void bp_comm_config_init_sized(bp_comm_config *cfg, size_t size);
#define bp_comm_config_init(cfg) bp_comm_config_init_sized((cfg), sizeof(bp_comm_config))

/* A communicator over the ranks of an MPI communicator. mpi_comm points to
 * an MPI_Comm (e.g. `MPI_Comm c = MPI_COMM_WORLD;` then pass &c), or is
 * NULL for MPI_COMM_WORLD; it is passed as a pointer so that this header
 * needs no MPI header. The caller initialises MPI (MPI_Init or
 * MPI_Init_thread) before and finalises it after freeing the communicator.
 * The library duplicates the communicator (MPI_Comm_dup, collective over
 * its ranks) and sets MPI_ERRORS_RETURN on the duplicate, so MPI errors
 * become BP_ERR_COMM statuses instead of aborting the job. With cfg's
 * backend CUDA, rank 0 makes an NCCL unique id, MPI broadcasts it and every
 * rank joins the NCCL communicator on cfg->device. cfg may be NULL. */
BP_API bp_status bp_comm_create_mpi(const void *mpi_comm, const bp_comm_config *cfg, bp_comm **out);

/* NCCL's unique id, as opaque bytes (ncclUniqueId is 128 bytes). */
typedef struct bp_nccl_id {
    char bytes[128];
} bp_nccl_id;

/* A new NCCL unique id: make it on one rank and give it to the others by
 * any means (a file, a socket, a launcher). */
BP_API bp_status bp_nccl_id_create(bp_nccl_id *id);

/* A communicator for rank `rank` of `size` CUDA ranks sharing id, on CUDA
 * device cfg->device (cfg->backend must be BP_BACKEND_CUDA; cfg may be
 * NULL for device 0). Needs no MPI. Collective: every rank must call it. */
BP_API bp_status bp_comm_create_nccl(const bp_nccl_id *id, int rank, int size,
                                     const bp_comm_config *cfg, bp_comm **out);

/* One process driving n_devices GPUs (ncclCommInitAll): comms[i] is rank i,
 * on device devices[i] (NULL: devices 0..n_devices-1). Make one network
 * per device, join network i to comms[i], and drive each network from a
 * thread of its own (a step waits for the other ranks' part of it, so one
 * thread stepping the networks in turn would wait on itself). */
BP_API bp_status bp_comm_create_nccl_all(int n_devices, const int *devices,
                                         const bp_comm_config *cfg, bp_comm **comms);

/* This rank's number (0-based) and the number of ranks. Either may be NULL. */
BP_API bp_status bp_comm_rank(const bp_comm *comm, int *rank, int *size);

/* Frees a communicator. NULL is a no-op. A network joined to it must leave
 * it (or be freed) first. */
BP_API void bp_comm_free(bp_comm *comm);

/* This rank has failed (it cannot read its data, write its file, ...) and
 * says so to the others: every other rank's pending or next collective on
 * comm fails within about half a second (a collective this rank had
 * already joined still completes there) with BP_ERR_COMM and a message
 * naming this rank and why (why may be NULL), instead of waiting out the
 * timeout; comm is broken here as well. Not collective and never blocks
 * for long (the small messages are sent eagerly). Call it before leaving
 * on an error, then exit without waiting for the others (a program that
 * finalises MPI would wait for every rank there). Over MPI communicators
 * (bp_comm_create_mpi, CPU and CUDA); NCCL communicators made without MPI
 * have no side channel: their other ranks time out. */
BP_API bp_status bp_comm_abort(bp_comm *comm, const char *why);

/* One value that must be the same on every rank, named as its user knows
 * it ("--lr", "--data"): a number, compared bit for bit, or (bytes not
 * NULL) n_bytes of memory, compared by a 64-bit checksum (a data set's
 * arrays, a schedule's name). */
typedef struct bp_comm_value {
    const char *name;
    double number;
    const void *bytes;
    size_t n_bytes;
} bp_comm_value;

/* Checks that every rank passes the same n values in the same order
 * (collective: one small all-reduce when they agree). A difference is
 * BP_ERR_INVALID_ARGUMENT on every rank with a message naming the first
 * value that differs, rank 0's and this rank's value (numbers) and which
 * ranks differ from rank 0 ("--lr differs between the ranks: 0.02 on rank
 * 0, 0.05 here on rank 1; 1 of the 3 ranks differ from rank 0 (rank 1)").
 * Ranks that would train with different hyperparameters, epochs or
 * data must not start: bp_network_join compares only the parameters. */
BP_API bp_status bp_comm_agree(bp_comm *comm, const bp_comm_value *values, int n);

/* Joins net to comm (collective over comm's ranks): checks that net's
 * backend fits comm's engine and that the parameters, architecture and
 * dtype are identical on every rank (a checksum all-reduce; a mismatch is
 * BP_ERR_INVALID_ARGUMENT on every rank). Nets created with the same
 * config and seed start identical; so does one that loaded the same model.
 * comm NULL makes net leave its communicator (then it trains alone). A
 * communicator serves one network at a time. */
BP_API bp_status bp_network_join(bp_network *net, bp_comm *comm);

/* A communicator over every process an MPI launcher started (mpirun,
 * mpiexec, srun), on MPI_COMM_WORLD, for programs that leave MPI to the
 * library: MPI is initialised here when it is not yet (and then finalised
 * by bp_comm_free of this communicator). With cfg->backend CUDA each rank
 * reduces with NCCL on the GPU of its local rank (its rank among the ranks
 * on its machine) modulo the GPUs it sees, whatever cfg->device says:
 * create the rank's network on the device bp_comm_local reports. cfg may
 * be NULL (CPU ranks). Collective over every rank. */
BP_API bp_status bp_comm_create_world(const bp_comm_config *cfg, bp_comm **out);

/* How many processes an MPI launcher (mpirun, mpiexec, srun) started with
 * this one, from the launcher's environment (Open MPI, MPICH/Hydra, Intel
 * MPI, MVAPICH, Slurm with PMIx), without initialising MPI: *size is 0
 * when no launcher started this process. A program calls
 * bp_comm_create_world when it is above 1. Works in a library built
 * without MPI too. */
BP_API bp_status bp_comm_launcher_size(int *size);
/* This process's rank among them, from the same environment: 0 when no
 * launcher started it. For a program that must know, before MPI starts,
 * whether it is rank 0 (to print once, say). */
BP_API bp_status bp_comm_launcher_rank(int *rank);

/* Where this rank runs: its rank among the ranks on its machine and their
 * number (0 and 1 for communicators not made over MPI), and the CUDA
 * device it reduces on (-1 for CPU ranks). Any pointer may be NULL. */
BP_API bp_status bp_comm_local(const bp_comm *comm, int *local_rank, int *local_size, int *device);

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

/* The buffer forms of forward and gradients (and of bp_network_step:
 * bp_network_step_buffer, above). x holds rows of
 * n_0 reals, targets rows of the loss's target (one int32_t label for
 * cross-entropy, n_L reals otherwise). rows is a HOST array of `batch` row
 * indices into x and targets, each checked against the buffers' sizes; NULL
 * means rows 0..batch-1. out receives [batch, n_L] at offset 0. Labels in a
 * buffer are not read back to be checked: an out-of-range label makes that
 * sample's loss and deltas NaN (and a step with a loss pointer then
 * returns BP_ERR_NUMERIC without updating). */
BP_API bp_status bp_network_forward_buffer(bp_network *net, const bp_buffer *x,
                                           const int32_t *rows, int batch, bp_buffer *out);
BP_API bp_status bp_network_gradients_buffer(bp_network *net, const bp_buffer *x,
                                             const bp_buffer *targets, const int32_t *rows,
                                             int batch, double *loss);

/* ------------------------------------------------------------------------ */
/* Epochs on the device: training without waiting for it                    */
/* ------------------------------------------------------------------------ */

/* Starts an epoch over data already in buffers on the network's device:
 * order is a HOST array of n_rows row indices into x and targets (each
 * checked against the buffers' sizes; NULL means 0..n_rows-1), uploaded
 * once. bp_network_epoch_step then takes its rows from this order
 * on the device, batch after batch, so that a step copies nothing from
 * the host and never waits for the device. The buffers must outlive the
 * epoch. A new call starts a new epoch. */
BP_API bp_status bp_network_set_epoch(bp_network *net, const bp_buffer *x, const bp_buffer *targets,
                                      const int32_t *order, size_t n_rows);

/* A training step with the network's optimizer (bp_network_set_optimizer,
 * bp_network_set_lr) on the next `batch` rows of the epoch's order (batch
 * <= max_batch and <= the rows left). The learning rate is written to the
 * device only when it changes, without a wait. loss may be NULL, and then
 * the step never waits for the device; when given, the step waits and
 * *loss is the batch's mean loss. Loss, correct predictions and sample
 * counts are summed on the device (bp_network_read_metrics). A batch whose
 * loss or gradients are not finite changes no parameter: with loss given
 * the call returns BP_ERR_NUMERIC, otherwise the next read of the metrics
 * does. On CUDA with cuda_graphs set (the default), the step of each batch
 * size is recorded once as a CUDA graph and replayed, with results
 * bit-identical to the unrecorded step. */
BP_API bp_status bp_network_epoch_step(bp_network *net, int batch, double *loss);

/* Sums over the training steps since the last read (or creation). */
typedef struct bp_train_metrics {
    size_t struct_size; /* the caller's size (the call sets it) */
    double loss_sum;    /* sum of per-sample losses of the steps whose loss was finite */
    double samples;     /* samples of those steps */
    double correct;     /* correct predictions among them (cross-entropy), else 0 */
    double mean_loss;   /* loss_sum / samples (NaN when no samples) */
    double accuracy;    /* correct / samples for cross-entropy (NaN otherwise) */
    long long steps;    /* training steps since the last read */
    long long bad_step; /* the first step that was skipped as non-finite, counted
                           from the network's creation (1-based), or 0 */
} bp_train_metrics;

/* Reads the sums (this waits for the device) and resets them. Returns
 * BP_ERR_NUMERIC, naming the step, when a step since the last read was
 * skipped because its loss or gradients were not finite; *out is filled
 * either way. */
BP_API bp_status bp_network_read_metrics_sized(bp_network *net, bp_train_metrics *out, size_t size);
#define bp_network_read_metrics(net, out) \
    bp_network_read_metrics_sized((net), (out), sizeof(bp_train_metrics))

/* ------------------------------------------------------------------------ */
/* Comparing backends                                                        */
/* ------------------------------------------------------------------------ */

/* Differences of one layer between two runs. abs is the largest absolute
 * element difference; rel is abs divided by the largest magnitude of that
 * quantity in run a (a norm-wise relative difference, 0 when both are 0). */
typedef struct bp_layer_diff {
    size_t struct_size; /* the caller's size (the call sets it) */
    double weight_grad_abs, weight_grad_rel;
    double bias_grad_abs, bias_grad_rel;
    double activation_abs, activation_rel; /* a^l over the batch */
} bp_layer_diff;

/* Creates the network cfg describes on backend a and on backend b (cfg's
 * own backend field is ignored; its cuda_stream goes to whichever of the
 * two is a CUDA network), same seed and so the same initial parameters,
 * computes the loss and gradients of one batch on each, and writes
 * cfg->n_layers differences to per_layer. loss_a and loss_b may be NULL. */
BP_API bp_status bp_compare_backends_sized(const bp_network_config *cfg, bp_backend a,
                                           bp_backend b, const void *x, const void *targets,
                                           int batch, bp_layer_diff *per_layer,
                                           size_t per_layer_size, double *loss_a, double *loss_b);
#define bp_compare_backends(cfg, a, b, x, targets, batch, per_layer, loss_a, loss_b) \
    bp_compare_backends_sized((cfg), (a), (b), (x), (targets), (batch), (per_layer), \
                              sizeof(bp_layer_diff), (loss_a), (loss_b))

/* The same for two networks the caller made (e.g. one model file loaded on
 * each backend): same layers, activations, loss and dtype
 * (BP_ERR_INVALID_ARGUMENT otherwise); their own parameters, which should
 * be equal. Each network's gradients and step state are overwritten, as
 * bp_network_gradients does. */
BP_API bp_status bp_compare_networks_sized(bp_network *a, bp_network *b, const void *x,
                                           const void *targets, int batch, bp_layer_diff *per_layer,
                                           size_t per_layer_size, double *loss_a, double *loss_b);
#define bp_compare_networks(a, b, x, targets, batch, per_layer, loss_a, loss_b) \
    bp_compare_networks_sized((a), (b), (x), (targets), (batch), (per_layer),   \
                              sizeof(bp_layer_diff), (loss_a), (loss_b))

/* The tolerance on rel that a comparison of two backends is held to, for
 * the dtype and the CUDA network's math mode, and what it judges:
 *
 *   dtype  math   *judges_gradients  *tolerance
 *   f64    any    1 (all three)      1e-12 (float64 GEMMs are always exact)
 *   f32    fp32   1 (all three)      1e-5
 *   f32    tf32   0 (activations)    5e-3
 *   f32    bf16   0 (activations)    3e-2
 *
 * judges_gradients 1: every rel of bp_layer_diff must be <= *tolerance;
 * 0: only activation_rel. Tensor-core GEMMs round their inputs to 10
 * (TF32) or 7 (BF16) mantissa bits, unit roundoff 2^-11 = 4.9e-4 and
 * 2^-8 = 3.9e-3. Where a rounded pre-activation z lands on the other side
 * of a ReLU's kink, sigma'(z) flips between 0 and 1 and moves that sample's
 * whole share of a gradient entry: the hidden layers' gradients then
 * differ by up to ~0.3 of their largest entry, not by a rounding error,
 * so those modes judge the activations (continuous in z). The TF32 and
 * BF16 tolerances are about 7x and 5x the worst activation difference
 * measured over 48 cases with the GEMMs' input rounding emulated (6.9e-4
 * and 6.2e-3; README.md, "Precision and tolerances"). Either pointer may
 * be NULL; an unknown dtype or mode is BP_ERR_INVALID_ARGUMENT. */
BP_API bp_status bp_compare_tolerance_math(bp_dtype dtype, bp_math_mode mode, double *tolerance,
                                           int *judges_gradients);

/* The tolerance of a comparison of two backends in a precision (AUTO:
 * what the dtype would give, then as bp_compare_tolerance_math for 64-true
 * and 32-true with math_mode):
 *
 *   precision   *judges_gradients  *tolerance
 *   bf16-mixed  1 (all three)      1e-2
 *   16-mixed    1 (all three)      2e-3
 *
 * In the mixed precisions both backends round at the same points to the
 * same 16-bit values, from inputs that are already 16-bit on both sides, so
 * their float32 sums differ only in the order of the additions (as in
 * 32-true); a sum that lands a float32 ulp on the other side of a rounding
 * boundary stores the neighbouring 16-bit value, which moves a gradient or
 * an activation by one unit roundoff (2^-8 for bfloat16, 2^-11 for
 * float16) of one sample's share. The tolerances are about two of those
 * (README.md, "Mixed precision", has what was measured). A mixed precision
 * with math_mode other than BP_MATH_FP32 is BP_ERR_INVALID_ARGUMENT, as
 * bp_network_create refuses it. */
BP_API bp_status bp_compare_tolerance_precision(bp_precision precision, bp_dtype dtype,
                                                bp_math_mode mode, double *tolerance,
                                                int *judges_gradients);

/* The same for BP_MATH_FP32 (kept for programs built against 0.1):
 * 1e-12 for float64, 1e-5 for float32. */
BP_API double bp_compare_tolerance(bp_dtype dtype);

/* ------------------------------------------------------------------------ */
/* Model files (safetensors)                                                 */
/* ------------------------------------------------------------------------ */

/* Saves the parameters as safetensors: tensors "layers.{i}.weight"
 * [n_out, n_in] and "layers.{i}.bias" [n_out], i from 0, in the network's
 * dtype; __metadata__ holds the activations, the loss, the leaky slope and
 * the format version. Written through bp_file_replace_begin
 * (backprop_file.h): an
 * existing file is replaced whole or not at all and keeps its permissions;
 * a new file gets 0666 minus the umask; a symlink is written through; a
 * path that is a device, FIFO, socket or directory is refused. */
BP_API bp_status bp_model_save(const bp_network *net, const char *path);

/* Text kept with a network and saved with it: bp_model_save and
 * bp_checkpoint_save write each entry as a __metadata__ member, and
 * bp_model_load gives the loaded network every member backprop does not
 * write itself. For what the data needs around the model, e.g. the
 * backprop command's input scaling and class names (README, "Your own
 * data"). Keys: 1 to 64 letters, digits, '_', '.' or '-', not one of
 * backprop's own (format, loss, activations, lr, ...:
 * BP_ERR_INVALID_ARGUMENT naming it); values: valid UTF-8 up to 16 MiB;
 * at most 256 entries. A NULL value removes the key. */
BP_API bp_status bp_network_set_metadata(bp_network *net, const char *key, const char *value);
/* The value of key, or NULL when the network has none; valid until the
 * key is set again or the network is freed. */
BP_API bp_status bp_network_get_metadata(const bp_network *net, const char *key, const char **value);

/* Saves the parameters rounded (to nearest, ties to even) to 16 bits, as a
 * mixed precision's forward pass multiplies them: "BF16" tensors for
 * precision bf16-mixed, "F16" for 16-mixed, otherwise as bp_model_save
 * (metadata "exported_from": "F32"). For inference elsewhere
 * (safetensors.torch.load_file reads it); bp_model_load reads the float32
 * files of bp_model_save and refuses these. The network must be float32
 * (any precision but 64-true). */
BP_API bp_status bp_model_save_16bit(const bp_network *net, const char *path,
                                     bp_precision precision);

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
BP_API bp_status bp_model_load(const char *path, const bp_network_config *base, bp_network **out);

/* Loads the parameters of a file into an existing network whose layer
 * sizes match (BP_ERR_INVALID_ARGUMENT otherwise); values are converted to
 * the network's dtype. Only the tensors are needed: other writers'
 * __metadata__ (PyTorch's {"format": "pt"}) is ignored. A file that fails
 * its checks or cannot be read leaves the network's parameters unchanged. */
BP_API bp_status bp_model_load_params(bp_network *net, const char *path);

/* ------------------------------------------------------------------------ */
/* Checkpoints                                                               */
/* ------------------------------------------------------------------------ */

/* A checkpoint is a model file (bp_model_save's tensors and metadata, so
 * bp_model_load and PyTorch's safetensors.torch.load_file read it as a
 * model) with the optimizer's state as further tensors,
 * "optimizer.layers.{i}.{weight,bias}.{state}" (state: momentum_buffer,
 * exp_avg, exp_avg_sq, max_exp_avg_sq, as torch.optim names them), and in
 * __metadata__ the checkpoint format version, the optimizer's type and
 * hyperparameters, its step count, and the training loop's position below.
 * Everything a run needs to continue bit for bit. */
typedef struct bp_checkpoint_info {
    size_t struct_size;     /* set by bp_checkpoint_info_init */
    int64_t epoch;          /* epochs completed */
    int64_t step_in_epoch;  /* batches done in the epoch under way (0 after
                               a whole epoch) */
    int64_t total_epochs;   /* the run's planned epochs; 0 if unknown */
    int64_t batch;          /* the mini-batch size; 0 if unknown */
    uint64_t shuffle_seed;  /* the seed the shuffling started from */
    uint64_t shuffle_state; /* the shuffling generator's state now */
    int64_t schedule_step;  /* the learning-rate schedule's position */
    double base_lr;         /* the schedule's base learning rate */
    char schedule[32];      /* the schedule's name; "" for none */
} bp_checkpoint_info;

BP_API void bp_checkpoint_info_init_sized(bp_checkpoint_info *info, size_t size);
#define bp_checkpoint_info_init(info) \
    bp_checkpoint_info_init_sized((info), sizeof(bp_checkpoint_info))

/* Saves the network, its optimizer and info (NULL: zeros) as one file,
 * written atomically as bp_model_save writes models. info is checked as a
 * file's is when it is loaded (counts >= 0, base_lr finite and >= 0, the
 * schedule's name of letters, digits, '_', '-' and '.'), so a file it
 * writes is one bp_checkpoint_load accepts: BP_ERR_INVALID_ARGUMENT naming
 * the field otherwise. */
BP_API bp_status bp_checkpoint_save(const bp_network *net, const bp_checkpoint_info *info,
                                    const char *path);

/* Restores a checkpoint into net: parameters, the optimizer's
 * hyperparameters (lr included), state and step count; info (may be NULL;
 * its struct_size set) receives the loop's position. The network's layer
 * sizes, activations, loss and dtype, its optimizer's type and the switches
 * that decide which states it keeps (Adam's amsgrad) must be the file's: otherwise
 * BP_ERR_INVALID_ARGUMENT with a message that lists every difference. A file that is not a
 * checkpoint, is truncated or is corrupt is BP_ERR_FORMAT. On any failure the network is
 * unchanged. */
BP_API bp_status bp_checkpoint_load(bp_network *net, const char *path, bp_checkpoint_info *info);

/* Reads only a checkpoint's metadata: its optimizer (opt, may be NULL;
 * struct_size set) and the loop's position (info, may be NULL), e.g. to
 * set up the network before bp_checkpoint_load. */
BP_API bp_status bp_checkpoint_peek(const char *path, bp_optimizer *opt, bp_checkpoint_info *info);

/* A checkpoint opened once, for a run that needs what it holds before the
 * network exists (the optimizer, the position, the architecture) and then
 * restores it: bp_checkpoint_open reads and checks the whole header (as
 * bp_checkpoint_load does; BP_ERR_FORMAT, BP_ERR_IO) and keeps the file
 * open, so every later call reads that same file; bp_checkpoint_load and
 * bp_checkpoint_peek are open, restore or read, close. */
typedef struct bp_checkpoint bp_checkpoint;

BP_API bp_status bp_checkpoint_open(const char *path, bp_checkpoint **out);
/* NULL is a no-op. */
BP_API void bp_checkpoint_close(bp_checkpoint *ck);
/* Its optimizer and the loop's position, as bp_checkpoint_peek. */
BP_API bp_status bp_checkpoint_read(const bp_checkpoint *ck, bp_optimizer *opt,
                                    bp_checkpoint_info *info);
/* The network it holds: n_layers, sizes, activations, loss, dtype and
 * leaky_slope of *cfg (its struct_size set by _init) become the file's, the
 * other fields stay the caller's; sizes and activations point into ck and
 * stay valid until bp_checkpoint_close. */
BP_API bp_status bp_checkpoint_network(const bp_checkpoint *ck, bp_network_config *cfg);
/* bp_checkpoint_load from an open checkpoint. */
BP_API bp_status bp_checkpoint_restore(const bp_checkpoint *ck, bp_network *net,
                                       bp_checkpoint_info *info);

/* ------------------------------------------------------------------------ */
/* Data sets                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct bp_dataset bp_dataset;

typedef struct bp_dataset_options {
    size_t struct_size; /* set by bp_dataset_options_init */
    bp_dtype dtype;     /* type of the features (and targets); default BP_F32 */
    int label_column;   /* CSV: 0-based label column for classification;
                           -1 (default) = the column whose header cell is
                           "label", "class", "target" or "y" (any case, in
                           that order of preference) when the file has a
                           header, else the last column */
    int n_targets;      /* CSV: 0 (default) = classification with one label
                           column; k > 0 = regression, the last k columns are
                           real-valued targets */
    int header;         /* CSV: -1 (default) detect a header row, 0 none, 1 one */
    int unlabeled;      /* CSV: 1 = every column is a feature, no labels or
                           targets (data to predict on); default 0 */
    int n_features;     /* the features per sample the caller needs (a
                           network's inputs), or 0 (default): any. A file
                           with another count fails at its first row (CSV)
                           or header (IDX), before its data is read */
    char delimiter;     /* CSV: the field separator, ',' (default), ';', '\t',
                           '|' or ' ' (a space: fields separated by one or
                           more blanks); 0 means ',' */
    /* CSV, classification: the names of classes 0..n_class_names-1, when
     * labels are names (a model's classes, to read its test data with the
     * same numbers). NULL (default): names found in the data are numbered
     * in byte order. */
    const char *const *class_names;
    int n_class_names;
} bp_dataset_options;

BP_API void bp_dataset_options_init_sized(bp_dataset_options *opt, size_t size);
#define bp_dataset_options_init(opt) \
    bp_dataset_options_init_sized((opt), sizeof(bp_dataset_options))

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
 * (zlib included) is BP_ERR_OUT_OF_MEMORY.
 * Columns are numbered from 0 in messages, as label_column numbers them.
 * Labels that are names: when the first data row's label is text (not a
 * number), every label is a class name ("setosa"; at most 255 bytes,
 * surrounding double quotes removed): the distinct names are numbered in
 * byte order (as Python's sorted() and scikit-learn's LabelEncoder number
 * them) and the description's class_names lists them; with
 * options.class_names the given names and numbers are used, and a label
 * that is not among them is a BP_ERR_FORMAT error. A row whose fields are
 * numbers except a text label is data, not a header. */
BP_API bp_status bp_dataset_load(const char *path, const bp_dataset_options *opt, bp_dataset **out);
BP_API bp_status bp_dataset_load_idx(const char *images_path, const char *labels_path,
                                     const bp_dataset_options *opt, bp_dataset **out);
BP_API bp_status bp_dataset_load_csv(const char *path, const bp_dataset_options *opt,
                                     bp_dataset **out);
/* The largest class label a data set holds (so a class count fits an int
 * with room to spare). */
#define BP_MAX_LABEL 1000000

/* A data set from arrays in memory (copied): x [n, n_features] of dtype;
 * labels int32 [n] in [0, BP_MAX_LABEL] when n_targets == 0, else targets
 * [n, n_targets]. */
BP_API bp_status bp_dataset_create(int n, int n_features, int n_targets, bp_dtype dtype,
                                   const void *x, const int32_t *labels, const void *targets,
                                   bp_dataset **out);
/* The same over the caller's arrays, not copied (zero-copy, e.g. for a
 * language binding's arrays): they must stay unchanged and alive until
 * bp_dataset_free, which leaves them alone. Labels are checked (>= 0) as
 * bp_dataset_create checks them. */
BP_API bp_status bp_dataset_wrap(int n, int n_features, int n_targets, bp_dtype dtype, const void *x,
                                 const int32_t *labels, const void *targets, bp_dataset **out);
BP_API void bp_dataset_free(bp_dataset *ds);

/* Fashion-MNIST as the backprop command finds it: the directory dir, or
 * (dir NULL) the one named by the environment variable
 * BACKPROP_FASHION_MNIST_DIR when set and not empty, else
 * /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
 * bp_fashion_mnist_dir returns that directory (never NULL: dir, the
 * variable's value or the constant). bp_dataset_load_fashion_mnist loads
 * its train-images-idx3-ubyte.gz (into *train) and t10k-images-idx3-ubyte.gz
 * (into *test; either output may be NULL), labels beside them; when the
 * training file is not there it is BP_ERR_IO naming the directory and the
 * package, and nothing is loaded. */
#define BP_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#define BP_FASHION_MNIST_ENV "BACKPROP_FASHION_MNIST_DIR"
BP_API const char *bp_fashion_mnist_dir(const char *dir);
BP_API bp_status bp_dataset_load_fashion_mnist(const char *dir, bp_dtype dtype, bp_dataset **train,
                                               bp_dataset **test);

/* n samples of three interleaved spirals in the plane: 2 features, labels
 * 0, 1, 2 (sample i has label i % 3), generated from seed by the library's
 * counter-based generator (the same on every machine). The command's data
 * when no data file is given and Fashion-MNIST is absent. */
BP_API bp_status bp_dataset_spirals(int n, uint64_t seed, bp_dtype dtype, bp_dataset **out);

typedef struct bp_dataset_desc {
    size_t struct_size; /* the caller's size (the call sets it) */
    int n_samples;
    int n_features;
    int n_targets; /* 0: classification (labels); k: regression */
    int n_classes; /* classification: largest label + 1; 0 unlabeled */
    bp_dtype dtype;
    const void *x;         /* [n_samples, n_features] */
    const int32_t *labels; /* [n_samples], or NULL (regression, unlabeled) */
    const void *targets;   /* [n_samples, n_targets], or NULL */
    int header_rows;       /* CSV: 1 when the first row was a header and skipped */
    int label_column;      /* CSV classification: the label column read (0-based);
                              -1 otherwise */
    /* [n_classes] the class names when the labels were names, else NULL;
     * owned by the data set. */
    const char *const *class_names;
} bp_dataset_desc;

BP_API bp_status bp_dataset_describe_sized(const bp_dataset *ds, bp_dataset_desc *out, size_t size);
#define bp_dataset_describe(ds, out) \
    bp_dataset_describe_sized((ds), (out), sizeof(bp_dataset_desc))

/* Input scaling, as scikit-learn's StandardScaler: the per-feature mean
 * and standard deviation (population: divided by n) of a data set's
 * features, and their largest magnitude; each output is [n_features]
 * doubles and may be NULL. Computed in float64 whatever the dtype. */
BP_API bp_status bp_dataset_feature_stats(const bp_dataset *ds, double *mean, double *std,
                                          double *max_abs);
/* Transforms the features in place: x[i][j] = (x[i][j] - offset[j]) /
 * scale[j] (offset NULL: zeros). Every scale must be finite and non-zero
 * (BP_ERR_INVALID_ARGUMENT naming the feature, before any change); a
 * value that overflows the dtype is BP_ERR_NUMERIC and leaves the data
 * set unchanged. To standardize: offset = mean, scale = std with 0 (a
 * constant feature) replaced by 1. */
BP_API bp_status bp_dataset_scale(bp_dataset *ds, const double *offset, const double *scale);

/* ------------------------------------------------------------------------ */
/* Evaluating a network                                                      */
/* ------------------------------------------------------------------------ */

/* What an evaluation measured over its n samples. */
typedef struct bp_evaluation {
    size_t struct_size; /* the caller's size (the call sets it) */
    int n_samples;
    /* The mean per-sample loss, with the training loss's exact formula
     * (log-sum-exp cross-entropy, BCE on logits, 1/2-form MSE; see bp_loss):
     * the chunks' mean losses weighted by their sizes, i.e. the value the
     * training calls report for the same chunks. NaN without targets. */
    double loss;
    /* Samples whose predicted class (the largest output, the first of equal
     * ones) is their label, and correct / n_samples; 0 and NaN without
     * labels. */
    int correct;
    double accuracy;
} bp_evaluation;

/* Optional per-sample results of an evaluation; each field may be NULL.
 * Binary classification: a network with one output and the mse or bce
 * loss tells two classes apart; its output is the probability of class 1
 * (the sigmoid of the logit for bce), labels are 0 or 1, the target of a
 * label is the label itself and the predicted class is 1 when the output
 * exceeds 0.5. */
typedef struct bp_evaluation_outputs {
    size_t struct_size;   /* set by bp_evaluation_outputs_init */
    void *outputs;        /* [n, n_L] a^L in the network's dtype (softmax or
                             sigmoid probabilities for ce and bce) */
    int32_t *predictions; /* [n] predicted class: the index of the largest
                             output, the first of equal ones (binary: 1
                             when the output exceeds 0.5) */
    int64_t *confusion;   /* [K, K] counts, K = n_L (binary: 2), row =
                             label, column = predicted class; zeroed
                             first. Needs labels. */
} bp_evaluation_outputs;

/* Sets every field to NULL. */
BP_API void bp_evaluation_outputs_init_sized(bp_evaluation_outputs *out, size_t size);
#define bp_evaluation_outputs_init(out) \
    bp_evaluation_outputs_init_sized((out), sizeof(bp_evaluation_outputs))

/* Evaluates the network on n host samples: x [n, n_0]; targets in the
 * loss's form (int32 labels [n] for cross-entropy, reals [n, n_L]
 * otherwise) or NULL for no loss; labels int32 [n] class labels for the
 * accuracy and confusion matrix, or NULL (then, with cross-entropy, the
 * targets serve as labels). Every label must be in [0, n_L). n may exceed
 * max_batch: the samples go through in chunks of max_batch on the
 * network's backend, by the forward and output passes of a training step.
 * outputs may be NULL.
 *
 * Leaves the parameters, the gradients and the optimizer state untouched
 * (no backward pass, no update). It overwrites the network's step state:
 * after it, bp_network_get_layer_state gives z^l and a^l of the last chunk
 * and delta^L no longer belongs to the last backward pass. Allocates at
 * most two chunks of [max_batch, n_L] host reals per call, none per chunk,
 * and nothing on the device. */
BP_API bp_status bp_network_evaluate_sized(bp_network *net, const void *x, const void *targets,
                                           const int32_t *labels, int n,
                                           const bp_evaluation_outputs *outputs,
                                           bp_evaluation *result, size_t result_size);
#define bp_network_evaluate(net, x, targets, labels, n, outputs, result)                 \
    bp_network_evaluate_sized((net), (x), (targets), (labels), (n), (outputs), (result), \
                              sizeof(bp_evaluation))

/* bp_network_evaluate over a data set in the network's dtype with n_0
 * features. Classification data (labels) scores the accuracy; its loss
 * uses the labels for cross-entropy and their one-hot vectors for mse and
 * bce. Regression data (n_targets == n_L reals) has a loss and no
 * accuracy; cross-entropy on it is an error. Unlabeled data has neither
 * (outputs and predictions only). */
BP_API bp_status bp_network_evaluate_dataset_sized(bp_network *net, const bp_dataset *ds,
                                                   const bp_evaluation_outputs *outputs,
                                                   bp_evaluation *result, size_t result_size);
#define bp_network_evaluate_dataset(net, ds, outputs, result) \
    bp_network_evaluate_dataset_sized((net), (ds), (outputs), (result), sizeof(bp_evaluation))

/* ------------------------------------------------------------------------ */
/* Training runs: the trainer                                                */
/* ------------------------------------------------------------------------ */

/* A trainer runs the epochs of a training run over a data set: every epoch
 * a new order of the rows (SplitMix64 Fisher-Yates from the seed, uploaded
 * to the device once) and its steps taken on the device
 * (bp_network_set_epoch, bp_network_epoch_step: CUDA graphs where the
 * network uses them), the learning-rate schedule, the epoch's metrics on
 * the training steps and on validation data (bp_network_evaluate_dataset:
 * the training loss's formula), early stopping, checkpoints and resume. It
 * never prints: it reports through the callbacks of its config.
 *
 * Data-parallel runs go through the same loop: a trainer over several GPUs
 * of this process (config devices) makes a copy of the network on each
 * further GPU, drives each from a thread of its own and splits every
 * global batch between them; a trainer over a communicator (config comm,
 * e.g. from bp_comm_create_world under mpirun) is this process's rank of
 * the run, and every rank makes the same calls. Each replica gets the
 * training set once and takes its part of every batch by its device
 * cursor; the library tells the step the global batch, so a step needs no
 * host wait (docs/design.md, "Data-parallel training"). A last global batch
 * with fewer samples than ranks is skipped by every rank. The parameters
 * stay bit-identical on every rank and equal those of one process training
 * on the whole batches, to rounding.
 *
 * A checkpoint (bp_checkpoint_save's file with the trainer's own state in
 * its metadata and, with early stopping, the best parameters) written at
 * an epoch's end or in the middle of one resumes bit for bit: the run
 * after bp_trainer_resume ends with the parameters an uninterrupted run
 * ends with (same backend, device model and thread counts). */
typedef struct bp_trainer bp_trainer;

/* The learning rate of epoch e (0-based) is lr times a factor, lr being
 * the network's optimizer's when the trainer is made (the base):
 *   warm-up: (e + 1) / warmup_epochs for e < warmup_epochs, then over the
 *   E = epochs - warmup_epochs epochs after it, with f = e - warmup_epochs:
 *   CONSTANT  1
 *   COSINE    (1 + cos(pi f / E)) / 2
 *   STEP      step_gamma ^ floor(f / step_epochs)
 *   PLATEAU   plateau_factor ^ k, k growing by one each time the monitored
 *             loss (below) has not improved for plateau_patience epochs
 *             (the count then starts again), never below min_lr. */
typedef enum bp_schedule {
    BP_SCHEDULE_CONSTANT = 0,
    BP_SCHEDULE_COSINE = 1,
    BP_SCHEDULE_STEP = 2,
    BP_SCHEDULE_PLATEAU = 3
} bp_schedule;

/* "constant", "cosine", "step", "plateau"; NULL for an unknown value. The
 * parser accepts those names in any case (as the other _parse calls). */
BP_API const char *bp_schedule_name(bp_schedule schedule);
BP_API bp_status bp_schedule_parse(const char *name, bp_schedule *out);

/* After each step (every rank's part of it issued). */
typedef struct bp_trainer_step {
    size_t struct_size;      /* the library's size: a caller reads the fields it knows */
    int64_t epoch;           /* the epoch under way, 0-based */
    int64_t step;            /* steps of it done, 1 after its first */
    int64_t steps_per_epoch; /* global steps of an epoch */
    int64_t samples;         /* samples of the epoch done (all ranks) */
    double loss;             /* the step's mean loss over its global batch when it was
                                read (every report_every steps), else NaN */
    double lr;               /* the epoch's learning rate */
} bp_trainer_step;

/* After each epoch: its figures. The monitored loss, which early stopping
 * and the plateau schedule watch, is val_loss with validation data and
 * train_loss without. */
typedef struct bp_trainer_epoch {
    size_t struct_size;    /* the library's size: a caller reads the fields it knows */
    int64_t epoch;         /* epochs done, 1 after the first */
    int64_t epochs;        /* the run's planned epochs */
    double lr;             /* the epoch's learning rate */
    double train_loss;     /* mean per-sample loss of the epoch's steps, all ranks */
    double train_accuracy; /* their correct predictions / samples (cross-entropy),
                              else NaN */
    int64_t samples;       /* samples trained on in the epoch, all ranks */
    double val_loss;       /* on the validation data; NaN without */
    double val_accuracy;   /* NaN without validation data or labels */
    int64_t val_samples;
    double seconds;      /* the epoch's wall time, its evaluation included */
    int improved;        /* the monitored loss fell by more than min_delta */
    int64_t best_epoch;  /* the epoch (1-based) of the best monitored loss */
    double best_loss;    /* that loss */
    int stopping;        /* early stopping ends the run after this epoch */
    int rank;            /* this process's first rank (0 alone) */
    bp_network *network; /* the trainer's network (rank 0 of this process), for
                            the callback's own evaluations during the call */
} bp_trainer_epoch;

typedef void (*bp_trainer_step_fn)(void *user, const bp_trainer_step *step);
typedef void (*bp_trainer_epoch_fn)(void *user, const bp_trainer_epoch *epoch);
/* Non-zero: end the run after the current step (e.g. on Ctrl-C). */
typedef int (*bp_trainer_stop_fn)(void *user);

typedef struct bp_trainer_config {
    size_t struct_size;             /* set by bp_trainer_config_init */
    int64_t epochs;                 /* >= 1, default 10 */
    int batch;                      /* the global mini-batch, default 32; each rank's part
                                       <= its network's max_batch */
    uint64_t seed;                  /* the shuffles and the validation split, default 1 */
    int shuffle;                    /* 1 (default): a new order every epoch; 0: the data's */
    double validation_fraction;     /* in [0, 1), default 0: this fraction of the training
                                       set's rows (chosen from seed, at least one) is held
                                       out, never trained on, and evaluated after every
                                       epoch. Not with a validation data set. */
    bp_schedule schedule;           /* default BP_SCHEDULE_CONSTANT */
    int64_t warmup_epochs;          /* >= 0, < epochs; default 0 */
    int64_t step_epochs;            /* STEP: >= 1, default 10 */
    double step_gamma;              /* STEP: in (0, 1], default 0.1 */
    double plateau_factor;          /* PLATEAU: in (0, 1), default 0.1 */
    int64_t plateau_patience;       /* PLATEAU: >= 1, default 10 */
    double min_lr;                  /* PLATEAU's floor, >= 0, default 0 */
    int64_t patience;               /* early stopping: the run ends once the monitored loss
                                       has not improved for this many epochs; 0 (default):
                                       never */
    double min_delta;               /* >= 0: an improvement is a fall by more than this
                                       (early stopping and PLATEAU); default 0 */
    int restore_best;               /* with patience: 1 (default) the network ends with the
                                       parameters of its best epoch; 0: its last */
    const char *checkpoint;         /* a file rewritten (atomically) by the checkpoints
                                       below and when should_stop ends a run; NULL (default):
                                       none. Written by rank 0 only. */
    int64_t checkpoint_epochs;      /* with checkpoint: every this many epochs, default 1 */
    int64_t checkpoint_steps;       /* with checkpoint: every this many steps, default 0
                                       (never inside an epoch) */
    int64_t report_every;           /* read the step's loss for on_step every this many
                                       steps (a wait for the device); default 0: never.
                                       Under MPI the ranks also agree on should_stop at
                                       those steps (every 16 steps when 0) */
    bp_trainer_step_fn on_step;     /* may be NULL */
    bp_trainer_epoch_fn on_epoch;   /* may be NULL */
    bp_trainer_stop_fn should_stop; /* asked after every step; may be NULL */
    void *user;                     /* passed to the callbacks */
    /* Data-parallel (at most one of the two): */
    int n_devices;      /* > 1: one process, these GPUs: the network must be on
                           devices[0] (CUDA); default 0 (or 1): the network alone */
    const int *devices; /* n_devices CUDA ordinals, no repeats */
    bp_comm *comm;      /* ranks over MPI or NCCL: the network is joined to it here
                           (or already is); NULL (default): not */
} bp_trainer_config;

BP_API void bp_trainer_config_init_sized(bp_trainer_config *cfg, size_t size);
#define bp_trainer_config_init(cfg) bp_trainer_config_init_sized((cfg), sizeof(bp_trainer_config))

/* A trainer for net (which it trains and leaves to the caller: free the
 * trainer first), with its optimizer as set and its lr as the schedule's
 * base. train: labelled data for classification (cross-entropy learns the
 * labels; mse and bce their one-hot vectors) or n_L real targets per
 * sample, in the network's dtype with n_0 features, copied to the
 * device(s) here. validation (may be NULL) likewise, evaluated after every
 * epoch. Both are used by reference (resuming splits the training set
 * again): they must outlive the trainer. cfg may be NULL (the defaults).
 * cfg->checkpoint is copied. Made data-parallel
 * (devices, comm), it creates the other devices' networks and threads and
 * joins the ranks here (collective). */
BP_API bp_status bp_trainer_create(bp_network *net, const bp_dataset *train,
                                   const bp_dataset *validation, const bp_trainer_config *cfg,
                                   bp_trainer **out);

/* Continues the run a checkpoint of a trainer holds: the network's
 * parameters and optimizer (bp_checkpoint_load), the run's position, its
 * shuffles and schedule state, early stopping's state and best parameters.
 * The checkpoint's seed, batch, shuffle, validation fraction, schedule,
 * warm-up, patience, min_delta and restore_best replace the config's (they
 * define the run); epochs stays the config's (a longer run may continue a
 * shorter one's checkpoint, and the cosine schedule then stretches).
 * BP_ERR_INVALID_ARGUMENT when the checkpoint's data split does not fit
 * the training set (a different data set). Before bp_trainer_fit. */
BP_API bp_status bp_trainer_resume(bp_trainer *t, const char *checkpoint);

/* The configuration the trainer runs with: the config it was created with
 * (pointers and callbacks included) after bp_trainer_resume replaced the
 * values the checkpoint defines, so a program can see, or compare with
 * its own settings, what the resumed run does. Filled up to the caller's
 * sizeof(bp_trainer_config). */
BP_API bp_status bp_trainer_get_config_sized(const bp_trainer *t, bp_trainer_config *out,
                                             size_t size);
#define bp_trainer_get_config(t, out) \
    bp_trainer_get_config_sized((t), (out), sizeof(bp_trainer_config))

/* What a fit did. */
typedef struct bp_trainer_result {
    size_t struct_size; /* the caller's size (the call sets it) */
    int64_t epochs;     /* epochs done in all (resumed ones included) */
    int64_t steps;      /* steps taken by this call */
    int stopped;        /* should_stop ended it (after a checkpoint, if any) */
    int early_stopped;  /* patience ran out */
    int64_t best_epoch; /* with validation or patience: the best epoch, 1-based */
    double best_loss;
    double train_loss; /* the last epoch's figures (NaN when none) */
    double val_loss;
    double val_accuracy;
} bp_trainer_result;

/* Trains until the planned epochs are done, early stopping ends the run or
 * should_stop asks. result (may be NULL; filled to the caller's size) says how it
 * ended. A step whose loss or gradients are not finite ends the run with
 * BP_ERR_NUMERIC naming the epoch (its update was skipped). Calling it
 * again after it ended returns BP_OK at once; after a stop it goes on. */
BP_API bp_status bp_trainer_fit_sized(bp_trainer *t, bp_trainer_result *result, size_t result_size);
#define bp_trainer_fit(t, result) bp_trainer_fit_sized((t), (result), sizeof(bp_trainer_result))

/* What a trainer runs over. */
typedef struct bp_trainer_desc {
    size_t struct_size;      /* the caller's size (the call sets it) */
    int64_t train_rows;      /* rows trained on (after the validation split) */
    int64_t val_rows;        /* validation rows: held out, or the validation set's */
    int64_t steps_per_epoch; /* global steps */
    int rank, size;          /* this process's first rank and the number of ranks */
    int replicas;            /* networks this process drives (its GPUs) */
} bp_trainer_desc;

BP_API bp_status bp_trainer_describe_sized(const bp_trainer *t, bp_trainer_desc *out, size_t size);
#define bp_trainer_describe(t, out) bp_trainer_describe_sized((t), (out), sizeof(bp_trainer_desc))

/* Frees the trainer, its replicas, threads and device copies of the data;
 * the caller's network stays (and leaves the communicator the trainer
 * joined it to). NULL is a no-op. */
BP_API void bp_trainer_free(bp_trainer *t);

#ifdef __cplusplus
}
#endif

#endif /* BACKPROP_H */
