/* Canonical JSON of one JSON text, without building Python objects (optional; see messages.py).
 *
 * `canonical(text)` returns the bytes `msgspec.json.Encoder(order="sorted").encode(
 * msgspec.json.decode(text))` gives (keys sorted, no whitespace, msgspec's string escapes), or None for
 * anything it does not handle exactly that way: a float, a duplicate key, a nesting deeper than
 * MAX_DEPTH, and every text msgspec refuses (bad UTF-8, a lone surrogate, trailing bytes...). None
 * sends the caller to the decode + encode path, which decides: this module only ever saves work.
 *
 * One pass writes each value's canonical form into an output buffer (never longer than the input:
 * whitespace is dropped, escapes only shrink or keep their length, "-0" becomes "0"); an object's
 * members are written as parsed, then permuted into key order (each member's value already canonical).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h> /* baseline on x86-64: 16 bytes a step where strings are scanned */
#endif

#define MAX_DEPTH 64
#define STACK_BYTES 4096 /* inputs up to this size are worked on in buffers on the C stack */
#define STACK_MEMBERS 64

typedef struct {
    const unsigned char *key; /* the member's key as written in the output, without quotes */
    Py_ssize_t key_len;
    int escaped; /* whether the key as written holds an escape (then it sorts by its unescaped bytes) */
    Py_ssize_t start, end; /* the member `"key":value` in the output */
} Member;

typedef struct {
    const unsigned char *in;
    Py_ssize_t pos, len;
    unsigned char *out;
    Py_ssize_t out_pos;
    Member *members; /* a stack shared by the open objects */
    Py_ssize_t n_members, cap_members;
    int members_on_heap;
    unsigned char *scratch; /* for permuting an object's members: as long as the input */
    int failed;             /* 1: not handled here (fall back), -1: out of memory */
    int non_ascii;          /* the output holds a byte >= 0x80 (else its str is made without decoding) */
    int escaped;            /* the last string written holds an escape (a key's `Member.escaped`) */
} Parser;

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Whether one of these 8 bytes ends a run of plain string bytes: a quote, a backslash, a control
 * character or a non-ASCII byte (it may flag more bytes, never fewer: the caller then goes byte by byte). */
static inline uint64_t special8(uint64_t x) {
    uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
    return ((q - ONES) & ~q) | ((b - ONES) & ~b) | ((x - ONES * 0x20) & ~x) | x;
}

/* White space is bytes up to ' ': a byte above it (most of the time) ends it at once, and the usual run
 * (the one space after a ':' or a ',') takes a step; inline, without a call (the calls were ~470 of the
 * ~5.4k instructions a bench message took to parse). */
static inline void skip_ws(Parser *p) {
    const unsigned char *in = p->in; /* (locals: the output's byte stores may alias the parser's fields) */
    Py_ssize_t pos = p->pos, len = p->len;
    if (pos >= len || in[pos] > ' ') return;
    while (pos < len && (in[pos] == ' ' || in[pos] == '\t' || in[pos] == '\n' || in[pos] == '\r')) pos++;
    p->pos = pos;
}

static int fail(Parser *p) {
    if (!p->failed) p->failed = 1;
    return -1;
}

static int parse_value(Parser *p, int depth);

static int hex4(Parser *p, unsigned int *cp) {
    if (p->len - p->pos < 4) return fail(p);
    unsigned int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->in[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned int)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned int)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned int)(c - 'A' + 10);
        else return fail(p);
    }
    *cp = v;
    return 0;
}

static const char HEX[] = "0123456789abcdef";

/* One code point as msgspec writes it: its short escape, \u00XX below 0x20, else UTF-8. */
static void put_code_point(Parser *p, unsigned int cp) {
    unsigned char *o = p->out + p->out_pos;
    Py_ssize_t n;
    if (cp == '"' || cp == '\\') { o[0] = '\\'; o[1] = (unsigned char)cp; n = 2; }
    else if (cp < 0x20) {
        o[0] = '\\';
        switch (cp) {
        case '\b': o[1] = 'b'; n = 2; break;
        case '\t': o[1] = 't'; n = 2; break;
        case '\n': o[1] = 'n'; n = 2; break;
        case '\f': o[1] = 'f'; n = 2; break;
        case '\r': o[1] = 'r'; n = 2; break;
        default:
            o[1] = 'u'; o[2] = '0'; o[3] = '0'; o[4] = HEX[cp >> 4]; o[5] = HEX[cp & 15]; n = 6;
        }
    }
    else if (cp < 0x80) { o[0] = (unsigned char)cp; n = 1; }
    else if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | (cp >> 6)); o[1] = (unsigned char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12)); o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        o[0] = (unsigned char)(0xF0 | (cp >> 18)); o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (unsigned char)(0x80 | (cp & 0x3F)); n = 4;
    }
    p->out_pos += n;
}

/* Length of the valid UTF-8 sequence at `s` (lead byte >= 0x80), 0 when invalid (overlong, surrogate,
 * above U+10FFFF, truncated): the sequences Python's UTF-8 decoder accepts. */
static Py_ssize_t utf8_len(const unsigned char *s, Py_ssize_t avail) {
    unsigned char c = s[0];
    if (c >= 0xC2 && c <= 0xDF) return (avail >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* a surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* Copies the run of plain string bytes (none a quote, a backslash, a control character or non-ASCII)
 * at in[*pos] to out[*o], 16 bytes a step, stopping at the first other byte (the caller's byte loop takes
 * the last 15 bytes): each step stores the 16 bytes it loads, then moves both by as many as were plain.
 * The store may write past the run (never past out[*pos + 16], inside the output: the output is never
 * ahead of the input, *o <= *pos, and *pos + 16 <= len, the output's size); the bytes past the run are
 * overwritten by what follows. Message text is long runs: with a scan here and the copy by memcpy after,
 * parse_string took ~2.1k of the ~5.4k instructions `canonical` took for a bench message; this, ~1.3k
 * (with the rest of the parser's changes: 3.6k; callgrind over the bench's 3,362 messages). */
static inline int copy16_plain(const unsigned char *in, Py_ssize_t *pos, Py_ssize_t len, unsigned char *out,
                               Py_ssize_t *o) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (len - *pos >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(in + *pos));
        _mm_storeu_si128((__m128i *)(out + *o), x);
        /* signed: bytes >= 0x80 are negative, so below 0x20 too */
        __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                                    _mm_cmplt_epi8(x, space));
        int mask = _mm_movemask_epi8(stop);
        if (mask) {
            int n = __builtin_ctz((unsigned int)mask);
            *pos += n;
            *o += n;
            return 1;
        }
        *pos += 16;
        *o += 16;
    }
#else
    while (len - *pos >= 8) { /* (the same, 8 bytes a step; a flagged step is left to the byte loop) */
        uint64_t x;
        memcpy(&x, in + *pos, 8);
        if (special8(x) & HIGHS) return 0;
        memcpy(out + *o, &x, 8);
        *pos += 8;
        *o += 8;
    }
#endif
    return 0;
}

/* Where the run of bytes at in[pos] that are neither a quote nor a backslash ends (skip_string's runs),
 * 16 bytes a step while 16 are left; then the byte loop. */
static inline Py_ssize_t scan_unquoted(const unsigned char *in, Py_ssize_t pos, Py_ssize_t len) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    while (len - pos >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(in + pos));
        int mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)));
        if (mask) return pos + __builtin_ctz((unsigned int)mask);
        pos += 16;
    }
