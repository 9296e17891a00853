/* OTLP ExportTraceServiceRequest wire bytes -> the Python values decode.py works on.
 *
 * Why: the pure path parses with upb and then reads every field through a Python wrapper object
 * (a KeyValue, an AnyValue, a str per read): that is most of the per-span decode cost. Here the
 * bytes are read directly and only the values decode.py keeps are made into Python objects.
 *
 * Two phases, so that a request is accepted or refused exactly as upb would:
 *   1. validate (GIL released): the whole wire format as upb checks it (tags, varints, lengths,
 *      groups, nesting depth <= 100, UTF-8 of every `string` field, known or merely nested);
 *   2. build (GIL held): the values, from bytes known to be well formed (still bounds-checked).
 * Merge rules of the protobuf encoding are kept: a singular field seen twice keeps the last value,
 * a singular message seen twice is merged (repeated fields appended), an AnyValue's oneof switches
 * case (or merges an array/kvlist of the same case). A field sent with another wire type than its
 * declared one is an unknown field, as for upb.
 *
 * The output shape (and the pure-Python equivalent) is documented in processors/native.py; the
 * normalization rules stay in Python (one source of truth). What this file decides beyond reading the
 * wire is each span's stored head (native.span_head is its twin: kind/status names handed in, times
 * clamped, duration, empty strings as None) and the id rule, so that decode.py touches fewer values
 * per span; the equivalence tests compare both with the pure path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 100

enum { E_OK = 0, E_CORRUPT, E_UTF8, E_DEPTH };

enum { M_NONE = 0, M_REQ, M_RS, M_RES, M_SS, M_SCOPE, M_SPAN, M_EVENT, M_LINK, M_STATUS, M_KV, M_AV, M_ARR, M_KVL, M_ENTITY };

enum { K_UNKNOWN = 0, K_VARINT, K_FIXED64, K_FIXED32, K_BYTES, K_STRING, K_MSG };

typedef struct {
    int kind;
    int sub;
} fdesc;

static PyObject *DecodeError;
static PyObject *s_time_ns, *s_name, *s_attributes, *s_trace_id, *s_span_id, *s_empty_str, *s_infinity, *s_neg_infinity,
    *s_nan;
/* How many span kinds and status codes have stored names (native.py's KIND_NAMES, STATUS_NAMES). */
#define N_KINDS 6
#define N_CODES 3

/* ------------------------------------------------------------------ schema (opentelemetry-proto) */

static fdesc field_of(int msg, uint32_t field, int strindex) {
    fdesc d = {K_UNKNOWN, M_NONE};
#define F(k, s) \
    do {        \
        d.kind = (k); \
        d.sub = (s);  \
    } while (0)
    switch (msg) {
        case M_REQ:
            if (field == 1) F(K_MSG, M_RS);
            break;
        case M_RS:
            if (field == 1) F(K_MSG, M_RES);
            else if (field == 2) F(K_MSG, M_SS);
            else if (field == 3) F(K_STRING, 0);
            break;
        case M_RES:
            if (field == 1) F(K_MSG, M_KV);
            else if (field == 2) F(K_VARINT, 0);
            else if (field == 3) F(K_MSG, M_ENTITY);
            break;
        case M_ENTITY:
            if (field >= 1 && field <= 4) F(K_STRING, 0);
            break;
        case M_SS:
            if (field == 1) F(K_MSG, M_SCOPE);
            else if (field == 2) F(K_MSG, M_SPAN);
            else if (field == 3) F(K_STRING, 0);
            break;
        case M_SCOPE:
            if (field == 1 || field == 2) F(K_STRING, 0);
            else if (field == 3) F(K_MSG, M_KV);
            else if (field == 4) F(K_VARINT, 0);
            break;
        case M_SPAN:
            switch (field) {
                case 1: case 2: case 4: F(K_BYTES, 0); break;
                case 3: case 5: F(K_STRING, 0); break;
                case 6: case 10: case 12: case 14: F(K_VARINT, 0); break;
                case 7: case 8: F(K_FIXED64, 0); break;
                case 9: F(K_MSG, M_KV); break;
                case 11: F(K_MSG, M_EVENT); break;
                case 13: F(K_MSG, M_LINK); break;
                case 15: F(K_MSG, M_STATUS); break;
                case 16: F(K_FIXED32, 0); break;
            }
            break;
        case M_EVENT:
            if (field == 1) F(K_FIXED64, 0);
            else if (field == 2) F(K_STRING, 0);
            else if (field == 3) F(K_MSG, M_KV);
            else if (field == 4) F(K_VARINT, 0);
            break;
        case M_LINK:
            switch (field) {
                case 1: case 2: F(K_BYTES, 0); break;
                case 3: F(K_STRING, 0); break;
                case 4: F(K_MSG, M_KV); break;
                case 5: F(K_VARINT, 0); break;
                case 6: F(K_FIXED32, 0); break;
            }
            break;
        case M_STATUS:
            if (field == 2) F(K_STRING, 0);
            else if (field == 3) F(K_VARINT, 0);
            break;
        case M_KV:
            if (field == 1) F(K_STRING, 0);
            else if (field == 2) F(K_MSG, M_AV);
            else if (field == 3 && strindex) F(K_VARINT, 0);
            break;
        case M_AV:
            switch (field) {
                case 1: F(K_STRING, 0); break;
                case 2: case 3: F(K_VARINT, 0); break;
                case 4: F(K_FIXED64, 0); break;
                case 5: F(K_MSG, M_ARR); break;
                case 6: F(K_MSG, M_KVL); break;
                case 7: F(K_BYTES, 0); break;
                case 8: if (strindex) F(K_VARINT, 0); break;
            }
            break;
        case M_ARR:
            if (field == 1) F(K_MSG, M_AV);
            break;
        case M_KVL:
            if (field == 1) F(K_MSG, M_KV);
            break;
    }
#undef F
    return d;
}

static int wire_type_of(int kind) {
    switch (kind) {
        case K_VARINT: return 0;
        case K_FIXED64: return 1;
        case K_FIXED32: return 5;
        case K_BYTES: case K_STRING: case K_MSG: return 2;
    }
    return -1;
}

/* `field_of` and `wire_type_of` of every message's fields 1-16 (every declared field of the schema; a
 * higher number is unknown), with and without `strindex`, tabled once at import: the validating walk
 * looks each field up here instead of through two switches, ~225 fields a bench span. With the
 * one-byte tag/length/varint paths below and `next_field`'s inline one, parse_request went from 25.5k
 * to 21.3k instructions a span, decode_payload 119.6k -> 115.4k (hotpaths.py --callgrind-run, 3 - 0
 * passes). Written only by `fill_schema_table` in the module's init, read-only after. */
