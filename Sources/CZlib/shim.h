// zlib: gzip decoding of the IDX data sets. Debian's zlib1g-dev.
#include <zlib.h>