#else
    while (len - pos >= 8) {
        uint64_t x, q, b;
        memcpy(&x, in + pos, 8);
        q = x ^ (ONES * '"');
        b = x ^ (ONES * '\\');
        if ((((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS) break;
        pos += 8;
    }
#endif
    while (pos < len && in[pos] != '"' && in[pos] != '\\') pos++;
    return pos;
}

/* A string at p->pos (its opening quote), written with its quotes; the unescaped content is between.
 * Sets p->escaped (whether an escape is written) and p->non_ascii (once a byte >= 0x80 is). */
static int parse_string(Parser *p) {
    const unsigned char *in = p->in;
    unsigned char *out = p->out;
    Py_ssize_t pos = p->pos + 1, o = p->out_pos, len = p->len;
    int escaped = 0;
    out[o++] = '"';
    for (;;) {
        /* The run of bytes that are written as they are. */
        if (!copy16_plain(in, &pos, len, out, &o)) {
            while (pos < len) {
                unsigned char c = in[pos];
                if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
                out[o++] = c;
                pos++;
            }
            if (pos >= len) break;
        }
        unsigned char c = in[pos];
        if (c == '"') {
            out[o++] = '"';
            p->pos = pos + 1;
            p->out_pos = o;
            p->escaped = escaped;
            return 0;
        }
        if (c < 0x20) break; /* a raw control character: malformed */
        if (c >= 0x80) {
            Py_ssize_t n = utf8_len(in + pos, len - pos);
            if (n == 0) break;
            memcpy(out + o, in + pos, (size_t)n);
            o += n;
            pos += n;
            p->non_ascii = 1;
            continue;
        }
        /* An escape. */
        if (++pos >= len) break;
        unsigned int cp;
        switch (in[pos++]) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            p->pos = pos;
            if (hex4(p, &cp) < 0) return -1;
            pos = p->pos;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(p); /* a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {                 /* must pair with a low one */
                unsigned int low;
                if (len - pos < 2 || in[pos] != '\\' || in[pos + 1] != 'u') return fail(p);
                p->pos = pos + 2;
                if (hex4(p, &low) < 0) return -1;
                pos = p->pos;
                if (low < 0xDC00 || low > 0xDFFF) return fail(p);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            break;
        default:
            return fail(p);
        }
        p->out_pos = o;
        put_code_point(p, cp);
        o = p->out_pos;
        escaped |= cp == '"' || cp == '\\' || cp < 0x20; /* written as an escape */
        p->non_ascii |= cp >= 0x80;
    }
    return fail(p);
}

/* An integer, as JSON writes it (msgspec keeps any size; "-0" is 0); a float is not handled here. */
static int parse_number(Parser *p) {
    Py_ssize_t start = p->pos;
    if (p->in[p->pos] == '-') p->pos++;
    if (p->pos >= p->len) return fail(p);
    unsigned char c = p->in[p->pos];
    if (c == '0') p->pos++;
    else if (c >= '1' && c <= '9') {
        while (p->pos < p->len && p->in[p->pos] >= '0' && p->in[p->pos] <= '9') p->pos++;
    } else return fail(p);
    if (p->pos < p->len) {
        c = p->in[p->pos];
        if (c == '.' || c == 'e' || c == 'E' || (c >= '0' && c <= '9')) return fail(p); /* a float, or "01" */
    }
    Py_ssize_t n = p->pos - start;
    if (n == 2 && p->in[start] == '-' && p->in[start + 1] == '0') {
        p->out[p->out_pos++] = '0';
        return 0;
    }
    memcpy(p->out + p->out_pos, p->in + start, (size_t)n);
    p->out_pos += n;
    return 0;
}

static int literal(Parser *p, const char *word, Py_ssize_t n) {
    if (p->len - p->pos < n || memcmp(p->in + p->pos, word, (size_t)n) != 0) return fail(p);
    memcpy(p->out + p->out_pos, word, (size_t)n);
    p->out_pos += n;
    p->pos += n;
    return 0;
}

static int parse_array(Parser *p, int depth) {
    p->pos++;
    p->out[p->out_pos++] = '[';
    skip_ws(p);
    if (p->pos < p->len && p->in[p->pos] == ']') {
        p->pos++;
        p->out[p->out_pos++] = ']';
        return 0;
    }
    for (;;) {
        if (parse_value(p, depth + 1) < 0) return -1;
        skip_ws(p);
        if (p->pos >= p->len) return fail(p);
        unsigned char c = p->in[p->pos++];
        if (c == ']') {
            p->out[p->out_pos++] = ']';
            return 0;
        }
        if (c != ',') return fail(p);
        p->out[p->out_pos++] = ',';
    }
}

/* The next byte of a key as decoded, from its written form (msgspec's escapes: \", \\, \b \t \n
 * \f \r and \u00XX, all for bytes below 0x80, so decoded bytes compare in code point order). */
static unsigned int key_byte(const unsigned char *key, Py_ssize_t *i) {
    unsigned char c = key[(*i)++];
    if (c != '\\') return c;
    c = key[(*i)++];
    switch (c) {
    case 'b': return '\b';
    case 't': return '\t';
    case 'n': return '\n';
    case 'f': return '\f';
    case 'r': return '\r';
    case 'u': {
        unsigned int hi = key[*i + 2], lo = key[*i + 3];
        *i += 4;
        return ((hi >= 'a' ? hi - 'a' + 10 : hi - '0') << 4) | (lo >= 'a' ? lo - 'a' + 10 : lo - '0');
    }
    default: return c; /* '"' or '\\' */
    }
}

static int compare_escaped(const Member *a, const Member *b) {
    Py_ssize_t i = 0, j = 0;
    while (i < a->key_len && j < b->key_len) {
        unsigned int x = key_byte(a->key, &i), y = key_byte(b->key, &j);
        if (x != y) return x < y ? -1 : 1;
    }
    return (i < a->key_len) - (j < b->key_len);
}

/* (Short keys, a message's, compared here: most differ in their first byte, and memcmp was a call.) */
static inline int compare_keys(const Member *a, const Member *b) {
    if (a->escaped || b->escaped) return compare_escaped(a, b);
    Py_ssize_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    if (n >= 16) {
        int c = memcmp(a->key, b->key, (size_t)n);
        if (c != 0) return c;
    } else {
        for (Py_ssize_t i = 0; i < n; i++)
            if (a->key[i] != b->key[i]) return a->key[i] < b->key[i] ? -1 : 1;
    }
    return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static int compare_members(const void *a, const void *b) { return compare_keys((const Member *)a, (const Member *)b); }

static int push_member(Parser *p, Member m) {
    if (p->n_members == p->cap_members) {
        Py_ssize_t cap = p->cap_members * 2;
        Member *grown = PyMem_Malloc((size_t)cap * sizeof(Member));
        if (grown == NULL) {
            p->failed = -1;
            return -1;
        }
        memcpy(grown, p->members, (size_t)p->n_members * sizeof(Member));
        if (p->members_on_heap) PyMem_Free(p->members);
        p->members = grown;
        p->members_on_heap = 1;
        p->cap_members = cap;
    }
    p->members[p->n_members++] = m;
    return 0;
}

/* Members in key order (UTF-8 byte order is code point order, msgspec's order for str keys); a
 * duplicate key falls back (the decoder keeps the last value of a key, at its first position). */
static int sort_members(Parser *p, Py_ssize_t base, Py_ssize_t open) {
    Member *m = p->members + base;
    Py_ssize_t n = p->n_members - base;
    int moved = 0;
    if (n <= 16) {
        /* A message's few members: insertion sort, no calls through a pointer, n - 1 compares when in
         * order. A key stops where the one before it is not greater: a key equal to one already placed
         * stops at an equal one (all between are greater), so that compare finds every duplicate. */
        for (Py_ssize_t i = 1; i < n; i++) {
            Member x = m[i];
            Py_ssize_t j = i;
            int c = 0;
            while (j > 0 && (c = compare_keys(&m[j - 1], &x)) > 0) {
                m[j] = m[j - 1];
                j--;
            }
            if (j > 0 && c == 0) return fail(p);
            if (j != i) {
                m[j] = x;
                moved = 1;
            }
        }
    } else {
        for (Py_ssize_t i = 1; i < n; i++) {
            int c = compare_keys(&m[i - 1], &m[i]);
            if (c == 0) return fail(p);
            if (c > 0) moved = 1;
        }
        if (!moved) return 0;
        qsort(m, (size_t)n, sizeof(Member), compare_members);
        for (Py_ssize_t i = 1; i < n; i++) {
            if (compare_keys(&m[i - 1], &m[i]) == 0) return fail(p);
        }
    }
    if (!moved) return 0;
    /* The members' text moves: copy it out, then back in order (keys point into the scratch copy). */
    Py_ssize_t region = p->out_pos - open;
    memcpy(p->scratch, p->out + open, (size_t)region);
    Py_ssize_t at = open;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i) p->out[at++] = ',';
        Py_ssize_t size = m[i].end - m[i].start;
        memcpy(p->out + at, p->scratch + (m[i].start - open), (size_t)size);
        at += size;
    }
    return 0;
}

static int parse_object(Parser *p, int depth) {
    p->pos++;
    p->out[p->out_pos++] = '{';
    skip_ws(p);
    if (p->pos < p->len && p->in[p->pos] == '}') {
        p->pos++;
        p->out[p->out_pos++] = '}';
        return 0;
    }
    Py_ssize_t base = p->n_members, open = p->out_pos;
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len || p->in[p->pos] != '"') return fail(p);
        Member m;
        m.start = p->out_pos;
        if (parse_string(p) < 0) return -1;
        m.key = p->out + m.start + 1; /* (the output does not move while the text is parsed) */
        m.key_len = p->out_pos - m.start - 2;
        m.escaped = p->escaped;
        skip_ws(p);
        if (p->pos >= p->len || p->in[p->pos] != ':') return fail(p);
        p->pos++;
        p->out[p->out_pos++] = ':';
        if (parse_value(p, depth + 1) < 0) return -1;
        m.end = p->out_pos;
        if (push_member(p, m) < 0) return -1;
        skip_ws(p);
        if (p->pos >= p->len) return fail(p);
        unsigned char c = p->in[p->pos++];
        if (c == '}') break;
        if (c != ',') return fail(p);
        p->out[p->out_pos++] = ',';
    }
    int rc = sort_members(p, base, open);
    p->n_members = base;
    if (rc < 0) return -1;
    p->out[p->out_pos++] = '}';
    return 0;
}

static int parse_value(Parser *p, int depth) {
    if (depth > MAX_DEPTH) return fail(p);
    skip_ws(p);
    if (p->pos >= p->len) return fail(p);
    switch (p->in[p->pos]) {
    case '{': return parse_object(p, depth);
    case '[': return parse_array(p, depth);
    case '"': return parse_string(p);
    case 't': return literal(p, "true", 4);
    case 'f': return literal(p, "false", 5);
    case 'n': return literal(p, "null", 4);
    default: return parse_number(p);
    }
}

/* ---- The text's bytes and the parser's buffers, shared by the entry points. ---- */

typedef struct {
    Py_buffer view;
    int have_view;
    const unsigned char *data;
    Py_ssize_t size;
} Text;

/* The UTF-8 of a str (None, as 1, for one with lone surrogates: not JSON text msgspec takes either)
 * or the bytes of a buffer; -1 with an exception for anything else. */
static int text_open(Text *t, PyObject *arg) {
    t->have_view = 0;
    if (PyUnicode_Check(arg)) {
        const char *data = PyUnicode_AsUTF8AndSize(arg, &t->size);
        if (data == NULL) {
            PyErr_Clear();
            return 1;
        }
        t->data = (const unsigned char *)data;
        return 0;
    }
    if (PyObject_GetBuffer(arg, &t->view, PyBUF_SIMPLE) < 0) return -1;
    t->have_view = 1;
    t->data = t->view.buf;
    t->size = t->view.len;
    return 0;
}

static void text_close(Text *t) {
    if (t->have_view) PyBuffer_Release(&t->view);
}

typedef struct {
    unsigned char stack_out[STACK_BYTES], stack_scratch[STACK_BYTES];
    Member stack_members[STACK_MEMBERS];
} StackBuffers;

/* A parser whose buffers hold the canonical text of any input up to `size` bytes (the canonical text
 * is never longer than the input); -1 with MemoryError set. */
