#include "util/grow.h"

#include <stdlib.h>

bool ews_grow(void **v, size_t *cap, size_t need, size_t size)
{
        size_t n = *cap ? *cap : 64;
        void *p;

        if (need <= *cap)
                return true;
        while (n < need)
                n *= 2;
        p = realloc(*v, n * size);
        if (!p)
                return false;
        *v = p;
        *cap = n;
        return true;
}
