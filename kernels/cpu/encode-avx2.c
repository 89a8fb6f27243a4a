/* encode-avx2.c - the encoders of encode.h over AVX2 lanes: the same bytes as encode-ref.c. */
#include "quants.h"

#if defined(__x86_64__) || defined(__i386__)
#include <math.h>

#define ISQ_LANES_AVX2 1
#include "lanes.h"

#define ENC_SFX avx2
#include "encode.h"
#endif