static int parser_open(Parser *p, StackBuffers *stack, Py_ssize_t size) {
    memset(p, 0, sizeof *p);
    p->out = stack->stack_out;
    p->scratch = stack->stack_scratch;
    p->members = stack->stack_members;
    p->cap_members = STACK_MEMBERS;
    if (size > STACK_BYTES) {
        p->out = PyMem_Malloc((size_t)size);
        p->scratch = PyMem_Malloc((size_t)size);
        if (p->out == NULL || p->scratch == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    return 0;
}

static void parser_close(Parser *p, StackBuffers *stack) {
    if (p->out != stack->stack_out) PyMem_Free(p->out);
    if (p->scratch != stack->stack_scratch) PyMem_Free(p->scratch);
    if (p->members_on_heap) PyMem_Free(p->members);
}

/* Point the parser at a new input `in[0:len]`, its output empty. */
static void parser_start(Parser *p, const unsigned char *in, Py_ssize_t len) {
    p->in = in;
    p->pos = 0;
    p->len = len;
    p->out_pos = 0;
    p->n_members = 0;
    p->failed = 0;
    p->non_ascii = 0;
}

/* The canonical text of the whole of `in` into p->out[0:p->out_pos]: 0, or 1 where this module does not
 * decide, or -1 with MemoryError set. */
static int parse_whole(Parser *p, const unsigned char *in, Py_ssize_t len) {
    parser_start(p, in, len);
    if (parse_value(p, 0) == 0) {
        skip_ws(p);
        if (p->pos != p->len) p->failed = 1;
    }
    if (p->failed < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return p->failed;
}

/* `then(ctx, out, len)` of the canonical text of the JSON text `arg`; None where the parser does not
 * decide it (canonical() and message_said(): one owner of opening, parsing and closing). */
typedef PyObject *(*OnCanonical)(void *ctx, const unsigned char *out, Py_ssize_t len);

static PyObject *with_canonical(PyObject *arg, OnCanonical then, void *ctx) {
    Text t;
    int opened = text_open(&t, arg);
    if (opened < 0) return NULL;
    if (opened > 0) Py_RETURN_NONE;
    PyObject *result = NULL;
    StackBuffers stack;
    Parser p;
    if (parser_open(&p, &stack, t.size) == 0) {
        int rc = parse_whole(&p, t.data, t.size);
        if (rc == 0) result = then(ctx, p.out, p.out_pos);
        else if (rc > 0) result = Py_NewRef(Py_None);
    }
    parser_close(&p, &stack);
    text_close(&t);
    return result;
}

static PyObject *canonical_bytes(void *ctx, const unsigned char *out, Py_ssize_t len) {
    (void)ctx;
    return PyBytes_FromStringAndSize((const char *)out, len);
}

static PyObject *canonical(PyObject *module, PyObject *arg) {
    (void)module;
    return with_canonical(arg, canonical_bytes, NULL);
}

/* ---- BLAKE2b (RFC 7693), unkeyed, 16-byte digest: Python's `hashlib.blake2b(digest_size=16)`. ---- */

static const uint64_t BLAKE2B_IV[8] = {
    UINT64_C(0x6a09e667f3bcc908), UINT64_C(0xbb67ae8584caa73b), UINT64_C(0x3c6ef372fe94f82b),
    UINT64_C(0xa54ff53a5f1d36f1), UINT64_C(0x510e527fade682d1), UINT64_C(0x9b05688c2b3e6c1f),
    UINT64_C(0x1f83d9abfb41bd6b), UINT64_C(0x5be0cd19137e2179),
};

static const uint8_t BLAKE2B_SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t load64(const unsigned char *b) {
    return (uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 24 |
           (uint64_t)b[4] << 32 | (uint64_t)b[5] << 40 | (uint64_t)b[6] << 48 | (uint64_t)b[7] << 56;
}

static inline uint64_t rotr64(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

#define B2B_G(a, b, c, d, x, y)              \
    do {                                     \
        v[a] = v[a] + v[b] + (x);            \
        v[d] = rotr64(v[d] ^ v[a], 32);      \
        v[c] = v[c] + v[d];                  \
        v[b] = rotr64(v[b] ^ v[c], 24);      \
        v[a] = v[a] + v[b] + (y);            \
        v[d] = rotr64(v[d] ^ v[a], 16);      \
        v[c] = v[c] + v[d];                  \
        v[b] = rotr64(v[b] ^ v[c], 63);      \
    } while (0)

/* One 128-byte block into the state; `t` counts the bytes hashed so far (inputs here are < 2^64). */
static void blake2b_compress(uint64_t h[8], const unsigned char block[128], uint64_t t, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 16; i++) m[i] = load64(block + 8 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = BLAKE2B_IV[i];
    }
    v[12] ^= t;
    if (last) v[14] = ~v[14];
    /* The rounds written out: each message index a constant, so the words stay in registers. */
#define B2B_ROUND(r)                                                                   \
    do {                                                                               \
        B2B_G(0, 4, 8, 12, m[BLAKE2B_SIGMA[r][0]], m[BLAKE2B_SIGMA[r][1]]);             \
        B2B_G(1, 5, 9, 13, m[BLAKE2B_SIGMA[r][2]], m[BLAKE2B_SIGMA[r][3]]);             \
        B2B_G(2, 6, 10, 14, m[BLAKE2B_SIGMA[r][4]], m[BLAKE2B_SIGMA[r][5]]);            \
        B2B_G(3, 7, 11, 15, m[BLAKE2B_SIGMA[r][6]], m[BLAKE2B_SIGMA[r][7]]);            \
        B2B_G(0, 5, 10, 15, m[BLAKE2B_SIGMA[r][8]], m[BLAKE2B_SIGMA[r][9]]);            \
        B2B_G(1, 6, 11, 12, m[BLAKE2B_SIGMA[r][10]], m[BLAKE2B_SIGMA[r][11]]);          \
        B2B_G(2, 7, 8, 13, m[BLAKE2B_SIGMA[r][12]], m[BLAKE2B_SIGMA[r][13]]);           \
        B2B_G(3, 4, 9, 14, m[BLAKE2B_SIGMA[r][14]], m[BLAKE2B_SIGMA[r][15]]);           \
    } while (0)
    B2B_ROUND(0); B2B_ROUND(1); B2B_ROUND(2); B2B_ROUND(3); B2B_ROUND(4); B2B_ROUND(5);
    B2B_ROUND(6); B2B_ROUND(7); B2B_ROUND(8); B2B_ROUND(9); B2B_ROUND(10); B2B_ROUND(11);
#undef B2B_ROUND
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define B2B_SSE41 1
#include <smmintrin.h>
#define B2B_ATTR __attribute__((target("sse4.1")))

/* The same compression with the state's 4x4 words as eight 128-bit registers, two lanes a row half: one
 * G step runs two columns (then two diagonals) per instruction. Every new content item is hashed: the
 * scalar compression was ~17k of the decode's ~150k instructions a bench span, its largest C cost.
 * Measured on the bench machine (AMD EPYC Zen 2, ~3.1 GHz; CPU ns a byte of `digest`, alternating runs):
 * 64 KB 1.37 -> 1.09..1.17 (-17..20%), 4 KB 1.45 -> 1.19, 1 KB 1.62 -> 1.33; 1678 -> 1217 instructions a
 * block (callgrind). BLAKE2b is latency-bound (each G a chain of 13 dependent operations), so the
 * diagonal step keeps row b in place and moves a and c one lane round (alignr) and swaps d's halves (no
 * instruction): a and c are ready well before b, whose last write ends the chain; moving b and d instead
 * measured 1.24 (64 KB). A 256-bit AVX2 version (a row a register) measured 1.15: its lane rotations are
 * cross-lane permutes (vpermq), slow on Zen 2 where they sit on that chain.
 * Only called where `__builtin_cpu_supports("sse4.1")` (x86-64 since 2008); the scalar path otherwise. */

/* (m[i], m[j]) from the 128-bit pairs `w` (w[k] = m[2k], m[2k+1]). */
static inline B2B_ATTR __m128i b2b_pair(const __m128i w[8], int i, int j) {
    __m128i a = w[i / 2], b = w[j / 2];
    if (i % 2 == 0 && j % 2 == 0) return _mm_unpacklo_epi64(a, b);
    if (i % 2 == 1 && j % 2 == 1) return _mm_unpackhi_epi64(a, b);
    if (i % 2 == 0) return _mm_blend_epi16(a, b, 0xF0);
    return _mm_alignr_epi8(b, a, 8);
}

#define B2B_G2(a, b, c, d, x, y)                                                 \
    do {                                                                         \
        a = _mm_add_epi64(_mm_add_epi64(a, (x)), b);                             \
        d = _mm_shuffle_epi32(_mm_xor_si128(d, a), _MM_SHUFFLE(2, 3, 0, 1));     \
        c = _mm_add_epi64(c, d);                                                 \
        b = _mm_shuffle_epi8(_mm_xor_si128(b, c), r24);                          \
        a = _mm_add_epi64(_mm_add_epi64(a, (y)), b);                             \
        d = _mm_shuffle_epi8(_mm_xor_si128(d, a), r16);                          \
        c = _mm_add_epi64(c, d);                                                 \
        b = _mm_xor_si128(b, c);                                                 \
        b = _mm_or_si128(_mm_srli_epi64(b, 63), _mm_add_epi64(b, b));            \
    } while (0)

static B2B_ATTR void blake2b_compress_sse41(uint64_t h[8], const unsigned char block[128], uint64_t t, int last) {
    const __m128i r24 = _mm_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10);
    const __m128i r16 = _mm_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9);
    __m128i w[8];
    for (int k = 0; k < 8; k++) w[k] = _mm_loadu_si128((const __m128i *)(block + 16 * k));
    const __m128i *hv = (const __m128i *)h, *iv = (const __m128i *)BLAKE2B_IV;
    __m128i a0 = _mm_loadu_si128(hv), a1 = _mm_loadu_si128(hv + 1);
    __m128i b0 = _mm_loadu_si128(hv + 2), b1 = _mm_loadu_si128(hv + 3);
    __m128i c0 = _mm_loadu_si128(iv), c1 = _mm_loadu_si128(iv + 1);
    __m128i d0 = _mm_xor_si128(_mm_loadu_si128(iv + 2), _mm_set_epi64x(0, (long long)t));
    __m128i d1 = _mm_xor_si128(_mm_loadu_si128(iv + 3), _mm_set_epi64x(0, last ? -1 : 0));
    __m128i e, f;
    /* Columns; then the diagonals with b in place: a, c one lane round (alignr), d's halves swapped. */
#define B2B_ROUND2(r)                                                                                          \
    do {                                                                                                       \
        const uint8_t *s = BLAKE2B_SIGMA[r];                                                                   \
        B2B_G2(a0, b0, c0, d0, b2b_pair(w, s[0], s[2]), b2b_pair(w, s[1], s[3]));                            \
        B2B_G2(a1, b1, c1, d1, b2b_pair(w, s[4], s[6]), b2b_pair(w, s[5], s[7]));                            \
        e = _mm_alignr_epi8(a0, a1, 8), a1 = _mm_alignr_epi8(a1, a0, 8), a0 = e;                               \
        f = _mm_alignr_epi8(c1, c0, 8), c1 = _mm_alignr_epi8(c0, c1, 8), c0 = f;                               \
        B2B_G2(a0, b0, c0, d1, b2b_pair(w, s[14], s[8]), b2b_pair(w, s[15], s[9]));                          \
        B2B_G2(a1, b1, c1, d0, b2b_pair(w, s[10], s[12]), b2b_pair(w, s[11], s[13]));                        \
        e = _mm_alignr_epi8(a1, a0, 8), a1 = _mm_alignr_epi8(a0, a1, 8), a0 = e;                               \
        f = _mm_alignr_epi8(c0, c1, 8), c1 = _mm_alignr_epi8(c1, c0, 8), c0 = f;                               \
    } while (0)
    B2B_ROUND2(0); B2B_ROUND2(1); B2B_ROUND2(2); B2B_ROUND2(3); B2B_ROUND2(4); B2B_ROUND2(5);
    B2B_ROUND2(6); B2B_ROUND2(7); B2B_ROUND2(8); B2B_ROUND2(9); B2B_ROUND2(10); B2B_ROUND2(11);
#undef B2B_ROUND2
    __m128i *ho = (__m128i *)h;
    _mm_storeu_si128(ho, _mm_xor_si128(_mm_loadu_si128(hv), _mm_xor_si128(a0, c0)));
    _mm_storeu_si128(ho + 1, _mm_xor_si128(_mm_loadu_si128(hv + 1), _mm_xor_si128(a1, c1)));
    _mm_storeu_si128(ho + 2, _mm_xor_si128(_mm_loadu_si128(hv + 2), _mm_xor_si128(b0, d0)));
    _mm_storeu_si128(ho + 3, _mm_xor_si128(_mm_loadu_si128(hv + 3), _mm_xor_si128(b1, d1)));
}
#undef B2B_G2
#endif

#define DIGEST_BYTES 16

typedef void (*B2bCompress)(uint64_t h[8], const unsigned char block[128], uint64_t t, int last);

/* The 32 lowercase hex digits of BLAKE2b-128 of `data` by `compress`. */
static void blake2b_16_hex_by(const unsigned char *data, Py_ssize_t len, char hex[2 * DIGEST_BYTES],
                              B2bCompress compress) {
    uint64_t h[8];
    memcpy(h, BLAKE2B_IV, sizeof h);
    h[0] ^= UINT64_C(0x01010000) ^ DIGEST_BYTES; /* the parameter block: fanout 1, depth 1, no key */
    uint64_t t = 0;
    while (len > 128) {
        t += 128;
        compress(h, data, t, 0);
        data += 128;
        len -= 128;
    }
    unsigned char last[128] = {0}; /* the final block, zero-padded (a whole block when the input is empty) */
    memcpy(last, data, (size_t)len);
    t += (uint64_t)len;
    compress(h, last, t, 1);
    for (int i = 0; i < DIGEST_BYTES; i++) {
        unsigned int byte = (unsigned int)(h[i / 8] >> (8 * (i % 8))) & 0xFF;
        hex[2 * i] = HEX[byte >> 4];
        hex[2 * i + 1] = HEX[byte & 15];
    }
}

/* `blake2b(data, digest_size=16).hexdigest()`: the SSE4.1 compression where the CPU has it, else the scalar. */
static void blake2b_16_hex(const unsigned char *data, Py_ssize_t len, char hex[2 * DIGEST_BYTES]) {
#ifdef B2B_SSE41
    if (__builtin_cpu_supports("sse4.1")) {
        blake2b_16_hex_by(data, len, hex, blake2b_compress_sse41);
        return;
    }
#endif
    blake2b_16_hex_by(data, len, hex, blake2b_compress);
}

static PyObject *digest_by(PyObject *arg, int scalar) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    char hex[2 * DIGEST_BYTES];
    if (scalar) blake2b_16_hex_by(view.buf, view.len, hex, blake2b_compress);
    else blake2b_16_hex(view.buf, view.len, hex);
    PyBuffer_Release(&view);
    return PyUnicode_FromStringAndSize(hex, 2 * DIGEST_BYTES);
}

static PyObject *digest(PyObject *module, PyObject *arg) {
    (void)module;
    return digest_by(arg, 0);
}

/* `digest` by the portable scalar compression whatever the CPU: the tests hold both paths to hashlib's. */
static PyObject *digest_scalar(PyObject *module, PyObject *arg) {
    (void)module;
    return digest_by(arg, 1);
}

/* The str of the canonical text in p->out: ASCII (the parser saw no other byte) copied into a new str
 * as it is, else decoded (valid UTF-8: the parser checked it). Decoding the bodies, which are mostly
 * ASCII, scanned them again: ~980 instructions a bench body, ~200 for the str and the copy. */
static PyObject *body_str(Parser *p) {
    if (p->non_ascii) return PyUnicode_DecodeUTF8((const char *)p->out, p->out_pos, NULL);
    PyObject *body = PyUnicode_New(p->out_pos, 127);
    if (body != NULL) memcpy(PyUnicode_1BYTE_DATA(body), p->out, (size_t)p->out_pos);
    return body;
}

/* `(hex digest, body str)` of the canonical text in p->out (the digest written into its str). */
static PyObject *hashed_pair(Parser *p) {
    PyObject *h = PyUnicode_New(2 * DIGEST_BYTES, 127);
    if (h == NULL) return NULL;
    blake2b_16_hex(p->out, p->out_pos, (char *)PyUnicode_1BYTE_DATA(h));
    PyObject *body = body_str(p);
    if (body == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(h);
        Py_DECREF(body);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, h);
    PyTuple_SET_ITEM(pair, 1, body);
    PyObject_GC_UnTrack(pair); /* two str: no cycle through it (the collector would untrack it later) */
    return pair;
}

/* ---- A JSON array's elements, each hashed (through a memo of element texts). ---- */

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* The end of the string whose opening quote is at `pos`, past its closing quote; -1 if unclosed. Inline
 * where values are skipped (a bench message has ~27 strings: as calls, ~70 instructions more a message). */
static ALWAYS_INLINE Py_ssize_t skip_string(const unsigned char *in, Py_ssize_t pos, Py_ssize_t len) {
    pos++;
    for (;;) {
        pos = scan_unquoted(in, pos, len);
        if (pos >= len) return -1;
        if (in[pos] == '"') return pos + 1;
        pos += 2; /* an escape: its next byte is never the closing quote */
    }
}

/* Where the value starting at `pos` ends, as far as its brackets and strings tell (not validated: a
 * valid value ends there, and whatever decides an element checks it whole); -1 if it cannot end. */
static Py_ssize_t skip_value(const unsigned char *in, Py_ssize_t pos, Py_ssize_t len) {
    if (pos >= len) return -1;
    unsigned char c = in[pos];
    if (c == '"') return skip_string(in, pos, len);
    if (c == '[' || c == '{') {
        Py_ssize_t depth = 0;
        while (pos < len) {
            c = in[pos];
            if (c == '"') {
                pos = skip_string(in, pos, len);
                if (pos < 0) return -1;
                continue;
            }
            if (c == '[' || c == '{') depth++;
            else if ((c == ']' || c == '}') && --depth == 0) return pos + 1;
            pos++;
        }
        return -1;
    }
    Py_ssize_t start = pos;
    while (pos < len) { /* a number or a literal: up to the next separator */
        c = in[pos];
        if (c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t' || c == '\n' || c == '\r') break;
        pos++;
    }
    return pos > start ? pos : -1;
}

typedef struct {
    PyObject *memo;   /* dict of element text (bytes) -> pair, or NULL */
    Py_ssize_t room;  /* characters the memo may still take */
    Py_ssize_t limit; /* an entry larger than this is not kept */
    Py_ssize_t added;
    int full;
} Memo;

/* Remember `pair` for `key` when it fits: `len(key) + len(body)` characters, counted as messages.py
 * counts its memo. */
static int memo_keep(Memo *m, PyObject *key, PyObject *pair) {
    Py_ssize_t size = PyBytes_GET_SIZE(key) + PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(pair, 1));
    if (size > m->limit) return 0;
    if (size > m->room - m->added) {
        m->full = 1;
        return 0;
    }
    PyObject *held = PyDict_SetDefault(m->memo, key, pair);
    if (held == NULL) return -1;
    if (held == pair) m->added += size; /* (not when the same element came earlier in the array) */
    return 0;
}

/* One element, `in[0:len]`: its pair (from the memo, or made and remembered), or its text as bytes
 * when this module does not decide it; NULL with an exception. */
static PyObject *element_item(Parser *p, Memo *m, const unsigned char *in, Py_ssize_t len) {
    PyObject *key = NULL;
    if (m->memo != NULL) {
        key = PyBytes_FromStringAndSize((const char *)in, len);
        if (key == NULL) return NULL;
        PyObject *pair = PyDict_GetItemWithError(m->memo, key);
        if (pair != NULL) {
            Py_DECREF(key);
            return Py_NewRef(pair);
        }
        if (PyErr_Occurred()) {
            Py_DECREF(key);
            return NULL;
        }
    }
    int rc = parse_whole(p, in, len);
    if (rc < 0) {
        Py_XDECREF(key);
        return NULL;
    }
    if (rc > 0) return key != NULL ? key : PyBytes_FromStringAndSize((const char *)in, len);
    PyObject *pair = hashed_pair(p);
    if (pair != NULL && key != NULL && memo_keep(m, key, pair) < 0) Py_CLEAR(pair);
    Py_XDECREF(key);
    return pair;
}

/* Without a memo no element text is needed before its canonical text: the pair of the value at the
 * start of `in`, its end in `*end`; None (borrowed) where this module does not decide it; NULL with an
 * exception. */
static PyObject *first_value_pair(Parser *p, const unsigned char *in, Py_ssize_t len, Py_ssize_t *end) {
    parser_start(p, in, len);
    if (parse_value(p, 0) == 0) {
        *end = p->pos;
        return hashed_pair(p);
    }
    if (p->failed < 0) return PyErr_NoMemory();
    return Py_None;
}

/* The items of the array text `in`, appended to `items`: 0, 1 when `in` is not an array as read here
 * (nothing decided), -1 with an exception. */
static int array_items(Parser *p, Memo *m, const unsigned char *in, Py_ssize_t len, PyObject *items) {
    Py_ssize_t pos = 0;
    while (pos < len && (in[pos] == ' ' || in[pos] == '\t' || in[pos] == '\n' || in[pos] == '\r')) pos++;
    if (pos >= len || in[pos] != '[') return 1;
    pos++;
    int first = 1;
    for (;;) {
        while (pos < len && (in[pos] == ' ' || in[pos] == '\t' || in[pos] == '\n' || in[pos] == '\r')) pos++;
        if (first && pos < len && in[pos] == ']') {
            pos++;
            break;
        }
        first = 0;
        Py_ssize_t end = 0;
        PyObject *item;
        if (m->memo == NULL && (item = first_value_pair(p, in + pos, len - pos, &end)) != Py_None) {
            if (item == NULL) return -1;
            end += pos;
        } else {
            end = skip_value(in, pos, len);
            if (end < 0) return 1;
            item = element_item(p, m, in + pos, end - pos);
            if (item == NULL) return -1;
        }
        int appended = PyList_Append(items, item);
        Py_DECREF(item);
        if (appended < 0) return -1;
        pos = end;
        while (pos < len && (in[pos] == ' ' || in[pos] == '\t' || in[pos] == '\n' || in[pos] == '\r')) pos++;
        if (pos >= len) return 1;
        unsigned char c = in[pos++];
        if (c == ']') break;
        if (c != ',') return 1;
    }
    while (pos < len && (in[pos] == ' ' || in[pos] == '\t' || in[pos] == '\n' || in[pos] == '\r')) pos++;
    return pos == len ? 0 : 1;
}

/* The content ref `(kind, source, hash, len(body))` of the pair `pair`: a new reference, NULL with an exception. */
static PyObject *ref_of(PyObject *pair, PyObject *kind, PyObject *source) {
    PyObject *size = PyLong_FromSsize_t(PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(pair, 1)));
    if (size == NULL) return NULL;
    PyObject *ref = PyTuple_New(4); /* (not PyTuple_Pack: its variadic arguments cost more than the tuple) */
    if (ref == NULL) {
        Py_DECREF(size);
        return NULL;
    }
    PyTuple_SET_ITEM(ref, 0, Py_NewRef(kind));
    PyTuple_SET_ITEM(ref, 1, Py_NewRef(source));
    PyTuple_SET_ITEM(ref, 2, Py_NewRef(PyTuple_GET_ITEM(pair, 0)));
    PyTuple_SET_ITEM(ref, 3, size);
    PyObject_GC_UnTrack(ref); /* str and int only, as the pair */
    return ref;
}

/* The refs of items[start:] appended to `refs`: 0, 1 if one of them is undecided (its text, bytes: none
 * appended then), -1 with an exception. */
static int append_refs(PyObject *refs, PyObject *items, Py_ssize_t start, PyObject *kind, PyObject *source) {
    Py_ssize_t n = PyList_GET_SIZE(items), at = PyList_GET_SIZE(refs);
    for (Py_ssize_t i = start; i < n; i++)
        if (!PyTuple_CheckExact(PyList_GET_ITEM(items, i))) return 1;
    for (Py_ssize_t i = start; i < n; i++) {
        PyObject *ref = ref_of(PyList_GET_ITEM(items, i), kind, source);
        int appended = ref == NULL ? -1 : PyList_Append(refs, ref);
        Py_XDECREF(ref);
        if (appended < 0) {
            PyList_SetSlice(refs, at, PyList_GET_SIZE(refs), NULL);
            return -1;
        }
    }
    return 0;
}

/* The items of the JSON array text `arg` (a str or a buffer) appended to `items`: 0, 1 where it is not an
 * array as read here, -1 with an exception (split_array and split_span: one owner of the buffers). */
static int text_array_items(PyObject *arg, Memo *m, PyObject *items) {
    Text t;
    int rc = text_open(&t, arg);
    if (rc != 0) return rc;
    StackBuffers stack;
    Parser p;
    rc = parser_open(&p, &stack, t.size);
    if (rc == 0) rc = array_items(&p, m, t.data, t.size, items);
    parser_close(&p, &stack);
    text_close(&t);
    return rc;
}

static PyObject *split_result(PyObject *items, PyObject *refs, Memo *m) {
    PyObject *added = PyLong_FromSsize_t(m->added);
    if (added == NULL) return NULL;
    PyObject *result = PyTuple_Pack(4, items, refs, added, m->full ? Py_True : Py_False);
    Py_DECREF(added);
    return result;
}

/* The memo's room and limit from `room`, `limit` (ints): 0, -1 with an exception. */
static int memo_budget(Memo *m, PyObject *room, PyObject *limit) {
    m->room = PyLong_AsSsize_t(room);
    if (m->room == -1 && PyErr_Occurred()) return -1;
    m->limit = PyLong_AsSsize_t(limit);
    if (m->limit == -1 && PyErr_Occurred()) return -1;
    return 0;
}

static PyObject *split_array(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "split_array(text, memo, room, limit, kind, source) takes 6 arguments");
        return NULL;
    }
    Memo m = {NULL, 0, 0, 0, 0};
    if (args[1] != Py_None) {
        if (!PyDict_CheckExact(args[1])) {
            PyErr_SetString(PyExc_TypeError, "split_array: memo must be a dict or None");
            return NULL;
        }
        m.memo = args[1];
        if (memo_budget(&m, args[2], args[3]) < 0) return NULL;
    }
    PyObject *result = NULL, *items = PyList_New(0);
    if (items == NULL) return NULL;
    int rc = text_array_items(args[0], &m, items);
    if (rc > 0) result = split_result(Py_None, Py_None, &m);
    else if (rc == 0) {
        PyObject *refs = PyList_New(0);
        if (refs != NULL) {
            rc = append_refs(refs, items, 0, args[4], args[5]);
            if (rc >= 0) result = split_result(items, rc ? Py_None : refs, &m);
            Py_DECREF(refs);
        }
    }
    Py_DECREF(items);
    return result;
}

