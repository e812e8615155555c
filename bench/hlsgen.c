/*
 * hlsgen: single-threaded epoll load generator of HLS viewers that behave as hls.js does.
 *
 *   hlsgen -u http://127.0.0.1:8080/live/stream.m3u8 -n 1000 -d 30 --warmup 10 --spread 5 -o r.json
 *
 * Every viewer has two keep-alive HTTP/1.1 connections, one for its playlist and one for its
 * segments (a browser's pool gives hls.js's playlist and fragment loaders one each), and:
 *
 * - starts at t = spread * i / n (viewers spread evenly over --spread seconds);
 * - GETs the playlist. A redirect (301/302/303/307/308) is followed to its Location and a
 *   master playlist (#EXT-X-STREAM-INF) to its first variant, at once; the variant's URL
 *   (with its query, e.g. ?hls_ctx=...) is the one reloaded from then on;
 * - parses the media playlist: #EXT-X-TARGETDURATION, #EXT-X-MEDIA-SEQUENCE, #EXTINF and the
 *   URI lines, URIs resolved against the playlist's path (absolute http:// URIs must name the
 *   same host and port);
 * - fetches each NEW segment once, in order, reading it fully: on its first playlist the last
 *   --start-segments (3, hls.js's liveSyncDurationCount) segments, then every segment whose
 *   sequence number is above the last one taken. A segment that left the playlist before it
 *   was seen counts as skipped;
 * - reloads the playlist as hls.js does (computeReloadInterval): when it listed new segments,
 *   one target duration (or the last segment's duration when shorter) after the previous
 *   reload started; when it was unchanged, half a target duration after. #EXT-X-ENDLIST
 *   stops the reloads.
 *
 * A connection the server closes while idle is reopened for the next request (counted); a
 * request that finds its reused connection closed before any byte of the answer is retried
 * once on a new one, as browsers do. A response with "Connection: close" is followed by a
 * close only with --honor-close (browsers do so; servers that send it and keep serving a
 * keep-alive client, as SRS does, then cost a connect per request).
 *
 * Counted: requests, body and wire bytes, errors by reason (connect, timeout, disconnect,
 * parse, body: a .ts body that does not start with the TS sync byte or is shorter than its
 * Content-Length), non-200 answers by status, redirects, master playlists, segments fetched
 * per viewer, skipped segments, download times. [warmup, duration] is the measurement window;
 * the run stops at `duration` (hard stop) and writes a JSON report to -o (or stdout), with a
 * per-second timeline of body bytes and completed requests. Only loopback targets.
 *
 * Build: cc -O2 -o hlsgen hlsgen.c (bench/Makefile, bench/hls.py)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h> /* isnan, isinf, NAN: macros only */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE (256 * 1024)
#define HEAD_CAP 16384
#define PL_CAP (1024 * 1024) /* a playlist larger than this is a parse error */
#define PATH_CAP 1024
#define QCAP 32         /* segments listed but not fetched yet, per viewer */
#define MAX_ENTRIES 4096 /* segments read from one playlist */
#define MAX_BINS 7200
#define MAX_REASONS 16

enum { H_IDLE, H_CONNECTING, H_SENDING, H_HEAD, H_BODY };
enum { K_PL, K_SEG };
enum { D_SIZE, D_DATA, D_CRLF, D_TRAILER };

/* ---------------------------------------------------------------- options */
static int o_n = 1, o_start_segs = 3, o_honor_close = 0, o_verbose = 0;
static double o_dur = 10, o_warm = 0, o_spread = 5, o_timeout = 10;
static const char *o_url, *o_out;

static struct sockaddr_in g_addr;
static char g_hostport[300], g_path0[PATH_CAP];

/* ---------------------------------------------------------------- time */
static uint64_t g_now, g_t0, g_tw, g_tend;
#define LG_NAME "hlsgen"
#include "lgcommon.h"

static int in_window(void) { return g_now >= g_tw; }

/* ---------------------------------------------------------------- counters */
typedef struct {
    uint64_t v[2]; /* whole run, window */
} ctr;

static void bump(ctr *c, uint64_t k) {
    c->v[0] += k;
    if (in_window()) c->v[1] += k;
}

typedef struct {
    char name[24];
    ctr n;
} reason_t;

static reason_t g_errors[MAX_REASONS], g_statuses[MAX_REASONS];
static int g_nerrors, g_nstatuses;

static void count_reason(reason_t *tab, int *ntab, const char *name) {
    int j;
    for (j = 0; j < *ntab; j++)
        if (!strcmp(tab[j].name, name)) break;
    if (j == *ntab) {
        if (*ntab == MAX_REASONS) j = MAX_REASONS - 1; /* the last slot takes the rest */
        else {
            snprintf(tab[j].name, sizeof tab[j].name, "%s", name);
            (*ntab)++;
        }
    }
    bump(&tab[j].n, 1);
}