#define TABLE_FIELDS 17
#define TABLE_MSGS (M_ENTITY + 1)
typedef struct {
    uint8_t kind, sub;
    int8_t wt; /* the declared wire type (-1: unknown field) */
} table_entry;
static table_entry schema_table[2][TABLE_MSGS][TABLE_FIELDS];

/* 0, or -1 (an ImportError set) when `field_of` declares a field the table cannot hold. */
static int fill_schema_table(void) {
    for (int strindex = 0; strindex < 2; strindex++)
        for (int msg = 0; msg < TABLE_MSGS; msg++) {
            for (uint32_t field = 0; field < TABLE_FIELDS; field++) {
                fdesc d = msg == M_NONE || field == 0 ? (fdesc){K_UNKNOWN, M_NONE} : field_of(msg, field, strindex);
                schema_table[strindex][msg][field] = (table_entry){(uint8_t)d.kind, (uint8_t)d.sub, (int8_t)wire_type_of(d.kind)};
            }
            for (uint32_t field = TABLE_FIELDS; field < 1024; field++)
                if (msg != M_NONE && field_of(msg, field, strindex).kind != K_UNKNOWN) {
                    PyErr_SetString(PyExc_ImportError, "_otlp_native: a declared field above TABLE_FIELDS");
                    return -1;
                }
        }
    return 0;
}

/* A field's description, K_UNKNOWN when sent with another wire type than declared (as upb takes it). */
static inline fdesc field_as_sent(int msg, uint32_t field, int wt, int strindex) {
    if (field >= TABLE_FIELDS) return (fdesc){K_UNKNOWN, M_NONE};
    table_entry e = schema_table[strindex != 0][msg][field];
    if (e.wt != wt) return (fdesc){K_UNKNOWN, M_NONE};
    return (fdesc){e.kind, e.sub};
}

/* ------------------------------------------------------------------ wire primitives */

static inline const uint8_t *read_varint(const uint8_t *p, const uint8_t *end, uint64_t *out) {
    if (p < end && *p < 0x80) { /* one byte: most varints of a span (kinds, codes, small ints) */
        *out = *p;
        return p + 1;
    }
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end) return NULL;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return p;
        }
    }
    return NULL;
}

/* A tag: at most 5 bytes, a 32-bit value. Field number 0 is refused in a message, as upb refuses it,
 * but read inside a group's skipped contents (`in_group`), where upb's group skipper takes any tag
 * but a foreign end-group. */
static inline const uint8_t *read_tag(const uint8_t *p, const uint8_t *end, uint32_t *field, int *wt, int in_group) {
    if (p < end && *p < 0x80) { /* one byte: every field numbered below 16 */
        if ((*p >> 3) == 0 && !in_group) return NULL;
        *field = (uint32_t)(*p >> 3);
        *wt = *p & 7;
        return p + 1;
    }
    uint64_t v = 0;
    for (int i = 0; i < 5; i++) {
        if (p >= end) return NULL;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (v > 0xFFFFFFFFu || ((v >> 3) == 0 && !in_group)) return NULL;
            *field = (uint32_t)(v >> 3);
            *wt = (int)(v & 7);
            return p;
        }
    }
    return NULL;
}

/* A length prefix: at most 5 bytes, within the buffer. */
static inline const uint8_t *read_size(const uint8_t *p, const uint8_t *end, size_t *size) {
    if (p < end && *p < 0x80) { /* one byte: lengths below 128 (keys, ids, short values, small messages) */
        if ((size_t)*p > (size_t)(end - p - 1)) return NULL;
        *size = *p;
        return p + 1;
    }
    uint64_t v = 0;
    for (int i = 0; i < 5; i++) {
        if (p >= end) return NULL;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (v >= 0x7FFFFFFFu || v > (uint64_t)(end - p)) return NULL;
            *size = (size_t)v;
            return p;
        }
    }
    return NULL;
}

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF), as upb and Python's decoder check it. */
static int utf8_ok(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i + 32 <= n) { /* ASCII 32 bytes at a time (content text is long and mostly ASCII) */
        uint64_t w[4];
        memcpy(w, s + i, 32);
        if ((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ull) break;
        i += 32;
    }
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n) return 0;
            uint8_t c1 = s[i + 1], c2 = s[i + 2];
            if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80) return 0;
            if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F)) return 0;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n) return 0;
            uint8_t c1 = s[i + 1], c2 = s[i + 2], c3 = s[i + 3];
            if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80) return 0;
            if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ phase 1: validate (no GIL) */

#define NO_GROUP UINT32_MAX /* above any 29-bit field number */

/* Walk the fields of a message of type `msg` (M_NONE: a group's unknown contents) in [p, end).
 * `group` is the field number of the enclosing group (NO_GROUP: a length-delimited message, which
 * must end exactly at `end`; a group may be numbered 0 inside another group). Returns the position after the message/group, or NULL with *err set. */
static const uint8_t *walk(const uint8_t *p, const uint8_t *end, int msg, int depth, uint32_t group, int strindex,
                           int *err) {
    while (p < end) {
        uint32_t field;
        int wt;
        p = read_tag(p, end, &field, &wt, msg == M_NONE);
        if (p == NULL) goto corrupt;
        fdesc d = field_as_sent(msg, field, wt, strindex);
        switch (wt) {
            case 0: {
                uint64_t v;
                p = read_varint(p, end, &v);
                if (p == NULL) goto corrupt;
                break;
            }
            case 1:
                if (end - p < 8) goto corrupt;
                p += 8;
                break;
            case 5:
                if (end - p < 4) goto corrupt;
                p += 4;
                break;
            case 2: {
                size_t size;
                p = read_size(p, end, &size);
                if (p == NULL) goto corrupt;
                if (d.kind == K_STRING) {
                    if (!utf8_ok(p, size)) {
                        *err = E_UTF8;
                        return NULL;
                    }
                } else if (d.kind == K_MSG) {
                    if (depth + 1 > MAX_DEPTH) {
                        *err = E_DEPTH;
                        return NULL;
                    }
                    if (walk(p, p + size, d.sub, depth + 1, NO_GROUP, strindex, err) == NULL) return NULL;
                }
                p += size;
                break;
            }
            case 3:
                if (depth + 1 > MAX_DEPTH) {
                    *err = E_DEPTH;
                    return NULL;
                }
                p = walk(p, end, M_NONE, depth + 1, field, strindex, err);
                if (p == NULL) return NULL;
                break;
            case 4:
                if (group != NO_GROUP && field == group) return p;
                goto corrupt;
            default:
                goto corrupt;
        }
    }
    if (group != NO_GROUP) goto corrupt; /* a group without its end */
    return p;
corrupt:
    *err = E_CORRUPT;
    return NULL;
}

/* ------------------------------------------------------------------ phase 2: build (GIL) */

