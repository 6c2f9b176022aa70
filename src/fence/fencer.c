/*
 * The fencer, native: the same program as fencer.mjs (read its header for the protocol and the
 * contract; both implement exactly that one), in C so that it costs about a MiB of memory instead
 * of a JavaScript heap. Fence (fence.ts) runs this binary when it was built beside it (by
 * scripts/setup.sh or `npm run build`), and fencer.mjs under node otherwise.
 *
 * Build: cc -O2 -o fencer fencer.c   (Linux, glibc or musl; no library beyond libc)
 * Usage: fencer --data-dir <dir>
 *
 * Same behaviour, stated here for this implementation:
 * - One JSON object per line on stdin; replies and events one per line on stdout; log lines
 *   "<ISO time> <LEVEL> fencer[<pid>]: <message>" on stderr. Only flat objects are understood
 *   (the agent sends nothing else); any other line is answered with an error event.
 * - Deadlines are CLOCK_MONOTONIC nanoseconds, the clock of Node's process.hrtime.bigint().
 *   Deadlines beyond 2^64-1 ns are held as 2^64-1 (never reached).
 * - The fence path runs start to end without handling a request or a signal, as in fencer.mjs.
 * - SIGTERM: disarm and exit; SIGINT, SIGHUP: ignored; SIGPIPE ignored (a gone agent is not an
 *   error: writes to closed stdout/stderr are dropped).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE (64 * 1024)
#define MAX_PIDS 4096

static const char *arg_dir;

static int armed;
static struct {
  long pid;
  char data_dir[PATH_MAX];
  char real_dir[PATH_MAX];
  uint64_t deadline_ns;
} target;
static int stdin_open = 1; /* false after an exit request or the end of stdin */
static int stdin_eof;
static int wd_fd = -1;
static char wd_path[PATH_MAX];
static char real_cache_in[PATH_MAX], real_cache_out[PATH_MAX];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Writes all of buf; drops it when the reader is gone. */
static void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    buf += n;
    len -= (size_t)n;
  }
}

static void logf_(const char *level, const char *fmt, ...) {
  char msg[2048], line[2300], ts[40];
  struct timespec rt;
  struct tm tm;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  clock_gettime(CLOCK_REALTIME, &rt);
  gmtime_r(&rt.tv_sec, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  int n = snprintf(line, sizeof line, "%s.%03ldZ %s fencer[%ld]: %s\n", ts, rt.tv_nsec / 1000000, level, (long)getpid(), msg);
  if (n > (int)sizeof line - 1) {
    n = (int)sizeof line - 1;
    line[n - 1] = '\n';
  }
  write_all(2, line, (size_t)n);
}

/* ---- JSON output ---------------------------------------------------------------------------- */

struct out {
  char buf[8192 + 16 * MAX_PIDS];
  size_t len;
};

static void out_raw(struct out *o, const char *s) {
  size_t n = strlen(s);
  if (o->len + n >= sizeof o->buf) n = sizeof o->buf - o->len - 1;
  memcpy(o->buf + o->len, s, n);
  o->len += n;
}

static void out_fmt(struct out *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
  va_end(ap);
  if (n > 0) o->len += (size_t)n < sizeof o->buf - o->len ? (size_t)n : sizeof o->buf - o->len - 1;
}

static void out_str(struct out *o, const char *s) {
  out_raw(o, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[8];
    if (*p == '"') out_raw(o, "\\\"");
    else if (*p == '\\') out_raw(o, "\\\\");
    else if (*p == '\n') out_raw(o, "\\n");
    else if (*p < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", *p);
      out_raw(o, esc);
    } else {
      esc[0] = (char)*p;
      esc[1] = 0;
      out_raw(o, esc);
    }
  }
  out_raw(o, "\"");
}

static void out_send(struct out *o) {
  out_raw(o, "\n");
  write_all(1, o->buf, o->len);
}

/* ---- JSON input: one flat object ------------------------------------------------------------ */

enum jtype { J_NONE, J_STR, J_NUM, J_OTHER };
struct jval {
  enum jtype type;
  char str[PATH_MAX + 64]; /* J_STR: decoded; J_NUM: the token as written */
  double num;
};
struct req {
  struct jval op, seq, pid, data_dir, deadline, watchdog;
};

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  return p;
}