static ctr c_req_pl, c_req_seg, c_body, c_wire_in, c_wire_out, c_err, c_non200, c_redirects, c_masters,
    c_connects, c_server_closes, c_close_headers, c_retries, c_updated, c_unchanged, c_skipped, c_overflow;
static uint64_t g_bin_bytes[MAX_BINS], g_bin_reqs[MAX_BINS];
static double g_last_td = -1;

typedef struct {
    double *v;
    int n, cap;
} dist_t;

static dist_t d_seg_ms, d_pl_ms;

static void dist_add(dist_t *d, double x) {
    if (!in_window()) return;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 4096;
        d->v = realloc(d->v, sizeof(double) * (size_t)d->cap);
        if (!d->v) die("out of memory");
    }
    d->v[d->n++] = x;
}

static void timeline(uint64_t bytes, uint64_t reqs) {
    uint64_t b = (g_now - g_t0) / 1000000000ull;
    if (b >= MAX_BINS) return;
    g_bin_bytes[b] += bytes;
    g_bin_reqs[b] += reqs;
}

/* ---------------------------------------------------------------- viewers and connections */
typedef struct hconn {
    int fd, state, kind, vi, want_out, reused, retried, got_byte;
    uint64_t t_req;
    char path[PATH_CAP];
    char req[PATH_CAP + 512];
    int req_len, req_off;
    char head[HEAD_CAP + 1];
    int hlen;
    int status, chunked, close_after, dst, szlen, crlf;
    int64_t clen;
    uint64_t drem, body;
    char szbuf[40];
    char location[PATH_CAP];
    char *pbuf; /* the playlist's body */
    int plen, pcap;
    int ts_body, bad_body;
} hconn;

typedef struct {
    int64_t seq;
    char uri[PATH_CAP];
} seg_t;

typedef struct viewer {
    int started, ended, errors;
    uint64_t t_start, next_reload, t_pl_req;
    char pl_path[PATH_CAP];
    int64_t last_seq; /* the highest sequence number queued or fetched; -1 before the first playlist */
    double td;         /* target duration, s */
    seg_t *q;
    int qh, qn;
    uint64_t segs, segs_w0;
    hconn pl, sg;
} viewer;

static viewer *g_v;
static int g_epfd;
static uint8_t *g_rbuf;
static uint64_t g_next_due; /* the earliest start or reload that may be due */

static void request(hconn *c, const char *path);
static void response_done(hconn *c);

static viewer *owner(hconn *c) { return &g_v[c->vi]; }

static void set_events(hconn *c, int want_out) {
    if (c->fd < 0 || want_out == c->want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.u32 = (uint32_t)(c->vi * 2 + c->kind)};
    epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

static void close_fd(hconn *c) {
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->want_out = 0;
}

static void due(uint64_t t) {
    if (t < g_next_due) g_next_due = t;
}

/* the next segment of the viewer's queue on its segment connection, if it is free */
static void next_segment(viewer *v) {
    if (v->sg.state != H_IDLE || !v->qn) return;
    seg_t *s = &v->q[v->qh];
    v->qh = (v->qh + 1) % QCAP;
    v->qn--;
    request(&v->sg, s->uri);
}

/* a request that ended without a usable answer; the viewer goes on (hls.js retries) */
static void conn_error(hconn *c, const char *why) {
    viewer *v = owner(c);
    if (o_verbose) fprintf(stderr, "hlsgen: viewer %d %s %s: %s\n", c->vi, c->kind == K_PL ? "playlist" : "segment",
                           c->path, why);
    bump(&c_err, 1);
    count_reason(g_errors, &g_nerrors, why);
    v->errors++;
    close_fd(c);
    c->state = H_IDLE;
    if (c->kind == K_PL) {
        v->next_reload = g_now + (uint64_t)(v->td * 0.5e9);
        due(v->next_reload);
    } else {
        next_segment(v);
    }
}

static int flush_req(hconn *c) {
    while (c->req_off < c->req_len) {
        ssize_t r = send(c->fd, c->req + c->req_off, (size_t)(c->req_len - c->req_off), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return -1;
        }
        c->req_off += (int)r;
        bump(&c_wire_out, (uint64_t)r);
    }
    if (c->req_off == c->req_len) c->state = H_HEAD;
    set_events(c, c->req_off < c->req_len);
    return 0;
}

static int open_conn(hconn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)(c->vi * 2 + c->kind)};
    c->want_out = 1;
    if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) return -1;
    bump(&c_connects, 1);
    int r = connect(c->fd, (struct sockaddr *)&g_addr, sizeof g_addr);
    if (r < 0 && errno != EINPROGRESS) return -1;
    c->state = H_CONNECTING;
    c->reused = 0;
    return 0;
}

