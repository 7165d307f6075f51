// libsystemd: sd_notify, sd_listen_fds_with_names, the journal. Debian's libsystemd-dev.
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
