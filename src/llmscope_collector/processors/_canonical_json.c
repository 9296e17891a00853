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
} Parser;

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Whether one of these 8 bytes ends a run of plain string bytes: a quote, a backslash, a control
 * character or a non-ASCII byte (it may flag more bytes, never fewer: the caller then goes byte by byte). */
static inline uint64_t special8(uint64_t x) {
    uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
    return ((q - ONES) & ~q) | ((b - ONES) & ~b) | ((x - ONES * 0x20) & ~x) | x;
}

static void skip_ws(Parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->in[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
        p->pos++;
    }
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

/* A string at p->pos (its opening quote), written with its quotes; the unescaped content is between. */
static int parse_string(Parser *p) {
    p->pos++;
    p->out[p->out_pos++] = '"';
    for (;;) {
        /* The run of bytes that are written as they are. */
        Py_ssize_t start = p->pos;
        while (p->len - p->pos >= 8) {
            uint64_t x;
            memcpy(&x, p->in + p->pos, 8);
            if (special8(x) & HIGHS) break;
            p->pos += 8;
        }
        while (p->pos < p->len) {
            unsigned char c = p->in[p->pos];
            if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
            p->pos++;
        }
        memcpy(p->out + p->out_pos, p->in + start, (size_t)(p->pos - start));
        p->out_pos += p->pos - start;
        if (p->pos >= p->len) return fail(p);
        unsigned char c = p->in[p->pos];
        if (c == '"') {
            p->pos++;
            p->out[p->out_pos++] = '"';
            return 0;
        }
        if (c < 0x20) return fail(p); /* a raw control character: malformed */
        if (c >= 0x80) {
            Py_ssize_t n = utf8_len(p->in + p->pos, p->len - p->pos);
            if (n == 0) return fail(p);
            memcpy(p->out + p->out_pos, p->in + p->pos, (size_t)n);
            p->out_pos += n;
            p->pos += n;
            continue;
        }
        /* An escape. */
        if (++p->pos >= p->len) return fail(p);
        unsigned int cp;
        switch (p->in[p->pos++]) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (hex4(p, &cp) < 0) return -1;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(p); /* a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {                 /* must pair with a low one */
                unsigned int low;
                if (p->len - p->pos < 2 || p->in[p->pos] != '\\' || p->in[p->pos + 1] != 'u') return fail(p);
                p->pos += 2;
                if (hex4(p, &low) < 0) return -1;
                if (low < 0xDC00 || low > 0xDFFF) return fail(p);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            break;
        default:
            return fail(p);
        }
        put_code_point(p, cp);
    }
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

static int compare_keys(const Member *a, const Member *b) {
    if (a->escaped || b->escaped) return compare_escaped(a, b);
    Py_ssize_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, (size_t)n);
    if (c != 0) return c;
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
    int sorted = 1;
    for (Py_ssize_t i = 1; i < n; i++) {
        int c = compare_keys(&m[i - 1], &m[i]);
        if (c == 0) return fail(p);
        if (c > 0) sorted = 0;
    }
    if (sorted) return 0;
    qsort(m, (size_t)n, sizeof(Member), compare_members);
    for (Py_ssize_t i = 1; i < n; i++) {
        if (compare_keys(&m[i - 1], &m[i]) == 0) return fail(p);
    }
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
        m.key_len = p->out_pos - m.start - 2;
        skip_ws(p);
        if (p->pos >= p->len || p->in[p->pos] != ':') return fail(p);
        p->pos++;
        p->out[p->out_pos++] = ':';
        if (parse_value(p, depth + 1) < 0) return -1;
        m.end = p->out_pos;
        m.key = NULL; /* set below: the output does not move while the object is parsed */
        m.escaped = 0;
        if (push_member(p, m) < 0) return -1;
        skip_ws(p);
        if (p->pos >= p->len) return fail(p);
        unsigned char c = p->in[p->pos++];
        if (c == '}') break;
        if (c != ',') return fail(p);
        p->out[p->out_pos++] = ',';
    }
    for (Py_ssize_t i = base; i < p->n_members; i++) {
        Member *m = &p->members[i];
        m->key = p->out + m->start + 1;
        m->escaped = memchr(m->key, '\\', (size_t)m->key_len) != NULL;
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

static PyObject *canonical(PyObject *module, PyObject *arg) {
    (void)module;
    Py_buffer view;
    const char *data;
    Py_ssize_t size;
    int have_view = 0;
    if (PyUnicode_Check(arg)) {
        data = PyUnicode_AsUTF8AndSize(arg, &size);
        if (data == NULL) { /* lone surrogates: not JSON text msgspec takes either */
            PyErr_Clear();
            Py_RETURN_NONE;
        }
    } else {
        if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
        have_view = 1;
        data = view.buf;
        size = view.len;
    }
    PyObject *result = NULL;
    unsigned char stack_out[STACK_BYTES], stack_scratch[STACK_BYTES];
    Member stack_members[STACK_MEMBERS];
    Parser p = {(const unsigned char *)data, 0, size, stack_out, 0, stack_members, 0, STACK_MEMBERS, 0,
                stack_scratch, 0};
    if (size > STACK_BYTES) { /* (the canonical text is never longer than the input) */
        p.out = PyMem_Malloc((size_t)size);
        p.scratch = PyMem_Malloc((size_t)size);
        if (p.out == NULL || p.scratch == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    if (parse_value(&p, 0) == 0) {
        skip_ws(&p);
        if (p.pos != p.len) p.failed = 1;
    }
    if (p.failed < 0) {
        PyErr_NoMemory();
        goto done;
    }
    if (p.failed) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = PyBytes_FromStringAndSize((const char *)p.out, p.out_pos);
done:
    if (p.out != stack_out) PyMem_Free(p.out);
    if (p.scratch != stack_scratch) PyMem_Free(p.scratch);
    if (p.members_on_heap) PyMem_Free(p.members);
    if (have_view) PyBuffer_Release(&view);
    return result;
}

static PyMethodDef METHODS[] = {
    {"canonical", canonical, METH_O,
     "canonical(text) -> bytes | None: msgspec's sorted-key encoding of the decoded JSON text, or None "
     "where this module does not decide (a float, a duplicate key, deep nesting, anything msgspec refuses)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_canonical_json", NULL, -1, METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__canonical_json(void) { return PyModule_Create(&MODULE); }