/* send the request for c->path: on the idle connection if it has one, else on a new one */
static void send_request(hconn *c) {
    c->req_len = snprintf(c->req, sizeof c->req,
                          "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bench-hlsgen/1.0\r\nAccept: */*\r\n"
                          "Connection: keep-alive\r\n\r\n",
                          c->path, g_hostport);
    c->req_off = 0;
    c->hlen = 0;
    c->status = 0;
    c->chunked = c->close_after = 0;
    c->clen = -1;
    c->body = 0;
    c->plen = 0;
    c->got_byte = 0;
    c->location[0] = 0;
    c->bad_body = 0;
    if (c->fd >= 0) {
        c->reused = 1;
        c->state = H_SENDING;
        if (flush_req(c) < 0) {
            close_fd(c);
            bump(&c_server_closes, 1);
        } else {
            return;
        }
    }
    if (open_conn(c) < 0) {
        c->state = H_CONNECTING;
        conn_error(c, "connect");
    }
}

static void request(hconn *c, const char *path) {
    snprintf(c->path, sizeof c->path, "%s", path);
    c->t_req = g_now;
    c->retried = 0;
    const char *q = strchr(path, '?');
    size_t pl = q ? (size_t)(q - path) : strlen(path);
    c->ts_body = pl >= 3 && !memcmp(path + pl - 3, ".ts", 3);
    if (c->kind == K_PL) {
        bump(&c_req_pl, 1);
        owner(c)->t_pl_req = g_now;
    } else {
        bump(&c_req_seg, 1);
    }
    send_request(c);
}

/* ---------------------------------------------------------------- URIs */
/* the path (with query) that uri names, relative to the path base; -1 if another host */
static int resolve(const char *base, const char *uri, char *out, size_t cap) {
    if (!strncasecmp(uri, "http://", 7)) {
        const char *p = uri + 7, *slash = strchr(p, '/');
        size_t hl = slash ? (size_t)(slash - p) : strlen(p);
        if (hl != strlen(g_hostport) || strncasecmp(p, g_hostport, hl)) return -1;
        snprintf(out, cap, "%s", slash ? slash : "/");
        return 0;
    }
    if (strstr(uri, "://")) return -1;
    if (uri[0] == '/') {
        snprintf(out, cap, "%s", uri);
        return 0;
    }
    const char *q = strchr(base, '?');
    size_t bl = q ? (size_t)(q - base) : strlen(base);
    size_t dl = bl;
    while (dl > 0 && base[dl - 1] != '/') dl--;
    if (dl >= cap) dl = cap - 1;
    memcpy(out, base, dl);
    snprintf(out + dl, cap - dl, "%s", uri);
    return 0;
}

/* ---------------------------------------------------------------- playlists */
typedef struct {
    double dur;
    const char *uri;
} entry_t;

static entry_t g_entries[MAX_ENTRIES];

static void schedule_reload(viewer *v, int updated, double last_dur) {
    double iv = v->td;
    if (updated) {
        if (last_dur > 0 && last_dur < iv) iv = last_dur;
        bump(&c_updated, 1);
    } else {
        iv /= 2;
        bump(&c_unchanged, 1);
    }
    uint64_t t = v->t_pl_req + (uint64_t)(iv * 1e9);
    v->next_reload = t > g_now ? t : g_now;
    due(v->next_reload);
}

static void parse_playlist(hconn *c) {
    viewer *v = owner(c);
    char *p = c->pbuf, *end = c->pbuf + c->plen;
    *end = 0;
    if (c->plen < 7 || strncmp(p, "#EXTM3U", 7)) {
        conn_error(c, "parse");
        return;
    }
    int n = 0, master = 0, endlist = 0, have_seq = 0;
    int64_t mseq = 0;
    double td = -1, dur = -1;
    char *variant = NULL;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        if (le > p && le[-1] == '\r') le[-1] = 0;
        *le = 0;
        if (*p == '#') {
            if (!strncmp(p, "#EXT-X-TARGETDURATION:", 22)) td = atof(p + 22);
            else if (!strncmp(p, "#EXT-X-MEDIA-SEQUENCE:", 22)) mseq = atoll(p + 22), have_seq = 1;
            else if (!strncmp(p, "#EXTINF:", 8)) dur = atof(p + 8);
            else if (!strncmp(p, "#EXT-X-STREAM-INF", 17)) master = 1;
            else if (!strncmp(p, "#EXT-X-ENDLIST", 14)) endlist = 1;
        } else if (*p) {
            if (master && !variant) variant = p;
            else if (!master && n < MAX_ENTRIES) {
                g_entries[n].dur = dur;
                g_entries[n].uri = p;
                n++;
                dur = -1;
            }
        }
        p = nl ? nl + 1 : end;
    }
    (void)have_seq;
    if (master) {
        char path[PATH_CAP];
        if (!variant || resolve(c->path, variant, path, sizeof path) < 0) {
            conn_error(c, "parse");
            return;
        }
        bump(&c_masters, 1);
        snprintf(v->pl_path, sizeof v->pl_path, "%s", path);
        v->next_reload = g_now;
        due(g_now);
        return;
    }
    if (td <= 0) {
        conn_error(c, "parse");
        return;
    }
    v->td = td;
    g_last_td = td;
    int from;
    if (v->last_seq < 0) {
        from = n > o_start_segs ? n - o_start_segs : 0;
    } else {
        int64_t first_new = v->last_seq + 1;
        if (n && mseq > first_new) bump(&c_skipped, (uint64_t)(mseq - first_new));
        from = first_new > mseq ? (int)(first_new - mseq < n ? first_new - mseq : n) : 0;
    }
    for (int i = from; i < n; i++) {
        char path[PATH_CAP];
        if (resolve(c->path, g_entries[i].uri, path, sizeof path) < 0) {
            conn_error(c, "parse");
            return;
        }
        if (v->qn == QCAP) {
            bump(&c_overflow, 1);
            bump(&c_skipped, 1);
        } else {
            seg_t *s = &v->q[(v->qh + v->qn) % QCAP];
            s->seq = mseq + i;
            snprintf(s->uri, sizeof s->uri, "%s", path);
            v->qn++;
        }
        v->last_seq = mseq + i;
    }
    if (endlist) {
        v->ended = 1;
        v->next_reload = UINT64_MAX;
    } else {
        schedule_reload(v, from < n, n ? g_entries[n - 1].dur : -1);
    }
    next_segment(v);
}

