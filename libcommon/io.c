/* io.c - whole-input maps (mmap, read, zstd) and atomic outputs. */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

static const char *shown(const char *path)
{
	return strcmp(path, "-") ? path : "<stdin>";
}

void isq_map_from_memory(struct isq_map *m, const void *data, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->data = data;
	m->size = size;
}

void isq_map_release(struct isq_map *m)
{
	if (m->mmap_base)
		munmap(m->mmap_base, m->mmap_len);
	free(m->heap);
	memset(m, 0, sizeof(*m));
}

void isq_map_drop(struct isq_map *m, uint64_t offset, uint64_t len)
{
	if (!m->mmap_base || !len)
		return;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	/* only whole pages inside the range: neighbours may still be needed */
	uint64_t b = (offset + page - 1) / page * page, e = (offset + len) / page * page;
	if (e > m->mmap_len)
		e = m->mmap_len / page * page;
	if (e > b)
		madvise((uint8_t *)m->mmap_base + b, (size_t)(e - b), MADV_DONTNEED);
}

void isq_pages_drop(const void *p, size_t n)
{
	long ps = sysconf(_SC_PAGESIZE);
	if (ps <= 0 || !p)
		return;
	uintptr_t b = ((uintptr_t)p + (uintptr_t)ps - 1) & ~((uintptr_t)ps - 1);
	uintptr_t e = ((uintptr_t)p + n) & ~((uintptr_t)ps - 1);
	if (e > b)
		madvise((void *)b, e - b, MADV_DONTNEED);
}

static int read_all_fd(int fd, struct isq_buf *b)
{
	for (;;) {
		if (isq_buf_grow(b, 1 << 20))
			return ISQ_ENOMEM;
		ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ISQ_EIO;
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
	}
	b->data[b->len] = '\0';
	return 0;
}

static const uint8_t zstd_magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };

static int decompress(struct isq_map *m, const char *path, struct isq_errbuf *e)
{
	ZSTD_DStream *ds = ZSTD_createDStream();
	struct isq_buf out = ISQ_BUF_INIT;
	if (!ds)
		return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	ZSTD_initDStream(ds);
	ZSTD_inBuffer in = { m->data, (size_t)m->size, 0 };
	size_t last = 1;
	int rc = 0;
	while (in.pos < in.size || last != 0) {
		if (isq_buf_grow(&out, 1 << 22)) {
			rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
			break;
		}
		ZSTD_outBuffer ob = { out.data + out.len, out.cap - out.len - 1, 0 };
		size_t before = in.pos;
		last = ZSTD_decompressStream(ds, &ob, &in);
		if (ZSTD_isError(last)) {
			rc = isq_errbuf_set(e, ISQ_EFORMAT, "%s: corrupt zstd data: %s", shown(path), ZSTD_getErrorName(last));
			break;
		}
		out.len += ob.pos;
		if (in.pos == in.size && last != 0 && ob.pos == 0 && before == in.pos) {
			rc = isq_errbuf_set(e, ISQ_EFORMAT, "%s: truncated zstd data", shown(path));
			break;
		}
	}
	ZSTD_freeDStream(ds);
	if (rc) {
		isq_buf_release(&out);
		return rc;
	}
	isq_map_release(m);
	m->size = out.len;
	m->heap = isq_buf_detach(&out, NULL);
	m->data = m->heap;
	return 0;
}

