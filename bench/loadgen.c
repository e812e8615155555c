/*
 * loadgen: single-threaded epoll load generator for live-streaming servers.
 *
 *   loadgen flv     -u http://127.0.0.1:8080/live/stream.flv  -n 1000 -d 30 --warmup 5 -o r.json
 *   loadgen rtmp    -u rtmp://127.0.0.1:1935/live/stream      -n 1000 -d 30 --warmup 5 -o r.json
 *   loadgen publish -u rtmp://127.0.0.1:1935/live/NAME -f in.flv -n 100 -d 30 --warmup 5
 *   loadgen ts      -u http://127.0.0.1:8080/live/stream.ts   -n 1000 -d 30 --warmup 5 -o r.json
 *   loadgen wsflv   -u ws://127.0.0.1:8080/live/stream.flv    -n 1000 -d 30 --warmup 5 -o r.json
 *   loadgen wsts    -u ws://127.0.0.1:8080/live/stream.ts     -n 1000 -d 30 --warmup 5 -o r.json
 *
 * flv:     N HTTP-FLV players (GET, status 200, chunked or close-delimited body, FLV tags).
 * ts:      N HTTP-TS players (the same HTTP, an MPEG-TS body: 188-byte packets, PES headers
 *          of the video PID 0x100 and audio PIDs 0x101/0x102 read for their timestamps).
 * wsflv, wsts: N WebSocket players (RFC 6455 upgrade with a random Sec-WebSocket-Key,
 *          101 and Sec-WebSocket-Accept checked; unmasked server frames with 2/4/10-byte
 *          headers, fragments, pings answered) of an FLV or TS stream in binary messages.
 * rtmp:    N RTMP players (simple handshake, connect, createStream, play; full chunk parser,
 *          peer Set Chunk Size, Acknowledgement, PingResponse).
 * publish: N RTMP publishers of one FLV file on NAME_0 .. NAME_{N-1}, paced in real time,
 *          looped (releaseStream, FCPublish, createStream, publish, @setDataFrame).
 *
 * A URL containing "%d" is formatted with the connection index (modulo --streams for
 * players); for publish without "%d", "_%d" is appended to the stream name.
 *
 * Timeline: t=0 start, connections ramp up (--ramp per --ramp-ms), [warmup, duration] is the
 * measurement window for throughput and CPU, the run stops at `duration` seconds (hard stop),
 * and a JSON report goes to -o (or stdout). Only loopback addresses are accepted.
 *
 * Build: cc -O2 -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h> /* isnan, isinf, NAN: macros only, no libm needed */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { M_FLV, M_RTMP, M_PUB, M_TS, M_WSFLV, M_WSTS };
enum { ST_IDLE, ST_CONNECTING, ST_HTTP_HEAD, ST_HTTP_BODY, ST_HS1, ST_HS2, ST_RTMP, ST_DONE };
enum { P_NONE, P_CONNECT, P_CREATE, P_PUBWAIT, P_PLAYING, P_PUBLISHING };
enum { F_HDR, F_TAG, F_BODYHDR };
enum { D_SIZE, D_DATA, D_CRLF, D_END };
enum { W_HDR, W_DATA, W_CTRL };

#define RBUF_SIZE (512 * 1024)
#define MAX_CTRL_MSG (1024 * 1024)
#define PUB_MAXQ (4 * 1024 * 1024)
#define TS_PACKET 188
#define TS_VIDEO_PID 0x100 /* the PIDs SRS (and srspy's kernel/ts.py) write */
#define TS_AAC_PID 0x101
#define TS_MP3_PID 0x102

/* ---------------------------------------------------------------- options */
static int o_mode = -1;
static int o_n = 1;
static double o_dur = 10, o_warm = 0, o_timeout = 10;
static const char *o_url, *o_out, *o_file;
static int o_ramp = 200, o_ramp_ms = 100, o_poll_ms = 2, o_streams = 0;
static int o_rcvbuf = 512 * 1024, o_chunk = 0, o_verbose = 0;
/* derived from the mode: players that start with an HTTP request, over WebSocket, of TS */
static int g_http, g_ws, g_ts;

/* ---------------------------------------------------------------- url */
static struct sockaddr_in g_addr;
static char g_host[300], g_hostport[300], g_path[1024], g_app[512], g_stream[512], g_tcurl[1024];
static int g_port;

/* ---------------------------------------------------------------- time */
static uint64_t g_now, g_t0, g_tw, g_tend;
#define LG_NAME "loadgen"
#include "lgcommon.h"

/* ---------------------------------------------------------------- publish input */
typedef struct {
    uint8_t type;
    uint32_t ts;
    uint32_t size;
    const uint8_t *data;
} tag_t;

static uint8_t *g_file;
static tag_t *g_tags;
static int g_ntags, g_first_loop;
static int64_t g_loop_dur;
static double g_file_bps; /* FLV media payload bits per second of the file */

/* ---------------------------------------------------------------- connection */
typedef struct {
    uint32_t csid, ts, delta, len, sid, have, cap;
    int ext, seen;
    uint8_t type;
    uint8_t head[8];
    uint8_t *buf;
} cs_t;

typedef struct conn {
    int fd, idx, state, proto, want_out, setting_up;
    const char *fail;
    uint64_t t_start, t_first_byte, t_ready, t_first_key, t_first_media, t_last_media, t_fail;
    uint64_t wire_in, wire_out, bytes, bytes_w0, frames, last_ack;
    int64_t prog_w0;
    /* media clock */
    int have_media;
    uint32_t ts_first;
    int64_t prog;
    double min_d;
    /* output buffer */
    uint8_t *ob;
    uint32_t oh, ot, ocap;
    /* http */
    char *hbuf;
    int hlen, chunked, dst, szlen, crlf;
    int64_t clen;
    uint64_t drem;
    char szbuf[72];
    /* flv */
    int fst, fneed, fhave;
    uint8_t fb[16];
    uint64_t fskip;
    uint8_t ftype;
    uint32_t fsize, fts;
    /* ts: the part of a packet that ended a read */
    uint8_t tsb[TS_PACKET];
    int tshave;
    /* websocket: frame parser state, header or control payload bytes, the expected accept */
    int wst, wneed, whave, wop, wfrag;
    uint64_t wrem;
    uint8_t wb[128];
    char ws_accept[32];
    /* rtmp */
    uint8_t *s1;
    int hs_have;
    uint32_t in_chunk, win_ack, sid;
    uint8_t hb[24];
    int hneed, hhave, hstage;
    uint32_t crem;
    cs_t *cur, *css;
    int ncs;
    /* publish */
    int next_tag;
    int64_t loop_off, appended_ts, flushed_ts;
    uint64_t pub_t0;
    char name[256];
    char path[1100];
} conn;

static conn *g_conns;
static int g_epfd;
static uint8_t *g_rbuf;
static int g_started;
/* players started that have not yet received their first keyframe (nor ended): while
   there are any, the loop does not sleep between waits (--poll-ms), so that setup round
   trips and first-keyframe times are not delayed by the load generator's batching */
static int g_setting_up;

static void setup_over(conn *c);

static void conn_close(conn *c) {
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    free(c->hbuf);
    c->hbuf = NULL;
    free(c->s1);
    c->s1 = NULL;
    free(c->ob);
    c->ob = NULL;
    c->oh = c->ot = c->ocap = 0;
    for (int i = 0; i < c->ncs; i++) free(c->css[i].buf);
    free(c->css);
    c->css = NULL;
    c->ncs = 0;
    c->cur = NULL;
    c->state = ST_DONE;
    setup_over(c);
}

static void fail(conn *c, const char *why) {
    if (c->state == ST_DONE) return;
    if (!c->fail) {
        c->fail = why;
        c->t_fail = g_now;
        if (o_verbose) fprintf(stderr, "loadgen: conn %d failed: %s\n", c->idx, why);
    }
    conn_close(c);
}

/* ---------------------------------------------------------------- output */
static void ob_append(conn *c, const void *p, size_t n) {
    if (c->oh && c->oh == c->ot) c->oh = c->ot = 0;
    if (c->ot + n > c->ocap) {
        if (c->oh) {
            memmove(c->ob, c->ob + c->oh, c->ot - c->oh);
            c->ot -= c->oh;
            c->oh = 0;
        }
        if (c->ot + n > c->ocap) {
            uint32_t cap = c->ocap ? c->ocap : 4096;
            while (cap < c->ot + n) cap *= 2;
            c->ob = realloc(c->ob, cap);
            if (!c->ob) die("out of memory");
            c->ocap = cap;
        }
    }
    memcpy(c->ob + c->ot, p, n);
    c->ot += n;
}