/* ---------------------------------------------------------------- responses */
static void response_done(hconn *c) {
    viewer *v = owner(c);
    double ms = (double)(g_now - c->t_req) / 1e6;
    timeline(0, 1);
    if (c->close_after || (c->clen < 0 && !c->chunked)) close_fd(c);
    c->state = H_IDLE;
    if (c->status != 200) {
        char s[16];
        snprintf(s, sizeof s, "%d", c->status);
        count_reason(g_statuses, &g_nstatuses, s);
    }
    if (c->kind == K_PL) {
        int redirect = c->status == 301 || c->status == 302 || c->status == 303 || c->status == 307 || c->status == 308;
        if (redirect && c->location[0]) {
            char path[PATH_CAP];
            if (resolve(c->path, c->location, path, sizeof path) < 0) {
                conn_error(c, "parse");
                return;
            }
            bump(&c_redirects, 1);
            snprintf(v->pl_path, sizeof v->pl_path, "%s", path);
            v->next_reload = g_now;
            due(g_now);
            return;
        }
        if (c->status != 200) {
            bump(&c_non200, 1);
            v->errors++;
            v->next_reload = g_now + (uint64_t)(v->td * 0.5e9);
            due(v->next_reload);
            return;
        }
        dist_add(&d_pl_ms, ms);
        parse_playlist(c);
        return;
    }
    if (c->status != 200) {
        bump(&c_non200, 1);
        v->errors++;
    } else if (c->bad_body || (c->clen >= 0 && (int64_t)c->body != c->clen)) {
        bump(&c_err, 1);
        count_reason(g_errors, &g_nerrors, "body");
        v->errors++;
    } else {
        v->segs++;
        dist_add(&d_seg_ms, ms);
    }
    next_segment(v);
}

static int header_value(const char *head, const char *name, char *val, size_t cap) {
    size_t nl = strlen(name);
    const char *s = head;
    while ((s = strstr(s, "\r\n")) != NULL) {
        s += 2;
        if (strncasecmp(s, name, nl) == 0 && s[nl] == ':') {
            const char *x = s + nl + 1;
            while (*x == ' ' || *x == '\t') x++;
            const char *e = strstr(x, "\r\n");
            size_t len = e ? (size_t)(e - x) : strlen(x);
            if (len >= cap) len = cap - 1;
            memcpy(val, x, len);
            val[len] = 0;
            return 1;
        }
    }
    return 0;
}

static int body_bytes(hconn *c, const uint8_t *p, size_t n) {
    if (!n) return 0;
    if (c->kind == K_PL) {
        if (c->plen + (int64_t)n > PL_CAP) return -1;
        if (c->plen + (int)n + 1 > c->pcap) {
            int cap = c->pcap ? c->pcap : 8192;
            while (cap < c->plen + (int)n + 1) cap *= 2;
            c->pbuf = realloc(c->pbuf, (size_t)cap);
            if (!c->pbuf) die("out of memory");
            c->pcap = cap;
        }
        memcpy(c->pbuf + c->plen, p, n);
        c->plen += (int)n;
    } else if (c->ts_body && c->body == 0 && p[0] != 0x47) {
        c->bad_body = 1;
    }
    c->body += n;
    bump(&c_body, n);
    timeline(n, 0);
    return 0;
}

/* body bytes of the current response; returns the bytes consumed, -1 on a parse error;
   sets *done when the response ended */