typedef struct {
    uint32_t field;
    int wt;
    uint64_t v;         /* varint / fixed value */
    const uint8_t *data; /* length-delimited contents */
    size_t len;
} field_t;

static const uint8_t *next_field_in(const uint8_t *p, const uint8_t *end, field_t *f, int in_group);

static const uint8_t *skip_group(const uint8_t *p, const uint8_t *end, uint32_t group) {
    field_t f;
    while (p < end) {
        p = next_field_in(p, end, &f, 1);
        if (p == NULL) return NULL;
        if (f.wt == 4) return f.field == group ? p : NULL;
    }
    return NULL;
}

/* The next field of well-formed bytes (checked again: NULL if not). A group is skipped whole;
 * an end-group tag is returned as such (wt 4) for skip_group. */
static const uint8_t *next_field_in(const uint8_t *p, const uint8_t *end, field_t *f, int in_group) {
    p = read_tag(p, end, &f->field, &f->wt, in_group);
    if (p == NULL) return NULL;
    switch (f->wt) {
        case 0:
            return read_varint(p, end, &f->v);
        case 1:
            if (end - p < 8) return NULL;
            f->v = load64(p);
            return p + 8;
        case 5:
            if (end - p < 4) return NULL;
            f->v = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
            return p + 4;
        case 2:
            p = read_size(p, end, &f->len);
            if (p == NULL) return NULL;
            f->data = p;
            return p + f->len;
        case 3:
            return skip_group(p, end, f->field);
        case 4:
            return p;
    }
    return NULL;
}

/* `next_field_in` outside a group, inline for a one-byte tag of a length-delimited field shorter than
 * 128 bytes (keys, values, ids, names: most fields the build reads; the same checks). */
static inline const uint8_t *next_field(const uint8_t *p, const uint8_t *end, field_t *f) {
    if (end - p >= 2 && p[0] < 0x80 && (p[0] & 7) == 2 && (p[0] >> 3) != 0 && p[1] < 0x80) {
        if ((size_t)p[1] > (size_t)(end - p - 2)) return NULL;
        f->field = (uint32_t)(p[0] >> 3);
        f->wt = 2;
        f->len = p[1];
        f->data = p + 2;
        return p + 2 + p[1];
    }
    return next_field_in(p, end, f, 0);
}

static PyObject *malformed(void) {
    if (!PyErr_Occurred()) PyErr_SetString(DecodeError, "Wire format was corrupt");
    return NULL;
}

static PyObject *str_of(const uint8_t *data, size_t len) {
    if (len == 0) {
        Py_INCREF(s_empty_str);
        return s_empty_str;
    }
    return PyUnicode_DecodeUTF8((const char *)data, (Py_ssize_t)len, NULL);
}

/* Attribute keys repeat across spans (a few dozen names: gen_ai.*, http.*, ...): each distinct short
 * ASCII key is made into a str once and handed out again (its hash computed once, by the first dict
 * it goes into), instead of a new str per attribute per span that every attributes dict hashes.
 * Direct-mapped: a key landing on a slot held by another replaces it, so arbitrary keys keep this
 * per-process cache at KEY_SLOTS strs. Not interned: on Python 3.12 interned strs are immortal,
 * and keys are the client's. */
#define KEY_SLOTS 1024
#define KEY_MAX 64
/* The same for short string values (a span's operation, provider, model, tool and agent names, finish
 * reasons: the same few per deployment), in a table of their own so that values never unique to a span
 * (ids) cannot evict the keys: a repeated value is one str, hashed once for all the dicts and sets the
 * Python side looks it up in (the provider memo, the operation set), instead of a new str per span. */
#define VALUE_SLOTS 2048
#define VALUE_MAX 48
static PyObject *key_cache[KEY_SLOTS], *value_cache[VALUE_SLOTS];

static PyObject *cached_str(PyObject **cache, size_t slots, size_t max, const uint8_t *data, size_t len) {
    if (len == 0 || len > max) return str_of(data, len);
    uint64_t head = 0, tail = 0; /* the slot: from the length and the first and last 8 bytes (no loop) */
    memcpy(&head, data, len < 8 ? len : 8);
    if (len > 8) memcpy(&tail, data + len - 8, 8);
    uint64_t h = (head * 0x9E3779B97F4A7C15ull) ^ (tail * 0xC2B2AE3D27D4EB4Full) ^ len;
    PyObject **slot = &cache[(h ^ (h >> 29) ^ (h >> 47)) & (slots - 1)];
    PyObject *hit = *slot; /* cached keys are ASCII: their characters are their UTF-8 bytes */
    if (hit != NULL && (size_t)PyUnicode_GET_LENGTH(hit) == len && memcmp(PyUnicode_1BYTE_DATA(hit), data, len) == 0)
        return Py_NewRef(hit);
    PyObject *key = str_of(data, len);
    if (key == NULL || !PyUnicode_IS_ASCII(key)) return key;
    Py_XSETREF(*slot, Py_NewRef(key));
    return key;
}

static PyObject *key_of(const uint8_t *data, size_t len) { return cached_str(key_cache, KEY_SLOTS, KEY_MAX, data, len); }

static PyObject *text_of(const uint8_t *data, size_t len) {
    return cached_str(value_cache, VALUE_SLOTS, VALUE_MAX, data, len);
}

static PyObject *hex_of(const uint8_t *data, size_t len) {
    static const char digits[] = "0123456789abcdef";
    PyObject *out = PyUnicode_New((Py_ssize_t)(2 * len), 127);
    if (out == NULL) return NULL;
    Py_UCS1 *w = PyUnicode_1BYTE_DATA(out);
    for (size_t i = 0; i < len; i++) {
        w[2 * i] = digits[data[i] >> 4];
        w[2 * i + 1] = digits[data[i] & 15];
    }
    return out;
}

static PyObject *base64_of(const uint8_t *data, size_t len) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out_len = (len + 2) / 3 * 4;
    PyObject *out = PyUnicode_New((Py_ssize_t)out_len, 127);
    if (out == NULL) return NULL;
    Py_UCS1 *w = PyUnicode_1BYTE_DATA(out);
    size_t i = 0, j = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        w[j++] = alphabet[v >> 18];
        w[j++] = alphabet[(v >> 12) & 63];
        w[j++] = alphabet[(v >> 6) & 63];
        w[j++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        w[j++] = alphabet[v >> 18];
        w[j++] = alphabet[(v >> 12) & 63];
        w[j++] = '=';
        w[j++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        w[j++] = alphabet[v >> 18];
        w[j++] = alphabet[(v >> 12) & 63];
        w[j++] = alphabet[(v >> 6) & 63];
        w[j++] = '=';
    }
    return out;
}

