// <sys/types.h> must come first: libevent's event-config.h defines
// _GNU_SOURCE, and without this include Swift reports a conflicting fd_set
// definition between CLibevent and SwiftGlibc (see docs/architecture.md §15).
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <event2/listener.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
