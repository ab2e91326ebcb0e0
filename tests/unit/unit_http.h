/*
 * A loopback HTTP client for the unit tests that start the operations
 * endpoint (ops/http.h) without any other process: a free port, and one
 * request with the whole response read back. cmocka asserts on failure.
 */
#ifndef EWS_UNIT_HTTP_H
#define EWS_UNIT_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static inline int unit_free_port(void)
{
        struct sockaddr_in addr = {.sin_family = AF_INET};
        socklen_t len = sizeof(addr);
        int fd = socket(AF_INET, SOCK_STREAM, 0), port;

        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
        port = ntohs(addr.sin_port);
        close(fd);
        return port;
}

/* method path from 127.0.0.1:port with an optional Authorization header;
 * the whole response, headers included. The caller frees it. */
static inline char *unit_http(int port, const char *method, const char *path,
                              const char *authorization)
{
        struct sockaddr_in addr = {.sin_family = AF_INET};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        char *buf = calloc(1, 65536);
        size_t used = 0;
        ssize_t n;

        addr.sin_port = htons((uint16_t)port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_non_null(buf);
        assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)),
                         0);
        dprintf(fd, "%s %s HTTP/1.0\r\nHost: x\r\n", method, path);
        if (authorization)
                dprintf(fd, "Authorization: %s\r\n", authorization);
        dprintf(fd, "\r\n");
        while (used < 65535 && (n = read(fd, buf + used, 65535 - used)) > 0)
                used += (size_t)n;
        close(fd);
        return buf;
}

#endif