typedef struct {
    int strindex;
    Py_ssize_t value_limit, name_limit, max_attrs; /* SpanLimits (0: none), for span_within */
    PyObject *kinds[N_KINDS], *codes[N_CODES];      /* the stored names (borrowed): out of range is the first */
} ctx_t;

/* An AnyValue being built from one or more encoded occurrences (merged as protobuf merges them). */
typedef struct {
    int which;      /* the oneof field number set last, 0 for none */
    PyObject *value; /* its Python value (owned), NULL for none */
} any_t;

static int fill_kvs(const ctx_t *ctx, PyObject *dict, const uint8_t *p, const uint8_t *end, uint32_t kv_field);
static int any_merge(const ctx_t *ctx, any_t *any, const uint8_t *p, const uint8_t *end);

static PyObject *double_value(uint64_t bits) {
    double d;
    memcpy(&d, &bits, 8);
    if (isfinite(d)) return PyFloat_FromDouble(d);
    PyObject *s = isnan(d) ? s_nan : d > 0 ? s_infinity : s_neg_infinity;
    Py_INCREF(s);
    return s;
}

static void any_set(any_t *any, int which, PyObject *value) {
    Py_XDECREF(any->value);
    any->which = which;
    any->value = value;
}

/* Apply one encoded AnyValue's fields to `any`. */
static int any_merge(const ctx_t *ctx, any_t *any, const uint8_t *p, const uint8_t *end) {
    field_t f;
    while (p < end) {
        p = next_field(p, end, &f);
        if (p == NULL) return (malformed(), -1);
        if (f.field < 1 || f.field > 8) continue;
        if (field_as_sent(M_AV, f.field, f.wt, ctx->strindex).kind == K_UNKNOWN) continue;
        PyObject *value;
        switch (f.field) {
            case 1: value = text_of(f.data, f.len); break;
            case 2: value = PyBool_FromLong(f.v != 0); break;
            case 3: value = PyLong_FromLongLong((long long)(int64_t)f.v); break;
            case 4: value = double_value(f.v); break;
            case 5:
                if (any->which != 5) {
                    value = PyList_New(0);
                    if (value == NULL) return -1;
                    any_set(any, 5, value);
                }
                {
                    const uint8_t *q = f.data, *qend = f.data + f.len;
                    field_t g;
                    while (q < qend) {
                        q = next_field(q, qend, &g);
                        if (q == NULL) return (malformed(), -1);
                        if (g.field != 1 || g.wt != 2) continue;
                        any_t item = {0, NULL};
                        if (any_merge(ctx, &item, g.data, g.data + g.len) < 0) {
                            Py_XDECREF(item.value);
                            return -1;
                        }
                        PyObject *v = item.value ? item.value : Py_NewRef(Py_None);
                        int rc = PyList_Append(any->value, v);
                        Py_DECREF(v);
                        if (rc < 0) return -1;
                    }
                }
                continue;
            case 6:
                if (any->which != 6) {
                    value = PyDict_New();
                    if (value == NULL) return -1;
                    any_set(any, 6, value);
                }
                if (fill_kvs(ctx, any->value, f.data, f.data + f.len, 1) < 0) return -1;
                continue;
            case 7: value = base64_of(f.data, f.len); break;
            default: value = Py_NewRef(Py_None); break; /* string_value_strindex: no value here */
        }
        if (value == NULL) return -1;
        any_set(any, (int)f.field, value);
    }
    return 0;
}

/* The usual KeyValue as its encoder writes it: the key, then an AnyValue holding one string or one
 * int (or nothing), each field once and nothing after. Read here without the field loops of `set_kv`
 * and `any_merge` (what they would make of the same bytes); 1: set, 0: not of this shape (nothing
 * done), -1: an error. With the batched attributes and the empty tuples below: set_kv 10.5k -> 8.3k
 * instructions a bench span (~12 attributes), parse_request 21.4k -> 19.4k, decode_payload 115.5k ->
 * 113.3k (hotpaths.py --callgrind-run, 3 - 0 passes). */
static int set_plain_kv(PyObject *dict, const uint8_t *p, const uint8_t *end) {
    size_t key_len, size, text_len;
    if (p >= end || *p != 0x0A || (p = read_size(p + 1, end, &key_len)) == NULL) return 0;
    const uint8_t *key = p, *q = p + key_len, *s;
    if (q >= end || *q != 0x12 || (q = read_size(q + 1, end, &size)) == NULL || q + size != end) return 0;
    PyObject *value;
    uint64_t v;
    if (size == 0) value = Py_NewRef(Py_None);
    else if (*q == 0x0A && (s = read_size(q + 1, end, &text_len)) != NULL && s + text_len == end) value = text_of(s, text_len);
    else if (*q == 0x18 && read_varint(q + 1, end, &v) == end) value = PyLong_FromLongLong((long long)(int64_t)v);
    else return 0;
    if (value == NULL) return -1;
    PyObject *k = key_of(key, key_len);
    int rc = k == NULL ? -1 : PyDict_SetItem(dict, k, value);
    Py_XDECREF(k);
    Py_DECREF(value);
    return rc < 0 ? -1 : 1;
}

/* KeyValue -> (key, value) set in `dict` (an absent value is None). */
static int set_kv(const ctx_t *ctx, PyObject *dict, const uint8_t *p, const uint8_t *end) {
    int plain = set_plain_kv(dict, p, end);
    if (plain != 0) return plain < 0 ? -1 : 0;
    const uint8_t *key = NULL;
    size_t key_len = 0;
    any_t any = {0, NULL};
    field_t f;
    while (p < end) {
        p = next_field(p, end, &f);
        if (p == NULL) goto fail;
        if (f.wt != 2) continue;
        if (f.field == 1) {
            key = f.data;
            key_len = f.len;
        } else if (f.field == 2) {
            if (any_merge(ctx, &any, f.data, f.data + f.len) < 0) goto error;
        }
    }
    PyObject *k = key_of(key, key_len);
    if (k == NULL) goto error;
    int rc = PyDict_SetItem(dict, k, any.value ? any.value : Py_None);
    Py_DECREF(k);
    Py_XDECREF(any.value);
    return rc;
fail:
    malformed();
error:
    Py_XDECREF(any.value);
    return -1;
}

/* Every `kv_field` KeyValue of a message into `dict`. */
static int fill_kvs(const ctx_t *ctx, PyObject *dict, const uint8_t *p, const uint8_t *end, uint32_t kv_field) {
    field_t f;
    while (p < end) {
        p = next_field(p, end, &f);
        if (p == NULL) return (malformed(), -1);
        if (f.field == kv_field && f.wt == 2 && set_kv(ctx, dict, f.data, f.data + f.len) < 0) return -1;
    }
    return 0;
}

