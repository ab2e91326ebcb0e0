/*
 * Growing arrays: the one helper every module that keeps a reusable,
 * growing buffer (batch scratch, outbox records, id lists) uses, so that
 * none of them reaches into another for it.
 */
#ifndef EWS_GROW_H
#define EWS_GROW_H

#include <stdbool.h>
#include <stddef.h>

/* Makes *v, an array of *cap elements of size bytes, hold at least need:
 * reallocated to a doubling capacity (64 at first), *cap updated. The
 * caller owns *v and frees it. False when out of memory, *v unchanged. */
bool ews_grow(void **v, size_t *cap, size_t need, size_t size);

#endif
