// OpenBLAS: single-precision GEMM and the thread-count controls. Debian's libopenblas-dev.
#include <cblas.h>