static PyObject *build_event(const ctx_t *ctx, const uint8_t *p, const uint8_t *end) {
    uint64_t time = 0;
    const uint8_t *name = NULL;
    size_t name_len = 0;
    PyObject *attrs = PyDict_New(), *out = NULL, *t = NULL, *n = NULL;
    if (attrs == NULL) return NULL;
    field_t f;
    while (p < end) {
        p = next_field(p, end, &f);
        if (p == NULL) goto fail;
        if (f.field == 1 && f.wt == 1) time = f.v;
        else if (f.field == 2 && f.wt == 2) name = f.data, name_len = f.len;
        else if (f.field == 3 && f.wt == 2 && set_kv(ctx, attrs, f.data, f.data + f.len) < 0) goto error;
    }
    t = PyLong_FromUnsignedLongLong(time);
    n = str_of(name, name_len);
    out = PyDict_New();
    if (t == NULL || n == NULL || out == NULL) goto error;
    if (PyDict_SetItem(out, s_time_ns, t) < 0 || PyDict_SetItem(out, s_name, n) < 0 ||
        PyDict_SetItem(out, s_attributes, attrs) < 0)
        goto error;
    Py_DECREF(t);
    Py_DECREF(n);
    Py_DECREF(attrs);
    return out;
fail:
    malformed();
error:
    Py_XDECREF(t);
    Py_XDECREF(n);
    Py_XDECREF(out);
    Py_DECREF(attrs);
    return NULL;
}

static PyObject *build_link(const ctx_t *ctx, const uint8_t *p, const uint8_t *end) {
    const uint8_t *trace = NULL, *span = NULL;
    size_t trace_len = 0, span_len = 0;
    PyObject *attrs = PyDict_New(), *out = NULL, *t = NULL, *s = NULL;
    if (attrs == NULL) return NULL;
    field_t f;
    while (p < end) {
        p = next_field(p, end, &f);
        if (p == NULL) goto fail;
        if (f.wt != 2) continue;
        if (f.field == 1) trace = f.data, trace_len = f.len;
        else if (f.field == 2) span = f.data, span_len = f.len;
        else if (f.field == 4 && set_kv(ctx, attrs, f.data, f.data + f.len) < 0) goto error;
    }
    t = hex_of(trace, trace_len);
    s = hex_of(span, span_len);
    out = PyDict_New();
    if (t == NULL || s == NULL || out == NULL) goto error;
    if (PyDict_SetItem(out, s_trace_id, t) < 0 || PyDict_SetItem(out, s_span_id, s) < 0 ||
        PyDict_SetItem(out, s_attributes, attrs) < 0)
        goto error;
    Py_DECREF(t);
    Py_DECREF(s);
    Py_DECREF(attrs);
    return out;
fail:
    malformed();
error:
    Py_XDECREF(t);
    Py_XDECREF(s);
    Py_XDECREF(out);
    Py_DECREF(attrs);
    return NULL;
}

/* ------------------------------------------------------------------ span limits: the usual span

   Whether limits.limit_span leaves a span as it is (limits.within_limits, which the pure path runs:
   the same rules, on the same values): sent here per span so that decode.py skips that check, the
   part of limit_span that walks every attribute. */

#define MAX_TIME_NS 0x7FFFFFFFFFFFFFFFull
#define BOUND_CAP ((long long)1 << 60) /* limits._BOUND_CAP: a JSON bound saturates there (no sum overflows) */

/* limits._over of a str: more than `limit` bytes in UTF-8 (the length alone decides, mostly). */
static int str_over(PyObject *s, Py_ssize_t limit) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n * 4 <= limit) return 0;
    if (n > limit || PyUnicode_IS_ASCII(s)) return n > limit;
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    Py_ssize_t bytes = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    }
    return bytes > limit;
}

/* limits._json_bound: at least the length of the value's JSON (msgspec), from its shape alone. */
static long long json_bound(PyObject *v) {
    long long total;
    if (PyUnicode_CheckExact(v)) return 2 + 6 * (long long)PyUnicode_GET_LENGTH(v);
    if (v == Py_None) return 4;
    if (PyBool_Check(v)) return 5;
    if (PyFloat_CheckExact(v)) return 32;
    if (PyLong_CheckExact(v)) {
        int overflow;
        (void)PyLong_AsLongLongAndOverflow(v, &overflow);
        return overflow ? BOUND_CAP : 20;
    }
    if (PyList_CheckExact(v)) {
        total = 2;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v) && total < BOUND_CAP; i++)
            total += json_bound(PyList_GET_ITEM(v, i)) + 1;
        return total < BOUND_CAP ? total : BOUND_CAP;
    }
    if (PyDict_CheckExact(v)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        total = 2;
        while (total < BOUND_CAP && PyDict_Next(v, &pos, &key, &value))
            total += json_bound(key) + 1 + json_bound(value) + 1;
        return total < BOUND_CAP ? total : BOUND_CAP;
    }
    return BOUND_CAP;
}

static int span_within(const ctx_t *ctx, uint64_t start, uint64_t stop, int32_t kind, int32_t code, size_t name_len,
                       PyObject *attrs) {
    Py_ssize_t key_limit = ctx->name_limit, value_limit = ctx->value_limit;
    if (start > stop || stop > MAX_TIME_NS || kind < 0 || kind > 5 || code < 0 || code > 2) return 0;
    if (ctx->max_attrs != 0 && PyDict_GET_SIZE(attrs) > ctx->max_attrs) return 0;
    if (key_limit != 0 && (key_limit < 0 || name_len > (size_t)key_limit)) return 0;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(attrs, &pos, &key, &value)) {
        if (key_limit != 0 && str_over(key, key_limit)) return 0;
        if (value_limit == 0) continue;
        if (PyUnicode_CheckExact(value)) {
            if (str_over(value, value_limit)) return 0;
        } else if (PyList_CheckExact(value) || PyDict_CheckExact(value)) {
            if (json_bound(value) > value_limit) return 0;
        }
    }
    return 1;
}

typedef struct {
    const uint8_t *data;
    size_t len;
} slice_t;

static int nonzero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 1;
    return 0;
}

/* The stored span's id rule (storage.schema.valid_span_ids, its Python twin): 16 + 8 bytes, neither all zero. */
static int ids_valid(const uint8_t *trace, size_t trace_len, const uint8_t *span, size_t span_len) {
    return trace_len == 16 && span_len == 8 && nonzero(trace, 16) && nonzero(span, 8);
}

/* A parent span id: None when not sent or all zero (a root span), else hex. */
static PyObject *parent_of(const uint8_t *data, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (data[i]) return hex_of(data, len);
    Py_RETURN_NONE;
}

