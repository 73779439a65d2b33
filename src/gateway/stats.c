/*
 * The server's live figures for applications (csgi_server_stats_get() in
 * include/csgi/server.h).
 *
 * A process serves with at most one server at a time that applications
 * ask about: the last one csgi_server_start() started here. Its own
 * figures come from its engine, exact. With workers, the master maps a
 * board before its first fork: a slot per living worker, into which each
 * worker's loop 0 copies its figures once a second, and the requests of
 * the workers that ended. A worker reads the others from there, so a
 * figure that includes other workers is at most a second old.
 */
#include "gateway/server_private.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Enough for any worker count csgi-serve takes; a worker past it serves
   but is not counted (logged by the master). */
#define BOARD_SLOTS 512

struct csgi_server__board_slot {
    _Atomic long pid; /* 0: free */
    _Atomic unsigned long long requests;
    _Atomic unsigned long long connections;
    char pad[64 - sizeof(long) - 2 * sizeof(unsigned long long)]; /* a cache line each */
};

struct csgi_server__board {
    long long started;                           /* the master's start, Unix seconds */
    _Atomic unsigned long long retired_requests; /* of the workers that ended */
    csgi_server__board_slot slots[BOARD_SLOTS];
};

static _Atomic(csgi_server *) serving;
static _Atomic long long serving_since; /* Unix seconds */
/* In a worker: the master's board and this worker's slot on it. */
static csgi_server__board *worker_board;
static csgi_server__board_slot *worker_slot;

csgi_server__board *csgi_server__board_new(void)
{
    void *p = mmap(NULL, sizeof(csgi_server__board), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    csgi_server__board *board = p; /* zeroed by mmap */
    board->started = (long long)time(NULL);
    return board;
}

void csgi_server__board_free(csgi_server__board *board)
{
    if (board)
        munmap(board, sizeof(*board));
}

csgi_server__board_slot *csgi_server__board_claim(csgi_server__board *board)
{
    if (!board)
        return NULL;
    for (size_t i = 0; i < BOARD_SLOTS; i++) {
        csgi_server__board_slot *slot = &board->slots[i];
        long expected = 0;
        /* -1 holds it until the worker's pid is known */
        if (atomic_compare_exchange_strong(&slot->pid, &expected, -1)) {
            atomic_store(&slot->requests, 0);
            atomic_store(&slot->connections, 0);
            return slot;
        }
    }
    return NULL;
}

void csgi_server__board_taken(csgi_server__board_slot *slot, pid_t pid)
{
    if (slot)
        atomic_store(&slot->pid, (long)pid);
}

void csgi_server__board_release(csgi_server__board *board, csgi_server__board_slot *slot)
{
    if (!board || !slot)
        return;
    atomic_fetch_add(&board->retired_requests, atomic_load(&slot->requests));
    atomic_store(&slot->requests, 0);
    atomic_store(&slot->connections, 0);
    atomic_store(&slot->pid, 0);
}

void csgi_server__board_join(csgi_server__board *board, csgi_server__board_slot *slot)
{
    worker_board = board;
    worker_slot = slot; /* its pid is the master's to write (board_taken) */
}

csgi_server__board_slot *csgi_server__board_own_slot(void)
{
    return worker_slot;
}

_Atomic unsigned long long *csgi_server__board_requests(csgi_server__board_slot *slot)
{
    return slot ? &slot->requests : NULL;
}

_Atomic unsigned long long *csgi_server__board_connections(csgi_server__board_slot *slot)
{
    return slot ? &slot->connections : NULL;
}

void csgi_server__stats_serving(csgi_server *server)
{
    atomic_store(&serving_since, (long long)time(NULL));
    atomic_store(&serving, server);
}

void csgi_server__stats_gone(csgi_server *server)
{
    csgi_server *expected = server;
    atomic_compare_exchange_strong(&serving, &expected, NULL);
}

int csgi_server_stats_get(csgi_server_stats *out)
{
    if (!out || out->version != CSGI_SERVER_STATS_VERSION)
        return CSGI_EINVAL;
    csgi_server *server = atomic_load(&serving);
    if (!server)
        return CSGI_ESTATE;
    unsigned version = out->version;
    memset(out, 0, sizeof(*out));
    out->version = version;
    out->process_requests = csgi_http__engine_request_count(server->engine);
    out->process_connections = csgi_http__engine_connection_count(server->engine);
    out->threads = csgi_http__engine_loop_count(server->engine);
    out->requests = out->process_requests;
    out->connections = out->process_connections;
    out->started = atomic_load(&serving_since);
    if (worker_board) {
        out->started = worker_board->started;
        out->requests +=
            atomic_load_explicit(&worker_board->retired_requests, memory_order_relaxed);
        out->workers = worker_slot ? 1 : 0;
        for (size_t i = 0; i < BOARD_SLOTS; i++) {
            csgi_server__board_slot *slot = &worker_board->slots[i];
            if (slot == worker_slot || atomic_load_explicit(&slot->pid, memory_order_relaxed) <= 0)
                continue;
            out->workers++;
            out->requests += atomic_load_explicit(&slot->requests, memory_order_relaxed);
            out->connections += atomic_load_explicit(&slot->connections, memory_order_relaxed);
        }
    }
    long long now = (long long)time(NULL);
    out->uptime = now > out->started ? (double)(now - out->started) : 0;
    return 0;
}