int isq_map_open(struct isq_map *m, const char *path, unsigned flags, struct isq_errbuf *e)
{
	memset(m, 0, sizeof(*m));
	int fd = 0;
	if (strcmp(path, "-")) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return isq_errbuf_set(e, errno == ENOENT ? ISQ_ENOTFOUND : ISQ_EIO, "%s: %s", path, strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (fd)
			close(fd);
		return isq_errbuf_set(e, ISQ_EINVAL, "%s: is a directory", shown(path));
	}
	int rc = 0;
	if (S_ISREG(st.st_mode) && st.st_size > 0) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p != MAP_FAILED) {
			m->mmap_base = p;
			m->mmap_len = (size_t)st.st_size;
			m->data = p;
			m->size = (uint64_t)st.st_size;
		}
	}
	if (!m->data) {
		/* pipes, FIFOs, empty files, and anything mmap refuses */
		struct isq_buf b = ISQ_BUF_INIT;
		rc = read_all_fd(fd, &b);
		if (rc) {
			rc = isq_errbuf_set(e, rc, "%s: %s", shown(path), rc == ISQ_ENOMEM ? "out of memory" : strerror(errno));
			isq_buf_release(&b);
		} else {
			m->size = b.len;
			m->heap = isq_buf_detach(&b, NULL);
			m->data = m->heap;
		}
	}
	if (fd)
		close(fd);
	if (rc)
		return rc;
	if (!(flags & ISQ_MAP_RAW) && m->size >= 4 && !memcmp(m->data, zstd_magic, 4)) {
		rc = decompress(m, path, e);
		if (rc)
			isq_map_release(m);
	}
	return rc;
}

int isq_read_file(const char *path, struct isq_buf *out, struct isq_errbuf *e)
{
	struct isq_map m;
	int rc = isq_map_open(&m, path, 0, e);
	if (rc)
		return rc;
	isq_buf_reset(out);
	if (isq_buf_append(out, m.data, (size_t)m.size))
		rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	if (!out->data && !rc)
		rc = isq_buf_append(out, "", 0);
	isq_map_release(&m);
	return rc;
}

int isq_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int isq_path_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

int isq_path_join(struct isq_buf *out, const char *dir, const char *name)
{
	isq_buf_reset(out);
	size_t l = strlen(dir);
	int rc = isq_buf_append(out, dir, l);
	if (!rc && l && dir[l - 1] != '/')
		rc = isq_buf_putc(out, '/');
	return rc ? rc : isq_buf_puts(out, name);
}

int isq_fd_is_tty(int fd)
{
	return isatty(fd);
}

/* ---- atomic outputs ------------------------------------------------------------ */

/*
 * Pending temporary files, in a fixed table so that a signal handler can
 * unlink them without allocating.
 */
#define MAX_PENDING 64
static char pending[MAX_PENDING][4096];
static volatile sig_atomic_t pending_used[MAX_PENDING];

static int pending_add(const char *tmp)
{
	for (int i = 0; i < MAX_PENDING; i++)
		if (!pending_used[i]) {
			snprintf(pending[i], sizeof(pending[i]), "%s", tmp);
			pending_used[i] = 1;
			return i;
		}
	return -1;
}

static void pending_remove(const char *tmp)
{
	for (int i = 0; i < MAX_PENDING; i++)
		if (pending_used[i] && !strcmp(pending[i], tmp))
			pending_used[i] = 0;
}

void isq_out_abort_all(void)
{
	for (int i = 0; i < MAX_PENDING; i++)
		if (pending_used[i]) {
			unlink(pending[i]);
			pending_used[i] = 0;
		}
}

static void on_signal(int sig)
{
	isq_out_abort_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

void isq_io_install_signal_handlers(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(sigs); i++) {
		struct sigaction sa, old;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		/* keep a disposition the parent set to "ignore" (nohup, SIGPIPE ignored by the tool) */
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		sigaction(sigs[i], &sa, NULL);
	}
}

static int status_of_errno(int err)
{
	return err == ENOSPC || err == EDQUOT ? ISQ_ENOSPC : err == EPIPE ? ISQ_EPIPE : ISQ_EIO;
}

