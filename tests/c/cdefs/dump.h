/* cffi declarations: the dump section of pygoro.h and the dump test helpers
 * (tests/c/helpers/dump.c). */

/* cdef-only */
size_t goro_dump_buf(char *buf, size_t size);
/* end cdef-only */

/* helpers/dump.c */
uint64_t dump_park_all(void);
int dump_release_all(void);