static void set_events(conn *c, int want_out) {
    if (c->fd < 0 || want_out == c->want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.u32 = (uint32_t)c->idx};
    epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

static int flush_out(conn *c) {
    while (c->ot > c->oh) {
        ssize_t r = send(c->fd, c->ob + c->oh, c->ot - c->oh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            fail(c, "disconnect");
            return -1;
        }
        c->oh += (uint32_t)r;
        c->wire_out += (uint64_t)r;
    }
    if (c->oh == c->ot) {
        c->oh = c->ot = 0;
        c->flushed_ts = c->appended_ts;
    }
    set_events(c, c->ot > c->oh);
    return 0;
}

/* ---------------------------------------------------------------- byte helpers */
static inline uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static inline uint32_t be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static inline uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static inline void wbe16(uint8_t *p, uint32_t v) { p[0] = v >> 8; p[1] = v; }
static inline void wbe24(uint8_t *p, uint32_t v) { p[0] = v >> 16; p[1] = v >> 8; p[2] = v; }
static inline void wbe32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

/* copy bytes of (*p, *n) into buf until it holds want bytes; true when it does */
static int gather(uint8_t *buf, int *have, int want, const uint8_t **p, size_t *n) {
    size_t k = (size_t)(want - *have);
    if (k > *n) k = *n;
    memcpy(buf + *have, *p, k);
    *have += (int)k;
    *p += k;
    *n -= k;
    return *have == want;
}

/* ---------------------------------------------------------------- media accounting */
static void first_key(conn *c) {
    c->t_first_key = g_now;
    setup_over(c);
}

/* one media frame (not a sequence header) with timestamp ts (ms): delivery and lag clock */
static void media_tick(conn *c, uint32_t ts) {
    c->frames++;
    c->t_last_media = g_now;
    if (!c->have_media) {
        c->have_media = 1;
        c->t_first_media = g_now;
        c->ts_first = ts;
        c->prog = 0;
        c->min_d = 0;
        return;
    }
    int32_t d = (int32_t)(ts - c->ts_first);
    if (d > c->prog) c->prog = d;
    double dd = (double)(g_now - c->t_first_media) / 1e6 - (double)c->prog;
    if (dd < c->min_d) c->min_d = dd;
}

static void on_media(conn *c, int type, uint32_t ts, const uint8_t *h, int hl) {
    if (type != 8 && type != 9) return;
    int seqhdr = 0;
    if (type == 9 && hl >= 1) {
        if (h[0] & 0x80)
            seqhdr = (h[0] & 0x0f) == 0; /* enhanced RTMP: PacketTypeSequenceStart */
        else if (((h[0] & 0x0f) == 7 || (h[0] & 0x0f) == 12) && hl >= 2)
            seqhdr = h[1] == 0;
    } else if (type == 8 && hl >= 2) {
        seqhdr = (h[0] >> 4) == 10 && h[1] == 0;
    }
    if (type == 9 && !c->t_first_key && hl >= 1) {
        int key;
        if (h[0] & 0x80) {
            int pt = h[0] & 0x0f;
            key = ((h[0] >> 4) & 7) == 1 && (pt == 1 || pt == 3);
        } else if ((h[0] & 0x0f) == 7 || (h[0] & 0x0f) == 12) {
            key = (h[0] >> 4) == 1 && hl >= 2 && h[1] == 1;
        } else {
            key = 1; /* not AVC/HEVC: first video tag */
        }
        if (key) first_key(c);
    }
    if (!seqhdr) media_tick(c, ts);
}

/* ---------------------------------------------------------------- FLV parser */
static int flv_feed(conn *c, const uint8_t *p, size_t n) {
    c->bytes += n;
    while (n) {
        if (c->fskip) {
            size_t k = n < c->fskip ? n : (size_t)c->fskip;
            p += k;
            n -= k;
            c->fskip -= k;
            continue;
        }
        if (!gather(c->fb, &c->fhave, c->fneed, &p, &n)) break;
        switch (c->fst) {
        case F_HDR: {
            if (memcmp(c->fb, "FLV", 3) != 0) {
                fail(c, "parse");
                return -1;
            }
            uint32_t off = be32(c->fb + 5);
            if (off < 9 || off > 1024) {
                fail(c, "parse");
                return -1;
            }
            c->fskip = off - 9 + 4;
            c->fst = F_TAG;
            c->fneed = 11;
            c->fhave = 0;
            break;
        }
        case F_TAG: {
            uint8_t type = c->fb[0] & 0x1f;
            uint32_t size = be24(c->fb + 1);
            uint32_t ts = be24(c->fb + 4) | (uint32_t)c->fb[7] << 24;
            if (type != 8 && type != 9 && type != 18) {
                fail(c, "parse");
                return -1;
            }
            c->ftype = type;
            c->fsize = size;
            c->fts = ts;
            if ((type == 8 || type == 9) && size > 0) {
                c->fst = F_BODYHDR;
                c->fneed = 11 + (size < 5 ? (int)size : 5);
            } else {
                on_media(c, type, ts, NULL, 0);
                c->fskip = (uint64_t)size + 4;
                c->fhave = 0;
                c->fneed = 11;
            }
            break;
        }
        case F_BODYHDR: {
            int hl = c->fneed - 11;
            on_media(c, c->ftype, c->fts, c->fb + 11, hl);
            c->fskip = (uint64_t)(c->fsize - (uint32_t)hl) + 4;
            c->fst = F_TAG;
            c->fneed = 11;
            c->fhave = 0;
            break;
        }
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- MPEG-TS parser */
static uint64_t pes_time(const uint8_t *q) {
    return (uint64_t)((q[0] >> 1) & 7) << 30 | (uint64_t)q[1] << 22 | (uint64_t)(q[2] >> 1) << 15 |
           (uint64_t)q[3] << 7 | (uint64_t)(q[4] >> 1);
}

/* One 188-byte packet. Only a packet that starts a PES on a media PID is looked into: its
   adaptation field for random_access_indicator, its PES header for the DTS (or PTS), which
   counts as one frame at DTS / 90 ms. The first such packet on the video PID with
   random_access_indicator set is the first keyframe. */
static int ts_packet(conn *c, const uint8_t *k) {
    if (k[0] != 0x47) {
        fail(c, "parse");
        return -1;
    }
    if (!(k[1] & 0x40)) return 0; /* no payload_unit_start */
    uint32_t pid = (uint32_t)(k[1] & 0x1f) << 8 | k[2];
    if (pid != TS_VIDEO_PID && pid != TS_AAC_PID && pid != TS_MP3_PID) return 0;
    int afc = (k[3] >> 4) & 3, off = 4, rai = 0;
    if (afc & 2) {
        int afl = k[4];
        if (afl > 183) {
            fail(c, "parse");
            return -1;
        }
        if (afl > 0) rai = k[5] & 0x40;
        off = 5 + afl;
    }
    if (!(afc & 1)) return 0;
    const uint8_t *q = k + off;
    int ql = TS_PACKET - off;
    if (ql < 9 || q[0] != 0 || q[1] != 0 || q[2] != 1) {
        fail(c, "parse");
        return -1;
    }
    int flags = q[7] >> 6, hdl = q[8];
    if (!(flags & 2) || hdl > ql - 9 || hdl < (flags == 3 ? 10 : 5)) return 0; /* no timestamp */
    uint64_t t = pes_time(q + (flags == 3 ? 14 : 9));
    if (pid == TS_VIDEO_PID && rai && !c->t_first_key) first_key(c);
    media_tick(c, (uint32_t)(t / 90));
    return 0;
}

static int ts_feed(conn *c, const uint8_t *p, size_t n) {
    c->bytes += n;
    if (c->tshave) {
        if (!gather(c->tsb, &c->tshave, TS_PACKET, &p, &n)) return 0;
        c->tshave = 0;
        if (ts_packet(c, c->tsb) < 0) return -1;
    }
    for (; n >= TS_PACKET; p += TS_PACKET, n -= TS_PACKET)
        if (ts_packet(c, p) < 0) return -1;
    memcpy(c->tsb, p, n);
    c->tshave = (int)n;
    return 0;
}

/* the media bytes of a response body or of WebSocket binary messages */
static int media_feed(conn *c, const uint8_t *p, size_t n) { return g_ts ? ts_feed(c, p, n) : flv_feed(c, p, n); }

/* ---------------------------------------------------------------- WebSocket (RFC 6455) */
static void sha1(const uint8_t *msg, size_t len, uint8_t out[20]) {
    uint32_t h[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u};
    uint8_t blk[64];
    uint64_t bits = (uint64_t)len * 8;
    size_t total = (len + 9 + 63) / 64 * 64;
    for (size_t pos = 0; pos < total; pos += 64) {
        for (size_t i = 0; i < 64; i++) {
            size_t j = pos + i;
            blk[i] = j < len ? msg[j] : j == len ? 0x80 : 0;
        }
        if (pos + 64 == total)
            for (int i = 0; i < 8; i++) blk[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
        uint32_t w[80];
        for (int i = 0; i < 16; i++) w[i] = be32(blk + 4 * i);
        for (int i = 16; i < 80; i++) {
            uint32_t x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
            w[i] = x << 1 | x >> 31;
        }
        uint32_t a = h[0], b = h[1], cc = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) f = (b & cc) | (~b & d), k = 0x5a827999u;
            else if (i < 40) f = b ^ cc ^ d, k = 0x6ed9eba1u;
            else if (i < 60) f = (b & cc) | (b & d) | (cc & d), k = 0x8f1bbcdcu;
            else f = b ^ cc ^ d, k = 0xca62c1d6u;
            uint32_t t = (a << 5 | a >> 27) + f + e + k + w[i];
            e = d;
            d = cc;
            cc = b << 30 | b >> 2;
            b = a;
            a = t;
        }
        h[0] += a;
        h[1] += b;
        h[2] += cc;
        h[3] += d;
        h[4] += e;
    }
    for (int i = 0; i < 5; i++) wbe32(out + 4 * i, h[i]);
}

static void base64(const uint8_t *in, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = 0;
}

static void random_bytes(uint8_t *b, size_t n) {
    while (n) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("getrandom: %s", strerror(errno));
        }
        b += r;
        n -= (size_t)r;
    }
}

/* a fresh Sec-WebSocket-Key into key (25 bytes), and the accept value it asks for into c */
static void ws_key(conn *c, char *key) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t raw[16], dig[20];
    char cat[80];
    random_bytes(raw, sizeof raw);
    base64(raw, sizeof raw, key);
    snprintf(cat, sizeof cat, "%s%s", key, guid);
    sha1((const uint8_t *)cat, strlen(cat), dig);
    base64(dig, sizeof dig, c->ws_accept);
}

