/* buffer.h — a block of a network's device memory (internal layout). */
#ifndef BP_BUFFER_H
#define BP_BUFFER_H

#include "backprop.h"

struct bp_buffer {
    bp_network *net;
    void *ptr;
    size_t bytes;
};

#endif