/* ---- A span's whole content split (messages.split_hashed), where every content value is decided here. ---- */

/* What messages.py keeps about attribute keys and content (its objects, passed on each call). */
typedef struct {
    PyObject *not_flat;  /* set: keys known not to be flattened content (messages._NOT_FLAT) */
    PyObject *positions; /* dict: content key -> its entry's index in whole + messages, -1 for an opaque value's */
    uint64_t hashes;     /* bit `hash(key) % 64` set for each key of `positions` */
    PyObject *whole;     /* tuple of (key, kind): JSON-valued attributes, one item each, in order */
    PyObject *messages;  /* tuple of (key, kind, memo: bool): message lists, an item a message, in order */
    PyObject *whole_memo; /* dict: whole value text (str) -> pair */
    PyObject *message_memo; /* dict: message text (bytes) -> pair */
} Tables;

#define MAX_CONTENT_KEYS 16

static int tables_of(PyObject *arg, Tables *t) {
    if (!PyTuple_CheckExact(arg) || PyTuple_GET_SIZE(arg) != 7) goto bad;
    t->not_flat = PyTuple_GET_ITEM(arg, 0);
    t->positions = PyTuple_GET_ITEM(arg, 1);
    t->whole = PyTuple_GET_ITEM(arg, 2);
    t->messages = PyTuple_GET_ITEM(arg, 3);
    t->whole_memo = PyTuple_GET_ITEM(arg, 4);
    t->message_memo = PyTuple_GET_ITEM(arg, 5);
    if (!PyLong_CheckExact(PyTuple_GET_ITEM(arg, 6))) goto bad;
    t->hashes = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(arg, 6));
    if (t->hashes == (uint64_t)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        goto bad;
    }
    if (!PyAnySet_Check(t->not_flat) || !PyDict_CheckExact(t->positions) || !PyTuple_CheckExact(t->whole) ||
        !PyTuple_CheckExact(t->messages) || !PyDict_CheckExact(t->whole_memo) || !PyDict_CheckExact(t->message_memo) ||
        PyTuple_GET_SIZE(t->whole) + PyTuple_GET_SIZE(t->messages) > MAX_CONTENT_KEYS)
        goto bad;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t->whole); i++) {
        PyObject *entry = PyTuple_GET_ITEM(t->whole, i);
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 2) goto bad;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t->messages); i++) {
        PyObject *entry = PyTuple_GET_ITEM(t->messages, i);
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3) goto bad;
    }
    return 0;
