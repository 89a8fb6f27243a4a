/*
 * io.h - reading inputs and writing outputs.
 *
 * Inputs: isq_map_open() gives the whole content of a path as bytes.
 *   - "-" reads standard input;
 *   - a regular file is mmap'd read-only (zero copy, any size: offsets and
 *     sizes are 64-bit); pipes, FIFOs, character devices, and anything mmap
 *     refuses fall back to read() into a malloc'd buffer;
 *   - content starting with the zstd magic (28 b5 2f fd) is decompressed
 *     transparently (streaming, one or more frames, with or without a
 *     declared content size, windows up to 2 GiB) into a malloc'd buffer,
 *     unless ISQ_MAP_RAW is given.
 *
 * Outputs: struct isq_out writes a data file atomically.  A path is written
 * to a temporary file in the same directory ("<dir>/.<name>.XXXXXX"), which
 * isq_out_commit() fsyncs and renames into place, with the mode a plain
 * creat() would give (0666 & ~umask).  A failed write, isq_out_abort(),
 * isq_out_abort_all() (isq_die() calls it), and SIGINT/SIGTERM/SIGHUP/SIGPIPE
 * (once isq_io_install_signal_handlers() ran) remove it, so a failed or
 * interrupted run never leaves a partial output or a stray temporary.
 * "-" writes to standard output, and a path naming an existing non-regular
 * file (/dev/null, /dev/full, a FIFO, a terminal) is opened and written in
 * place; neither can be atomic.  The memory mode appends to a struct isq_buf
 * (tests, fuzzing, in-process pipelines).
 *
 * Temporary paths are kept as given (relative paths stay relative): a
 * process must not chdir() while outputs are pending.
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
 * Map or read the whole of PATH ("-" = stdin).  Returns 0, or with a message
 * in *e that names the path ("model.gguf: No such file or directory"):
 * ISQ_ENOTFOUND (no such file), ISQ_EINVAL ("model: is a directory"),
 * ISQ_EIO (open/read failed: "x: Permission denied"), ISQ_ENOMEM, or
 * ISQ_EFORMAT for zstd content that is corrupt ("x.zst: corrupt zstd data:
 * ...") or cut short ("x.zst: truncated zstd data").  On failure *m is left
 * released (isq_map_release on it is a no-op).  data is never NULL on
 * success, even for an empty input; heap-backed content (read or
 * decompressed) is followed by a NUL byte not counted in size.
 */
int isq_map_open(struct isq_map *m, const char *path, unsigned flags, struct isq_errbuf *e);
/* Wrap caller-owned memory (not copied, not freed): tests and fuzzers. */
void isq_map_from_memory(struct isq_map *m, const void *data, uint64_t size);
/* Unmap or free; *m is zeroed.  Safe on a released or zeroed map. */
void isq_map_release(struct isq_map *m);
/*
 * Tell the kernel a byte range of a mapped input has been consumed and its
 * pages can be dropped (madvise MADV_DONTNEED on the whole pages inside the
 * range; partial pages at either end are kept, their neighbours may still be
 * in use); keeps the RSS of streaming conversions flat.  The content stays
 * readable: a dropped page is read again from the file if touched.  A no-op
 * for heap-backed maps; ranges past the end are clipped.
 */
void isq_map_drop(struct isq_map *m, uint64_t offset, uint64_t len);
/*
 * The same for memory known to be a read-only file mapping, by address: the
 * whole pages inside [p, p + n).  Never call it on heap memory, whose
 * contents it would discard.
 */
void isq_pages_drop(const void *p, size_t n);

/*
 * Read a whole (small) file into *out (reset first), NUL-terminated; "-" =
 * stdin; zstd is decompressed.  Errors as for isq_map_open.
 */
int isq_read_file(const char *path, struct isq_buf *out, struct isq_errbuf *e);

/* 1 if PATH is an existing directory, 0 otherwise. */
int isq_is_dir(const char *path);
/* 1 if PATH exists (any type). */
int isq_path_exists(const char *path);
/* "dir/name" into out (reset first); no doubled '/'.  0 or ISQ_ENOMEM. */
int isq_path_join(struct isq_buf *out, const char *dir, const char *name);

enum isq_out_kind { ISQ_OUT_FILE, ISQ_OUT_STDOUT, ISQ_OUT_MEMORY };

struct isq_out {
	enum isq_out_kind kind;
	int fd;
	char *path;  /* final path (FILE); "<stdout>" (STDOUT) */
	char *tmp;   /* temporary path (FILE); NULL when written in place or already removed */
	struct isq_buf *mem; /* MEMORY */
	uint64_t written;    /* bytes accepted so far */
	int failed;
	struct isq_errbuf err; /* the last failure; kept after commit and abort */
	int slot; /* private: 1 + index in the table of pending temporaries, 0 for none */
};

/*
 * Open an output: PATH "-" is stdout; anything else a file (see above).
 * Returns 0, or with a message in o->err that names the path: ISQ_EINVAL
 * ("out: is a directory"), ISQ_ENOSPC, or ISQ_EIO ("out/x.gguf: No such file
 * or directory", "Permission denied", ...).  On failure nothing is left
 * behind and isq_out_abort(o) is a no-op.
 */
int isq_out_open(struct isq_out *o, const char *path);
/* Write into *mem (appended after what it holds).  Cannot fail. */
void isq_out_open_memory(struct isq_out *o, struct isq_buf *mem);
/*
 * Write all of p[0..n) (retrying short writes and EINTR).  Returns 0,
 * ISQ_ENOSPC ("out.gguf: no space left on device"; EDQUOT too), ISQ_EPIPE
 * (the reader of a pipe went away; SIGPIPE must be ignored to see it),
 * ISQ_ENOMEM (memory mode), or ISQ_EIO; the message names the path
 * ("standard output" for "-").  A failure removes the temporary file at once;
 * every further write fails with the same code and commit fails.
 */
int isq_out_write(struct isq_out *o, const void *p, size_t n);
/* Write n zero bytes (padding).  As isq_out_write. */
int isq_out_zeros(struct isq_out *o, size_t n);
/*
 * FILE: fsync, close, rename into place (then fsync the directory, best
 * effort); in-place files: close.  STDOUT and MEMORY: nothing to flush.
 * Returns 0 or the failure (an earlier write's, or fsync/close/rename's:
 * ISQ_ENOSPC/ISQ_EIO with the message in o->err); on failure the temporary
 * is removed.  Releases the struct either way (o->err stays readable).
 */
int isq_out_commit(struct isq_out *o);
/*
 * Remove the temporary file (nothing is written to the final path); releases
 * the struct.  Safe after commit, after a failed open, and on a zeroed
 * struct.
 */
void isq_out_abort(struct isq_out *o);
/*
 * Remove every pending temporary output of this process (isq_die calls it
 * before exiting).  The outputs stay open: their owners still release them
 * with isq_out_abort; a later commit fails.
 */
void isq_out_abort_all(void);
/*
 * For SIGINT/SIGTERM/SIGHUP/SIGPIPE install a handler that removes pending
 * temporaries (async-signal-safe: a fixed table and unlink), restores the
 * default action and re-raises, so the process still dies by the signal.  A
 * signal the parent set to "ignore" (nohup) stays ignored.  Up to 128
 * outputs can be pending at once; past that they still work, without the
 * cleanup on a signal or isq_die.
 */
void isq_io_install_signal_handlers(void);

/* 1 if the fd refers to a terminal (binary output to a terminal is refused without --force). */
int isq_fd_is_tty(int fd);

#endif