/* a masked control frame from the client (a pong) */
static void ws_send_control(conn *c, int op, const uint8_t *p, int n) {
    uint8_t f[6 + 125];
    f[0] = (uint8_t)(0x80 | op);
    f[1] = (uint8_t)(0x80 | n);
    random_bytes(f + 2, 4);
    for (int i = 0; i < n; i++) f[6 + i] = p[i] ^ f[2 + (i & 3)];
    ob_append(c, f, (size_t)(6 + n));
}

static int ws_control(conn *c) {
    switch (c->wop) {
    case 0x8: /* close: the server ended the stream */
        fail(c, "disconnect");
        return -1;
    case 0x9: ws_send_control(c, 0xA, c->wb, c->whave); break;
    default: break; /* pong */
    }
    return 0;
}

/* the frame header in c->wb is complete (c->whave == c->wneed): start its payload */
static int ws_header(conn *c) {
    const uint8_t *h = c->wb;
    int op = h[0] & 0x0f, fin = h[0] & 0x80, len7 = h[1] & 0x7f;
    if (c->wneed == 2 && (len7 == 126 || len7 == 127)) {
        c->wneed = len7 == 126 ? 4 : 10;
        return 0;
    }
    if ((h[0] & 0x70) || (h[1] & 0x80)) { /* no extension was agreed; server frames are unmasked */
        fail(c, "ws_frame");
        return -1;
    }
    uint64_t len = len7 == 126 ? be16(h + 2) : len7 == 127 ? (uint64_t)be32(h + 2) << 32 | be32(h + 6) : (uint64_t)len7;
    if (len7 == 127 && (h[2] & 0x80)) {
        fail(c, "ws_frame");
        return -1;
    }
    c->whave = 0;
    c->wneed = 2;
    if (op >= 0x8) {
        if (!fin || len > 125 || op > 0xA) {
            fail(c, "ws_frame");
            return -1;
        }
        c->wop = op;
        c->wrem = len;
        c->wst = W_CTRL;
        if (!len) {
            c->wst = W_HDR;
            return ws_control(c);
        }
        return 0;
    }
    /* data: binary messages only, maybe fragmented (continuations within one message) */
    if (op == 0x2 ? c->wfrag : op != 0x0 || !c->wfrag) {
        fail(c, "ws_frame");
        return -1;
    }
    c->wfrag = !fin;
    c->wrem = len;
    c->wst = len ? W_DATA : W_HDR;
    return 0;
}

