# Data sets and model files.
list(APPEND BP_IO_SOURCES
  src/io/read.c
  src/io/dataset.c
  src/io/idx.c
  src/io/csv.c
  src/io/json.c
  src/io/safetensors.c
  src/io/replace_file.c)
