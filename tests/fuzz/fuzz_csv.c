/* fuzz_csv.c — the CSV loader. The first byte chooses the options (dtype,
 * header -1/0/1, targets 0..3, unlabeled, label column -1..2); the rest is
 * the file. */
#include "backprop.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int o = data[0];
    char path[64];
    int fd = fuzz_file(data + 1, size - 1, path);
    if (fd < 0)
        return 0;
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.dtype = o & 1 ? BP_F64 : BP_F32;
    opt.header = (o >> 1) % 3 - 1;
    opt.unlabeled = (o >> 3) & 1;
    opt.n_targets = opt.unlabeled ? 0 : (o >> 4) & 3;
    opt.label_column = (o >> 6) - 1;
    bp_dataset *ds = NULL;
    if (bp_dataset_load_csv(path, &opt, &ds) == BP_OK) {
        bp_dataset_desc d;
        bp_dataset_describe(ds, &d);
        if (d.n_samples < 1 || d.n_features < 1)
            __builtin_trap();
        bp_dataset_free(ds);
    }
    close(fd);
    return 0;
}