static int ws_feed(conn *c, const uint8_t *p, size_t n) {
    while (n) {
        if (c->wst == W_DATA) {
            size_t k = n < c->wrem ? n : (size_t)c->wrem;
            if (media_feed(c, p, k) < 0) return -1;
            p += k;
            n -= k;
            c->wrem -= k;
            if (!c->wrem) c->wst = W_HDR;
            continue;
        }
        if (!gather(c->wb, &c->whave, c->wst == W_CTRL ? (int)c->wrem : c->wneed, &p, &n)) break;
        if (c->wst == W_CTRL) {
            c->wst = W_HDR;
            if (ws_control(c) < 0) return -1;
            c->whave = 0;
            c->wneed = 2;
        } else if (ws_header(c) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- HTTP */
static int http_body(conn *c, const uint8_t *p, size_t n) {
    if (g_ws) return ws_feed(c, p, n);
    if (!c->chunked) {
        if (c->clen >= 0) {
            if ((int64_t)n > c->clen) n = (size_t)c->clen;
            c->clen -= (int64_t)n;
            if (media_feed(c, p, n) < 0) return -1;
            if (c->clen == 0) {
                fail(c, "disconnect");
                return -1;
            }
            return 0;
        }
        return media_feed(c, p, n);
    }
    while (n) {
        switch (c->dst) {
        case D_SIZE: {
            const uint8_t *nl = memchr(p, '\n', n);
            size_t k = nl ? (size_t)(nl - p) + 1 : n;
            if (c->szlen + k >= sizeof(c->szbuf)) {
                fail(c, "parse");
                return -1;
            }
            memcpy(c->szbuf + c->szlen, p, k);
            c->szlen += (int)k;
            p += k;
            n -= k;
            if (!nl) break;
            c->szbuf[c->szlen] = 0;
            char *end;
            unsigned long long sz = strtoull(c->szbuf, &end, 16);
            if (end == c->szbuf || (*end != '\r' && *end != '\n' && *end != ';' && *end != ' ')) {
                fail(c, "parse");
                return -1;
            }
            c->szlen = 0;
            if (sz == 0) {
                c->dst = D_END;
                fail(c, "disconnect");
                return -1;
            }
            c->drem = sz;
            c->dst = D_DATA;
            break;
        }
        case D_DATA: {
            size_t k = n < c->drem ? n : (size_t)c->drem;
            if (media_feed(c, p, k) < 0) return -1;
            p += k;
            n -= k;
            c->drem -= k;
            if (!c->drem) {
                c->dst = D_CRLF;
                c->crlf = 0;
            }
            break;
        }
        case D_CRLF:
            if (*p == '\r' && c->crlf == 0) {
                c->crlf = 1;
            } else if (*p == '\n') {
                c->dst = D_SIZE;
            } else {
                fail(c, "parse");
                return -1;
            }
            p++;
            n--;
            break;
        default:
            return 0;
        }
    }
    return 0;
}

static int header_has(const char *head, const char *name, const char *needle, char *val, size_t vallen) {
    /* case-insensitive search for "\r\nname:" ; optional value substring test / copy */
    size_t nl = strlen(name);
    const char *s = head;
    while ((s = strstr(s, "\r\n")) != NULL) {
        s += 2;
        if (strncasecmp(s, name, nl) == 0 && s[nl] == ':') {
            const char *v = s + nl + 1;
            while (*v == ' ' || *v == '\t') v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (val) {
                if (len >= vallen) len = vallen - 1;
                memcpy(val, v, len);
                val[len] = 0;
            }
            if (!needle) return 1;
            char tmp[256];
            if (len >= sizeof tmp) len = sizeof tmp - 1;
            memcpy(tmp, v, len);
            tmp[len] = 0;
            if (strcasestr(tmp, needle)) return 1;
        }
    }
    return 0;
}

static int http_feed(conn *c, const uint8_t *p, size_t n) {
    if (c->state == ST_HTTP_BODY) return http_body(c, p, n);
    const int cap = 16384;
    if (!c->hbuf) c->hbuf = malloc(cap + 1);
    size_t k = n;
    if (c->hlen + (int)k > cap) k = (size_t)(cap - c->hlen);
    memcpy(c->hbuf + c->hlen, p, k);
    int from = c->hlen > 3 ? c->hlen - 3 : 0;
    c->hlen += (int)k;
    c->hbuf[c->hlen] = 0;
    char *e = memmem(c->hbuf + from, (size_t)(c->hlen - from), "\r\n\r\n", 4);
    if (!e) {
        if (c->hlen >= cap) {
            fail(c, "parse");
            return -1;
        }
        return 0;
    }
    size_t headlen = (size_t)(e - c->hbuf) + 4;
    size_t used = headlen - (size_t)(c->hlen - (int)k); /* bytes of p consumed by the head */
    e[2] = 0;                                         /* keep one CRLF to end the last header */
    if (strncmp(c->hbuf, "HTTP/1.", 7) != 0 || c->hlen < 12) {
        fail(c, "parse");
        return -1;
    }
    int code = atoi(c->hbuf + 9);
    if (code != (g_ws ? 101 : 200)) {
        fail(c, "http_status");
        return -1;
    }
    char val[64];
    if (g_ws) {
        if (!header_has(c->hbuf, "upgrade", "websocket", NULL, 0) || !header_has(c->hbuf, "connection", "upgrade", NULL, 0) ||
            !header_has(c->hbuf, "sec-websocket-accept", NULL, val, sizeof val) || strcmp(val, c->ws_accept) != 0) {
            fail(c, "ws_handshake");
            return -1;
        }
        c->wst = W_HDR;
        c->wneed = 2;
        c->whave = 0;
    }
    c->chunked = !g_ws && header_has(c->hbuf, "transfer-encoding", "chunked", NULL, 0);
    c->clen = -1;
    if (!g_ws && !c->chunked && header_has(c->hbuf, "content-length", NULL, val, sizeof val)) c->clen = atoll(val);
    free(c->hbuf);
    c->hbuf = NULL;
    c->state = ST_HTTP_BODY;
    c->t_ready = g_now;
    c->dst = D_SIZE;
    c->fst = F_HDR;
    c->fneed = 9;
    c->fhave = 0;
    if (n > used) return http_body(c, p + used, n - used);
    return 0;
}

/* ---------------------------------------------------------------- AMF0 writer */
typedef struct {
    uint8_t b[2048];
    int n;
} amf_t;

static void amf_str_raw(amf_t *a, const char *s) {
    size_t l = strlen(s);
    wbe16(a->b + a->n, (uint32_t)l);
    memcpy(a->b + a->n + 2, s, l);
    a->n += 2 + (int)l;
}
static void amf_str(amf_t *a, const char *s) {
    a->b[a->n++] = 2;
    amf_str_raw(a, s);
}
static void amf_num(amf_t *a, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    a->b[a->n++] = 0;
    for (int i = 7; i >= 0; i--) a->b[a->n++] = (uint8_t)(u >> (i * 8));
}
static void amf_bool(amf_t *a, int v) {
    a->b[a->n++] = 1;
    a->b[a->n++] = v ? 1 : 0;
}
static void amf_null(amf_t *a) { a->b[a->n++] = 5; }
static void amf_obj(amf_t *a) { a->b[a->n++] = 3; }
static void amf_key(amf_t *a, const char *k) { amf_str_raw(a, k); }
static void amf_end(amf_t *a) {
    a->b[a->n++] = 0;
    a->b[a->n++] = 0;
    a->b[a->n++] = 9;
}

/* ---------------------------------------------------------------- AMF0 reader (commands) */
static int amf_skip(const uint8_t *p, size_t n, size_t *off, int depth);

static int amf_skip_props(const uint8_t *p, size_t n, size_t *off, int depth) {
    for (;;) {
        if (*off + 2 > n) return -1;
        uint32_t kl = be16(p + *off);
        *off += 2 + kl;
        if (*off > n) return -1;
        if (kl == 0 && *off < n && p[*off] == 9) {
            (*off)++;
            return 0;
        }
        if (amf_skip(p, n, off, depth + 1) < 0) return -1;
    }
}

static int amf_skip(const uint8_t *p, size_t n, size_t *off, int depth) {
    if (*off >= n || depth > 16) return -1;
    uint8_t t = p[(*off)++];
    switch (t) {
    case 0: *off += 8; break;
    case 1: *off += 1; break;
    case 2:
        if (*off + 2 > n) return -1;
        *off += 2 + be16(p + *off);
        break;
    case 3: return amf_skip_props(p, n, off, depth);
    case 5:
    case 6: break;
    case 8: *off += 4; return amf_skip_props(p, n, off, depth);
    case 10: {
        if (*off + 4 > n) return -1;
        uint32_t cnt = be32(p + *off);
        *off += 4;
        for (uint32_t i = 0; i < cnt; i++)
            if (amf_skip(p, n, off, depth + 1) < 0) return -1;
        break;
    }
    case 11: *off += 10; break;
    case 12:
        if (*off + 4 > n) return -1;
        *off += 4 + be32(p + *off);
        break;
    default: return -1;
    }
    return *off <= n ? 0 : -1;
}

static int amf_read_str(const uint8_t *p, size_t n, size_t *off, char *out, size_t outlen) {
    if (*off + 3 > n || p[*off] != 2) return -1;
    uint32_t l = be16(p + *off + 1);
    if (*off + 3 + l > n) return -1;
    size_t cl = l < outlen - 1 ? l : outlen - 1;
    memcpy(out, p + *off + 3, cl);
    out[cl] = 0;
    *off += 3 + l;
    return 0;
}

static int amf_read_num(const uint8_t *p, size_t n, size_t *off, double *v) {
    if (*off + 9 > n || p[*off] != 0) return -1;
    uint64_t u = 0;
    for (int i = 1; i <= 8; i++) u = u << 8 | p[*off + i];
    memcpy(v, &u, 8);
    *off += 9;
    return 0;
}

/* ---------------------------------------------------------------- RTMP writer */
static void rtmp_put(conn *c, uint32_t csid, uint8_t type, uint32_t sid, uint32_t ts, const uint8_t *p,
                     uint32_t len, uint32_t chunk) {
    uint8_t h[16];
    int ext = ts >= 0xffffff;
    h[0] = (uint8_t)(csid & 0x3f);
    wbe24(h + 1, ext ? 0xffffff : ts);
    wbe24(h + 4, len);
    h[7] = type;
    h[8] = sid;
    h[9] = sid >> 8;
    h[10] = sid >> 16;
    h[11] = sid >> 24;
    int hl = 12;
    if (ext) {
        wbe32(h + 12, ts);
        hl = 16;
    }
    ob_append(c, h, hl);
    uint32_t off = 0;
    for (;;) {
        uint32_t k = len - off < chunk ? len - off : chunk;
        ob_append(c, p + off, k);
        off += k;
        if (off >= len) break;
        uint8_t c3[5];
        c3[0] = 0xc0 | (uint8_t)(csid & 0x3f);
        int l3 = 1;
        if (ext) {
            wbe32(c3 + 1, ts);
            l3 = 5;
        }
        ob_append(c, c3, l3);
    }
}

static uint32_t out_chunk(void) { return o_chunk ? (uint32_t)o_chunk : (o_mode == M_PUB ? 60000u : 4096u); }

static void rtmp_ctrl32(conn *c, uint8_t type, uint32_t v) {
    uint8_t b[4];
    wbe32(b, v);
    rtmp_put(c, 2, type, 0, 0, b, 4, 128);
}

static void rtmp_cmd(conn *c, uint32_t csid, uint32_t sid, amf_t *a) {
    rtmp_put(c, csid, 20, sid, 0, a->b, (uint32_t)a->n, out_chunk());
}

static void rtmp_send_connect(conn *c) {
    amf_t a = {.n = 0};
    amf_str(&a, "connect");
    amf_num(&a, 1);
    amf_obj(&a);
    amf_key(&a, "app");
    amf_str(&a, g_app);
    if (o_mode == M_PUB) {
        amf_key(&a, "type");
        amf_str(&a, "nonprivate");
        amf_key(&a, "flashVer");
        amf_str(&a, "FMLE/3.0 (compatible; FMSc/1.0)");
        amf_key(&a, "swfUrl");
        amf_str(&a, g_tcurl);
        amf_key(&a, "tcUrl");
        amf_str(&a, g_tcurl);
    } else {
        amf_key(&a, "flashVer");
        amf_str(&a, "LNX 9,0,124,2");
        amf_key(&a, "tcUrl");
        amf_str(&a, g_tcurl);
        amf_key(&a, "fpad");
        amf_bool(&a, 0);
        amf_key(&a, "capabilities");
        amf_num(&a, 15);
        amf_key(&a, "audioCodecs");
        amf_num(&a, 4071);
        amf_key(&a, "videoCodecs");
        amf_num(&a, 252);
        amf_key(&a, "videoFunction");
        amf_num(&a, 1);
    }
    amf_end(&a);
    rtmp_ctrl32(c, 1, out_chunk()); /* Set Chunk Size */
    rtmp_cmd(c, 3, 0, &a);
    c->proto = P_CONNECT;
}

static void rtmp_after_connect(conn *c) {
    amf_t a = {.n = 0};
    if (o_mode == M_PUB) {
        amf_str(&a, "releaseStream");
        amf_num(&a, 2);
        amf_null(&a);
        amf_str(&a, c->name);
        rtmp_cmd(c, 3, 0, &a);
        a.n = 0;
        amf_str(&a, "FCPublish");
        amf_num(&a, 3);
        amf_null(&a);
        amf_str(&a, c->name);
        rtmp_cmd(c, 3, 0, &a);
        a.n = 0;
    }
    amf_str(&a, "createStream");
    amf_num(&a, 4);
    amf_null(&a);
    rtmp_cmd(c, 3, 0, &a);
    c->proto = P_CREATE;
}

static void rtmp_after_create(conn *c) {
    amf_t a = {.n = 0};
    if (o_mode == M_PUB) {
        amf_str(&a, "publish");
        amf_num(&a, 5);
        amf_null(&a);
        amf_str(&a, c->name);
        amf_str(&a, "live");
        rtmp_cmd(c, 8, c->sid, &a);
        c->proto = P_PUBWAIT;
    } else {
        amf_str(&a, "play");
        amf_num(&a, 5);
        amf_null(&a);
        amf_str(&a, c->name);
        amf_num(&a, -2000);
        rtmp_cmd(c, 8, c->sid, &a);
        /* User Control: Set Buffer Length (stream id, 3000 ms) */
        uint8_t b[10];
        wbe16(b, 3);
        wbe32(b + 2, c->sid);
        wbe32(b + 6, 3000);
        rtmp_put(c, 2, 4, 0, 0, b, 10, 128);
        c->proto = P_PLAYING;
        c->t_ready = g_now;
    }
}

static void pub_start(conn *c);

static int rtmp_command(conn *c, const uint8_t *p, size_t n) {
    size_t off = 0;
    char name[64];
    double txn = 0;
    if (amf_read_str(p, n, &off, name, sizeof name) < 0) return 0;
    amf_read_num(p, n, &off, &txn);
    if (!strcmp(name, "_result")) {
        if (c->proto == P_CONNECT && txn == 1) {
            rtmp_after_connect(c);
        } else if (c->proto == P_CREATE && txn == 4) {
            double sid = 0;
            if (amf_skip(p, n, &off, 0) < 0 || amf_read_num(p, n, &off, &sid) < 0) {
                fail(c, "rtmp_error");
                return -1;
            }
            c->sid = (uint32_t)sid;
            rtmp_after_create(c);
        }
    } else if (!strcmp(name, "_error")) {
        /* releaseStream/FCPublish may be refused by some servers: harmless */
        if (o_mode == M_PUB && (txn == 2 || txn == 3)) return 0;
        fail(c, "rtmp_error");
        return -1;
    } else if (!strcmp(name, "onStatus")) {
        static const uint8_t lvl_err[] = {0, 5, 'l', 'e', 'v', 'e', 'l', 2, 0, 5, 'e', 'r', 'r', 'o', 'r'};
        if (memmem(p, n, lvl_err, sizeof lvl_err)) {
            fail(c, "rtmp_error");
            return -1;
        }
        if (c->proto == P_PUBWAIT && memmem(p, n, "NetStream.Publish.Start", 23)) pub_start(c);
    }
    return 0;
}

static int rtmp_message(conn *c, cs_t *m) {
    const uint8_t *p = m->buf;
    switch (m->type) {
    case 1:
        if (m->len >= 4) {
            c->in_chunk = be32(p) & 0x7fffffff;
            if (c->in_chunk < 1) {
                fail(c, "parse");
                return -1;
            }
        }
        break;
    case 5:
        if (m->len >= 4) c->win_ack = be32(p);
        break;
    case 4:
        if (m->len >= 6 && be16(p) == 6) { /* PingRequest -> PingResponse */
            uint8_t b[6];
            wbe16(b, 7);
            memcpy(b + 2, p + 2, 4);
            rtmp_put(c, 2, 4, 0, 0, b, 6, 128);
        }
        break;
    case 20: return rtmp_command(c, p, m->len);
    case 17:
        if (m->len > 1) return rtmp_command(c, p + 1, m->len - 1);
        break;
    case 8:
    case 9: on_media(c, m->type, m->ts, m->head, m->len < 8 ? (int)m->len : 8); break;
    default: break;
    }
    return 0;
}

static cs_t *find_cs(conn *c, uint32_t csid) {
    for (int i = 0; i < c->ncs; i++)
        if (c->css[i].csid == csid) return &c->css[i];
    if (c->ncs >= 64) return NULL;
    cs_t *n = realloc(c->css, sizeof(cs_t) * (size_t)(c->ncs + 1));
    if (!n) die("out of memory");
    c->css = n;
    /* the pointer to the current stream may have moved */
    cs_t *s = &c->css[c->ncs++];
    memset(s, 0, sizeof *s);
    s->csid = csid;
    return s;
}

static int rtmp_chunks(conn *c, const uint8_t *p, size_t n) {
    static const int mhsize[4] = {11, 7, 3, 0};
    while (n) {
        if (!c->crem) {
            size_t k = (size_t)(c->hneed - c->hhave);
            if (k > n) k = n;
            memcpy(c->hb + c->hhave, p, k);
            c->hhave += (int)k;
            p += k;
            n -= k;
            if (c->hhave < c->hneed) break;
            int fmt = c->hb[0] >> 6, id = c->hb[0] & 0x3f;
            int bh = id == 0 ? 2 : id == 1 ? 3 : 1;
            if (c->hstage == 0) {
                c->hneed = bh + mhsize[fmt];
                c->hstage = 1;
                if (c->hhave < c->hneed) continue;
            }
            uint32_t csid = id == 0 ? 64u + c->hb[1] : id == 1 ? 64u + c->hb[1] + 256u * c->hb[2] : (uint32_t)id;
            cs_t *s = find_cs(c, csid);
            if (!s) {
                fail(c, "parse");
                return -1;
            }
            const uint8_t *mh = c->hb + bh;
            int ext = fmt < 3 ? be24(mh) == 0xffffff : s->ext;
            if (c->hstage == 1) {
                c->hstage = 2;
                if (ext) {
                    c->hneed += 4;
                    if (c->hhave < c->hneed) continue;
                }
            }
            int newmsg = s->have == 0;
            if (fmt == 3 && !s->seen) {
                fail(c, "parse");
                return -1;
            }
            if (fmt < 3 && !newmsg) {
                fail(c, "parse");
                return -1;
            }
            uint32_t v = 0;
            if (fmt < 3) v = ext ? be32(mh + mhsize[fmt]) : be24(mh);
            if (fmt < 3) s->ext = ext;
            if (fmt <= 1) {
                s->len = be24(mh + 3);
                s->type = mh[6];
            }
            if (fmt == 0) s->sid = le32(mh + 7);
            if (newmsg) {
                if (fmt == 0) {
                    s->ts = v;
                    s->delta = v;
                } else if (fmt < 3) {
                    s->delta = v;
                    s->ts += v;
                } else {
                    s->ts += s->delta;
                }
                if (s->type != 8 && s->type != 9 && s->len > s->cap) {
                    if (s->len > MAX_CTRL_MSG) {
                        fail(c, "parse");
                        return -1;
                    }
                    free(s->buf);
                    s->buf = malloc(s->len);
                    s->cap = s->len;
                }
            }
            s->seen = 1;
            c->hhave = 0;
            c->hneed = 1;
            c->hstage = 0;
            c->cur = s;
            uint32_t left = s->len - s->have;
            c->crem = left < c->in_chunk ? left : c->in_chunk;
            if (s->len == 0) {
                if (rtmp_message(c, s) < 0) return -1;
            }
            continue;
        }
        cs_t *s = c->cur;
        size_t k = n < c->crem ? n : c->crem;
        if (s->type == 8 || s->type == 9) {
            if (s->have < 8) {
                size_t h = 8 - s->have < k ? 8 - s->have : k;
                memcpy(s->head + s->have, p, h);
            }
            c->bytes += k;
        } else {
            memcpy(s->buf + s->have, p, k);
            if (s->type == 18 || s->type == 15) c->bytes += k;
        }
        s->have += (uint32_t)k;
        c->crem -= (uint32_t)k;
        p += k;
        n -= k;
        if (s->have == s->len) {
            s->have = 0;
            if (rtmp_message(c, s) < 0) return -1;
            if (c->state == ST_DONE) return -1;
        }
    }
    return 0;
}

static int rtmp_feed(conn *c, const uint8_t *p, size_t n) {
    while (n) {
        if (c->state == ST_HS1) {
            size_t k = 1537 - (size_t)c->hs_have;
            if (k > n) k = n;
            memcpy(c->s1 + c->hs_have, p, k);
            c->hs_have += (int)k;
            p += k;
            n -= k;
            if (c->hs_have < 1537) break;
            if (c->s1[0] != 3) {
                fail(c, "parse");
                return -1;
            }
            ob_append(c, c->s1 + 1, 1536); /* C2 = echo of S1 */
            free(c->s1);
            c->s1 = NULL;
            rtmp_send_connect(c);
            c->state = ST_HS2;
            c->hs_have = 0;
            continue;
        }
        if (c->state == ST_HS2) {
            size_t k = 1536 - (size_t)c->hs_have;
            if (k > n) k = n;
            c->hs_have += (int)k;
            p += k;
            n -= k;
            if (c->hs_have == 1536) {
                c->state = ST_RTMP;
                c->hneed = 1;
                c->hhave = 0;
                c->hstage = 0;
                c->in_chunk = 128;
            }
            continue;
        }
        return rtmp_chunks(c, p, n);
    }
    return 0;
}

/* ---------------------------------------------------------------- publisher pump */
static void pub_start(conn *c) {
    c->proto = P_PUBLISHING;
    c->t_ready = g_now;
    c->pub_t0 = g_now;
    c->next_tag = 0;
    c->loop_off = 0;
}

static void pub_pump(conn *c) {
    if (c->state != ST_RTMP || c->proto != P_PUBLISHING) return;
    int64_t el = (int64_t)((g_now - c->pub_t0) / 1000000ull);
    int n = 0;
    while (c->ot - c->oh < PUB_MAXQ) {
        tag_t *t = &g_tags[c->next_tag];
        int64_t mts = (int64_t)t->ts - (int64_t)g_tags[0].ts + c->loop_off;
        if (mts > el) break;
        uint32_t ts = mts < 0 ? 0 : (uint32_t)mts;
        uint32_t csid = t->type == 8 ? 4 : t->type == 9 ? 6 : 5;
        rtmp_put(c, csid, t->type, c->sid, ts, t->data, t->size, out_chunk());
        c->appended_ts = mts;
        if (t->type != 18) {
            if (!c->have_media) {
                c->have_media = 1;
                c->t_first_media = g_now;
            }
            c->frames++;
        }
        n++;
        if (++c->next_tag >= g_ntags) {
            c->next_tag = g_first_loop;
            c->loop_off += g_loop_dur;
        }
    }
    if (n || c->ot > c->oh) flush_out(c);
}

/* ---------------------------------------------------------------- connection setup */
static void build_names(conn *c) {
    const char *tmpl = g_http ? g_path : g_stream;
    int k = o_streams > 0 ? c->idx % o_streams : c->idx;
    char buf[1100];
    if (strstr(tmpl, "%d")) {
        snprintf(buf, sizeof buf, tmpl, k);
    } else if (o_mode == M_PUB) {
        snprintf(buf, sizeof buf, "%s_%d", tmpl, k);
    } else {
        snprintf(buf, sizeof buf, "%s", tmpl);
    }
    if (g_http)
        snprintf(c->path, sizeof c->path, "%s", buf);
    else
        snprintf(c->name, sizeof c->name, "%.255s", buf);
}

static void on_connected(conn *c) {
    if (g_http) {
        char req[1700];
        int l;
        if (g_ws) {
            char key[32];
            ws_key(c, key);
            l = snprintf(req, sizeof req,
                         "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: loadgen/1.0\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                         c->path, g_hostport, key);
        } else {
            l = snprintf(req, sizeof req,
                         "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: loadgen/1.0\r\nAccept: */*\r\n"
                         "Connection: keep-alive\r\n\r\n",
                         c->path, g_hostport);
        }
        ob_append(c, req, (size_t)l);
        c->state = ST_HTTP_HEAD;
    } else {
        uint8_t c01[1537];
        c01[0] = 3;
        memset(c01 + 1, 0, 8); /* time, zero: simple handshake */
        uint32_t x = 0x9e3779b9u * (uint32_t)(c->idx + 1);
        for (int i = 9; i < 1537; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            c01[i] = (uint8_t)x;
        }
        ob_append(c, c01, sizeof c01);
        c->s1 = malloc(1537);
        c->hs_have = 0;
        c->state = ST_HS1;
    }
    flush_out(c);
}

static void setup_over(conn *c) {
    if (c->setting_up) {
        c->setting_up = 0;
        g_setting_up--;
    }
}

static void start_conn(conn *c) {
    c->t_start = now_ns(); /* this connection's own start: creating the others of its ramp step takes time */
    if (o_mode != M_PUB) {
        c->setting_up = 1;
        g_setting_up++;
    }
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fail(c, "socket");
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o_rcvbuf > 0 && o_mode != M_PUB) setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &o_rcvbuf, sizeof o_rcvbuf);
    build_names(c);
    c->state = ST_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)c->idx};
    c->want_out = 1;
    if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        fail(c, "socket");
        return;
    }
    int r = connect(c->fd, (struct sockaddr *)&g_addr, sizeof g_addr);
    if (r < 0 && errno != EINPROGRESS) fail(c, "connect");
}