/* A tuple of `n` new references (NULL if any is NULL: the others released). */
static PyObject *tuple_of_new(Py_ssize_t n, PyObject **items) {
    PyObject *out = NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        if (items[i] == NULL) goto error;
    out = PyTuple_New(n);
    if (out == NULL) goto error;
    for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(out, i, items[i]);
    return out;
error:
    for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(items[i]);
    return NULL;
}

/* A span's attributes (KeyValue slices) read before its dict is made, so that the dict is made at its
 * size (no resize on the way: one or two a bench span). */
#define KV_BATCH 64
typedef struct {
    int count;
    slice_t kv[KV_BATCH];
} kv_batch_t;

/* The batch's KeyValues set in *attrs (made, at their count, if NULL); the batch emptied. */
static int flush_kvs(const ctx_t *ctx, PyObject **attrs, kv_batch_t *kvs) {
    if (*attrs == NULL && (*attrs = _PyDict_NewPresized(kvs->count)) == NULL) return -1;
    for (int i = 0; i < kvs->count; i++)
        if (set_kv(ctx, *attrs, kvs->kv[i].data, kvs->kv[i].data + kvs->kv[i].len) < 0) return -1;
    kvs->count = 0;
    return 0;
}

/* `item` (a new reference; NULL: an error) appended to *list, made at the first item. */
static int append_new(PyObject **list, PyObject *item) {
    if (item == NULL) return -1;
    int rc = *list == NULL && (*list = PyList_New(0)) == NULL ? -1 : PyList_Append(*list, item);
    Py_DECREF(item);
    return rc;
}

/* A time as stored (clamped to MAX_TIME_NS), and as sent (the same object when not clamped). */
static void time_pair(uint64_t sent, PyObject **stored, PyObject **as_sent) {
    *stored = PyLong_FromUnsignedLongLong(sent < MAX_TIME_NS ? sent : MAX_TIME_NS);
    *as_sent = sent <= MAX_TIME_NS ? Py_XNewRef(*stored) : PyLong_FromUnsignedLongLong(sent);
}

/* Span -> (head, attributes, events, events_sent, links, within_limits, ids_valid, kind, status_code,
 *          start_ns, end_ns) (processors/native.py), head being the stored row's first values:
 *          (trace_id, span_id, parent_span_id, trace_state or None, name, kind name, start, end, duration,
 *          status name, status_message or None); ids in hex, head's times clamped, the others as sent */
static PyObject *build_span(const ctx_t *ctx, const uint8_t *p, const uint8_t *end, Py_ssize_t max_events) {
    slice_t trace = {0}, span = {0}, parent = {0}, state = {0}, name = {0}, message = {0};
    int32_t kind = 0, code = 0;
    uint64_t start = 0, stop = 0;
    Py_ssize_t sent = 0;
    PyObject *attrs = NULL, *events = NULL, *links = NULL;
    kv_batch_t kvs;
    kvs.count = 0;
    field_t f;
    while (p < end) {
        p = next_field(p, end, &f);
        if (p == NULL) goto fail;
        switch (f.wt) {
            case 2:
                switch (f.field) {
                    case 1: trace = (slice_t){f.data, f.len}; break;
                    case 2: span = (slice_t){f.data, f.len}; break;
                    case 3: state = (slice_t){f.data, f.len}; break;
                    case 4: parent = (slice_t){f.data, f.len}; break;
                    case 5: name = (slice_t){f.data, f.len}; break;
                    case 9:
                        if (kvs.count == KV_BATCH && flush_kvs(ctx, &attrs, &kvs) < 0) goto error;
                        kvs.kv[kvs.count++] = (slice_t){f.data, f.len};
                        break;
                    case 11:
                        sent++;
                        if ((max_events <= 0 || sent <= max_events) &&
                            append_new(&events, build_event(ctx, f.data, f.data + f.len)) < 0)
                            goto error;
                        break;
                    case 13:
                        if (append_new(&links, build_link(ctx, f.data, f.data + f.len)) < 0) goto error;
                        break;
                    case 15: { /* Status, merged field by field */
                        const uint8_t *q = f.data, *qend = f.data + f.len;
                        field_t g;
                        while (q < qend) {
                            q = next_field(q, qend, &g);
                            if (q == NULL) goto fail;
                            if (g.field == 2 && g.wt == 2) message = (slice_t){g.data, g.len};
                            else if (g.field == 3 && g.wt == 0) code = (int32_t)(uint32_t)g.v;
                        }
                        break;
                    }
                }
                break;
            case 0:
                if (f.field == 6) kind = (int32_t)(uint32_t)f.v;
                break;
            case 1:
                if (f.field == 7) start = f.v;
                else if (f.field == 8) stop = f.v;
                break;
        }
    }
    if (flush_kvs(ctx, &attrs, &kvs) < 0) goto error;
    if (events == NULL) events = PyTuple_New(0); /* (the empty tuple: no list made and torn down per span) */
    if (links == NULL) links = PyTuple_New(0);
    if (events == NULL || links == NULL) goto error;
    PyObject *within = span_within(ctx, start, stop, kind, code, name.len, attrs) ? Py_True : Py_False;
    PyObject *valid = ids_valid(trace.data, trace.len, span.data, span.len) ? Py_True : Py_False;
    uint64_t first = start < MAX_TIME_NS ? start : MAX_TIME_NS, last = stop < MAX_TIME_NS ? stop : MAX_TIME_NS;
    PyObject *stored_start, *sent_start, *stored_end, *sent_end;
    time_pair(start, &stored_start, &sent_start);
    time_pair(stop, &stored_end, &sent_end);
    PyObject *head_items[11] = {
        hex_of(trace.data, trace.len),
        hex_of(span.data, span.len),
        parent_of(parent.data, parent.len),
        state.len ? str_of(state.data, state.len) : Py_NewRef(Py_None),
        text_of(name.data, name.len),
        Py_NewRef(ctx->kinds[kind >= 0 && kind < N_KINDS ? kind : 0]),
        stored_start,
        stored_end,
        PyLong_FromUnsignedLongLong(last > first ? last - first : 0),
        Py_NewRef(ctx->codes[code >= 0 && code < N_CODES ? code : 0]),
        message.len ? str_of(message.data, message.len) : Py_NewRef(Py_None),
    };
    PyObject *head = tuple_of_new(11, head_items);
    if (head != NULL) PyObject_GC_UnTrack(head); /* str, int and None only: nothing for a collection to visit */
    PyObject *items[11] = {
        head,
        attrs,
        events,
        PyLong_FromSsize_t(sent),
        links,
        Py_NewRef(within),
        Py_NewRef(valid),
        PyLong_FromLong(kind),
        PyLong_FromLong(code),
        sent_start,
        sent_end,
    };
    return tuple_of_new(11, items);
fail:
    malformed();
error:
    Py_XDECREF(attrs);
    Py_XDECREF(events);
    Py_XDECREF(links);
    return NULL;
}