static ssize_t feed_body(hconn *c, const uint8_t *p, size_t n, int *done) {
    size_t used = 0;
    if (!c->chunked) {
        size_t k = n;
        if (c->clen >= 0 && (int64_t)k > c->clen - (int64_t)c->body) k = (size_t)(c->clen - (int64_t)c->body);
        if (body_bytes(c, p, k) < 0) return -1;
        if (c->clen >= 0 && (int64_t)c->body == c->clen) *done = 1;
        return (ssize_t)k;
    }
    while (used < n && !*done) {
        const uint8_t *q = p + used;
        size_t left = n - used;
        switch (c->dst) {
        case D_SIZE:
        case D_TRAILER: {
            const uint8_t *nl = memchr(q, '\n', left);
            size_t k = nl ? (size_t)(nl - q) + 1 : left;
            if (c->szlen + k >= sizeof c->szbuf) return -1;
            memcpy(c->szbuf + c->szlen, q, k);
            c->szlen += (int)k;
            used += k;
            if (!nl) break;
            c->szbuf[c->szlen] = 0;
            int blank = c->szlen <= 2;
            c->szlen = 0;
            if (c->dst == D_TRAILER) {
                if (blank) *done = 1;
                break;
            }
            char *e;
            unsigned long long sz = strtoull(c->szbuf, &e, 16);
            if (e == c->szbuf) return -1;
            if (sz == 0) {
                c->dst = D_TRAILER;
            } else {
                c->drem = sz;
                c->dst = D_DATA;
            }
            break;
        }
        case D_DATA: {
            size_t k = left < c->drem ? left : (size_t)c->drem;
            if (body_bytes(c, q, k) < 0) return -1;
            used += k;
            c->drem -= k;
            if (!c->drem) {
                c->dst = D_CRLF;
                c->crlf = 0;
            }
            break;
        }
        case D_CRLF:
            if (*q == '\r' && !c->crlf) c->crlf = 1;
            else if (*q == '\n') c->dst = D_SIZE;
            else return -1;
            used++;
            break;
        }
    }
    return (ssize_t)used;
}

/* the status line and headers are in c->head; returns 0, or -1 on a parse error */
static int parse_head(hconn *c) {
    if (strncmp(c->head, "HTTP/1.", 7) != 0 || c->hlen < 12) return -1;
    c->status = atoi(c->head + 9);
    char val[PATH_CAP];
    if (header_value(c->head, "transfer-encoding", val, sizeof val) && strcasestr(val, "chunked")) c->chunked = 1;
    if (!c->chunked && header_value(c->head, "content-length", val, sizeof val)) c->clen = atoll(val);
    if (header_value(c->head, "connection", val, sizeof val) && strcasestr(val, "close")) {
        bump(&c_close_headers, 1);
        if (o_honor_close) c->close_after = 1;
    }
    if (header_value(c->head, "location", val, sizeof val)) snprintf(c->location, sizeof c->location, "%s", val);
    c->dst = D_SIZE;
    c->szlen = 0;
    if (c->status == 204 || c->status == 304 || (c->status >= 100 && c->status < 200)) c->clen = 0;
    return 0;
}

/* bytes from the socket: the head, then the body; -1 on a parse error */
static int feed(hconn *c, const uint8_t *p, size_t n) {
    while (n) {
        if (c->state == H_HEAD) {
            size_t k = n;
            if (c->hlen + (int)k > HEAD_CAP) k = (size_t)(HEAD_CAP - c->hlen);
            memcpy(c->head + c->hlen, p, k);
            int from = c->hlen > 3 ? c->hlen - 3 : 0;
            c->hlen += (int)k;
            c->head[c->hlen] = 0;
            char *e = memmem(c->head + from, (size_t)(c->hlen - from), "\r\n\r\n", 4);
            if (!e) {
                if (c->hlen >= HEAD_CAP) return -1;
                return 0;
            }
            size_t used = (size_t)(e - c->head) + 4 - (size_t)(c->hlen - (int)k);
            e[2] = 0;
            if (parse_head(c) < 0) return -1;
            p += used;
            n -= used;
            c->state = H_BODY;
            if (c->clen == 0) {
                response_done(c);
                if (n) return -1; /* nothing may follow an answer before the next request */
                return 0;
            }
            continue;
        }
        if (c->state != H_BODY) return -1; /* bytes while idle */
        int done = 0;
        ssize_t used = feed_body(c, p, n, &done);
        if (used < 0) return -1;
        p += used;
        n -= (size_t)used;
        if (done) {
            response_done(c);
            if (n) return -1;
            return 0;
        }
    }
    return 0;
}

