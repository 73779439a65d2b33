/*
 * Socket addresses for the suites that build an environ without a socket:
 * the peer and local addresses a request seems to come from and arrive at.
 */
#ifndef CSGI_TESTS_TEST_SOCKADDR_H
#define CSGI_TESTS_TEST_SOCKADDR_H

#include <sys/socket.h>

/* Set *storage (borrowed) to the IPv4 address (dotted text) and port; fails
   the running test when address does not parse. */
void test_set_inet(struct sockaddr_storage *storage, const char *address, unsigned port);

/* The same for an IPv6 address. */
void test_set_inet6(struct sockaddr_storage *storage, const char *address, unsigned port);

#endif
