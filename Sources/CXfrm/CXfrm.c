#define _GNU_SOURCE
#include "CXfrm.h"
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *namespace_path;
    int protocol;
    mw_netns_open_result result;
} mw_netns_job;

static void mw_fail(mw_netns_job *job, const char *step) {
    job->result.error = errno;
    job->result.failed_step = step;
}

static void mw_open_here(mw_netns_job *job, const char *statistics_path) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, job->protocol);
    if (fd < 0) {
        mw_fail(job, "socket(AF_NETLINK)");
        return;
    }
    job->result.socket_fd = fd;
    job->result.statistics_fd = open(statistics_path, O_RDONLY | O_CLOEXEC);
}

static void *mw_netns_thread(void *argument) {
    mw_netns_job *job = argument;
    int original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (original < 0) {
        mw_fail(job, "open /proc/thread-self/ns/net");
        return NULL;
    }
    int target = open(job->namespace_path, O_RDONLY | O_CLOEXEC);
    if (target < 0) {
        mw_fail(job, "open namespace");
        close(original);
        return NULL;
    }
    if (setns(target, CLONE_NEWNET) != 0) {
        mw_fail(job, "setns");
        close(target);
        close(original);
        return NULL;
    }
    close(target);
    mw_open_here(job, "/proc/thread-self/net/xfrm_stat");
    if (setns(original, CLONE_NEWNET) != 0 && job->result.error == 0) {
        // The thread ends right away, so no code runs in the wrong namespace; still, say so.
        mw_fail(job, "setns back to the original namespace");
    }
    close(original);
    return NULL;
}

mw_netns_open_result mw_open_in_netns(const char *namespace_path, int protocol) {
    mw_netns_job job = {namespace_path, protocol, {-1, -1, 0, NULL}};
    if (namespace_path == NULL) {
        mw_open_here(&job, "/proc/self/net/xfrm_stat");
        return job.result;
    }
    pthread_t thread;
    int status = pthread_create(&thread, NULL, mw_netns_thread, &job);
    if (status != 0) {
        job.result.error = status;
        job.result.failed_step = "pthread_create";
        return job.result;
    }
    pthread_join(thread, NULL);
    if (job.result.error != 0) {
        if (job.result.socket_fd >= 0) close(job.result.socket_fd);
        if (job.result.statistics_fd >= 0) close(job.result.statistics_fd);
        job.result.socket_fd = -1;
        job.result.statistics_fd = -1;
    }
    return job.result;
}

int mw_receive_many(int fd, void *buffer, size_t slot_bytes, unsigned slots, unsigned *lengths, int *truncated) {
    struct mmsghdr headers[slots];
    struct iovec vectors[slots];
    memset(headers, 0, sizeof(headers));
    for (unsigned index = 0; index < slots; index++) {
        vectors[index].iov_base = (char *)buffer + index * slot_bytes;
        vectors[index].iov_len = slot_bytes;
        headers[index].msg_hdr.msg_iov = &vectors[index];
        headers[index].msg_hdr.msg_iovlen = 1;
    }
    int received = recvmmsg(fd, headers, slots, MSG_WAITFORONE, NULL);
    *truncated = 0;
    for (int index = 0; index < received; index++) {
        lengths[index] = headers[index].msg_len;
        if (headers[index].msg_hdr.msg_flags & MSG_TRUNC) *truncated = 1;
    }
    return received;
}
