#ifndef DANN_CPNG_SHIM_H
#define DANN_CPNG_SHIM_H
#include <png.h>
#endif