bad:
    PyErr_SetString(PyExc_TypeError,
                    "split_span: tables must be (not_flat, {content key: index or -1}, ((key, kind), ...), "
                    "((key, kind, memo), ...), whole_memo, message_memo, key hash bits), at most 16 entries");
    return -1;
}

/* The table entry (key, kind[, memo]) at `i` of whole + messages. */
static PyObject *entry_at(Tables *t, Py_ssize_t i) {
    Py_ssize_t n_whole = PyTuple_GET_SIZE(t->whole);
    return i < n_whole ? PyTuple_GET_ITEM(t->whole, i) : PyTuple_GET_ITEM(t->messages, i - n_whole);
}

/* One walk over `attrs`: whether every key is known not flattened and none is an opaque value's (0: the
 * caller splits; -1 with an exception), each content entry's value in values[i] (borrowed; NULL: absent)
 * and how many there are in *found. It used to take a walk for the keys, then a lookup of each content
 * key to see whether there was content, another to read it and a third to drop it from the light copy.
 * A key is looked up in `positions` only where its hash's bit is set in t->hashes (most keys are none of
 * its 22: a lookup that misses cost ~120 instructions, and the bits' test ~30). The key checks took ~2.8k
 * instructions a bench span with the set of opaque-value keys and the lookups after; ~1.9k. */
static int scan_keys(PyObject *attrs, Tables *t, PyObject **values, int *found) {
    Py_ssize_t n = PyTuple_GET_SIZE(t->whole) + PyTuple_GET_SIZE(t->messages), at = 0;
    for (Py_ssize_t i = 0; i < n; i++) values[i] = NULL;
    *found = 0;
    PyObject *key, *value;
    while (PyDict_Next(attrs, &at, &key, &value)) {
        int known = PySet_Contains(t->not_flat, key);
        if (known <= 0) return known;
        Py_hash_t hash = PyObject_Hash(key); /* (cached on a str: the set lookup made it) */
        if (hash == -1) return -1;
        if (!(t->hashes >> ((uint64_t)hash & 63) & 1)) continue;
        PyObject *position = PyDict_GetItemWithError(t->positions, key);
        if (position == NULL) {
            if (PyErr_Occurred()) return -1;
            continue;
        }
        Py_ssize_t i = PyLong_AsSsize_t(position);
        if (i == -1 && PyErr_Occurred()) return -1;
        if (i < 0 || i >= n) return 0; /* an opaque value's key */
        values[i] = value;
        ++*found;
    }
    return 1;
}

/* Whether `value` is a str starting with one of `firsts` (its first code point). */
static int str_starting(PyObject *value, const char *firsts) {
    if (!PyUnicode_CheckExact(value) || PyUnicode_GET_LENGTH(value) == 0) return 0;
    Py_UCS4 c = PyUnicode_READ_CHAR(value, 0);
    return c < 0x80 && strchr(firsts, (int)c) != NULL;
}

/* The pair of a whole JSON-valued attribute (messages._whole_hashed), through the whole-value memo,
 * appended to `items`: 0, 1 where the caller decides it (not JSON text decided here, or a new pair that
 * does not fit the memo: the caller clears it), -1 with an exception. */
static int whole_item(PyObject *value, PyObject *memo, Memo *m, PyObject *items) {
    if (!str_starting(value, "[{")) return 1;
    PyObject *pair = PyDict_GetItemWithError(memo, value);
    if (pair != NULL) return PyList_Append(items, pair);
    if (PyErr_Occurred()) return -1;
    Text t;
    int rc = text_open(&t, value);
    if (rc != 0) return rc;
    StackBuffers stack;
    Parser p;
    rc = parser_open(&p, &stack, t.size);
    if (rc == 0) rc = parse_whole(&p, t.data, t.size);
    if (rc == 0) rc = (pair = hashed_pair(&p)) == NULL ? -1 : 0;
    parser_close(&p, &stack);
    text_close(&t);
    if (rc != 0) return rc;
    Py_ssize_t size = PyUnicode_GET_LENGTH(value) + PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(pair, 1));
    if (size <= m->limit) { /* as messages._remember: over the room, it clears both memos (the caller does) */
        if (size > m->room - m->added) rc = 1;
        else if ((rc = PyDict_SetItem(memo, value, pair)) == 0) m->added += size;
    }
    if (rc == 0) rc = PyList_Append(items, pair);
    Py_DECREF(pair);
    return rc;
}

/* The items of a message-list attribute (messages._message_items where the extension decides every
 * message), appended to `items`: 0, 1 where the caller decides it (not an array as read here, a message
 * not decided here, or one that did not fit the memo), -1 with an exception. */
static int message_items(PyObject *value, PyObject *memo, Memo *m, PyObject *items) {
    if (!str_starting(value, "[")) return 1;
    m->memo = memo;
    int rc = text_array_items(value, m, items);
    m->memo = NULL;
    return rc == 0 && m->full ? 1 : rc;
}

/* The items and refs of the span's content (`values`: each entry's value, NULL where absent), whole keys
 * then message keys, each in its table's order (messages._split's): 0, 1 where the caller decides the
 * span, -1 with an exception. */
static int content_items(PyObject *const *values, Tables *t, Memo *m, PyObject *items, PyObject *refs) {
    Py_ssize_t n_whole = PyTuple_GET_SIZE(t->whole);
    for (Py_ssize_t i = 0; i < n_whole + PyTuple_GET_SIZE(t->messages); i++) {
        PyObject *value = values[i];
        if (value == NULL) continue;
        PyObject *entry = entry_at(t, i);
        PyObject *key = PyTuple_GET_ITEM(entry, 0), *kind = PyTuple_GET_ITEM(entry, 1);
        Py_ssize_t start = PyList_GET_SIZE(items);
        int rc;
        if (i < n_whole) rc = whole_item(value, t->whole_memo, m, items);
        else {
            int memo = PyObject_IsTrue(PyTuple_GET_ITEM(entry, 2));
            if (memo < 0) return -1;
            rc = message_items(value, memo ? t->message_memo : NULL, m, items);
        }
        if (rc == 0) rc = append_refs(refs, items, start, kind, key);
        if (rc != 0) return rc;
    }
    return 0;
}

/* `attrs` without its content keys (those of `values` not NULL), as `dict(attrs)` and a `pop` of each
 * gives it: NULL with an exception. */
static PyObject *light_of(PyObject *attrs, Tables *t, PyObject *const *values) {
    PyObject *light = PyDict_Copy(attrs);
    if (light == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t->whole) + PyTuple_GET_SIZE(t->messages); i++) {
        if (values[i] != NULL && PyDict_DelItem(light, PyTuple_GET_ITEM(entry_at(t, i), 0)) < 0) {
            Py_DECREF(light);
            return NULL;
        }
    }
    return light;
}

/* (light, refs, items, added): see canonical_native.py. */
static PyObject *span_result(PyObject *light, PyObject *refs, PyObject *items, Memo *m) {
    PyObject *added = PyLong_FromSsize_t(m->added);
    if (added == NULL) return NULL;
    PyObject *result = PyTuple_Pack(4, light, refs, items, added);
    Py_DECREF(added);
    return result;
}

static PyObject *split_span(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "split_span(attrs, tables, room, limit) takes 4 arguments");
        return NULL;
    }
    Tables t;
    Memo m = {NULL, 0, 0, 0, 0};
    if (tables_of(args[1], &t) < 0 || memo_budget(&m, args[2], args[3]) < 0) return NULL;
    PyObject *attrs = args[0], *values[MAX_CONTENT_KEYS];
    int found = 0;
    int rc = PyDict_CheckExact(attrs) ? scan_keys(attrs, &t, values, &found) : 0;
    if (rc < 0) return NULL;
    if (rc == 0) return span_result(Py_None, Py_None, Py_None, &m);
    PyObject *refs = PyList_New(0), *items = PyList_New(0), *result = NULL;
    rc = refs == NULL || items == NULL ? -1 : found > 0;
    if (rc == 0) result = span_result(attrs, refs, items, &m);
    else if (rc > 0) {
        rc = content_items(values, &t, &m, items, refs);
        PyObject *light = rc == 0 ? light_of(attrs, &t, values) : NULL;
        if (light != NULL) result = span_result(light, refs, items, &m);
        else if (rc > 0) result = span_result(Py_None, Py_None, Py_None, &m);
        Py_XDECREF(light);
    }
    Py_XDECREF(refs);
    Py_XDECREF(items);
    return result;
}

/* ---- What a message says, for the trace list's previews (previews.py), from its canonical text. ---- */

/* The code point at in[*i] of a string's content as written in canonical text (UTF-8 validated by the
 * parser, escapes well formed), *i moved past it. */
