#ifndef DANN_CZLIB_SHIM_H
#define DANN_CZLIB_SHIM_H
#include <zlib.h>
/* inflateInit2 is a macro; Swift needs a function. */
static inline int dann_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
static inline int dann_deflateInit2(z_streamp strm, int level, int windowBits) {
    return deflateInit2(strm, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}
#endif