static void on_event(hconn *c, uint32_t evs) {
    if (c->state == H_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            conn_error(c, "connect");
            return;
        }
        if (!(evs & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        c->state = H_SENDING;
    }
    if (c->state == H_SENDING && (evs & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        if (flush_req(c) < 0) {
            if (c->reused && !c->retried) goto retry;
            conn_error(c, "disconnect");
            return;
        }
    }
    if (!(evs & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
    for (;;) {
        ssize_t r = recv(c->fd, g_rbuf, RBUF_SIZE, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        }
        g_now = now_ns();
        if (r <= 0) {
            if (c->state == H_IDLE) { /* the server closed an idle keep-alive connection */
                close_fd(c);
                bump(&c_server_closes, 1);
                return;
            }
            if (c->state == H_BODY && !c->chunked && c->clen < 0) { /* a close-delimited body */
                response_done(c);
                return;
            }
            if (c->reused && !c->got_byte && !c->retried) goto retry;
            conn_error(c, "disconnect");
            return;
        }
        bump(&c_wire_in, (uint64_t)r);
        c->got_byte = 1;
        if (feed(c, g_rbuf, (size_t)r) < 0) {
            conn_error(c, "parse");
            return;
        }
        if (c->fd < 0) return;
        if (r < RBUF_SIZE) return;
    }
retry: /* the server closed the reused connection before answering: once more on a new one */
    close_fd(c);
    bump(&c_server_closes, 1);
    bump(&c_retries, 1);
    c->retried = 1;
    send_request(c);
}

/* ---------------------------------------------------------------- url */
static void parse_url(const char *url) {
    if (strncmp(url, "http://", 7)) die("the URL must be http://");
    const char *p = url + 7, *slash = strchr(p, '/');
    if (!slash) die("url without a path: %s", url);
    size_t hl = (size_t)(slash - p);
    if (hl >= sizeof g_hostport) die("host too long");
    memcpy(g_hostport, p, hl);
    g_hostport[hl] = 0;
    char host[300];
    snprintf(host, sizeof host, "%s", g_hostport);
    int port = 80;
    char *colon = strchr(host, ':');
    if (colon) {
        *colon = 0;
        port = atoi(colon + 1);
    }
    snprintf(g_path0, sizeof g_path0, "%s", slash);
    if (!strcmp(host, "localhost")) snprintf(host, sizeof host, "127.0.0.1");
    memset(&g_addr, 0, sizeof g_addr);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &g_addr.sin_addr) != 1) die("host must be a numeric loopback address");
    if ((ntohl(g_addr.sin_addr.s_addr) >> 24) != 127) die("only loopback targets (127.0.0.0/8) are allowed");
}

/* ---------------------------------------------------------------- report */

static void jctr(FILE *f, const char *name, ctr *c) {
    fprintf(f, "  \"%s\": {\"total\": %llu, \"window\": %llu},\n", name, (unsigned long long)c->v[0],
            (unsigned long long)c->v[1]);
}

static void jreasons(FILE *f, const char *name, reason_t *tab, int n) {
    fprintf(f, "  \"%s\": {", name);
    for (int j = 0; j < n; j++)
        fprintf(f, "%s\"%s\": {\"total\": %llu, \"window\": %llu}", j ? ", " : "", tab[j].name,
                (unsigned long long)tab[j].n.v[0], (unsigned long long)tab[j].n.v[1]);
    fprintf(f, "},\n");
}

static double cpu_s(struct rusage *r) {
    return (double)r->ru_utime.tv_sec + (double)r->ru_utime.tv_usec / 1e6 + (double)r->ru_stime.tv_sec +
           (double)r->ru_stime.tv_usec / 1e6;
}

static void report(struct rusage *ru_w, uint64_t t_stop) {
    FILE *f = stdout;
    if (o_out && strcmp(o_out, "-")) {
        f = fopen(o_out, "w");
        if (!f) die("cannot write %s", o_out);
    }
    int n = o_n, started = 0, ok = 0, with_errors = 0, no_segment = 0, nw = 0;
    double win_s = t_stop > g_tw ? (double)(t_stop - g_tw) / 1e9 : 0;
    double *segs_w = malloc(sizeof(double) * (size_t)n), *segs_all = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) {
        viewer *v = &g_v[i];
        if (!v->started) continue;
        started++;
        segs_all[started - 1] = (double)v->segs;
        if (v->t_start <= g_tw) segs_w[nw++] = (double)(v->segs - v->segs_w0);
        if (v->errors) with_errors++;
        else if (!v->segs) no_segment++;
        else ok++;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cw = cpu_s(&ru) - cpu_s(ru_w);
    fprintf(f, "{\n  \"mode\": \"hls\",\n  \"url\": \"%s\",\n", o_url);
    fprintf(f, "  \"n\": %d,\n  \"started\": %d,\n  \"ok\": %d,\n  \"with_errors\": %d,\n  \"no_segment\": %d,\n", n,
            started, ok, with_errors, no_segment);
    fprintf(f, "  \"duration_s\": %.3f,\n  \"warmup_s\": %.3f,\n  \"window_s\": %.3f,\n  \"spread_s\": %.3f,\n",
            (double)(t_stop - g_t0) / 1e9, o_warm, win_s, o_spread);
    fprintf(f, "  \"start_segments\": %d,\n  \"honor_close\": %s,\n  \"target_duration_s\": ", o_start_segs,
            o_honor_close ? "true" : "false");
    jnum(f, g_last_td);
    fprintf(f, ",\n");
    jctr(f, "playlist_requests", &c_req_pl);
    jctr(f, "segment_requests", &c_req_seg);
    jctr(f, "body_bytes", &c_body);
    jctr(f, "wire_in", &c_wire_in);
    jctr(f, "wire_out", &c_wire_out);
    jctr(f, "errors", &c_err);
    jreasons(f, "error_reasons", g_errors, g_nerrors);
    jctr(f, "non_200", &c_non200);
    jreasons(f, "statuses", g_statuses, g_nstatuses);
    jctr(f, "redirects", &c_redirects);
    jctr(f, "master_playlists", &c_masters);
    jctr(f, "connects", &c_connects);
    jctr(f, "server_closes", &c_server_closes);
    jctr(f, "retries", &c_retries);
    jctr(f, "connection_close_headers", &c_close_headers);
    jctr(f, "playlists_updated", &c_updated);
    jctr(f, "playlists_unchanged", &c_unchanged);
    jctr(f, "segments_skipped", &c_skipped);
    jctr(f, "queue_overflows", &c_overflow);
    uint64_t segs = 0, segs_win = 0;
    for (int i = 0; i < n; i++) {
        segs += g_v[i].segs;
        segs_win += g_v[i].segs - g_v[i].segs_w0;
    }
    fprintf(f, "  \"segments\": {\"total\": %llu, \"window\": %llu},\n", (unsigned long long)segs,
            (unsigned long long)segs_win);
    fprintf(f, "  \"mbps_window\": ");
    jnum(f, win_s > 0 ? (double)c_body.v[1] * 8 / win_s / 1e6 : NAN);
    fprintf(f, ",\n  \"requests_per_s_window\": ");
    jnum(f, win_s > 0 ? (double)(c_req_pl.v[1] + c_req_seg.v[1]) / win_s : NAN);
    fprintf(f, ",\n");
    jdist(f, "segments_per_viewer_window", segs_w, nw);
    jdist(f, "segments_per_viewer", segs_all, started);
    jdist(f, "segment_ms", d_seg_ms.v, d_seg_ms.n);
    jdist(f, "playlist_ms", d_pl_ms.v, d_pl_ms.n);
    fprintf(f, "  \"loadgen_cpu\": {\"total_s\": %.3f, \"window_s\": %.3f, \"window_pct\": ", cpu_s(&ru), cw);
    jnum(f, win_s > 0 ? cw / win_s * 100 : NAN);
    fprintf(f, ", \"maxrss_kb\": %ld},\n", ru.ru_maxrss);
    uint64_t bins = (t_stop - g_t0 + 999999999ull) / 1000000000ull;
    if (bins > MAX_BINS) bins = MAX_BINS;
    fprintf(f, "  \"timeline\": {\"bin_s\": 1, \"bytes\": [");
    for (uint64_t b = 0; b < bins; b++) fprintf(f, "%s%llu", b ? ", " : "", (unsigned long long)g_bin_bytes[b]);
    fprintf(f, "], \"requests\": [");
    for (uint64_t b = 0; b < bins; b++) fprintf(f, "%s%llu", b ? ", " : "", (unsigned long long)g_bin_reqs[b]);
    fprintf(f, "]}\n}\n");
    if (f != stdout) fclose(f);
    else fflush(f);
    free(segs_w);
    free(segs_all);
}

/* ---------------------------------------------------------------- main */

static void usage(void) {
    fprintf(stderr, "usage: hlsgen -u http://127.0.0.1:PORT/PATH.m3u8 [-n N] [-d SECONDS] [--warmup SECONDS] [-o FILE]\n"
                    "  --spread S          viewers start evenly over S seconds (5)\n"
                    "  --start-segments K  segments taken from the first playlist (3)\n"
                    "  --timeout S         a request not answered in S seconds fails (10)\n"
                    "  --honor-close       close the connection after a Connection: close answer\n"
                    "  -v                  log errors to stderr\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED()                                                                                                         \
    do {                                                                                                               \
        if (!v) usage();                                                                                               \
        i++;                                                                                                           \
    } while (0)
        if (!strcmp(a, "-n")) { NEED(); o_n = atoi(v); }
        else if (!strcmp(a, "-d")) { NEED(); o_dur = atof(v); }
        else if (!strcmp(a, "-u")) { NEED(); o_url = v; }
        else if (!strcmp(a, "-o")) { NEED(); o_out = v; }
        else if (!strcmp(a, "--warmup")) { NEED(); o_warm = atof(v); }
        else if (!strcmp(a, "--spread")) { NEED(); o_spread = atof(v); }
        else if (!strcmp(a, "--start-segments")) { NEED(); o_start_segs = atoi(v); }
        else if (!strcmp(a, "--timeout")) { NEED(); o_timeout = atof(v); }
        else if (!strcmp(a, "--honor-close")) o_honor_close = 1;
        else if (!strcmp(a, "-v")) o_verbose = 1;
        else usage();
#undef NEED
    }
    if (!o_url) usage();
    if (o_n < 1 || o_n > 100000) die("bad -n");
    if (o_dur <= 0 || o_warm < 0 || o_warm >= o_dur) die("need 0 <= warmup < duration");
    if (o_spread < 0 || o_start_segs < 1 || o_start_segs > QCAP || o_timeout <= 0) die("bad option value");
    parse_url(o_url);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = (rlim_t)o_n * 2 + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want <= rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < want) die("RLIMIT_NOFILE %lu is below %lu", (unsigned long)rl.rlim_cur, (unsigned long)want);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    g_v = calloc((size_t)o_n, sizeof(viewer));
    if (!g_v) die("out of memory");
    for (int i = 0; i < o_n; i++) {
        viewer *v = &g_v[i];
        v->q = calloc(QCAP, sizeof(seg_t));
        if (!v->q) die("out of memory");
        v->last_seq = -1;
        v->td = 1;
        v->pl.fd = v->sg.fd = -1;
        v->pl.vi = v->sg.vi = i;
        v->pl.kind = K_PL;
        v->sg.kind = K_SEG;
        snprintf(v->pl_path, sizeof v->pl_path, "%s", g_path0);
    }
    g_rbuf = malloc(RBUF_SIZE);
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    int maxev = 2 * o_n + 1;
    struct epoll_event *evs = calloc((size_t)maxev, sizeof *evs);

    g_now = g_t0 = now_ns();
    g_tw = g_t0 + (uint64_t)(o_warm * 1e9);
    g_tend = g_t0 + (uint64_t)(o_dur * 1e9);
    uint64_t tmo = (uint64_t)(o_timeout * 1e9), t_check = g_t0;
    int snap = 0;
    struct rusage ru_w;
    getrusage(RUSAGE_SELF, &ru_w);
    g_next_due = g_t0;

    while (!g_stop) {
        g_now = now_ns();
        if (g_now >= g_tend) break;
        if (!snap && g_now >= g_tw) {
            snap = 1;
            for (int i = 0; i < o_n; i++) g_v[i].segs_w0 = g_v[i].segs;
            getrusage(RUSAGE_SELF, &ru_w);
        }
        if (g_now >= g_next_due) { /* starts and reloads that are due; the next one */
            g_next_due = UINT64_MAX;
            for (int i = 0; i < o_n; i++) {
                viewer *v = &g_v[i];
                if (!v->started) {
                    uint64_t t = g_t0 + (uint64_t)(o_spread * 1e9 * i / o_n);
                    if (g_now < t) {
                        due(t);
                        continue;
                    }
                    v->started = 1;
                    v->t_start = g_now;
                    v->next_reload = g_now;
                }
                if (v->ended || v->pl.state != H_IDLE) continue;
                if (g_now >= v->next_reload) {
                    v->next_reload = UINT64_MAX;
                    request(&v->pl, v->pl_path);
                } else {
                    due(v->next_reload);
                }
            }
        }
        if (g_now >= t_check) { /* requests not answered in time */
            t_check = g_now + 100000000ull;
            for (int i = 0; i < o_n; i++) {
                hconn *cs[2] = {&g_v[i].pl, &g_v[i].sg};
                for (int k = 0; k < 2; k++)
                    if (cs[k]->state != H_IDLE && g_now - cs[k]->t_req > tmo) conn_error(cs[k], "timeout");
            }
        }
        uint64_t until = g_tend;
        if (g_next_due < until) until = g_next_due;
        if (!snap && g_tw < until) until = g_tw;
        if (t_check < until) until = t_check;
        int timeout_ms = until > g_now ? (int)((until - g_now + 999999) / 1000000ull) : 0;
        int ne = epoll_wait(g_epfd, evs, maxev, timeout_ms);
        if (ne < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait: %s", strerror(errno));
        }
        g_now = now_ns();
        for (int i = 0; i < ne; i++) {
            uint32_t id = evs[i].data.u32;
            viewer *v = &g_v[id / 2];
            hconn *c = id & 1 ? &v->sg : &v->pl;
            if (c->fd < 0) continue;
            on_event(c, evs[i].events);
        }
    }
    uint64_t t_stop = now_ns();
    if (!snap) {
        g_tw = t_stop;
        getrusage(RUSAGE_SELF, &ru_w);
    }
    g_now = t_stop;
    report(&ru_w, t_stop);
    for (int i = 0; i < o_n; i++) {
        close_fd(&g_v[i].pl);
        close_fd(&g_v[i].sg);
        free(g_v[i].pl.pbuf);
        free(g_v[i].sg.pbuf);
        free(g_v[i].q);
    }
    free(g_v);
    free(evs);
    free(g_rbuf);
    free(d_seg_ms.v);
    free(d_pl_ms.v);
    close(g_epfd);
    return 0;
}