static inline Py_UCS4 next_code_point(const unsigned char *in, Py_ssize_t *i) {
    unsigned char c = in[*i];
    if (c == '\\') {
        unsigned char e = in[*i + 1];
        *i += 2;
        switch (e) {
        case 'b': return '\b';
        case 't': return '\t';
        case 'n': return '\n';
        case 'f': return '\f';
        case 'r': return '\r';
        case 'u': { /* canonical text escapes only code points below 0x20 this way */
            Py_UCS4 v = 0;
            for (int k = 0; k < 4; k++) {
                unsigned char h = in[(*i)++];
                v = (v << 4) | (Py_UCS4)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
            }
            return v;
        }
        default: return e; /* '"', '\\', '/' */
        }
    }
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    if (c < 0xE0) {
        Py_UCS4 v = ((Py_UCS4)(c & 0x1F) << 6) | (in[*i + 1] & 0x3F);
        *i += 2;
        return v;
    }
    if (c < 0xF0) {
        Py_UCS4 v = ((Py_UCS4)(c & 0x0F) << 12) | ((Py_UCS4)(in[*i + 1] & 0x3F) << 6) | (in[*i + 2] & 0x3F);
        *i += 3;
        return v;
    }
    Py_UCS4 v = ((Py_UCS4)(c & 0x07) << 18) | ((Py_UCS4)(in[*i + 1] & 0x3F) << 12) |
                ((Py_UCS4)(in[*i + 2] & 0x3F) << 6) | (in[*i + 3] & 0x3F);
    *i += 4;
    return v;
}

#define MAX_LINE_CHARS 4096

/* Python's `str.isspace` and `str.splitlines` breaks of one code point (ASCII by table: the macros call
 * into the Unicode database). */
static inline int is_space(Py_UCS4 cp) {
    return cp < 128 ? (cp == ' ' || (cp >= '\t' && cp <= '\r') || (cp >= 0x1C && cp <= 0x1F)) : Py_UNICODE_ISSPACE(cp);
}

static inline int is_line_break(Py_UCS4 cp) {
    return cp < 128 ? ((cp >= '\n' && cp <= '\r') || (cp >= 0x1C && cp <= 0x1E)) : Py_UNICODE_ISLINEBREAK(cp);
}

/* The first non-blank line of a message's text, as `previews.first_line` finds it: Python's own line
 * breaks (`str.splitlines`) and white space (`str.strip`), capped at `chars` code points. */
typedef struct {
    Py_ssize_t chars;
    PyObject *ellipsis_obj;
    const char *ellipsis; /* its UTF-8 */
    Py_ssize_t ellipsis_len;
    PyObject *line; /* the line, once found (a new reference) */
    unsigned char buf[4 * MAX_LINE_CHARS + 8]; /* its UTF-8, up to `chars` code points and the ellipsis */
} Line;

/* One code point's UTF-8 at `o`; its length. */
static inline Py_ssize_t put_utf8(unsigned char *o, Py_UCS4 cp) {
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | (cp >> 6)); o[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12)); o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18)); o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (unsigned char)(0x80 | (cp & 0x3F)); return 4;
}

/* The str of ASCII bytes o[0:n], and `tail` after them when given (its copy widens the bytes, unrolled). */
static PyObject *ascii_str(const unsigned char *o, Py_ssize_t n, PyObject *tail) {
    PyObject *u = PyUnicode_New(n, 127);
    if (u == NULL) return NULL;
    memcpy(PyUnicode_1BYTE_DATA(u), o, (size_t)n);
    if (tail == NULL) return u;
    PyObject *joined = PyUnicode_Concat(u, tail);
    Py_DECREF(u);
    return joined;
}

/* The cut line: the UTF-8 o[0:cut_len] (`ascii`: all ASCII) and the ellipsis. */
static int cut_line(Line *line, unsigned char *o, Py_ssize_t cut_len, int ascii) {
    if (ascii) {
        line->line = ascii_str(o, cut_len, line->ellipsis_obj);
        return line->line == NULL ? -1 : 0;
    }
    memcpy(o + cut_len, line->ellipsis, (size_t)line->ellipsis_len);
    line->line = PyUnicode_DecodeUTF8((const char *)o, cut_len + line->ellipsis_len, NULL);
    return line->line == NULL ? -1 : 0;
}

/* Look for the line in the string whose canonical text (with its quotes) is in[start:end]: 0 (found or
 * not: line->line says), -1 with an exception. The text of several parts is joined by "\n", so the
 * first part with a non-blank line holds the line. Printable ASCII, most of any text, is neither a line
 * break nor white space but ' ' (canonical text escapes the control characters), so it is copied as it
 * is; every other code point is decoded and asked. */
static int string_line(Line *line, const unsigned char *in, Py_ssize_t start, Py_ssize_t end) {
    Py_ssize_t i = start + 1, stop = end - 1;
    Py_UCS4 cp;
    Py_ssize_t first;
    do { /* blank lines and leading white space (every line break is white space) */
        if (i >= stop) return 0;
        first = i;
        cp = next_code_point(in, &i);
    } while (is_space(cp));
    i = first;
    /* code points of the line so far, and its UTF-8's length after the last non-space one and at the cut */
    Py_ssize_t count = 0, kept = 0, kept_len = 0, cut_len = 0, len = 0, chars = line->chars;
    unsigned char *o = line->buf;
    int ascii = 1;
    while (i < stop && kept <= chars) {
        if (in[i] >= 0x20 && in[i] != '\\' && in[i] < 0x80) { /* a run of printable ASCII, 8 bytes at a time */
            Py_ssize_t room = chars - count, j = i + 1;
            Py_ssize_t lim = stop - i > room + 64 ? i + (room > 0 ? room : 0) + 64 : stop; /* (past the cap: enough) */
            while (lim - j >= 8) {
                uint64_t x;
                memcpy(&x, in + j, 8);
                if (special8(x) & HIGHS) break;
                j += 8;
            }
            while (j < lim && in[j] >= 0x20 && in[j] != '\\' && in[j] < 0x80) j++;
            Py_ssize_t n = j - i, take = n < room ? n : (room > 0 ? room : 0), at_cut = chars - 1 - count, last = j;
            memcpy(o + len, in + i, (size_t)take);
            if (at_cut >= 1 && at_cut <= n) cut_len = len + at_cut;
            while (last > i && in[last - 1] == ' ') last--;
            if (last > i) {
                kept = count + (last - i);
                if (kept <= chars) kept_len = len + (last - i);
            }
            len += take;
            count += n;
            i = j;
            continue;
        }
        cp = next_code_point(in, &i);
        if (is_line_break(cp)) break;
        if (count < chars) {
            len += put_utf8(o + len, cp);
            ascii &= cp < 0x80;
        }
        count++;
        if (count == chars - 1) cut_len = len;
        if (!is_space(cp)) {
            kept = count;
            kept_len = len;
        }
    }
    if (kept > chars) /* cut: the first chars - 1 code points and the ellipsis */
        return cut_line(line, o, cut_len, ascii);
    line->line = ascii ? ascii_str(o, kept_len, NULL) : PyUnicode_DecodeUTF8((const char *)o, kept_len, NULL);
    return line->line == NULL ? -1 : 0;
}

/* A value's canonical text in[start:end]: its kind by its first byte, and Python's truth of it. */
static int is_truthy(const unsigned char *in, Py_ssize_t start, Py_ssize_t end) {
    unsigned char c = in[start];
    if (c == '"' || c == '[' || c == '{') return end - start > 2;
    if (c == 'f' || c == 'n') return 0;
    if (c == '0') return 0; /* the only integer written with a leading 0 ("-0" is written "0") */
    return 1;                /* true, any other integer */
}

/* The members of the object whose canonical text starts at in[start] ('{'). */
typedef struct {
    const unsigned char *in;
    Py_ssize_t pos, end;
} Members;

/* The next member's key as written (without quotes: a plain key is written as it is) and where its value
 * starts (*value); 0 after the last one. The caller then reads the value and moves on (`member_end`). */
static int next_key(Members *it, const unsigned char **key, Py_ssize_t *key_len, Py_ssize_t *value) {
    if (it->pos >= it->end || it->in[it->pos] == '}') return 0;
    Py_ssize_t key_end = skip_string(it->in, it->pos, it->end);
    *key = it->in + it->pos + 1;
    *key_len = key_end - it->pos - 2;
    *value = key_end + 1; /* past the ':' */
    return 1;
}

/* Past the member whose value ends at `value_end`. */
static void member_end(Members *it, Py_ssize_t value_end) { it->pos = value_end + (it->in[value_end] == ','); }

/* The next member: its key (as `next_key`) and its value's text in[*value:*value_end]; 0 after the last one. */
static int next_member(Members *it, const unsigned char **key, Py_ssize_t *key_len, Py_ssize_t *value,
                       Py_ssize_t *value_end) {
    if (!next_key(it, key, key_len, value)) return 0;
    *value_end = skip_value(it->in, *value, it->end);
    member_end(it, *value_end);
    return 1;
}

static int key_is(const unsigned char *key, Py_ssize_t len, const char *name) {
    return (size_t)len == strlen(name) && memcmp(key, name, (size_t)len) == 0;
}

/* Whether the value in[start:end] is the JSON string `text` (a plain one: written as it is). */
static int string_is(const unsigned char *in, Py_ssize_t start, Py_ssize_t end, const char *text) {
    return in[start] == '"' && key_is(in + start + 1, end - start - 2, text);
}

/* `obj.get(name)` of the object at in[start] for each of `n` names at once (a member's value is skipped
 * once, however many are looked up): each value's bounds in value[k]:value_end[k], value[k] = -1 where
 * absent. Returns where the object ends (past its '}'). */
static Py_ssize_t members(const unsigned char *in, Py_ssize_t start, Py_ssize_t end, const char *const *names, int n,
                          Py_ssize_t *value, Py_ssize_t *value_end) {
    for (int k = 0; k < n; k++) value[k] = -1;
    Members it = {in, start + 1, end};
    const unsigned char *key;
    Py_ssize_t key_len, v, v_end;
    while (next_member(&it, &key, &key_len, &v, &v_end)) {
        for (int k = 0; k < n; k++) {
            if (key_is(key, key_len, names[k])) {
                value[k] = v;
                value_end[k] = v_end;
                break;
            }
        }
    }
    return it.pos + 1;
}

static int member(const unsigned char *in, Py_ssize_t start, Py_ssize_t end, const char *name, Py_ssize_t *value,
                  Py_ssize_t *value_end) {
    members(in, start, end, &name, 1, value, value_end);
    return *value >= 0;
}

/* `previews._text_of` of one part (an element of a content list) starting at in[start] (`end` bounds it):
 * a string, or a text part's `content` (when it has one), else its `text`; *part_end: where the part
 * ends (found on the way: the part is walked once). */
static int part_line(Line *line, const unsigned char *in, Py_ssize_t start, Py_ssize_t end, Py_ssize_t *part_end) {
    if (in[start] == '"') {
        *part_end = skip_string(in, start, end);
        return string_line(line, in, start, *part_end);
    }
    if (in[start] != '{') {
        *part_end = skip_value(in, start, end);
        return 0;
    }
    static const char *const NAMES[] = {"content", "text", "type"};
    Py_ssize_t v[3], v_end[3];
    *part_end = members(in, start, end, NAMES, 3, v, v_end);
    if (v[2] >= 0 && !string_is(in, v[2], v_end[2], "text") && !string_is(in, v[2], v_end[2], "input_text") &&
        !string_is(in, v[2], v_end[2], "output_text"))
        return 0;
    int k = v[0] >= 0 ? 0 : 1; /* `part.get("content", part.get("text"))` */
    return v[k] >= 0 && in[v[k]] == '"' ? string_line(line, in, v[k], v_end[k]) : 0;
}

/* `previews._text_of` of a message's content starting at in[start] (`end` bounds it), up to its first
 * line; *value_end: where the content ends (its parts are walked once, each skipped past the line). */
static int content_line(Line *line, const unsigned char *in, Py_ssize_t start, Py_ssize_t end, Py_ssize_t *value_end) {
    if (in[start] == '"' || in[start] == '{') return part_line(line, in, start, end, value_end);
    if (in[start] != '[') {
        *value_end = skip_value(in, start, end);
        return 0;
    }
    Py_ssize_t pos = start + 1, item_end;
    while (in[pos] != ']') {
        if (line->line != NULL) item_end = skip_value(in, pos, end);
        else if (part_line(line, in, pos, end, &item_end) < 0) return -1;
        pos = item_end + (in[item_end] == ',');
    }
    *value_end = pos + 1;
    return 0;
}