/* ScopeSpans -> (scope_name, scope_version, [span, ...]) */
static PyObject *build_scope_spans(const ctx_t *ctx, const uint8_t *p, const uint8_t *end, Py_ssize_t max_events,
                                   PyObject *carrier) {
    slice_t name = {0}, version = {0};
    field_t f, g;
    for (const uint8_t *q = p; q < end;) { /* the scope first (wherever it is sent), merged */
        q = next_field(q, end, &f);
        if (q == NULL) return malformed();
        if (f.field != 1 || f.wt != 2) continue;
        for (const uint8_t *r = f.data, *rend = f.data + f.len; r < rend;) {
            r = next_field(r, rend, &g);
            if (r == NULL) return malformed();
            if (g.wt != 2) continue;
            if (g.field == 1) name = (slice_t){g.data, g.len};
            else if (g.field == 2) version = (slice_t){g.data, g.len};
        }
    }
    PyObject *n = str_of(name.data, name.len), *v = str_of(version.data, version.len), *spans = PyList_New(0);
    if (n == NULL || v == NULL || spans == NULL) goto error;
    int is_carrier = PyUnicode_Compare(n, carrier) == 0;
    if (is_carrier) max_events = 0; /* a carrier's events are all scores: none dropped */
    while (p < end) {
        p = next_field(p, end, &f);
        if (p == NULL) {
            malformed();
            goto error;
        }
        if (f.field != 2 || f.wt != 2) continue;
        PyObject *span = build_span(ctx, f.data, f.data + f.len, max_events);
        if (span == NULL) goto error;
        int rc = PyList_Append(spans, span);
        Py_DECREF(span);
        if (rc < 0) goto error;
    }
    return Py_BuildValue("(NNN)", n, v, spans);
error:
    Py_XDECREF(n);
    Py_XDECREF(v);
    Py_XDECREF(spans);
    return NULL;
}

/* ResourceSpans -> (resource_attributes, [scope_spans, ...]) */
static PyObject *build_resource_spans(const ctx_t *ctx, const uint8_t *p, const uint8_t *end, Py_ssize_t max_events,
                                      PyObject *carrier) {
    PyObject *attrs = PyDict_New(), *scopes = PyList_New(0);
    if (attrs == NULL || scopes == NULL) goto error;
    field_t f;
    for (const uint8_t *q = p; q < end;) {
        q = next_field(q, end, &f);
        if (q == NULL) {
            malformed();
            goto error;
        }
        if (f.field == 1 && f.wt == 2 && fill_kvs(ctx, attrs, f.data, f.data + f.len, 1) < 0) goto error;
    }
    while (p < end) {
        p = next_field(p, end, &f);
        if (p == NULL) {
            malformed();
            goto error;
        }
        if (f.field != 2 || f.wt != 2) continue;
        PyObject *scope = build_scope_spans(ctx, f.data, f.data + f.len, max_events, carrier);
        if (scope == NULL) goto error;
        int rc = PyList_Append(scopes, scope);
        Py_DECREF(scope);
        if (rc < 0) goto error;
    }
    return Py_BuildValue("(NN)", attrs, scopes);
error:
    Py_XDECREF(attrs);
    Py_XDECREF(scopes);
    return NULL;
}

static const char *error_text(int err) {
    switch (err) {
        case E_UTF8: return "String field had bad UTF-8";
        case E_DEPTH: return "Exceeded upb_DecodeOptions_MaxDepth";
    }
    return "Wire format was corrupt";
}