static void put_utf8(char **w, char *end, unsigned cp) {
  char tmp[4];
  int n;
  if (cp < 0x80) tmp[0] = (char)cp, n = 1;
  else if (cp < 0x800) tmp[0] = (char)(0xc0 | cp >> 6), tmp[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
  else if (cp < 0x10000) tmp[0] = (char)(0xe0 | cp >> 12), tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f)), tmp[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
  else tmp[0] = (char)(0xf0 | cp >> 18), tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f)), tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), tmp[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
  for (int i = 0; i < n; i++)
    if (*w < end) *(*w)++ = tmp[i];
}

static int hex4(const char *p, unsigned *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    int c = p[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return 0;
    *v = *v * 16 + (unsigned)d;
  }
  return 1;
}

/* Parses a string at p (the opening quote) into out (NULL: skip); returns the char after it. */
static const char *parse_str(const char *p, char *out, size_t cap) {
  char *w = out, *end = out ? out + cap - 1 : NULL;
  if (*p++ != '"') return NULL;
  for (;;) {
    unsigned char c = (unsigned char)*p++;
    if (c == 0 || c < 0x20) return NULL;
    if (c == '"') break;
    if (c != '\\') {
      if (out && w < end) *w++ = (char)c;
      continue;
    }
    c = (unsigned char)*p++;
    unsigned cp;
    switch (c) {
      case '"': cp = '"'; break;
      case '\\': cp = '\\'; break;
      case '/': cp = '/'; break;
      case 'b': cp = '\b'; break;
      case 'f': cp = '\f'; break;
      case 'n': cp = '\n'; break;
      case 'r': cp = '\r'; break;
      case 't': cp = '\t'; break;
      case 'u':
        if (!hex4(p, &cp)) return NULL;
        p += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && p[0] == '\\' && p[1] == 'u') {
          unsigned lo;
          if (hex4(p + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
          }
        }
        break;
      default: return NULL;
    }
    if (out) put_utf8(&w, end, cp);
  }
  if (out) *w = 0;
  return p;
}

/* Skips any JSON value (for keys the fencer does not know); returns the char after it. */
static const char *skip_value(const char *p, int depth) {
  p = skip_ws(p);
  if (depth > 64) return NULL;
  if (*p == '"') return parse_str(p, NULL, 0);
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    p = skip_ws(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
      if (close == '}') {
        p = parse_str(skip_ws(p), NULL, 0);
        if (!p) return NULL;
        p = skip_ws(p);
        if (*p++ != ':') return NULL;
      }
      p = skip_value(p, depth + 1);
      if (!p) return NULL;
      p = skip_ws(p);
      if (*p == ',') { p++; continue; }
      if (*p == close) return p + 1;
      return NULL;
    }
  }
  if (!strncmp(p, "true", 4)) return p + 4;
  if (!strncmp(p, "false", 5)) return p + 5;
  if (!strncmp(p, "null", 4)) return p + 4;
  /* number: -?digits(.digits)?([eE][+-]?digits)? */
  const char *s = p;
  if (*p == '-') p++;
  if (!isdigit((unsigned char)*p)) return NULL;
  if (*p == '0') p++;
  else while (isdigit((unsigned char)*p)) p++;
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p)) return NULL;
    while (isdigit((unsigned char)*p)) p++;
  }
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-') p++;
    if (!isdigit((unsigned char)*p)) return NULL;
    while (isdigit((unsigned char)*p)) p++;
  }
  return p > s ? p : NULL;
}