/* The str of the JSON string in[start:end] (canonical text, with its quotes). */
static PyObject *string_object(const unsigned char *in, Py_ssize_t start, Py_ssize_t end) {
    if (memchr(in + start + 1, '\\', (size_t)(end - start - 2)) == NULL)
        return PyUnicode_DecodeUTF8((const char *)in + start + 1, end - start - 2, NULL);
    PyObject *out = NULL;
    Py_UCS4 *buf = PyMem_Malloc(sizeof(Py_UCS4) * (size_t)(end - start));
    if (buf == NULL) return PyErr_NoMemory();
    Py_ssize_t n = 0, i = start + 1;
    while (i < end - 1) buf[n++] = next_code_point(in, &i);
    out = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, n);
    PyMem_Free(buf);
    return out;
}

/* `previews._tool_calls` of the message object in[start:end]: the names it calls, appended to `names`. */
static int tool_names(const unsigned char *in, Py_ssize_t start, Py_ssize_t end, PyObject *names) {
    static const char *const NAMES[] = {"parts", "tool_calls"};
    Py_ssize_t vs[2], v_ends[2];
    members(in, start, end, NAMES, 2, vs, v_ends);
    int k = vs[0] >= 0 && is_truthy(in, vs[0], v_ends[0]) ? 0 : 1; /* `parts or tool_calls` */
    int found = vs[k] >= 0 && is_truthy(in, vs[k], v_ends[k]);
    Py_ssize_t v = vs[k], v_end = v_ends[k];
    if (!found || in[v] != '[') return 0;
    Py_ssize_t pos = v + 1;
    while (in[pos] != ']') {
        Py_ssize_t part_end = skip_value(in, pos, v_end), t, t_end, n, n_end;
        if (in[pos] == '{' &&
            (!member(in, pos, part_end, "type", &t, &t_end) || in[t] == 'n' || string_is(in, t, t_end, "tool_call") ||
             string_is(in, t, t_end, "function"))) {
            int named = member(in, pos, part_end, "name", &n, &n_end) && is_truthy(in, n, n_end);
            if (!named && member(in, pos, part_end, "function", &t, &t_end) && in[t] == '{')
                named = member(in, t, t_end, "name", &n, &n_end) && is_truthy(in, n, n_end);
            if (named && in[n] == '"') {
                PyObject *name = string_object(in, n, n_end);
                if (name == NULL || PyList_Append(names, name) < 0) {
                    Py_XDECREF(name);
                    return -1;
                }
                Py_DECREF(name);
            }
        }
        pos = part_end + (in[part_end] == ',');
    }
    return 0;
}

/* `previews._said` of the value whose canonical text is in[0:len], in parts: whether it is a user message
 * (*user), its line (line->line, NULL: none) and, when it has none, the names of the tools it calls
 * appended to `names` (NULL: not asked). 0, or -1 with an exception. */
static int said_parts(Line *line, const unsigned char *in, Py_ssize_t len, int *user, PyObject *names) {
    *user = 0;
    if (in[0] == '"') {
        if (string_line(line, in, 0, len) < 0) return -1;
    } else if (in[0] == '{') { /* its `parts` when it has them (read where met: walked once), else `content` */
        Members it = {in, 1, len};
        const unsigned char *key;
        Py_ssize_t key_len, v, v_end, content = -1, content_end = 0;
        int parts = 0;
        while (next_key(&it, &key, &key_len, &v)) {
            if (key_is(key, key_len, "parts")) {
                parts = 1;
                if (content_line(line, in, v, len, &v_end) < 0) return -1;
            } else {
                v_end = skip_value(in, v, len);
                if (key_is(key, key_len, "content")) {
                    content = v;
                    content_end = v_end;
                } else if (key_is(key, key_len, "role"))
                    *user = string_is(in, v, v_end, "user");
            }
            member_end(&it, v_end);
        }
        if (!parts && content >= 0 && content_line(line, in, content, content_end, &v_end) < 0) return -1;
    }
    if (names != NULL && line->line == NULL && in[0] == '{') return tool_names(in, 0, len, names);
    return 0;
}

/* `previews._said` of the value whose canonical text is in[0:len]. */
static PyObject *said_of(Line *line, const unsigned char *in, Py_ssize_t len) {
    int user;
    PyObject *names = PyList_New(0);
    if (names == NULL) return NULL;
    PyObject *tools = said_parts(line, in, len, &user, names) < 0 ? NULL : PyList_AsTuple(names);
    Py_DECREF(names);
    if (tools == NULL) return NULL;
    PyObject *said = PyTuple_Pack(3, user ? Py_True : Py_False, line->line ? line->line : Py_None, tools);
    Py_DECREF(tools);
    return said;
}

static PyObject *said_of_line(void *line, const unsigned char *out, Py_ssize_t len) {
    return said_of((Line *)line, out, len);
}

/* A Line for `chars` code points (an int) and `ellipsis` (a str): 0, or -1 with an exception. */
static int line_open(Line *line, PyObject *chars, PyObject *ellipsis, const char *caller) {
    line->line = NULL;
    if (!PyUnicode_Check(ellipsis)) {
        PyErr_Format(PyExc_TypeError, "%s: the ellipsis must be a str", caller);
        return -1;
    }
    line->chars = PyLong_AsSsize_t(chars);
    if (line->chars == -1 && PyErr_Occurred()) return -1;
    if (line->chars < 1 || line->chars > MAX_LINE_CHARS) {
        PyErr_Format(PyExc_ValueError, "%s: chars must be 1..%d", caller, MAX_LINE_CHARS);
        return -1;
    }
    line->ellipsis_obj = ellipsis;
    line->ellipsis = PyUnicode_AsUTF8AndSize(ellipsis, &line->ellipsis_len);
    if (line->ellipsis == NULL) return -1;
    if (line->ellipsis_len > 8) {
        PyErr_Format(PyExc_ValueError, "%s: the ellipsis takes at most 8 bytes of UTF-8", caller);
        return -1;
    }
    return 0;
}

static PyObject *message_said(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "message_said(body, chars, ellipsis: str) takes 3 arguments");
        return NULL;
    }
    Line line;
    if (line_open(&line, args[1], args[2], "message_said") < 0) return NULL;
    PyObject *result = with_canonical(args[0], said_of_line, &line);
    Py_XDECREF(line.line);
    return result;
}

/* ---- A decoded part's preview candidates (previews.preview_candidates), without Python per item. ---- */

/* The kinds of content item a trace's pick and its lines tell apart (a ref's kind, `previews._INPUTS`
 * and `_OUTPUTS`): chat messages, and opaque values (whose lines the caller reads). */
enum { CHAT_IN = 1, CHAT_OUT = 2, VALUE_IN = 4, VALUE_OUT = 8, ANY_IN = CHAT_IN | VALUE_IN, ANY_OUT = CHAT_OUT | VALUE_OUT };

static int ascii_is(const char *data, Py_ssize_t len, const char *word) {
    return (size_t)len == strlen(word) && memcmp(data, word, (size_t)len) == 0;
}

/* The kind of the content ref `ref` (a tuple whose first item is its kind, a str): one of the above, 0 for
 * any other kind, -1 for a ref this module does not read (the caller decides the part). */
static int ref_kind(PyObject *ref) {
    if (!PyTuple_CheckExact(ref) || PyTuple_GET_SIZE(ref) < 1) return -1;
    PyObject *kind = PyTuple_GET_ITEM(ref, 0);
    if (!PyUnicode_CheckExact(kind)) return -1;
    if (!PyUnicode_IS_ASCII(kind)) return 0;
    const char *data = (const char *)PyUnicode_DATA(kind);
    Py_ssize_t len = PyUnicode_GET_LENGTH(kind);
    if (ascii_is(data, len, "input")) return CHAT_IN;
    if (ascii_is(data, len, "output")) return CHAT_OUT;
    if (ascii_is(data, len, "input_value")) return VALUE_IN;
    if (ascii_is(data, len, "output_value")) return VALUE_OUT;
    return 0;
}

/* An exact int's value: 0, or 1 for anything else (or out of int64's range). */
static int int64_of(PyObject *value, long long *out) {
    if (!PyLong_CheckExact(value)) return 1;
    int overflow;
    *out = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (*out == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 1;
    }
    return 0;
}

/* A trace's picks so far: its earliest-starting row with an input item, its latest-ending one with an
 * output item (-1: none yet), and their times. */
typedef struct {
    Py_ssize_t asked, answered;
    long long asked_start, answered_start, answered_end;
} Pick;

/* The part's columns: trace ids, starts, ends, operations, refs, items (lists of one length). */
typedef struct {
    PyObject *trace_ids, *starts, *ends, *operations, *refs, *items;
    Py_ssize_t n;
} Part;

/* `previews._picks` as flags per row (1: picked for its input, 2: for its output): 0, 1 where the part
 * holds something this module does not read (the caller decides), -1 with an exception. */
static int pick_rows(Part *part, PyObject *llm, Pick *picks, unsigned char *flags) {
    PyObject *slots = PyDict_New(); /* trace id -> its index in `picks` */
    if (slots == NULL) return -1;
    Py_ssize_t n_slots = 0;
    int rc = 0;
    for (Py_ssize_t row = 0; row < part->n && rc == 0; row++) {
        PyObject *span_refs = PyList_GET_ITEM(part->refs, row);
        if (span_refs == Py_None) continue;
        if (!PyList_CheckExact(span_refs)) {
            rc = 1;
            break;
        }
        if (PyList_GET_SIZE(span_refs) == 0) continue;
        int is_llm = PySet_Contains(llm, PyList_GET_ITEM(part->operations, row));
        if (is_llm <= 0) {
            rc = is_llm;
            continue;
        }
        int kinds = 0;
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(span_refs) && rc == 0; k++) {
            int kind = ref_kind(PyList_GET_ITEM(span_refs, k));
            if (kind < 0) rc = 1;
            kinds |= kind;
        }
        if (rc != 0 || !(kinds & (ANY_IN | ANY_OUT))) continue;
        long long start, end = 0;
        if (int64_of(PyList_GET_ITEM(part->starts, row), &start) ||
            ((kinds & ANY_OUT) && int64_of(PyList_GET_ITEM(part->ends, row), &end))) {
            rc = 1;
            break;
        }
        PyObject *trace = PyList_GET_ITEM(part->trace_ids, row);
        PyObject *slot = PyDict_GetItemWithError(slots, trace);
        Py_ssize_t s;
        if (slot != NULL) s = PyLong_AsSsize_t(slot);
        else if (PyErr_Occurred()) {
            rc = -1;
            break;
        } else {
            s = n_slots++;
            picks[s].asked = picks[s].answered = -1;
            PyObject *index = PyLong_FromSsize_t(s);
            if (index == NULL || PyDict_SetItem(slots, trace, index) < 0) rc = -1;
            Py_XDECREF(index);
            if (rc) break;
        }
        Pick *pick = &picks[s];
        if ((kinds & ANY_IN) && (pick->asked < 0 || start < pick->asked_start)) {
            pick->asked = row;
            pick->asked_start = start;
        }
        if ((kinds & ANY_OUT) && (pick->answered < 0 || end > pick->answered_end ||
                                  (end == pick->answered_end && start < pick->answered_start))) {
            pick->answered = row;
            pick->answered_start = start;
            pick->answered_end = end;
        }
    }
    Py_DECREF(slots);
    for (Py_ssize_t s = 0; s < n_slots && rc == 0; s++) {
        if (picks[s].asked >= 0) flags[picks[s].asked] |= 1;
        if (picks[s].answered >= 0) flags[picks[s].answered] |= 2;
    }
    return rc;
}

