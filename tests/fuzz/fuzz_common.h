/*
 * What the libFuzzer targets share: the entry point's declaration, CHECK
 * (abort on a broken invariant, so the fuzzer reports it, after saying which
 * one: CI keeps only the end of a fuzzer's output), a hash of the
 * input and a generator seeded with it, so that every run of one input
 * makes the same choices.
 */
#ifndef CSGI_TESTS_FUZZ_COMMON_H
#define CSGI_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* FNV-1a of the input's bytes. */
static inline uint64_t fuzz_hash(const uint8_t *data, size_t size)
{
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ data[i]) * 0x100000001b3ULL;
    return hash;
}

/* A seed for fuzz_next_random: the input's hash, never 0 (xorshift would
   stay at 0). */
static inline uint64_t fuzz_seed(const uint8_t *data, size_t size)
{
    uint64_t hash = fuzz_hash(data, size);
    return hash ? hash : 1;
}

/* xorshift64*: the next number from *state (not 0). */
static inline uint64_t fuzz_next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1DULL;
}

#endif