static PyObject *parse_request(PyObject *self, PyObject *args) {
    PyObject *payload, *carrier, *kinds, *codes;
    Py_ssize_t max_events;
    int strindex;
    ctx_t ctx;
    if (!PyArg_ParseTuple(args, "SnUpnnnO!O!:parse_request", &payload, &max_events, &carrier, &strindex, &ctx.value_limit,
                          &ctx.name_limit, &ctx.max_attrs, &PyTuple_Type, &kinds, &PyTuple_Type, &codes))
        return NULL;
    if (PyTuple_GET_SIZE(kinds) != N_KINDS || PyTuple_GET_SIZE(codes) != N_CODES) {
        PyErr_SetString(PyExc_ValueError, "parse_request: 6 span kind names and 3 status code names");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < N_KINDS + N_CODES; i++) {
        PyObject *name = i < N_KINDS ? PyTuple_GET_ITEM(kinds, i) : PyTuple_GET_ITEM(codes, i - N_KINDS);
        if (!PyUnicode_CheckExact(name)) {
            PyErr_SetString(PyExc_TypeError, "parse_request: the kind and status names must be str");
            return NULL;
        }
        if (i < N_KINDS) ctx.kinds[i] = name;
        else ctx.codes[i - N_KINDS] = name;
    }
    ctx.strindex = strindex;
    const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(payload);
    const uint8_t *end = p + PyBytes_GET_SIZE(payload);
    int err = E_OK;
    Py_BEGIN_ALLOW_THREADS
    if (walk(p, end, M_REQ, 0, NO_GROUP, strindex, &err) == NULL && err == E_OK) err = E_CORRUPT;
    Py_END_ALLOW_THREADS
    if (err != E_OK) {
        PyErr_SetString(DecodeError, error_text(err));
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    field_t f;
    while (p < end) {
        p = next_field(p, end, &f);
        if (p == NULL) {
            Py_DECREF(out);
            return malformed();
        }
        if (f.field != 1 || f.wt != 2) continue;
        PyObject *rs = build_resource_spans(&ctx, f.data, f.data + f.len, max_events, carrier);
        if (rs == NULL || PyList_Append(out, rs) < 0) {
            Py_XDECREF(rs);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(rs);
    }
    return out;
}

static PyObject *validate_only(PyObject *self, PyObject *args) {
    PyObject *payload;
    int strindex;
    if (!PyArg_ParseTuple(args, "Sp:validate", &payload, &strindex)) return NULL;
    const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(payload);
    const uint8_t *end = p + PyBytes_GET_SIZE(payload);
    int err = E_OK;
    Py_BEGIN_ALLOW_THREADS
    if (walk(p, end, M_REQ, 0, NO_GROUP, strindex, &err) == NULL && err == E_OK) err = E_CORRUPT;
    Py_END_ALLOW_THREADS
    if (err != E_OK) {
        PyErr_SetString(DecodeError, error_text(err));
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ the receiver's id check */

typedef struct {
    Py_ssize_t accepted, rejected;
    Py_ssize_t names, max_names; /* rejected spans whose names are kept, and how many may be (the caller's) */
    const uint8_t **name;        /* max_names of each, allocated by the caller while it holds the GIL */
    size_t *name_len;
} id_count_t;

/* One span's ids (the last of each field, as protobuf keeps it) against decode.py's rule: a 16-byte
 * trace id and an 8-byte span id, neither all zero. Bytes already checked by `walk`. */
static int count_span(const uint8_t *p, const uint8_t *end, id_count_t *c) {
    const uint8_t *trace = NULL, *span = NULL, *name = NULL;
    size_t trace_len = 0, span_len = 0, name_len = 0;
    field_t f;
    while (p < end) {
        p = next_field(p, end, &f);
        if (p == NULL) return -1;
        if (f.wt != 2) continue;
        if (f.field == 1) trace = f.data, trace_len = f.len;
        else if (f.field == 2) span = f.data, span_len = f.len;
        else if (f.field == 5) name = f.data, name_len = f.len;
    }
    if (ids_valid(trace, trace_len, span, span_len)) {
        c->accepted++;
        return 0;
    }
    if (c->names < c->max_names) {
        c->name[c->names] = name;
        c->name_len[c->names++] = name_len;
    }
    c->rejected++;
    return 0;
}

/* Every span of a request (`msg` M_REQ), or of a resource's or scope's part of it, counted. */
static int count_ids(const uint8_t *p, const uint8_t *end, int msg, id_count_t *c) {
    field_t f;
    while (p < end) {
        p = next_field(p, end, &f);
        if (p == NULL) return -1;
        if (f.wt != 2) continue;
        int r = 0;
        if (msg == M_REQ && f.field == 1) r = count_ids(f.data, f.data + f.len, M_RS, c);
        else if (msg == M_RS && f.field == 2) r = count_ids(f.data, f.data + f.len, M_SS, c);
        else if (msg == M_SS && f.field == 2) r = count_span(f.data, f.data + f.len, c);
        if (r < 0) return -1;
    }
    return 0;
}

/* (accepted, rejected, [the kept names, each cut to name_chars characters]) of a counted request. */
static PyObject *id_result(const id_count_t *c, Py_ssize_t name_chars) {
    PyObject *names = PyList_New(c->names);
    if (names == NULL) return NULL;
    for (Py_ssize_t i = 0; i < c->names; i++) {
        PyObject *whole = str_of(c->name[i], c->name_len[i]);
        PyObject *cut = whole == NULL ? NULL : PyUnicode_Substring(whole, 0, name_chars);
        Py_XDECREF(whole);
        if (cut == NULL) {
            Py_DECREF(names);
            return NULL;
        }
        PyList_SET_ITEM(names, i, cut);
    }
    return Py_BuildValue("nnN", c->accepted, c->rejected, names);
}

static PyObject *check_ids(PyObject *self, PyObject *args) {
    PyObject *payload;
    int strindex;
    Py_ssize_t max_names, name_chars;
    if (!PyArg_ParseTuple(args, "Spnn:check_ids", &payload, &strindex, &max_names, &name_chars)) return NULL;
    if (max_names < 0 || max_names > 4096 || name_chars < 0) {
        PyErr_SetString(PyExc_ValueError, "check_ids: names must be 0 to 4096 and name_chars at least 0");
        return NULL;
    }
    const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(payload);
    const uint8_t *end = p + PyBytes_GET_SIZE(payload);
    int err = E_OK, counted = 0;
    id_count_t c = {0};
    c.max_names = max_names;
    c.name = PyMem_Malloc(sizeof(*c.name) * (size_t)(max_names ? max_names : 1));
    c.name_len = PyMem_Malloc(sizeof(*c.name_len) * (size_t)(max_names ? max_names : 1));
    if (c.name == NULL || c.name_len == NULL) {
        PyMem_Free(c.name);
        PyMem_Free(c.name_len);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    if (walk(p, end, M_REQ, 0, NO_GROUP, strindex, &err) == NULL && err == E_OK) err = E_CORRUPT;
    if (err == E_OK) counted = count_ids(p, end, M_REQ, &c);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (err != E_OK) PyErr_SetString(DecodeError, error_text(err));
    else if (counted < 0) malformed();
    else result = id_result(&c, name_chars);
    PyMem_Free(c.name);
    PyMem_Free(c.name_len);
    return result;
}

static PyMethodDef methods[] = {
    {"parse_request", parse_request, METH_VARARGS,
     "parse_request(payload: bytes, max_events: int, carrier_scope: str, strindex: bool, max_value_bytes: int, "
     "max_name_bytes: int, max_attributes: int, kind_names: tuple[str, ...], status_names: tuple[str, ...]) -> list of "
     "(resource_attributes, [(scope_name, scope_version, [span, ...]), ...]); see processors/native.py."},
    {"check_ids", check_ids, METH_VARARGS,
     "check_ids(payload: bytes, strindex: bool, names: int, name_chars: int) -> (accepted, rejected, names): the wire checks "
     "(as validate) and the spans' id rule, with the GIL released; `names`: the first rejected spans' names, cut "
     "to name_chars characters. Raises DecodeError."},
    {"validate", validate_only, METH_VARARGS,
     "validate(payload: bytes, strindex: bool): the wire checks alone (GIL released); raises DecodeError."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_otlp_native",
                                    "OTLP trace request wire bytes -> decode.py's values (see processors/native.py).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__otlp_native(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    DecodeError = PyErr_NewException("llmscope_collector.processors._otlp_native.DecodeError", PyExc_ValueError, NULL);
    if (DecodeError == NULL || PyModule_AddObject(m, "DecodeError", Py_NewRef(DecodeError)) < 0) return NULL;
    /* native.py's _FORMAT: the functions and the shape of their arguments and values (3: check_ids,
     * 4: check_ids takes how many names to keep, 5: a span's stored head, parse_request takes the names,
     * 6: a span's events and links the empty tuple when it has none) */
    if (PyModule_AddIntConstant(m, "FORMAT", 6) < 0) return NULL;
    if (fill_schema_table() < 0) {
        Py_DECREF(m);
        return NULL;
    }
    s_time_ns = PyUnicode_InternFromString("time_ns");
    s_name = PyUnicode_InternFromString("name");
    s_attributes = PyUnicode_InternFromString("attributes");
    s_trace_id = PyUnicode_InternFromString("trace_id");
    s_span_id = PyUnicode_InternFromString("span_id");
    s_empty_str = PyUnicode_FromStringAndSize("", 0);
    s_infinity = PyUnicode_InternFromString("Infinity");
    s_neg_infinity = PyUnicode_InternFromString("-Infinity");
    s_nan = PyUnicode_InternFromString("NaN");
    if (!s_time_ns || !s_name || !s_attributes || !s_trace_id || !s_span_id || !s_empty_str || !s_infinity ||
        !s_neg_infinity || !s_nan)
        return NULL;
    return m;
}