static void on_event(conn *c, uint32_t evs) {
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            fail(c, "connect");
            return;
        }
        if (!(evs & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        c->want_out = -1;
        set_events(c, 0);
        on_connected(c);
        return;
    }
    if (evs & EPOLLOUT) {
        if (flush_out(c) < 0) return;
    }
    if (evs & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        for (;;) {
            ssize_t r = recv(c->fd, g_rbuf, RBUF_SIZE, 0);
            if (r < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                fail(c, "disconnect");
                return;
            }
            g_now = now_ns();
            if (r == 0) {
                fail(c, "disconnect");
                return;
            }
            if (!c->t_first_byte) c->t_first_byte = g_now;
            c->wire_in += (uint64_t)r;
            int rc = g_http ? http_feed(c, g_rbuf, (size_t)r) : rtmp_feed(c, g_rbuf, (size_t)r);
            if (rc < 0 || c->state == ST_DONE) return;
            if (!g_http && c->win_ack && c->wire_in - c->last_ack >= c->win_ack) {
                rtmp_ctrl32(c, 3, (uint32_t)c->wire_in);
                c->last_ack = c->wire_in;
            }
            if (r < RBUF_SIZE) break;
        }
        if (c->ot > c->oh) flush_out(c);
    }
}

/* ---------------------------------------------------------------- FLV file for publish */
static void load_flv(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s", path);
    struct stat st;
    fstat(fileno(f), &st);
    size_t sz = (size_t)st.st_size;
    g_file = malloc(sz + 1);
    if (fread(g_file, 1, sz, f) != sz) die("cannot read %s", path);
    fclose(f);
    if (sz < 13 || memcmp(g_file, "FLV", 3)) die("%s: not an FLV file", path);
    size_t off = be32(g_file + 5) + 4;
    int cap = 4096;
    g_tags = malloc(sizeof(tag_t) * (size_t)cap);
    uint64_t media_bytes = 0;
    uint32_t last_v = 0, prev_v = 0, first_ts = 0;
    int nv = 0;
    g_first_loop = -1;
    while (off + 11 <= sz) {
        const uint8_t *h = g_file + off;
        uint8_t type = h[0] & 0x1f;
        uint32_t size = be24(h + 1), ts = be24(h + 4) | (uint32_t)h[7] << 24;
        if (off + 11 + size > sz) break;
        if (type == 8 || type == 9 || type == 18) {
            if (g_ntags == cap) {
                cap *= 2;
                g_tags = realloc(g_tags, sizeof(tag_t) * (size_t)cap);
            }
            tag_t *t = &g_tags[g_ntags];
            t->type = type;
            t->ts = ts;
            t->size = size;
            t->data = h + 11;
            if (g_ntags == 0) first_ts = ts;
            int hdr = type == 18 || size < 2 || (type == 9 && (h[11] & 0x0f) == 7 && h[12] == 0) ||
                      (type == 8 && (h[11] >> 4) == 10 && h[12] == 0);
            if (!hdr && g_first_loop < 0) g_first_loop = g_ntags;
            if (type == 18) {
                /* RTMP publishers send @setDataFrame + the onMetaData body */
                uint8_t *m = malloc(size + 16);
                m[0] = 2;
                wbe16(m + 1, 13);
                memcpy(m + 3, "@setDataFrame", 13);
                memcpy(m + 16, h + 11, size);
                t->data = m;
                t->size = size + 16;
            }
            if (type == 9) {
                prev_v = last_v;
                last_v = ts;
                nv++;
            }
            if (type != 18) media_bytes += size;
            g_ntags++;
        }
        off += 11 + size + 4;
    }
    if (g_first_loop < 0 || nv < 2) die("%s: no media tags", path);
    uint32_t frame = last_v - prev_v ? last_v - prev_v : 33;
    g_loop_dur = (int64_t)last_v - first_ts + frame;
    g_file_bps = (double)media_bytes * 8.0 / ((double)g_loop_dur / 1000.0);
}

