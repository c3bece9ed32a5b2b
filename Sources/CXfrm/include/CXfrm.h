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
#endif
