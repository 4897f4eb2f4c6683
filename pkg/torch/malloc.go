package torch

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
static long long st_malloc_mapped(void) { return (long long)mallinfo2().hblkhd; }
#else
static long long st_malloc_mapped(void) { return -1; }
#endif
*/
import "C"

// MallocMappedBytes is what the C allocator currently holds in blocks mapped on their own (glibc's
// mallinfo2 hblkhd): each such block is unmapped when freed and faulted in afresh when allocated
// again. -1 where the C library does not say (not glibc).
func MallocMappedBytes() int64 { return int64(C.st_malloc_mapped()) }