static const char *parse_value(const char *p, struct jval *v) {
  p = skip_ws(p);
  if (*p == '"') {
    v->type = J_STR;
    return parse_str(p, v->str, sizeof v->str);
  }
  const char *e = skip_value(p, 0);
  if (!e) return NULL;
  if (*p == '-' || isdigit((unsigned char)*p)) {
    size_t n = (size_t)(e - p);
    if (n >= sizeof v->str) n = sizeof v->str - 1;
    memcpy(v->str, p, n);
    v->str[n] = 0;
    v->type = J_NUM;
    v->num = strtod(v->str, NULL);
  } else v->type = J_OTHER;
  return e;
}

/* 1: an object; 0: JSON but not an object; -1: not JSON. */
static int parse_request(const char *line, struct req *r) {
  memset(r, 0, sizeof *r);
  const char *p = skip_ws(line);
  if (*p != '{') {
    const char *e = skip_value(p, 0);
    return e && *skip_ws(e) == 0 ? 0 : -1;
  }
  p = skip_ws(p + 1);
  if (*p == '}') return *skip_ws(p + 1) == 0 ? 1 : -1;
  for (;;) {
    char key[32];
    p = parse_str(skip_ws(p), key, sizeof key);
    if (!p) return -1;
    p = skip_ws(p);
    if (*p++ != ':') return -1;
    struct jval scratch, *v = &scratch;
    if (!strcmp(key, "op")) v = &r->op;
    else if (!strcmp(key, "seq")) v = &r->seq;
    else if (!strcmp(key, "pid")) v = &r->pid;
    else if (!strcmp(key, "dataDir")) v = &r->data_dir;
    else if (!strcmp(key, "deadlineNs")) v = &r->deadline;
    else if (!strcmp(key, "watchdog")) v = &r->watchdog;
    p = parse_value(p, v); /* a repeated key: the last one wins, as in JSON.parse */
    if (!p) return -1;
    p = skip_ws(p);
    if (*p == ',') { p++; continue; }
    if (*p == '}') return *skip_ws(p + 1) == 0 ? 1 : -1;
    return -1;
  }
}

/* ---- /proc ---------------------------------------------------------------------------------- */

/* The cwd of pid into buf; 0 when it is gone or unreadable. */
static int cwd_of(long pid, char *buf, size_t cap) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/cwd", pid);
  ssize_t n = readlink(path, buf, cap - 1);
  if (n < 0) return 0;
  buf[n] = 0;
  return 1;
}

/* State and parent from /proc/<pid>/stat; 0 when gone. */
static int stat_of(long pid, char *state, long *ppid) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  text[n] = 0;
  char *rp = strrchr(text, ')');
  if (!rp || rp[1] != ' ') return 0;
  char st;
  long pp;
  if (sscanf(rp + 2, "%c %ld", &st, &pp) != 2) return 0;
  *state = st;
  *ppid = pp;
  return 1;
}

static int same_dir(const char *cwd, const char *real_dir) {
  size_t n = strlen(real_dir);
  return strncmp(cwd, real_dir, n) == 0 && (cwd[n] == 0 || strcmp(cwd + n, " (deleted)") == 0);
}

static int is_alive(long pid) {
  char st;
  long pp;
  return stat_of(pid, &st, &pp) && st != 'Z' && st != 'X';
}

static int is_postmaster(long pid, const char *real_dir) {
  char st, cwd[PATH_MAX];
  long pp;
  if (!stat_of(pid, &st, &pp) || st == 'Z' || st == 'X') return 0;
  if (!cwd_of(pid, cwd, sizeof cwd) || !same_dir(cwd, real_dir)) return 0;
  return !(cwd_of(pp, cwd, sizeof cwd) && same_dir(cwd, real_dir));
}

static int children_of(long ppid, long *out, int cap) {
  int n = 0;
  DIR *d = opendir("/proc");
  if (!d) {
    logf_("ERROR", "cannot list /proc: %s", strerror(errno));
    return 0;
  }
  struct dirent *e;
  while ((e = readdir(d)) && n < cap) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end || e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char st;
    long pp;
    if (stat_of(pid, &st, &pp) && pp == ppid) out[n++] = pid;
  }
  closedir(d);
  return n;
}

