/*
 * io.h - reading inputs and writing outputs.
 *
 * Inputs: isq_map_open() gives the whole content of a path as bytes.
 *   - "-" reads standard input;
 *   - a regular file is mmap'd read-only (zero copy); pipes, FIFOs and
 *     anything mmap refuses fall back to read() into a malloc'd buffer;
 *   - content starting with the zstd magic (28 b5 2f fd) is decompressed
 *     transparently (streaming, into a malloc'd buffer) unless
 *     ISQ_MAP_RAW is given.
 *
 * Outputs: struct isq_out writes a data file atomically.  A path is written
 * to a temporary file in the same directory ("<dir>/.<name>.XXXXXX"), which
 * isq_out_commit() fsyncs and renames into place; isq_out_abort(), a failed
 * write, exit through isq_die(), or SIGINT/SIGTERM/SIGHUP/SIGPIPE remove it,
 * so a failed run never leaves a partial output.  "-" writes to standard
 * output (no atomicity possible); the memory mode writes into a struct
 * isq_buf (tests, fuzzing, in-process pipelines).
 */
#ifndef ISQ_IO_H
#define ISQ_IO_H

#include "buf.h"

#include <sys/types.h>

enum isq_map_flags {
	ISQ_MAP_RAW = 1 << 0, /* do not decompress zstd */
};

struct isq_map {
	const uint8_t *data; /* the content; valid until isq_map_release() */
	uint64_t size;
	/* private */
	void *mmap_base;
	size_t mmap_len;
	void *heap;
};

/*
 * Map or read the whole of PATH ("-" = stdin).  Returns 0, or ISQ_EIO /
 * ISQ_ENOTFOUND / ISQ_ENOMEM / ISQ_EFORMAT (corrupt zstd frame) with a
 * message in *e that names the path ("model.gguf: No such file or directory").
 * A directory is ISQ_EINVAL ("is a directory").
 */
int isq_map_open(struct isq_map *m, const char *path, unsigned flags, struct isq_errbuf *e);
/* Wrap caller-owned memory (not copied, not freed): tests and fuzzers. */
void isq_map_from_memory(struct isq_map *m, const void *data, uint64_t size);
void isq_map_release(struct isq_map *m);
/*
 * Tell the kernel a byte range of a mapped input has been consumed and its
 * pages can be dropped (madvise DONTNEED); keeps the RSS of streaming
 * conversions flat.  A no-op for heap-backed maps.
 */
void isq_map_drop(struct isq_map *m, uint64_t offset, uint64_t len);

/* Read a whole (small) file into a NUL-terminated heap buffer; "-" = stdin. zstd is decompressed. */
int isq_read_file(const char *path, struct isq_buf *out, struct isq_errbuf *e);

/* 1 if PATH is an existing directory, 0 otherwise. */
int isq_is_dir(const char *path);
/* 1 if PATH exists (any type). */
int isq_path_exists(const char *path);
/* "dir/name" into out (reset first). */
int isq_path_join(struct isq_buf *out, const char *dir, const char *name);

enum isq_out_kind { ISQ_OUT_FILE, ISQ_OUT_STDOUT, ISQ_OUT_MEMORY };

struct isq_out {
	enum isq_out_kind kind;
	int fd;
	char *path;  /* final path (FILE) */
	char *tmp;   /* temporary path (FILE) */
	struct isq_buf *mem; /* MEMORY */
	uint64_t written;    /* bytes accepted so far */
	int failed;
	struct isq_errbuf err;
};

/*
 * Open an output: PATH "-" is stdout; anything else an atomic file.
 * Returns 0 or ISQ_EIO with a message in o->err.
 */
int isq_out_open(struct isq_out *o, const char *path);
/* Write into *mem (appended). */
void isq_out_open_memory(struct isq_out *o, struct isq_buf *mem);
/*
 * Write all of p[0..n).  Returns 0, ISQ_ENOSPC ("no space left on device"),
 * ISQ_EPIPE (stdout reader went away), or ISQ_EIO; after a failure every
 * further write fails the same way and commit fails.
 */
int isq_out_write(struct isq_out *o, const void *p, size_t n);
/* Write n zero bytes (padding). */
int isq_out_zeros(struct isq_out *o, size_t n);
/* fsync + rename into place (FILE), flush (STDOUT).  Releases the struct. */
int isq_out_commit(struct isq_out *o);
/* Remove the temporary file; releases the struct.  Safe after commit or on a zeroed struct. */
void isq_out_abort(struct isq_out *o);
/* Remove every pending temporary output of this process (isq_die calls it). */
void isq_out_abort_all(void);
/* SIGINT/SIGTERM/SIGHUP/SIGPIPE: remove pending temporaries, then die by the signal. */
void isq_io_install_signal_handlers(void);

/* 1 if the fd refers to a terminal (binary output to a terminal is refused without --force). */
int isq_fd_is_tty(int fd);

#endif
