# The library's sources, by folder (docs/design.md, section 10, is the map).
# The CUDA backend's sources are chosen in cmake/cuda.cmake and the
# data-parallel engines in cmake/dist.cmake.
set(BP_SOURCES
  # api/: the status and message of the last error, the public enums'
  # names, structs that grow
  src/api/error.c
  src/api/names.c
  src/api/struct_size.c
  # core/: the network, the algorithm and the step, optimizers, evaluation
  src/core/network.c
  src/core/batch.c
  src/core/buffer.c
  src/core/train.c
  src/core/step_state.c
  src/core/optimizer.c
  src/core/optimizers.c
  src/core/evaluate.c
  src/core/metadata.c
  src/core/mixed.c
  src/core/memory.c
  # check/: gradient check, CPU-vs-GPU comparison
  src/check/gradcheck.c
  src/check/compare.c
  # backend/: the table of operations, which are built, the CPU backend
  # (its operations, its threads, its GEMMs in blocks)
  src/backend/registry.c
  src/backend/cpu.c
  src/backend/cpu_pool.c
  src/backend/cpu_gemm.c
  src/backend/cpu_fused.c
  src/backend/cpu_params.c
  src/backend/cpu_memory.c
  src/backend/cpu_threads.c
  src/backend/cpu_output.c
  src/backend/cpu_mixed.c
  # data/: data sets (IDX, CSV)
  src/data/dataset.c
  src/data/idx.c
  src/data/csv.c
  src/data/class_names.c
  src/data/scaling.c
  src/data/builtin.c
  # train/: the trainer (epochs, schedules, validation, early stopping,
  # checkpoints, the data-parallel group)
  src/train/trainer.c
  src/train/schedule.c
  src/train/rows.c
  src/train/replicas.c
  src/train/run_state.c
  # format/: model files and checkpoints (safetensors, its JSON header)
  src/format/json.c
  src/format/safetensors.c
  src/format/model.c
  src/format/checkpoint.c
  # sys/: reading files, replacing them safely, the C locale
  src/sys/read.c
  src/sys/replace_file.c
  src/sys/c_locale.c)
# Every internal header is named from src/ ("core/network.h"); the shared
# per-element math and the step scalars from kernels/ ("bp_math.h").
set(BP_INTERNAL_INCLUDE_DIRS ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/kernels)
