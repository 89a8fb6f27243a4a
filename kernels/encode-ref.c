/* encode-ref.c - the encoders of encode.h over portable lanes: the reference. */
#include "quants.h"

#include <math.h>

#include "lanes.h"

#define ENC_SFX ref
#include "encode.h"
