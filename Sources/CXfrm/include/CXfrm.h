#ifndef MESHWARD_CXFRM_H
#define MESHWARD_CXFRM_H
// <netinet/in.h> must come before <linux/xfrm.h>: the other order does not compile in Swift.
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <sched.h>
#include <fcntl.h>
#include <unistd.h>

/// What `mw_open_in_netns` opened, or where it failed.
typedef struct {
    /// The netlink socket (created inside the namespace), or -1.
    int socket_fd;
    /// `/proc/thread-self/net/xfrm_stat` opened inside the namespace, or -1 when the kernel
    /// has no XFRM statistics.
    int statistics_fd;
    /// 0, or the errno of the step that failed.
    int error;
    /// The step that failed (a static string), or NULL.
    const char *failed_step;
} mw_netns_open_result;

/// Opens a netlink socket of `protocol` and the XFRM statistics file inside the network
/// namespace at `namespace_path` (NULL: the process's current namespace).
///
/// The namespace switch happens on a short-lived thread of its own, which switches back before
/// it ends: no other thread of the process ever changes namespace. A socket stays in the
/// namespace in which it was created, and so does an open `/proc/.../net` file.
mw_netns_open_result mw_open_in_netns(const char *namespace_path, int protocol);

/// Receives up to `slots` datagrams into consecutive slots of `slot_bytes` each of `buffer`
/// with one `recvmmsg`, waiting for the first only (`MSG_WAITFORONE`). Stores each datagram's
/// length in `lengths` and sets `*truncated` when one did not fit its slot. Returns the number
/// of datagrams, or -1 with `errno` set.
int mw_receive_many(int fd, void *buffer, size_t slot_bytes, unsigned slots, unsigned *lengths, int *truncated);

#endif
