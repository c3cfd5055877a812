#ifndef DANN_COPENBLAS_SHIM_H
#define DANN_COPENBLAS_SHIM_H
#include <cblas.h>
/* Declared by OpenBLAS's cblas.h on Debian; repeated here so older headers also expose them. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
#endif