static int signal_pid(long pid, int sig) {
  return kill((pid_t)pid, sig) == 0;
}

static void sleep_ms(double ms) {
  long long ns = (long long)(ms * 1e6);
  struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

/* ---- watchdog ------------------------------------------------------------------------------- */

static void watchdog_close(const char *reason) {
  if (wd_fd < 0) return;
  int fd = wd_fd;
  wd_fd = -1;
  if (write(fd, "V", 1) != 1) logf_("ERROR", "watchdog %s: magic close failed (%s): the host may be reset", wd_path, strerror(errno));
  close(fd);
  logf_("INFO", "watchdog %s disabled (%s)", wd_path, reason);
}

/* 'active' or 'failed: ...' into result. */
static void watchdog_keepalive(const char *path, char *result, size_t cap) {
  if (wd_fd >= 0 && strcmp(wd_path, path) != 0) watchdog_close("device changed");
  const char *what = "write";
  if (wd_fd < 0) {
    /* As Node's openSync(path, 'w'). */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
      what = "open";
      goto failed;
    }
    wd_fd = fd;
    snprintf(wd_path, sizeof wd_path, "%s", path);
    logf_("INFO", "watchdog %s opened", path);
  }
  if (write(wd_fd, "", 1) == 1) {
    snprintf(result, cap, "active");
    return;
  }
failed: {
    int err = errno;
    const char *name = strerrorname_np(err);
    char msg[PATH_MAX + 200];
    snprintf(msg, sizeof msg, "%s: %s, %s '%s'", name ? name : "E?", strerror(err), what, path);
    logf_("ERROR", "watchdog %s: %s", path, msg);
    snprintf(result, cap, "failed: %s", msg);
  }
}

/* ---- fencing -------------------------------------------------------------------------------- */

static void finish(int code) {
  logf_("INFO", "exiting%s", armed ? " while armed" : "");
  /* Exit without 'V' if a fence failed: the open watchdog then resets the host. */
  _exit(code);
}