int isq_out_open(struct isq_out *o, const char *path)
{
	memset(o, 0, sizeof(*o));
	if (!strcmp(path, "-")) {
		o->kind = ISQ_OUT_STDOUT;
		o->fd = 1;
		o->path = isq_strdup("<stdout>");
		return o->path ? 0 : isq_errbuf_set(&o->err, ISQ_ENOMEM, NULL);
	}
	o->kind = ISQ_OUT_FILE;
	o->path = isq_strdup(path);
	struct isq_buf t = ISQ_BUF_INIT;
	const char *slash = strrchr(path, '/');
	if (slash)
		isq_buf_printf(&t, "%.*s/.%s.XXXXXX", (int)(slash - path), path, slash + 1);
	else
		isq_buf_printf(&t, ".%s.XXXXXX", path);
	o->tmp = isq_buf_detach(&t, NULL);
	if (!o->path || !o->tmp) {
		isq_out_abort(o);
		return isq_errbuf_set(&o->err, ISQ_ENOMEM, NULL);
	}
	o->fd = mkstemp(o->tmp);
	if (o->fd < 0) {
		int err = errno;
		free(o->tmp);
		o->tmp = NULL;
		int rc = isq_errbuf_set(&o->err, status_of_errno(err), "%s: %s", path, strerror(err));
		free(o->path);
		o->path = NULL;
		return rc;
	}
	pending_add(o->tmp);
	/* mkstemp makes 0600; give the file the mode creat() would */
	mode_t um = umask(0);
	umask(um);
	fchmod(o->fd, 0666 & ~um);
	return 0;
}

void isq_out_open_memory(struct isq_out *o, struct isq_buf *mem)
{
	memset(o, 0, sizeof(*o));
	o->kind = ISQ_OUT_MEMORY;
	o->mem = mem;
	o->fd = -1;
}

int isq_out_write(struct isq_out *o, const void *p, size_t n)
{
	if (o->failed)
		return o->err.code;
	if (o->kind == ISQ_OUT_MEMORY) {
		if (isq_buf_append(o->mem, p, n)) {
			o->failed = 1;
			return isq_errbuf_set(&o->err, ISQ_ENOMEM, NULL);
		}
		o->written += n;
		return 0;
	}
	const uint8_t *b = p;
	size_t left = n;
	while (left) {
		ssize_t w = write(o->fd, b, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			int err = errno;
			o->failed = 1;
			return isq_errbuf_set(&o->err, status_of_errno(err), "%s: %s",
					      o->kind == ISQ_OUT_STDOUT ? "standard output" : o->path,
					      err == ENOSPC ? "no space left on device" : err == EPIPE ? "broken pipe" : strerror(err));
		}
		b += w;
		left -= (size_t)w;
	}
	o->written += n;
	return 0;
}

int isq_out_zeros(struct isq_out *o, size_t n)
{
	static const uint8_t zeros[4096];
	while (n) {
		size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
		int rc = isq_out_write(o, zeros, k);
		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

static void out_free(struct isq_out *o)
{
	free(o->path);
	free(o->tmp);
	o->path = o->tmp = NULL;
}

int isq_out_commit(struct isq_out *o)
{
	int rc = 0;
	if (o->failed) {
		rc = o->err.code;
		isq_out_abort(o);
		return rc;
	}
	if (o->kind == ISQ_OUT_FILE) {
		if (fsync(o->fd) != 0 && errno != EINVAL)
			rc = isq_errbuf_set(&o->err, status_of_errno(errno), "%s: %s", o->path, strerror(errno));
		if (close(o->fd) != 0 && !rc)
			rc = isq_errbuf_set(&o->err, status_of_errno(errno), "%s: %s", o->path, strerror(errno));
		o->fd = -1;
		if (!rc && rename(o->tmp, o->path) != 0)
			rc = isq_errbuf_set(&o->err, ISQ_EIO, "%s: %s", o->path, strerror(errno));
		if (rc) {
			unlink(o->tmp);
		}
		pending_remove(o->tmp);
		out_free(o);
		return rc;
	}
	if (o->kind == ISQ_OUT_STDOUT && fsync(1) != 0 && errno != EINVAL && errno != EROFS && errno != EBADF) {
		/* pipes and terminals cannot be synced; that is fine */
	}
	out_free(o);
	return 0;
}

void isq_out_abort(struct isq_out *o)
{
	if (o->kind == ISQ_OUT_FILE && o->tmp) {
		if (o->fd >= 0)
			close(o->fd);
		unlink(o->tmp);
		pending_remove(o->tmp);
	}
	out_free(o);
	o->fd = -1;
}