/* ---------------------------------------------------------------- url */
static void parse_url(const char *url) {
    const char *p;
    if (!strncmp(url, "http://", 7)) {
        p = url + 7;
        g_port = 80;
    } else if (!strncmp(url, "rtmp://", 7)) {
        p = url + 7;
        g_port = 1935;
    } else if (!strncmp(url, "ws://", 5)) {
        p = url + 5;
        g_port = 80;
    } else {
        die("unsupported url %s", url);
    }
    const char *slash = strchr(p, '/');
    if (!slash) die("url without a path: %s", url);
    size_t hl = (size_t)(slash - p);
    if (hl >= sizeof g_hostport) die("host too long");
    memcpy(g_hostport, p, hl);
    g_hostport[hl] = 0;
    snprintf(g_host, sizeof g_host, "%s", g_hostport);
    char *colon = strchr(g_host, ':');
    if (colon) {
        *colon = 0;
        g_port = atoi(colon + 1);
    }
    snprintf(g_path, sizeof g_path, "%s", slash);
    if (!strcmp(g_host, "localhost")) snprintf(g_host, sizeof g_host, "127.0.0.1");
    memset(&g_addr, 0, sizeof g_addr);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)g_port);
    if (inet_pton(AF_INET, g_host, &g_addr.sin_addr) != 1) die("host must be a numeric loopback address");
    if ((ntohl(g_addr.sin_addr.s_addr) >> 24) != 127) die("only loopback targets (127.0.0.0/8) are allowed");
    /* rtmp: app = path between the first and last '/', stream = after the last '/' */
    const char *last = strrchr(slash, '/');
    size_t al = (size_t)(last - slash);
    if (al == 0 && strncmp(url, "rtmp://", 7) == 0) die("rtmp url needs /app/stream");
    if (al > 0) {
        memcpy(g_app, slash + 1, al - 1);
        g_app[al - 1] = 0;
    }
    snprintf(g_stream, sizeof g_stream, "%s", last + 1);
    char *q = strchr(g_app, '?');
    (void)q;
    snprintf(g_tcurl, sizeof g_tcurl, "rtmp://%s/%s", g_hostport, g_app);
}

