/*
 * What bench/loadgen.c and bench/hlsgen.c share: the clock, the fatal error, the stop flag
 * their signal handler sets, and the JSON figures of a distribution (min, p50, p99, max,
 * mean). Included once by each, after the system headers and with LG_NAME defined (the
 * program's name in its error messages).
 */
#ifndef LGCOMMON_H
#define LGCOMMON_H

static volatile sig_atomic_t g_stop;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, LG_NAME ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void on_signal(int s) {
    (void)s;
    g_stop = 1;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, int n, double p) {
    if (n <= 0) return NAN;
    double x = p / 100.0 * n;
    int i = (int)x;
    if ((double)i < x) i++;
    i--;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return v[i];
}

static void jnum(FILE *f, double v) {
    if (isnan(v) || isinf(v))
        fprintf(f, "null");
    else
        fprintf(f, "%.3f", v);
}

static void jdist(FILE *f, const char *name, double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmpd);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += v[i];
    fprintf(f, "  \"%s\": {\"n\": %d, \"min\": ", name, n);
    jnum(f, n ? v[0] : NAN);
    fprintf(f, ", \"p50\": ");
    jnum(f, pct(v, n, 50));
    fprintf(f, ", \"p99\": ");
    jnum(f, pct(v, n, 99));
    fprintf(f, ", \"max\": ");
    jnum(f, n ? v[n - 1] : NAN);
    fprintf(f, ", \"mean\": ");
    jnum(f, n ? sum / n : NAN);
    fprintf(f, "},\n");
}

#endif