/* Whether the UTF-8 text holds `"user"` (`previews._input_text`'s test before it reads a body). */
static int says_user(const unsigned char *data, Py_ssize_t size) {
    const unsigned char *at = data, *end = data + size;
    while (end - at >= 6 && (at = memchr(at, '"', (size_t)(end - at - 5))) != NULL) {
        if (memcmp(at, "\"user\"", 6) == 0) return 1;
        at++;
    }
    return 0;
}

/* The stored body of a span's item (a `(hash, body)` tuple) as UTF-8, when it is a str this module reads:
 * 0, or 1 (the caller decides the side). */
static int body_text(PyObject *item, const unsigned char **data, Py_ssize_t *size) {
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) < 2) return 1;
    PyObject *body = PyTuple_GET_ITEM(item, 1);
    if (!PyUnicode_CheckExact(body)) return 1;
    *data = (const unsigned char *)PyUnicode_AsUTF8AndSize(body, size);
    if (*data == NULL) {
        PyErr_Clear(); /* lone surrogates: msgspec refuses the text, the caller decides */
        return 1;
    }
    return 0;
}

/* `said_parts` of the body data[0:size] (its line in line->line, the previous one dropped): 0, 1 where
 * its canonical text is not decided here, -1 with an exception. */
static int body_said(Line *line, const unsigned char *data, Py_ssize_t size, int *user, PyObject *names) {
    Py_CLEAR(line->line);
    StackBuffers stack;
    Parser p;
    int rc = -1;
    if (parser_open(&p, &stack, size) == 0) {
        rc = parse_whole(&p, data, size);
        if (rc == 0) rc = said_parts(line, p.out, p.out_pos, user, names);
    }
    parser_close(&p, &stack);
    return rc;
}

/* A span's items, for its sides' lines. */
typedef struct {
    PyObject *refs, *items; /* lists of one length */
    Line *line;
} Span;

/* The line found (owned by the caller now). */
static PyObject *take_line(Line *line) {
    PyObject *found = line->line;
    line->line = NULL;
    return found;
}

/* The body of item `k` when it is of kind `want` (*said: 1) and what it says; 0, 1 where the caller
 * decides the side, -1 with an exception. `user_only`: a body without `"user"` is not read. */
static int item_said(Span *span, Py_ssize_t k, int want, int user_only, int *said, int *user, PyObject *names) {
    *said = 0;
    if (ref_kind(PyList_GET_ITEM(span->refs, k)) != want) return 0;
    const unsigned char *data;
    Py_ssize_t size;
    if (body_text(PyList_GET_ITEM(span->items, k), &data, &size)) return 1;
    if (user_only && !says_user(data, size)) return 0;
    *said = 1;
    return body_said(span->line, data, size, user, names);
}

/* `previews._input_text` of a span's chat input items, or "" when they say nothing: a new reference,
 * Py_False where the caller decides, NULL with an exception. */
static PyObject *input_line(Span *span) {
    Py_ssize_t n = PyList_GET_SIZE(span->refs);
    int seen_user = 0, said, user, rc;
    for (Py_ssize_t k = n - 1; k >= 0; k--) { /* the last user message with a line */
        if ((rc = item_said(span, k, CHAT_IN, 1, &said, &user, NULL)) != 0) goto undecided;
        if (!said) continue;
        seen_user |= user;
        if (user && span->line->line != NULL) return take_line(span->line);
    }
    if (!seen_user) { /* no user message: the last message that says something */
        for (Py_ssize_t k = n - 1; k >= 0; k--) {
            if ((rc = item_said(span, k, CHAT_IN, 0, &said, &user, NULL)) != 0) goto undecided;
            if (said && span->line->line != NULL) return take_line(span->line);
        }
    }
    return PyUnicode_FromStringAndSize("", 0);
undecided:
    return rc < 0 ? NULL : Py_NewRef(Py_False);
}

/* `previews._output_text` of a span's chat output items, or "" when they say nothing; the names of the
 * tools they call (a tuple: the caller writes the line) when none has a line. A new reference, Py_False
 * where the caller decides, NULL with an exception. */
static PyObject *output_line(Span *span) {
    Py_ssize_t n = PyList_GET_SIZE(span->refs);
    int said, user, rc;
    for (Py_ssize_t k = n - 1; k >= 0; k--) {
        if ((rc = item_said(span, k, CHAT_OUT, 0, &said, &user, NULL)) != 0) goto undecided;
        if (said && span->line->line != NULL) return take_line(span->line);
    }
    PyObject *names = PyList_New(0), *tools = NULL;
    if (names == NULL) return NULL;
    for (Py_ssize_t k = 0; k < n; k++) { /* none has a line: the tools they call, in order */
        if ((rc = item_said(span, k, CHAT_OUT, 0, &said, &user, names)) != 0) {
            Py_DECREF(names);
            goto undecided;
        }
    }
    tools = PyList_GET_SIZE(names) ? PyList_AsTuple(names) : PyUnicode_FromStringAndSize("", 0);
    Py_DECREF(names);
    return tools;
undecided:
    return rc < 0 ? NULL : Py_NewRef(Py_False);
}

/* The line of a span's side (`kinds`: its item kinds of that side): Py_False where an opaque value is
 * among them (the caller reads it). */
static PyObject *side_line(Span *span, int kinds, int side) {
    if (kinds & side & (VALUE_IN | VALUE_OUT)) return Py_NewRef(Py_False);
    return side == ANY_IN ? input_line(span) : output_line(span);
}

/* A picked row's (input, output) lines into inputs[i], outputs[i] (None: not picked for that side), and
 * how many the caller finishes; 0, 1 where the caller decides the part, -1 with an exception. */
static int row_lines(Part *part, Py_ssize_t row, int flag, Line *line, PyObject *inputs, PyObject *outputs,
                     Py_ssize_t i, Py_ssize_t *pending) {
    Span span = {PyList_GET_ITEM(part->refs, row), PyList_GET_ITEM(part->items, row), line};
    if (!PyList_CheckExact(span.items) || PyList_GET_SIZE(span.items) != PyList_GET_SIZE(span.refs)) return 1;
    int kinds = 0;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(span.refs); k++) kinds |= ref_kind(PyList_GET_ITEM(span.refs, k));
    PyObject *said_in = flag & 1 ? side_line(&span, kinds, ANY_IN) : Py_NewRef(Py_None);
    PyList_SET_ITEM(inputs, i, said_in);
    if (said_in == NULL) return -1;
    PyObject *said_out = flag & 2 ? side_line(&span, kinds, ANY_OUT) : Py_NewRef(Py_None);
    PyList_SET_ITEM(outputs, i, said_out);
    if (said_out == NULL) return -1;
    *pending += !PyUnicode_CheckExact(said_in) && said_in != Py_None;
    *pending += !PyUnicode_CheckExact(said_out) && said_out != Py_None;
    return 0;
}

/* The candidates' columns (row, trace_id, start_ns, end_ns, input, output) of the flagged rows and the
 * count of lines the caller finishes; None where the caller decides the part; NULL with an exception. */
static PyObject *candidate_columns(Part *part, const unsigned char *flags, Line *line) {
    Py_ssize_t count = 0, pending = 0;
    for (Py_ssize_t row = 0; row < part->n; row++) count += flags[row] != 0;
    PyObject *columns[6];
    for (int c = 0; c < 6; c++) columns[c] = PyList_New(count); /* (NULL items until set: safe to drop) */
    PyObject *result = NULL;
    int rc = 0;
    for (int c = 0; c < 6; c++)
        if (columns[c] == NULL) rc = -1;
    for (Py_ssize_t row = 0, i = 0; row < part->n && rc == 0; row++) {
        if (!flags[row]) continue;
        PyObject *at = PyLong_FromSsize_t(row);
        if (at == NULL) {
            rc = -1;
            break;
        }
        PyList_SET_ITEM(columns[0], i, at);
        PyList_SET_ITEM(columns[1], i, Py_NewRef(PyList_GET_ITEM(part->trace_ids, row)));
        PyList_SET_ITEM(columns[2], i, Py_NewRef(PyList_GET_ITEM(part->starts, row)));
        PyList_SET_ITEM(columns[3], i, Py_NewRef(PyList_GET_ITEM(part->ends, row)));
        rc = row_lines(part, row, flags[row], line, columns[4], columns[5], i, &pending);
        i++;
    }
    Py_CLEAR(line->line);
    if (rc == 0) result = Py_BuildValue("(OOOOOOn)", columns[0], columns[1], columns[2], columns[3], columns[4],
                                        columns[5], pending);
    else if (rc > 0) result = Py_NewRef(Py_None);
    for (int c = 0; c < 6; c++) Py_XDECREF(columns[c]);
    return result;
}

static PyObject *preview_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError,
                        "preview_rows(trace_ids, start_ns, end_ns, operations, refs, items, llm, chars, ellipsis) "
                        "takes 9 arguments");
        return NULL;
    }
    if (!PyAnySet_Check(args[6])) {
        PyErr_SetString(PyExc_TypeError, "preview_rows: llm must be a set");
        return NULL;
    }
    Line line;
    if (line_open(&line, args[7], args[8], "preview_rows") < 0) return NULL;
    for (int k = 0; k < 6; k++)
        if (!PyList_CheckExact(args[k]) || PyList_GET_SIZE(args[k]) != PyList_GET_SIZE(args[4])) Py_RETURN_NONE;
    Part part = {args[0], args[1], args[2], args[3], args[4], args[5], PyList_GET_SIZE(args[4])};
    Pick *picks = PyMem_Malloc(sizeof(Pick) * (size_t)(part.n ? part.n : 1));
    unsigned char *flags = PyMem_Calloc((size_t)(part.n ? part.n : 1), 1);
    PyObject *result = NULL;
    if (picks == NULL || flags == NULL) PyErr_NoMemory();
    else {
        int rc = pick_rows(&part, args[6], picks, flags);
        if (rc == 0) result = candidate_columns(&part, flags, &line);
        else if (rc > 0) result = Py_NewRef(Py_None);
    }
    PyMem_Free(picks);
    PyMem_Free(flags);
    return result;
}

static PyMethodDef METHODS[] = {
    {"canonical", canonical, METH_O,
     "canonical(text) -> bytes | None: msgspec's sorted-key encoding of the decoded JSON text, or None "
     "where this module does not decide (a float, a duplicate key, deep nesting, anything msgspec refuses)."},
    {"digest", digest, METH_O, "digest(data) -> str: hashlib.blake2b(data, digest_size=16).hexdigest()."},
    {"_digest_scalar", digest_scalar, METH_O, "_digest_scalar(data) -> str: digest(data) by the scalar code path."},
    {"split_array", (PyCFunction)(void (*)(void))split_array, METH_FASTCALL,
     "split_array(text, memo, room, limit, kind, source) -> (items | None, refs | None, added, full): see "
     "canonical_native.py."},
    {"split_span", (PyCFunction)(void (*)(void))split_span, METH_FASTCALL,
     "split_span(attrs, tables, room, limit) -> (light | None, refs | None, items | None, added): see "
     "canonical_native.py."},
    {"message_said", (PyCFunction)(void (*)(void))message_said, METH_FASTCALL,
     "message_said(body, chars, ellipsis) -> (user, line, tools) | None: previews._said of the decoded body, "
     "from its canonical text; None where the canonical text is not decided here."},
    {"preview_rows", (PyCFunction)(void (*)(void))preview_rows, METH_FASTCALL,
     "preview_rows(trace_ids, start_ns, end_ns, operations, refs, items, llm, chars, ellipsis) -> (rows, "
     "trace_ids, start_ns, end_ns, inputs, outputs, pending) | None: see canonical_native.py."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_canonical_json", NULL, -1, METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__canonical_json(void) { return PyModule_Create(&MODULE); }
