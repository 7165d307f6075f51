// liblz4: the frame API (streaming, content checksums). Debian's liblz4-dev.
#include <lz4frame.h>