/* ---------------------------------------------------------------- report */

static double cpu_s(struct rusage *r, int which) {
    struct timeval t = which ? r->ru_stime : r->ru_utime;
    return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

static void report(struct rusage *ru_w, uint64_t t_stop) {
    FILE *f = stdout;
    if (o_out && strcmp(o_out, "-")) {
        f = fopen(o_out, "w");
        if (!f) die("cannot write %s", o_out);
    }
    int n = o_n;
    double *ttfb = malloc(sizeof(double) * (size_t)n), *key = malloc(sizeof(double) * (size_t)n);
    double *lag = malloc(sizeof(double) * (size_t)n), *lagraw = malloc(sizeof(double) * (size_t)n);
    double *mbps = malloc(sizeof(double) * (size_t)n), *ready = malloc(sizeof(double) * (size_t)n);
    double *rt = malloc(sizeof(double) * (size_t)n);
    int nrt = 0;
    int nt = 0, nk = 0, nl = 0, nm = 0, nr = 0, ok = 0, failed = 0, nomedia = 0, notstarted = 0;
    uint64_t bytes = 0, bytes_win = 0, wire_in = 0, wire_out = 0, frames = 0;
    const char *reasons[16];
    int rcount[16], nreasons = 0;
    uint64_t t_end = t_stop;
    double win_s = t_end > g_tw ? (double)(t_end - g_tw) / 1e9 : 0;
    for (int i = 0; i < n; i++) {
        conn *c = &g_conns[i];
        if (!c->t_start) {
            notstarted++;
            continue;
        }
        bytes += c->bytes;
        wire_in += c->wire_in;
        wire_out += c->wire_out;
        frames += c->frames;
        uint64_t bw = (o_mode == M_PUB ? c->wire_out : c->bytes) - c->bytes_w0;
        bytes_win += bw;
        if (c->t_first_byte) ttfb[nt++] = (double)(c->t_first_byte - c->t_start) / 1e6;
        if (c->t_first_key) key[nk++] = (double)(c->t_first_key - c->t_start) / 1e6;
        if (c->t_ready) ready[nr++] = (double)(c->t_ready - c->t_start) / 1e6;
        if (c->fail) {
            failed++;
            int j;
            for (j = 0; j < nreasons; j++)
                if (!strcmp(reasons[j], c->fail)) break;
            if (j == nreasons && nreasons < 16) {
                reasons[nreasons] = c->fail;
                rcount[nreasons++] = 0;
            }
            if (j < 16) rcount[j]++;
            continue;
        }
        if (!c->have_media) {
            nomedia++;
            continue;
        }
        ok++;
        if (win_s > 0 && c->t_start <= g_tw) mbps[nm++] = (double)bw * 8 / win_s / 1e6;
        if (win_s > 0 && c->prog_w0 >= 0 && c->t_start <= g_tw) {
            int64_t pe = o_mode == M_PUB ? c->flushed_ts : c->prog;
            rt[nrt++] = (double)(pe - c->prog_w0) / (win_s * 1000.0);
        }
        if (o_mode == M_PUB) {
            double l = (double)(t_end - c->pub_t0) / 1e6 - (double)c->flushed_ts;
            lag[nl] = l;
            lagraw[nl++] = l;
        } else {
            double raw = (double)(t_end - c->t_first_media) / 1e6 - (double)c->prog;
            lagraw[nl] = raw;
            lag[nl++] = raw - c->min_d;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cu = cpu_s(&ru, 0), cs = cpu_s(&ru, 1);
    double cw = cu + cs - cpu_s(ru_w, 0) - cpu_s(ru_w, 1);
    static const char *mname[] = {"flv", "rtmp", "publish", "ts", "wsflv", "wsts"};
    fprintf(f, "{\n  \"mode\": \"%s\",\n  \"url\": \"%s\",\n", mname[o_mode], o_url);
    fprintf(f, "  \"n\": %d,\n  \"started\": %d,\n  \"ok\": %d,\n  \"failed\": %d,\n", n, n - notstarted, ok,
            failed);
    fprintf(f, "  \"no_media\": %d,\n  \"not_started\": %d,\n  \"fail_reasons\": {", nomedia, notstarted);
    for (int j = 0; j < nreasons; j++) fprintf(f, "%s\"%s\": %d", j ? ", " : "", reasons[j], rcount[j]);
    fprintf(f, "},\n");
    fprintf(f, "  \"duration_s\": %.3f,\n  \"warmup_s\": %.3f,\n  \"window_s\": %.3f,\n",
            (double)(t_end - g_t0) / 1e9, o_warm, win_s);
    fprintf(f, "  \"bytes\": %llu,\n  \"bytes_window\": %llu,\n  \"wire_in\": %llu,\n  \"wire_out\": %llu,\n",
            (unsigned long long)bytes, (unsigned long long)bytes_win, (unsigned long long)wire_in,
            (unsigned long long)wire_out);
    fprintf(f, "  \"frames\": %llu,\n", (unsigned long long)frames);
    fprintf(f, "  \"mbps_total\": ");
    jnum(f, win_s > 0 ? (double)bytes_win * 8 / win_s / 1e6 : NAN);
    fprintf(f, ",\n");
    if (o_mode == M_PUB) {
        fprintf(f, "  \"file_mbps\": ");
        jnum(f, g_file_bps / 1e6);
        fprintf(f, ",\n");
    }
    jdist(f, "mbps_per_conn", mbps, nm);
    jdist(f, "realtime", rt, nrt);
    jdist(f, "ttfb_ms", ttfb, nt);
    jdist(f, o_mode == M_PUB ? "publish_start_ms" : "setup_ms", ready, nr);
    jdist(f, "first_key_ms", key, nk);
    jdist(f, o_mode == M_PUB ? "send_lag_ms" : "lag_ms", lag, nl);
    jdist(f, "lag_raw_ms", lagraw, nl);
    fprintf(f, "  \"loadgen_cpu\": {\"user_s\": %.3f, \"sys_s\": %.3f, \"total_s\": %.3f, \"window_s\": %.3f, "
               "\"window_pct\": ",
            cu, cs, cu + cs, cw);
    jnum(f, win_s > 0 ? cw / win_s * 100 : NAN);
    fprintf(f, ", \"maxrss_kb\": %ld}\n}\n", ru.ru_maxrss);
    if (f != stdout)
        fclose(f);
    else
        fflush(f);
    free(ttfb);
    free(key);
    free(lag);
    free(lagraw);
    free(mbps);
    free(ready);
    free(rt);
}

/* ---------------------------------------------------------------- main */

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen flv|ts|wsflv|wsts|rtmp|publish -u URL [-n N] [-d SECONDS] [--warmup SECONDS] [-o FILE]\n"
            "  -f FILE          FLV input for publish\n"
            "  --ramp N         connections started per ramp step (200)\n"
            "  --ramp-ms MS     ramp step (100)\n"
            "  --timeout S      setup timeout per connection (10)\n"
            "  --poll-ms MS     minimum event-loop period, batches reads (2)\n"
            "  --streams K      with %%d in the URL: player i uses stream i %% K\n"
            "  --chunk-size N   RTMP out chunk size (players 4096, publishers 60000)\n"
            "  --rcvbuf BYTES   SO_RCVBUF for players (524288; 0 = kernel autotuning)\n"
            "  -v               log failures to stderr\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    if (!strcmp(argv[1], "flv"))
        o_mode = M_FLV;
    else if (!strcmp(argv[1], "rtmp"))
        o_mode = M_RTMP;
    else if (!strcmp(argv[1], "publish"))
        o_mode = M_PUB;
    else if (!strcmp(argv[1], "ts"))
        o_mode = M_TS;
    else if (!strcmp(argv[1], "wsflv"))
        o_mode = M_WSFLV;
    else if (!strcmp(argv[1], "wsts"))
        o_mode = M_WSTS;
    else
        usage();
    g_ws = o_mode == M_WSFLV || o_mode == M_WSTS;
    g_http = o_mode == M_FLV || o_mode == M_TS || g_ws;
    g_ts = o_mode == M_TS || o_mode == M_WSTS;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED()        \
    do {              \
        if (!v) usage(); \
        i++;          \
    } while (0)
        if (!strcmp(a, "-n")) { NEED(); o_n = atoi(v); }
        else if (!strcmp(a, "-d")) { NEED(); o_dur = atof(v); }
        else if (!strcmp(a, "-u")) { NEED(); o_url = v; }
        else if (!strcmp(a, "-o")) { NEED(); o_out = v; }
        else if (!strcmp(a, "-f")) { NEED(); o_file = v; }
        else if (!strcmp(a, "--warmup")) { NEED(); o_warm = atof(v); }
        else if (!strcmp(a, "--ramp")) { NEED(); o_ramp = atoi(v); }
        else if (!strcmp(a, "--ramp-ms")) { NEED(); o_ramp_ms = atoi(v); }
        else if (!strcmp(a, "--timeout")) { NEED(); o_timeout = atof(v); }
        else if (!strcmp(a, "--poll-ms")) { NEED(); o_poll_ms = atoi(v); }
        else if (!strcmp(a, "--streams")) { NEED(); o_streams = atoi(v); }
        else if (!strcmp(a, "--chunk-size")) { NEED(); o_chunk = atoi(v); }
        else if (!strcmp(a, "--rcvbuf")) { NEED(); o_rcvbuf = atoi(v); }
        else if (!strcmp(a, "-v")) o_verbose = 1;
        else usage();
#undef NEED
    }
    if (!o_url) usage();
    if (o_n < 1 || o_n > 100000) die("bad -n");
    if (o_dur <= 0 || o_warm < 0 || o_warm >= o_dur) die("need 0 <= warmup < duration");
    if (o_ramp < 1 || o_ramp_ms < 1) die("bad ramp");
    if (o_chunk && (o_chunk < 128 || o_chunk > 0x7fffffff)) die("bad chunk size");
    const char *scheme = g_ws ? "ws://" : g_http ? "http://" : "rtmp://";
    if (strncmp(o_url, scheme, strlen(scheme)) != 0) die("%s needs a %s URL", argv[1], scheme);
    if (o_mode == M_PUB && !o_file) die("publish needs -f FILE.flv");
    parse_url(o_url);
    if (o_mode == M_PUB) load_flv(o_file);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = (rlim_t)o_n + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want <= rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < want) die("RLIMIT_NOFILE %lu is below %lu", (unsigned long)rl.rlim_cur, (unsigned long)want);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    g_conns = calloc((size_t)o_n, sizeof(conn));
    for (int i = 0; i < o_n; i++) {
        g_conns[i].fd = -1;
        g_conns[i].idx = i;
    }
    g_rbuf = malloc(RBUF_SIZE);
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event *evs = calloc((size_t)o_n + 1, sizeof *evs);

    g_now = g_t0 = now_ns();
    g_tw = g_t0 + (uint64_t)(o_warm * 1e9);
    g_tend = g_t0 + (uint64_t)(o_dur * 1e9);
    uint64_t t_ramp = g_t0, t_check = g_t0, last_wait = 0;
    uint64_t tmo = (uint64_t)(o_timeout * 1e9);
    int snap = 0;
    struct rusage ru_w;
    getrusage(RUSAGE_SELF, &ru_w);

    while (!g_stop) {
        g_now = now_ns();
        if (g_now >= g_tend) break;
        while (g_started < o_n && g_now >= t_ramp) {
            for (int k = 0; k < o_ramp && g_started < o_n; k++) start_conn(&g_conns[g_started++]);
            t_ramp += (uint64_t)o_ramp_ms * 1000000ull;
        }
        if (!snap && g_now >= g_tw) {
            snap = 1;
            for (int i = 0; i < o_n; i++) {
                conn *c = &g_conns[i];
                c->bytes_w0 = o_mode == M_PUB ? c->wire_out : c->bytes;
                c->prog_w0 = o_mode == M_PUB ? c->flushed_ts : c->have_media ? c->prog : -1;
            }
            getrusage(RUSAGE_SELF, &ru_w);
        }
        if (g_now >= t_check) {
            t_check = g_now + 100000000ull;
            for (int i = 0; i < g_started; i++) {
                conn *c = &g_conns[i];
                if (c->state != ST_DONE && !c->t_ready && g_now > c->t_start && g_now - c->t_start > tmo) fail(c, "timeout");
            }
        }
        if (o_mode == M_PUB)
            for (int i = 0; i < g_started; i++) pub_pump(&g_conns[i]);

        /* batch reads: keep at least poll_ms between waits */
        if (o_poll_ms > 0 && last_wait && !g_setting_up) {
            uint64_t next = last_wait + (uint64_t)o_poll_ms * 1000000ull;
            if (g_now < next) {
                uint64_t d = next - g_now;
                struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
                nanosleep(&ts, NULL);
                g_now = now_ns();
            }
        }
        uint64_t until = g_tend;
        if (g_started < o_n && t_ramp < until) until = t_ramp;
        if (!snap && g_tw < until) until = g_tw;
        if (t_check < until) until = t_check;
        int timeout_ms = until > g_now ? (int)((until - g_now + 999999) / 1000000ull) : 0;
        if (o_mode == M_PUB && timeout_ms > 5) timeout_ms = 5;
        last_wait = g_now;
        int ne = epoll_wait(g_epfd, evs, o_n + 1, timeout_ms);
        if (ne < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait: %s", strerror(errno));
        }
        g_now = now_ns();
        for (int i = 0; i < ne; i++) {
            conn *c = &g_conns[evs[i].data.u32];
            if (c->state == ST_DONE || c->fd < 0) continue;
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
    for (int i = 0; i < o_n; i++) conn_close(&g_conns[i]);
    free(g_conns);
    free(evs);
    free(g_rbuf);
    close(g_epfd);
    return 0;
}