static long postmaster_pid_of(const char *dir) {
  char path[PATH_MAX + 32], text[64];
  snprintf(path, sizeof path, "%s/postmaster.pid", dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  text[n] = 0;
  char *nl = strchr(text, '\n');
  if (nl) *nl = 0;
  char *end;
  long pid = strtol(text, &end, 10);
  return *end == 0 && end != text && pid > 1 ? pid : 0;
}

static int contains(const long *a, int n, long v) {
  for (int i = 0; i < n; i++)
    if (a[i] == v) return 1;
  return 0;
}

static void fence(void) {
  if (!armed) return;
  armed = 0;
  long pid = target.pid;
  if (pid == 0) pid = postmaster_pid_of(target.real_dir);
  double late_ms = (double)(int64_t)(now_ns() - target.deadline_ns) / 1e6;
  static long killed[MAX_PIDS], kids[MAX_PIDS], survivors[MAX_PIDS];
  int nk = 0, ns = 0;
  struct out o = {.len = 0};
  if (!is_postmaster(pid, target.real_dir)) {
    logf_("WARN", "deadline passed (%.1f ms ago) but pid %ld is not the postmaster of %s (gone or reused): nothing to fence", late_ms, pid, target.data_dir);
    out_fmt(&o, "{\"ev\":\"fenced\",\"pid\":%ld,\"killed\":[],\"lateMs\":%.3f,\"alive\":[]}", pid, late_ms);
    out_send(&o);
    watchdog_close("nothing to fence");
    if (!stdin_open) finish(0);
    return;
  }
  logf_("WARN", "deadline passed %.1f ms ago: fencing PostgreSQL (postmaster %ld, %s)", late_ms, pid, target.data_dir);
  signal_pid(pid, SIGSTOP);
  /* Wait (bounded, about 200 ms) until the stop took effect, so that no child is forked after the scan. */
  for (int i = 0; i < 2000; i++) {
    char st;
    long pp;
    if (!stat_of(pid, &st, &pp) || st == 'T' || st == 'Z' || st == 'X') break;
    sleep_ms(0.1);
  }
  int nc = children_of(pid, kids, MAX_PIDS);
  for (int i = 0; i < nc; i++)
    if (signal_pid(kids[i], SIGKILL)) killed[nk++] = kids[i];
  char cwd[PATH_MAX];
  if (cwd_of(pid, cwd, sizeof cwd) && same_dir(cwd, target.real_dir) && signal_pid(pid, SIGKILL)) killed[nk++] = pid;
  /* A child forked in a race would have been reparented by now; each pid is reported once. */
  nc = children_of(pid, kids, MAX_PIDS);
  for (int i = 0; i < nc && nk < MAX_PIDS; i++)
    if (signal_pid(kids[i], SIGKILL) && !contains(killed, nk, kids[i])) killed[nk++] = kids[i];
  /* Wait (bounded, about 2 s) for the processes to die; zombies count as dead. */
  for (int i = 0; i < nk; i++)
    if (is_alive(killed[i])) survivors[ns++] = killed[i];
  for (int i = 0; i < 200 && ns > 0; i++) {
    sleep_ms(10);
    int m = 0;
    for (int j = 0; j < ns; j++)
      if (is_alive(survivors[j])) survivors[m++] = survivors[j];
    ns = m;
  }
  char list[4096];
  size_t ll = 0;
  list[0] = 0;
  for (int i = 0; i < nk && ll < sizeof list - 24; i++) ll += (size_t)snprintf(list + ll, sizeof list - ll, i ? " %ld" : "%ld", killed[i]);
  if (ns == 0) {
    logf_("WARN", "fenced: killed postmaster %ld and %d children (%s), %.1f ms after the deadline", pid, nk - 1, list, late_ms);
    watchdog_close("PostgreSQL fenced");
  } else {
    char sl[4096];
    size_t sn = 0;
    sl[0] = 0;
    for (int i = 0; i < ns && sn < sizeof sl - 24; i++) sn += (size_t)snprintf(sl + sn, sizeof sl - sn, i ? " %ld" : "%ld", survivors[i]);
    logf_("ERROR", "fence incomplete: still alive after SIGKILL: %s%s", sl, wd_fd >= 0 ? ": leaving the watchdog to reset the host" : "");
  }
  out_fmt(&o, "{\"ev\":\"fenced\",\"pid\":%ld,\"killed\":[", pid);
  for (int i = 0; i < nk; i++) out_fmt(&o, i ? ",%ld" : "%ld", killed[i]);
  out_fmt(&o, "],\"lateMs\":%.3f,\"alive\":[", late_ms);
  for (int i = 0; i < ns; i++) out_fmt(&o, i ? ",%ld" : "%ld", survivors[i]);
  out_raw(&o, "]}");
  out_send(&o);
  if (!stdin_open) finish(0);
}

/* ---- requests ------------------------------------------------------------------------------- */

static void fail(const struct req *r, const char *fmt, ...) {
  char msg[PATH_MAX * 2 + 200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  logf_("ERROR", "ignored %s: %s", r && r->op.type == J_STR ? r->op.str : "a request", msg);
  struct out o = {.len = 0};
  out_raw(&o, "{\"ev\":\"error\",");
  if (r && r->seq.type == J_NUM) out_fmt(&o, "\"seq\":%s,", r->seq.str);
  out_raw(&o, "\"message\":");
  out_str(&o, msg);
  out_raw(&o, "}");
  out_send(&o);
}

/* A value as JSON.stringify would show it in a message (strings quoted, undefined for missing). */
static const char *shown(const struct jval *v, char *buf, size_t cap) {
  if (v->type == J_NONE) return "undefined";
  if (v->type == J_STR) {
    struct out o = {.len = 0};
    out_str(&o, v->str);
    o.buf[o.len] = 0;
    snprintf(buf, cap, "%s", o.buf);
    return buf;
  }
  if (v->type == J_NUM) return v->str;
  return "null";
}

static void handle(const char *line) {
  static struct req r;
  char b1[PATH_MAX + 80];
  int kind = parse_request(line, &r);
  if (kind < 0) {
    char head[201];
    snprintf(head, sizeof head, "%s", line);
    logf_("ERROR", "ignored a line that is not JSON: %s", head);
    struct out o = {.len = 0};
    out_raw(&o, "{\"ev\":\"error\",\"message\":\"not JSON\"}");
    out_send(&o);
    return;
  }
  if (kind == 0) return fail(NULL, "expected an object");
  const char *op = r.op.type == J_STR ? r.op.str : "";
  if (r.op.type == J_STR && !strcmp(op, "arm")) {
    double p = r.pid.num;
    if (r.pid.type != J_NUM || !(p >= 0 && p <= INT_MAX) || p != (double)(long)p || p == 1) return fail(&r, "bad pid %s", shown(&r.pid, b1, sizeof b1));
    if (r.data_dir.type != J_STR || r.data_dir.str[0] != '/') return fail(&r, "bad dataDir %s", shown(&r.data_dir, b1, sizeof b1));
    if (arg_dir && strcmp(r.data_dir.str, arg_dir) != 0) return fail(&r, "dataDir %s is not %s, the one this fencer guards", r.data_dir.str, arg_dir);
    size_t dl = r.deadline.type == J_STR ? strlen(r.deadline.str) : 0;
    int digits = dl >= 1 && dl <= 30;
    for (size_t i = 0; digits && i < dl; i++) digits = isdigit((unsigned char)r.deadline.str[i]);
    if (!digits) return fail(&r, "bad deadlineNs %s", shown(&r.deadline, b1, sizeof b1));
    if (r.watchdog.type != J_NONE && (r.watchdog.type != J_STR || r.watchdog.str[0] == 0)) return fail(&r, "bad watchdog %s", shown(&r.watchdog, b1, sizeof b1));
    char real[PATH_MAX];
    if (strcmp(real_cache_in, r.data_dir.str) == 0) snprintf(real, sizeof real, "%s", real_cache_out);
    else if (realpath(r.data_dir.str, real)) {
      snprintf(real_cache_in, sizeof real_cache_in, "%s", r.data_dir.str);
      snprintf(real_cache_out, sizeof real_cache_out, "%s", real);
    } else {
      int err = errno;
      const char *name = strerrorname_np(err);
      return fail(&r, "data directory %s: %s: %s, realpath '%s'", r.data_dir.str, name ? name : "E?", strerror(err), r.data_dir.str);
    }
    long pid = (long)p;
    if (pid != 0 && !is_postmaster(pid, real)) {
      char cwd[PATH_MAX];
      return fail(&r, "pid %ld is not the postmaster of %s (its cwd is %s)", pid, r.data_dir.str, cwd_of(pid, cwd, sizeof cwd) ? cwd : "unreadable");
    }
    uint64_t deadline = 0;
    for (size_t i = 0; i < dl; i++) {
      unsigned d = (unsigned)(r.deadline.str[i] - '0');
      deadline = deadline > (UINT64_MAX - d) / 10 ? UINT64_MAX : deadline * 10 + d;
    }
    int first = !armed || target.pid != pid;
    armed = 1;
    target.pid = pid;
    snprintf(target.data_dir, sizeof target.data_dir, "%s", r.data_dir.str);
    snprintf(target.real_dir, sizeof target.real_dir, "%s", real);
    target.deadline_ns = deadline;
    char wd[PATH_MAX + 300] = "off";
    if (r.watchdog.type == J_STR) watchdog_keepalive(r.watchdog.str, wd, sizeof wd);
    else watchdog_close("not requested");
    if (first) {
      uint64_t now = now_ns();
      double in_ms = deadline >= now ? (double)(deadline - now) / 1e6 : -(double)(now - deadline) / 1e6;
      if (pid == 0) logf_("INFO", "armed for whatever postmaster runs %s, deadline in %.0f ms", target.data_dir, in_ms);
      else logf_("INFO", "armed for postmaster %ld of %s, deadline in %.0f ms", pid, target.data_dir, in_ms);
    }
    struct out o = {.len = 0};
    out_raw(&o, "{\"ev\":\"armed\",");
    if (r.seq.type == J_NUM) out_fmt(&o, "\"seq\":%s,", r.seq.str);
    out_fmt(&o, "\"deadlineNs\":\"%s\",\"watchdog\":", r.deadline.str);
    out_str(&o, wd);
    out_raw(&o, "}");
    out_send(&o);
    if (now_ns() >= target.deadline_ns) fence();
    return;
  }
  if (r.op.type == J_STR && !strcmp(op, "disarm")) {
    if (armed) logf_("INFO", "disarmed (postmaster %ld)", target.pid);
    armed = 0;
    watchdog_close("disarmed");
    struct out o = {.len = 0};
    out_raw(&o, "{\"ev\":\"disarmed\"");
    if (r.seq.type == J_NUM) out_fmt(&o, ",\"seq\":%s", r.seq.str);
    out_raw(&o, "}");
    out_send(&o);
    return;
  }
  if (r.op.type == J_STR && !strcmp(op, "exit")) {
    stdin_open = 0;
    if (!armed) finish(0);
    logf_("WARN", "asked to exit while armed: staying until the deadline");
    return;
  }
  fail(&r, "unknown op %s", shown(&r.op, b1, sizeof b1));
}

static void stdin_closed(void) {
  stdin_eof = 1;
  stdin_open = 0;
  if (!armed) finish(0);
  logf_("WARN", "the agent's pipe closed while armed: fencing postmaster %ld at the deadline unless told to stand down (SIGTERM)", target.pid);
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--data-dir")) {
      arg_dir = argv[i + 1];
      break;
    }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, NULL);
  int sfd = signalfd(-1, &term, SFD_CLOEXEC);
  if (sfd < 0) {
    logf_("ERROR", "signalfd: %s", strerror(errno));
    return 1;
  }

  static char buf[MAX_LINE + 65536];
  size_t len = 0;
  {
    struct out o = {.len = 0};
    out_fmt(&o, "{\"ev\":\"ready\",\"pid\":%ld}", (long)getpid());
    out_send(&o);
  }
  for (;;) {
    int timeout = -1;
    if (armed) {
      uint64_t now = now_ns();
      if (now >= target.deadline_ns) {
        fence();
        continue;
      }
      uint64_t ms = (target.deadline_ns - now) / 1000000u + 1;
      timeout = ms > INT_MAX ? INT_MAX : (int)ms;
    }
    struct pollfd fds[2] = {{sfd, POLLIN, 0}, {stdin_eof ? -1 : 0, POLLIN, 0}};
    int n = poll(fds, 2, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      logf_("ERROR", "poll: %s", strerror(errno));
      sleep_ms(10);
      continue;
    }
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si && si.ssi_signo == SIGTERM) {
        if (armed) logf_("INFO", "SIGTERM: standing down (was armed for postmaster %ld)", target.pid);
        armed = 0;
        watchdog_close("SIGTERM");
        finish(0);
      }
    }
    if (!stdin_eof && fds[1].revents) {
      ssize_t got = read(0, buf + len, sizeof buf - len - 1);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        stdin_closed();
        continue;
      }
      len += (size_t)got;
      buf[len] = 0;
      char *start = buf, *nl;
      while ((nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
        *nl = 0;
        char *s = start, *e = nl;
        while (s < e && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
        start = nl + 1;
        if (*s) handle(s);
      }
      len -= (size_t)(start - buf);
      memmove(buf, start, len);
      if (len > MAX_LINE) {
        logf_("ERROR", "discarded %zu bytes without a newline", len);
        len = 0;
      }
    }
  }
}
