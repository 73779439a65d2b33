/* IPv4 and IPv6 socket addresses from text (test_sockaddr.h). */
#include "test_sockaddr.h"

#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

void test_set_inet(struct sockaddr_storage *storage, const char *address, unsigned port)
{
    struct sockaddr_in *in = (struct sockaddr_in *)storage;
    memset(storage, 0, sizeof(*storage));
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    ck_assert_int_eq(inet_pton(AF_INET, address, &in->sin_addr), 1);
}

void test_set_inet6(struct sockaddr_storage *storage, const char *address, unsigned port)
{
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)storage;
    memset(storage, 0, sizeof(*storage));
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    ck_assert_int_eq(inet_pton(AF_INET6, address, &in6->sin6_addr), 1);
}
