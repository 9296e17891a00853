/* Python column lists -> one Arrow struct array, handed to pyarrow through the Arrow C Data Interface
 * (optional; see arrow_native.py).
 *
 * `columns(cols, kinds)` takes equal-length lists of plain Python values and one type code per list:
 *   's' string, 'l' int64, 'i' int32, 'b' bool, 'd' float64, 'S' list<string>,
 *   'R' list<struct<string, string, string, int64>> (items given as 4-tuples),
 *   'D' decimal128(18, 12) (from `decimal.Decimal`, or an int counting units of 1e-12: `DECIMAL_SCALE`),
 *   'M' map<string, string> (lists of (key, value) tuples),
 * and returns a PyCapsule "arrow_array" holding a struct array ("+s") with one child per list and the
 * struct's address (for `pa.RecordBatch._import_from_c`, which takes a pyarrow schema: no schema to
 * export and parse again per call), or None
 * for anything it does not convert exactly as `pa.array(values, type=...)` does (a 'D' column's ints as
 * `schema.cost_decimal` makes them Decimals, as the caller's pyarrow path does): a value of another
 * Python type than the code's (bool for int64, int for float64, bytes for string, a tuple for a list...),
 * an int outside int64 (int32 for 'i'), a string UTF-8 cannot encode (a lone surrogate), lists of unequal lengths,
 * a Decimal pyarrow would refuse or that this does not decide (`decimal_units`), a map entry holding None,
 * over 2 GiB of string bytes in one column. None sends the caller to pyarrow's conversion, which decides
 * (it raises where this answered None for a value Arrow cannot hold): this module only ever saves work.
 * None (and a null struct's fields) are nulls, as pyarrow makes them; a null struct's children hold ""
 * and 0, as pyarrow's builder leaves them.
 *
 * Each node of the array owns its buffers and its children (`Node`); the capsule's destructor releases
 * the tree unless pyarrow took it (the release callback is then pyarrow's to call, once).
 *
 * `run_distinct` (below) serves the flush thread's trace deltas: each run's distinct codes, one pass.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The Arrow C Data Interface's array struct (https://arrow.apache.org/docs/format/CDataInterface.html). */
struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};

static const char REF_KINDS[] = "sssl"; /* a content ref: kind, source, hash, bytes */
static const char ENTRY_KINDS[] = "ss";  /* a map entry: key, value */
#define FIELDS(kinds) ((int)sizeof(kinds) - 1) /* a struct's children: one per code of its kinds */

/* What a node owns: up to three buffers and its children (each allocated, released with it). */
typedef struct {
    void *buffers[3];
    struct ArrowArray **children;
} Node;

static void release_node(struct ArrowArray *array) {
    Node *node = (Node *)array->private_data;
    for (int64_t i = 0; i < array->n_children; i++) {
        struct ArrowArray *child = node->children[i];
        if (child == NULL) continue;
        if (child->release != NULL) child->release(child);
        free(child);
    }
    for (int i = 0; i < 3; i++) free(node->buffers[i]);
    free(node->children);
    free(node);
    array->release = NULL;
}

/* A node of `length` values with `n_buffers` buffers (all NULL) and room for `n_children` children. */
static struct ArrowArray *node_new(int64_t length, int64_t n_buffers, int64_t n_children) {
    struct ArrowArray *array = calloc(1, sizeof(struct ArrowArray));
    Node *node = calloc(1, sizeof(Node));
    struct ArrowArray **children = calloc(n_children > 0 ? (size_t)n_children : 1, sizeof(struct ArrowArray *));
    if (array == NULL || node == NULL || children == NULL) {
        free(array);
        free(node);
        free(children);
        return NULL;
    }
    node->children = children;
    array->length = length;
    array->n_buffers = n_buffers;
    array->n_children = n_children;
    array->buffers = (const void **)node->buffers;
    array->children = children;
    array->release = release_node;
    array->private_data = node;
    return array;
}

static void node_free(struct ArrowArray *array) {
    if (array == NULL) return;
    if (array->release != NULL) array->release(array);
    free(array);
}

/* Buffer `i` of `array`: `bytes` zeroed bytes. */
static void *node_buffer(struct ArrowArray *array, int i, size_t bytes) {
    Node *node = (Node *)array->private_data;
    node->buffers[i] = calloc(bytes > 0 ? bytes : 1, 1);
    return node->buffers[i];
}

/* The validity bitmap of `items` (NULL or None: null), buffer 0 of `array`; dropped when nothing is null. */
static int validity(struct ArrowArray *array, PyObject *const *items, Py_ssize_t n) {
    uint8_t *bits = node_buffer(array, 0, ((size_t)n + 7) / 8);
    if (bits == NULL) return -1;
    int64_t nulls = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (items[i] == NULL || items[i] == Py_None)
            nulls++;
        else
            bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
    array->null_count = nulls;
    if (nulls == 0) {
        Node *node = (Node *)array->private_data;
        free(node->buffers[0]);
        node->buffers[0] = NULL;
    }
    return 0;
}

static int is_null(PyObject *item) { return item == NULL || item == Py_None; }

/* A string column: validity, int32 offsets, UTF-8 bytes. */
static int fill_strings(struct ArrowArray *array, PyObject *const *items, Py_ssize_t n) {
    int32_t *offsets = node_buffer(array, 1, ((size_t)n + 1) * sizeof(int32_t));
    if (offsets == NULL) return -1;
    size_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) { /* sizes first: one allocation of the data */
        PyObject *item = items[i];
        if (is_null(item)) continue;
        if (!PyUnicode_CheckExact(item)) return -1;
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(item) < 0) return -1; /* (a legacy string made by the old C API) */
#endif
        /* UTF-8 bytes per code point: 1 (ASCII), at most 2 (Latin-1), 3 (BMP) or 4; trimmed below */
        int per_char = PyUnicode_IS_COMPACT_ASCII(item) ? 1 : (int)PyUnicode_KIND(item) + 1;
        total += (size_t)PyUnicode_GET_LENGTH(item) * (size_t)(per_char > 4 ? 4 : per_char);
    }
    Node *node = (Node *)array->private_data;
    char *data = node->buffers[2] = malloc(total > 0 ? total : 1); /* (written before it is read) */
    if (data == NULL) return -1;
    size_t pos = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        offsets[i] = (int32_t)pos;
        if (is_null(item)) continue;
        if (PyUnicode_IS_COMPACT_ASCII(item)) {
            size_t len = (size_t)PyUnicode_GET_LENGTH(item);
            memcpy(data + pos, PyUnicode_DATA(item), len);
            pos += len;
        } else { /* encoded apart (no UTF-8 copy cached on the string): a lone surrogate fails here */
            PyObject *utf8 = PyUnicode_AsUTF8String(item);
            if (utf8 == NULL) return -1;
            size_t len = (size_t)PyBytes_GET_SIZE(utf8);
            memcpy(data + pos, PyBytes_AS_STRING(utf8), len);
            Py_DECREF(utf8);
            pos += len;
        }
        if (pos > INT32_MAX) return -1; /* pyarrow makes a chunked array: its path decides */
    }
    offsets[n] = (int32_t)pos;
    if (pos < total) { /* a non-ASCII string took less than its bound: give the rest back */
        char *trimmed = realloc(data, pos > 0 ? pos : 1);
        if (trimmed != NULL) node->buffers[2] = trimmed;
    }
    return validity(array, items, n);
}

static int fill_int64(struct ArrowArray *array, PyObject *const *items, Py_ssize_t n) {
    int64_t *values = node_buffer(array, 1, (size_t)n * sizeof(int64_t));
    if (values == NULL) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        if (is_null(item)) continue;
        if (!PyLong_CheckExact(item)) return -1; /* (bool too: pyarrow refuses it) */
        int overflow = 0;
        long long value = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (overflow != 0 || (value == -1 && PyErr_Occurred())) return -1;
        values[i] = (int64_t)value;
    }
    return validity(array, items, n);
}

/* An int32 column (a preview candidate's row): an int outside int32 is pyarrow's to refuse. */
static int fill_int32(struct ArrowArray *array, PyObject *const *items, Py_ssize_t n) {
    int32_t *values = node_buffer(array, 1, (size_t)n * sizeof(int32_t));
    if (values == NULL) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        if (is_null(item)) continue;
        if (!PyLong_CheckExact(item)) return -1;
        long value = PyLong_AsLong(item);
        if (value == -1 && PyErr_Occurred()) return -1;
        if (value < INT32_MIN || value > INT32_MAX) return -1;
        values[i] = (int32_t)value;
    }
    return validity(array, items, n);
}

static int fill_bool(struct ArrowArray *array, PyObject *const *items, Py_ssize_t n) {
    uint8_t *bits = node_buffer(array, 1, ((size_t)n + 7) / 8);
    if (bits == NULL) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        if (is_null(item) || item == Py_False) continue;
        if (item != Py_True) return -1;
        bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
    return validity(array, items, n);
}

static int fill_double(struct ArrowArray *array, PyObject *const *items, Py_ssize_t n) {
    double *values = node_buffer(array, 1, (size_t)n * sizeof(double));
    if (values == NULL) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        if (is_null(item)) continue;
        if (!PyFloat_CheckExact(item)) return -1;
        values[i] = PyFloat_AS_DOUBLE(item);
    }
    return validity(array, items, n);
}

static struct ArrowArray *build(char kind, PyObject *const *items, Py_ssize_t n);

/* The elements of `items`' lists, one after another (borrowed: the lists hold them), and the offsets. */
static PyObject **flatten(struct ArrowArray *array, PyObject *const *items, Py_ssize_t n, Py_ssize_t *count) {
    int32_t *offsets = node_buffer(array, 1, ((size_t)n + 1) * sizeof(int32_t));
    if (offsets == NULL) return NULL;
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        offsets[i] = (int32_t)total;
        if (is_null(item)) continue;
        if (!PyList_CheckExact(item)) return NULL;
        total += PyList_GET_SIZE(item);
        if (total > INT32_MAX) return NULL;
    }
    offsets[n] = (int32_t)total;
    PyObject **flat = malloc((total > 0 ? (size_t)total : 1) * sizeof(PyObject *));
    if (flat == NULL) return NULL;
    Py_ssize_t pos = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (is_null(items[i])) continue;
        Py_ssize_t size = PyList_GET_SIZE(items[i]);
        memcpy(flat + pos, PySequence_Fast_ITEMS(items[i]), (size_t)size * sizeof(PyObject *));
        pos += size;
    }
    *count = total;
    return flat;
}

/* A list column whose elements are of `element` kind ('s': strings, 'r': content-ref tuples, 'm': a map's
 * (key, value) tuples: a map is a list of entries). */
static int fill_list(struct ArrowArray *array, PyObject *const *items, Py_ssize_t n, char element) {
    Py_ssize_t count = 0;
    PyObject **flat = flatten(array, items, n, &count);
    if (flat == NULL) return -1;
    array->children[0] = build(element, flat, count);
    free(flat);
    if (array->children[0] == NULL) return -1;
    return validity(array, items, n);
}

/* A struct column of tuples, one field per code of `kinds`. `nullable` (content refs): a null struct's fields
 * are "" and 0, as pyarrow's builder leaves them. Not (a map's entries): a null entry, key or value is
 * pyarrow's to decide (it refuses a null key). */
static int fill_struct(struct ArrowArray *array, PyObject *const *items, Py_ssize_t n, const char *kinds,
                       int nullable) {
    static PyObject *empty_string = NULL, *zero = NULL;
    if (empty_string == NULL && (empty_string = PyUnicode_FromStringAndSize("", 0)) == NULL) return -1;
    if (zero == NULL && (zero = PyLong_FromLong(0)) == NULL) return -1;
    Py_ssize_t n_fields = (Py_ssize_t)strlen(kinds);
    PyObject **fields = malloc((n > 0 ? (size_t)n : 1) * (size_t)n_fields * sizeof(PyObject *));
    if (fields == NULL) return -1;
    int failed = 0;
    for (Py_ssize_t i = 0; i < n && !failed; i++) {
        PyObject *item = items[i];
        if (is_null(item) && nullable) {
            for (Py_ssize_t f = 0; f < n_fields; f++) fields[f * n + i] = kinds[f] == 's' ? empty_string : zero;
        } else if (item != NULL && PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == n_fields) {
            for (Py_ssize_t f = 0; f < n_fields; f++) fields[f * n + i] = PyTuple_GET_ITEM(item, f);
        } else {
            failed = 1;
        }
    }
    for (Py_ssize_t f = 0; f < n_fields && !failed; f++) {
        struct ArrowArray *child = array->children[f] = build(kinds[f], fields + f * n, n);
        failed = child == NULL || (!nullable && child->null_count != 0);
    }
    free(fields);
    if (failed) return -1;
    return validity(array, items, n);
}

/* decimal128(18, 12) as pyarrow converts a Decimal: from str(value) by Arrow's Decimal128::FromString (its
 * precision: the fractional digits and the whole ones from the first non-zero; a negative scale is made 0,
 * its digits counted in the precision), rescaled to scale 12 (refused where a dropped digit is not 0),
 * then refused where precision - scale + 12 > 18 (so a zero with an exponent over 6 too). Sets `*units`
 * (the value in 1e-12) and returns 0, or -1 where pyarrow refuses or may: NaN and infinities, a text this
 * does not parse exactly (an exponent of over 4 digits, a lower-case 'e'), over 38 digits or a scale
 * beyond +-38 (Arrow's 128 bits: not decided here). */
#define DECIMAL_SCALE 12
#define DECIMAL_PRECISION 18
#define DECIMAL_MAX_DIGITS 38
#define DECIMAL_UNITS_LIMIT 1000000000000000000LL /* 10^DECIMAL_PRECISION: an int's units stay below it */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int decimal_units(const char *s, Py_ssize_t len, int64_t *units) {
    const char *p = s, *end = s + len;
    int negative = p < end && *p == '-';
    p += negative;
    char digits[DECIMAL_MAX_DIGITS];
    Py_ssize_t n_whole = 0, n_frac = 0, lead = 0;
    for (; p < end && is_digit(*p); p++, n_whole++) {
        if (n_whole >= DECIMAL_MAX_DIGITS) return -1;
        digits[n_whole] = *p;
    }
    if (p < end && *p == '.') {
        for (p++; p < end && is_digit(*p); p++, n_frac++) {
            if (n_whole + n_frac >= DECIMAL_MAX_DIGITS) return -1;
            digits[n_whole + n_frac] = *p;
        }
    }
    Py_ssize_t n = n_whole + n_frac;
    long exponent = 0;
    if (n == 0) return -1; /* "NaN", "Infinity"... */
    if (p < end && *p == 'E') {
        int exp_negative = ++p < end && *p == '-';
        p += p < end && (*p == '-' || *p == '+');
        const char *first = p;
        for (; p < end && is_digit(*p) && p - first < 4; p++) exponent = exponent * 10 + (*p - '0');
        if (p == first) return -1;
        if (exp_negative) exponent = -exponent;
    }
    if (p != end) return -1;
    while (lead < n_whole && digits[lead] == '0') lead++;
    long precision = (long)n_frac + (long)(n_whole - lead);
    long scale = (long)n_frac - exponent;
    if (scale < -DECIMAL_MAX_DIGITS || scale > DECIMAL_MAX_DIGITS) return -1;
    if (precision - scale + DECIMAL_SCALE > DECIMAL_PRECISION) return -1; /* (scale < 0: its digits counted) */
    for (; scale > DECIMAL_SCALE; scale--) { /* rescaled down: only zeros may go */
        if (n > 0 && digits[--n] != '0') return -1;
    }
    uint64_t value = 0;
    for (Py_ssize_t i = 0; i < n; i++) value = value * 10 + (uint64_t)(digits[i] - '0');
    for (; scale < DECIMAL_SCALE; scale++) value *= 10;
    /* the precision check bounds the value: below 10^18 (an int64) */
    *units = negative ? -(int64_t)value : (int64_t)value;
    return 0;
}

/* `decimal.Decimal`, the one type 'D' takes (a subclass may print otherwise: pyarrow's to convert). */
static PyObject *decimal_type(void) {
    static PyObject *type = NULL;
    if (type == NULL) {
        PyObject *module = PyImport_ImportModule("decimal");
        if (module == NULL) return NULL;
        type = PyObject_GetAttrString(module, "Decimal");
        Py_DECREF(module);
    }
    return type;
}

/* A Decimal's units (`decimal_units`, of its text), or 0 for an int already in units (`schema.cost_decimal`:
 * what the Python path converts it to) that fits the precision; -1 for anything else. */
static int item_units(PyObject *item, PyObject *type, int64_t *units) {
    if (PyLong_CheckExact(item)) {
        int overflow;
        long long value = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (overflow || (value == -1 && PyErr_Occurred())) return -1;
        if (value <= -DECIMAL_UNITS_LIMIT || value >= DECIMAL_UNITS_LIMIT) return -1;
        *units = (int64_t)value;
        return 0;
    }
    if (Py_TYPE(item) != (PyTypeObject *)type) return -1;
    PyObject *text = PyObject_Str(item);
    if (text == NULL) return -1;
    Py_ssize_t len;
    const char *chars = PyUnicode_AsUTF8AndSize(text, &len);
    int failed = chars == NULL || decimal_units(chars, len, units) != 0;
    Py_DECREF(text);
    return failed ? -1 : 0;
}

/* A decimal128(18, 12) column: 16 bytes a value, little-endian two's complement (`item_units`). */
static int fill_decimal(struct ArrowArray *array, PyObject *const *items, Py_ssize_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return -1; /* (the words' order would differ: pyarrow's path) */
#endif
    PyObject *type = decimal_type();
    uint64_t *words = node_buffer(array, 1, (size_t)n * 2 * sizeof(uint64_t));
    if (type == NULL || words == NULL) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        if (is_null(item)) continue;
        int64_t units;
        if (item_units(item, type, &units) != 0) return -1;
        words[2 * i] = (uint64_t)units;
        words[2 * i + 1] = units < 0 ? UINT64_MAX : 0;
    }
    return validity(array, items, n);
}

/* The Arrow array of `items` as type `kind`, or NULL (not converted here: no Python error is left set). */
static struct ArrowArray *build(char kind, PyObject *const *items, Py_ssize_t n) {
    struct ArrowArray *array;
    int ok;
    switch (kind) {
    case 's':
        ok = (array = node_new(n, 3, 0)) != NULL && fill_strings(array, items, n) == 0;
        break;
    case 'l':
        ok = (array = node_new(n, 2, 0)) != NULL && fill_int64(array, items, n) == 0;
        break;
    case 'i':
        ok = (array = node_new(n, 2, 0)) != NULL && fill_int32(array, items, n) == 0;
        break;
    case 'b':
        ok = (array = node_new(n, 2, 0)) != NULL && fill_bool(array, items, n) == 0;
        break;
    case 'd':
        ok = (array = node_new(n, 2, 0)) != NULL && fill_double(array, items, n) == 0;
        break;
    case 'S':
        ok = (array = node_new(n, 2, 1)) != NULL && fill_list(array, items, n, 's') == 0;
        break;
    case 'R':
        ok = (array = node_new(n, 2, 1)) != NULL && fill_list(array, items, n, 'r') == 0;
        break;
    case 'r':
        ok = (array = node_new(n, 1, FIELDS(REF_KINDS))) != NULL && fill_struct(array, items, n, REF_KINDS, 1) == 0;
        break;
    case 'D':
        ok = (array = node_new(n, 2, 0)) != NULL && fill_decimal(array, items, n) == 0;
        break;
    case 'M':
        ok = (array = node_new(n, 2, 1)) != NULL && fill_list(array, items, n, 'm') == 0;
        break;
    case 'm':
        ok = (array = node_new(n, 1, FIELDS(ENTRY_KINDS))) != NULL && fill_struct(array, items, n, ENTRY_KINDS, 0) == 0;
        break;
    default:
        array = NULL;
        ok = 0;
    }
    if (!ok) {
        node_free(array);
        PyErr_Clear();
        return NULL;
    }
    return array;
}

static void capsule_release(PyObject *capsule) {
    node_free(PyCapsule_GetPointer(capsule, "arrow_array"));
}

/* `columns(cols, kinds)`: see the top of this file. */
static PyObject *columns(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *cols;
    const char *kinds;
    Py_ssize_t n_kinds;
    if (!PyArg_ParseTuple(args, "O!s#", &PyList_Type, &cols, &kinds, &n_kinds)) return NULL;
    Py_ssize_t n_cols = PyList_GET_SIZE(cols);
    if (n_cols != n_kinds) {
        PyErr_SetString(PyExc_ValueError, "one type code per column");
        return NULL;
    }
    Py_ssize_t length = 0;
    for (Py_ssize_t c = 0; c < n_cols; c++) {
        PyObject *col = PyList_GET_ITEM(cols, c);
        if (!PyList_CheckExact(col)) Py_RETURN_NONE;
        if (c == 0) length = PyList_GET_SIZE(col);
        if (PyList_GET_SIZE(col) != length) Py_RETURN_NONE;
    }
    struct ArrowArray *batch = node_new(length, 1, n_cols);
    if (batch == NULL) return PyErr_NoMemory();
    for (Py_ssize_t c = 0; c < n_cols; c++) {
        PyObject *col = PyList_GET_ITEM(cols, c);
        batch->children[c] = build(kinds[c], PySequence_Fast_ITEMS(col), length);
        if (batch->children[c] == NULL) {
            node_free(batch);
            Py_RETURN_NONE;
        }
    }
    PyObject *capsule = PyCapsule_New(batch, "arrow_array", capsule_release);
    if (capsule == NULL) {
        node_free(batch);
        return NULL;
    }
    return Py_BuildValue("(NK)", capsule, (unsigned long long)(uintptr_t)batch);
}

/* A per-run kernel's arguments: `starts` (int64 row indices: the first row of each run, then the row count),
 * a column's `values` buffer and its validity bitmap (`validity`, when not None), held until `runs_close`. */
typedef struct {
    Py_buffer starts, values, validity;
    int has_validity;
    Py_ssize_t n_runs; /* -1: no run count */
    int64_t rows;
} Runs;

/* Takes the validity buffer (the others come from PyArg_ParseTuple); 0, or -1 with every buffer released. */
static int runs_open(Runs *runs, PyObject *validity_obj) {
    runs->has_validity = validity_obj != Py_None;
    if (runs->has_validity && PyObject_GetBuffer(validity_obj, &runs->validity, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&runs->starts);
        PyBuffer_Release(&runs->values);
        return -1;
    }
    runs->n_runs = runs->starts.len / 8 - 1;
    runs->rows = runs->n_runs >= 0 ? ((const int64_t *)runs->starts.buf)[runs->n_runs] : -1;
    return 0;
}

static void runs_close(Runs *runs) {
    PyBuffer_Release(&runs->starts);
    PyBuffer_Release(&runs->values);
    if (runs->has_validity) PyBuffer_Release(&runs->validity);
}

/* Whether run `run` of `starts` is readable: within [0, rows] and not reversed. */
static int run_readable(const Runs *runs, Py_ssize_t run) {
    const int64_t *start = (const int64_t *)runs->starts.buf;
    return start[run] >= 0 && start[run] <= start[run + 1] && start[run + 1] <= runs->rows;
}

/* `run_distinct(starts, codes, offset, validity, n_codes)`: the distinct valid codes of each run of rows, in
 * the order of their first row (as Acero's hash "distinct" lists a group's values when the groups are the
 * runs). `starts`: int64 row indices, the first row of each run then the row count (ascending); `codes`:
 * an int32 array's data buffer (a dictionary-encoded column's indices, each in [0, n_codes)), read from
 * row `offset`; `validity`: its bitmap (bit `offset` + row) or None. Returns (int32 list offsets, one per
 * run and one more; int32 codes), as bytes, or None for arguments it cannot read (the caller's path then
 * decides). A code's last run (`seen`) makes each row one compare: O(rows + n_codes). */
static PyObject *run_distinct(PyObject *self, PyObject *args) {
    Runs runs = {0};
    Py_ssize_t offset, n_codes;
    PyObject *validity_obj, *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*nOn", &runs.starts, &runs.values, &offset, &validity_obj, &n_codes)) return NULL;
    if (runs_open(&runs, validity_obj) < 0) return NULL;
    const int64_t *start = (const int64_t *)runs.starts.buf;
    Py_ssize_t n_runs = runs.n_runs;
    const int32_t *code = (const int32_t *)runs.values.buf;
    const uint8_t *bits = runs.has_validity ? (const uint8_t *)runs.validity.buf : NULL;
    int64_t rows = runs.rows;
    int32_t *seen = NULL, *out_offsets = NULL, *out_codes = NULL;
    if (n_runs < 0 || n_codes < 0 || n_codes > INT32_MAX || offset < 0 || rows < 0 || rows > INT32_MAX ||
        (offset + rows) * 4 > runs.values.len || (runs.has_validity && (offset + rows + 7) / 8 > runs.validity.len))
        goto unreadable;
    seen = malloc(sizeof(int32_t) * (size_t)(n_codes ? n_codes : 1));
    out_offsets = malloc(sizeof(int32_t) * (size_t)(n_runs + 1));
    out_codes = malloc(sizeof(int32_t) * (size_t)(rows ? rows : 1));
    if (!seen || !out_offsets || !out_codes) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t c = 0; c < n_codes; c++) seen[c] = -1;
    int32_t written = 0;
    for (Py_ssize_t run = 0; run < n_runs; run++) {
        out_offsets[run] = written;
        if (!run_readable(&runs, run)) goto unreadable;
        for (int64_t row = start[run]; row < start[run + 1]; row++) {
            int64_t at = offset + row;
            if (bits && !(bits[at >> 3] >> (at & 7) & 1)) continue;
            int32_t c = code[at];
            if (c < 0 || c >= n_codes) goto unreadable;
            if (seen[c] != (int32_t)run) {
                seen[c] = (int32_t)run;
                out_codes[written++] = c;
            }
        }
    }
    out_offsets[n_runs] = written;
    result = Py_BuildValue("(y#y#)", (const char *)out_offsets, (Py_ssize_t)(n_runs + 1) * 4, (const char *)out_codes,
                           (Py_ssize_t)written * 4);
    goto done;
unreadable:
    Py_INCREF(Py_None);
    result = Py_None;
done:
    free(seen);
    free(out_offsets);
    free(out_codes);
    runs_close(&runs);
    return result;
}

/* Whether bit `at` of a bitmap (NULL: every bit) is set. */
static int bit_set(const uint8_t *bits, int64_t at) { return bits == NULL || (bits[at >> 3] >> (at & 7) & 1); }

/* `run_best(starts, values, offset, validity, selected, selected_offset, descending)`: per run of rows, the
 * row of the run's selected rows with the least (`descending`: greatest) int64 value, a null value after
 * every valid one, ties to the first row: what a stable sort by the value (nulls last) and a hash "first"
 * per group give when the groups are the runs (`processors.previews.trace_previews`). `starts` as for
 * `run_distinct`; `values`: an int64 array's data buffer read from row `offset`, `validity` its bitmap or
 * None; `selected`: a bitmap (bit `selected_offset` + row) of the rows to choose from, or None for all.
 * Returns (validity bitmap of the runs: a run with no selected row has none; int64 rows), as bytes, or None
 * for arguments it cannot read. One pass over the rows, no hashing. */
static PyObject *run_best(PyObject *self, PyObject *args) {
    Runs runs = {0};
    Py_buffer selected = {0};
    Py_ssize_t offset, selected_offset;
    int descending;
    PyObject *validity_obj, *selected_obj, *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*nOOnp", &runs.starts, &runs.values, &offset, &validity_obj, &selected_obj,
                          &selected_offset, &descending))
        return NULL;
    if (runs_open(&runs, validity_obj) < 0) return NULL;
    int has_selected = selected_obj != Py_None;
    if (has_selected && PyObject_GetBuffer(selected_obj, &selected, PyBUF_SIMPLE) < 0) {
        runs_close(&runs);
        return NULL;
    }
    const int64_t *start = (const int64_t *)runs.starts.buf, *value = (const int64_t *)runs.values.buf;
    const uint8_t *valid = runs.has_validity ? (const uint8_t *)runs.validity.buf : NULL;
    const uint8_t *chosen = has_selected ? (const uint8_t *)selected.buf : NULL;
    Py_ssize_t n_runs = runs.n_runs;
    int64_t rows = runs.rows;
    uint8_t *out_valid = NULL;
    int64_t *out_rows = NULL;
    if (n_runs < 0 || offset < 0 || selected_offset < 0 || rows < 0 || (offset + rows) * 8 > runs.values.len ||
        (runs.has_validity && (offset + rows + 7) / 8 > runs.validity.len) ||
        (has_selected && (selected_offset + rows + 7) / 8 > selected.len))
        goto unreadable;
    out_valid = calloc((size_t)(n_runs + 7) / 8 + 1, 1);
    out_rows = malloc(sizeof(int64_t) * (size_t)(n_runs ? n_runs : 1));
    if (!out_valid || !out_rows) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t run = 0; run < n_runs; run++) {
        if (!run_readable(&runs, run)) goto unreadable;
        int64_t best = -1;
        int best_valid = 0;
        for (int64_t row = start[run]; row < start[run + 1]; row++) {
            if (!bit_set(chosen, selected_offset + row)) continue;
            int row_valid = bit_set(valid, offset + row);
            int64_t here = value[offset + row], there = best < 0 ? 0 : value[offset + best];
            int better = best < 0 || (row_valid && !best_valid) ||
                         (row_valid && best_valid && (descending ? here > there : here < there));
            if (better) {
                best = row;
                best_valid = row_valid;
            }
        }
        out_rows[run] = best < 0 ? 0 : best;
        if (best >= 0) out_valid[run >> 3] |= (uint8_t)(1u << (run & 7));
    }
    result = Py_BuildValue("(y#y#)", (const char *)out_valid, (Py_ssize_t)(n_runs + 7) / 8, (const char *)out_rows,
                           (Py_ssize_t)n_runs * 8);
    goto done;
unreadable:
    Py_INCREF(Py_None);
    result = Py_None;
done:
    free(out_valid);
    free(out_rows);
    runs_close(&runs);
    if (has_selected) PyBuffer_Release(&selected);
    return result;
}

/* `run_total(starts, op, values, offset, validity)`: per run of rows, an aggregate of its valid values, as
 * Acero's hash aggregate gives each group when the groups are the runs (`stitch._by_runs`): `op` "sum" (int64,
 * wrapping as Acero's does), "sum128" (decimal128's 16-byte two's complement values, wrapping), "min", "max"
 * (int64) or "any" (a boolean bitmap); a run with no valid value is null. `starts`, `values`, `offset` and
 * `validity` as for `run_best` (`values` a bitmap for "any"). Returns (validity bitmap of the runs, values:
 * 8 bytes a run, 16 for "sum128", 1 for "any" (0 or 1)) as bytes, or None for arguments it cannot read. */
static PyObject *run_total(PyObject *self, PyObject *args) {
    Runs runs = {0};
    Py_ssize_t offset;
    const char *op;
    PyObject *validity_obj, *result = NULL;
    if (!PyArg_ParseTuple(args, "y*sy*nO", &runs.starts, &op, &runs.values, &offset, &validity_obj)) return NULL;
    if (runs_open(&runs, validity_obj) < 0) return NULL;
    enum { SUM, SUM128, MIN, MAX, ANY } kind;
    int width;
    if (strcmp(op, "sum") == 0) kind = SUM, width = 8;
    else if (strcmp(op, "sum128") == 0) kind = SUM128, width = 16;
    else if (strcmp(op, "min") == 0) kind = MIN, width = 8;
    else if (strcmp(op, "max") == 0) kind = MAX, width = 8;
    else if (strcmp(op, "any") == 0) kind = ANY, width = 1;
    else kind = SUM, width = 0;
    const int64_t *start = (const int64_t *)runs.starts.buf;
    const uint8_t *valid = runs.has_validity ? (const uint8_t *)runs.validity.buf : NULL;
    const uint8_t *raw = (const uint8_t *)runs.values.buf;
    Py_ssize_t n_runs = runs.n_runs;
    int64_t rows = runs.rows;
    uint8_t *out_valid = NULL, *out = NULL;
    if (width == 0 || n_runs < 0 || offset < 0 || rows < 0 ||
        (kind == ANY ? (offset + rows + 7) / 8 : (offset + rows) * width) > runs.values.len ||
        (runs.has_validity && (offset + rows + 7) / 8 > runs.validity.len))
        goto unreadable;
    out_valid = calloc((size_t)(n_runs + 7) / 8 + 1, 1);
    out = calloc((size_t)(n_runs ? n_runs : 1), (size_t)width);
    if (!out_valid || !out) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t run = 0; run < n_runs; run++) {
        if (!run_readable(&runs, run)) goto unreadable;
        uint64_t low = 0, high = 0; /* a sum's words (wrapping); min/max in `best` */
        int64_t best = 0;
        int seen = 0, any = 0;
        for (int64_t row = start[run]; row < start[run + 1]; row++) {
            int64_t at = offset + row;
            if (!bit_set(valid, at)) continue;
            if (kind == ANY) {
                any |= bit_set(raw, at);
            } else if (kind == SUM128) {
                uint64_t word[2];
                memcpy(word, raw + at * 16, 16);
                uint64_t before = low;
                low += word[0];
                high += word[1] + (low < before);
            } else {
                int64_t v;
                memcpy(&v, raw + at * 8, 8);
                if (kind == SUM) low += (uint64_t)v;
                else if (!seen || (kind == MIN ? v < best : v > best)) best = v;
            }
            seen = 1;
        }
        if (!seen) continue;
        out_valid[run >> 3] |= (uint8_t)(1u << (run & 7));
        uint8_t *slot = out + run * width;
        if (kind == ANY) *slot = (uint8_t)any;
        else if (kind == MIN || kind == MAX) memcpy(slot, &best, 8);
        else memcpy(slot, &low, 8);
        if (kind == SUM128) memcpy(slot + 8, &high, 8);
    }
    result = Py_BuildValue("(y#y#)", (const char *)out_valid, (Py_ssize_t)(n_runs + 7) / 8, (const char *)out,
                           (Py_ssize_t)n_runs * width);
    goto done;
unreadable:
    Py_INCREF(Py_None);
    result = Py_None;
done:
    free(out_valid);
    free(out);
    runs_close(&runs);
    return result;
}

/* `transpose(rows, width)`: the columns of `rows` (a list of tuples of `width` items each) as `width` lists, or
 * None when a row is not such a tuple (the caller's zip then decides). decode._columns' `zip(*rows)` made a
 * tuple per column through every row's iterator, then a list of it: ~1.7k instructions a bench span, this
 * ~0.5k (hotpaths.py --callgrind). */
static PyObject *transpose(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyLong_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "transpose(rows: list, width: int)");
        return NULL;
    }
    PyObject *rows = args[0];
    Py_ssize_t width = PyLong_AsSsize_t(args[1]), n = PyList_GET_SIZE(rows);
    if (width < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "transpose: width < 0");
        return NULL;
    }
    for (Py_ssize_t r = 0; r < n; r++) {
        PyObject *row = PyList_GET_ITEM(rows, r);
        if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != width) Py_RETURN_NONE;
    }
    PyObject *cols = PyList_New(width);
    if (cols == NULL) return NULL;
    for (Py_ssize_t c = 0; c < width; c++) {
        PyObject *col = PyList_New(n);
        if (col == NULL) {
            Py_DECREF(cols);
            return NULL;
        }
        for (Py_ssize_t r = 0; r < n; r++) {
            PyObject *row = PyList_GET_ITEM(rows, r);
            PyList_SET_ITEM(col, r, Py_NewRef(PyTuple_GET_ITEM(row, c)));
        }
        PyList_SET_ITEM(cols, c, col);
    }
    return cols;
}

/* `unique_pairs(per_span)`: `d = dict(chain.from_iterable(per_span)); (list(d), list(d.values()))` where
 * `per_span` is a list of lists of 2-tuples, else None (and where that dict would raise: the caller's dict then
 * decides). decode._content_table's chain and dict took ~1.6k instructions a bench span, this ~1.2k (most of
 * it the dict's inserts, hashing each new digest str). */
static PyObject *unique_pairs(PyObject *Py_UNUSED(self), PyObject *per_span) {
    if (!PyList_CheckExact(per_span)) Py_RETURN_NONE;
    PyObject *d = PyDict_New();
    if (d == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(per_span); i++) {
        PyObject *pairs = PyList_GET_ITEM(per_span, i);
        if (!PyList_CheckExact(pairs)) goto undecided;
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(pairs); j++) {
            PyObject *pair = PyList_GET_ITEM(pairs, j);
            if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) goto undecided;
            if (PyDict_SetItem(d, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0) goto undecided;
        }
    }
    PyObject *keys = PyDict_Keys(d), *values = keys == NULL ? NULL : PyDict_Values(d);
    Py_DECREF(d);
    if (values == NULL) {
        Py_XDECREF(keys);
        return NULL;
    }
    PyObject *result = PyTuple_New(2);
    if (result == NULL) {
        Py_DECREF(keys);
        Py_DECREF(values);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, keys);
    PyTuple_SET_ITEM(result, 1, values);
    return result;
undecided:
    Py_DECREF(d);
    PyErr_Clear();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"unique_pairs", unique_pairs, METH_O,
     "unique_pairs(per_span) -> (keys, values) of dict(chain.from_iterable(per_span)); or None"},
    {"transpose", (PyCFunction)(void (*)(void))transpose, METH_FASTCALL,
     "transpose(rows, width) -> list of width lists (the rows' columns); or None where a row is not a tuple of width"},
    {"columns", columns, METH_VARARGS,
     "columns(cols, kinds) -> (PyCapsule 'arrow_array', its address): a struct array, one child per list; or None"},
    {"run_distinct", run_distinct, METH_VARARGS,
     "run_distinct(starts, codes, offset, validity, n_codes) -> (offsets, codes) as int32 bytes; or None"},
    {"run_total", run_total, METH_VARARGS,
     "run_total(starts, op, values, offset, validity) -> (validity, totals) as bytes; or None"},
    {"run_best", run_best, METH_VARARGS,
     "run_best(starts, values, offset, validity, selected, selected_offset, descending) -> (validity, rows); or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_arrow_rows", NULL, -1, methods, NULL, NULL, NULL, NULL};

/* `DECIMAL_SCALE` exported: `arrow_native` builds the cost columns here only where it is `COST_TYPE`'s scale
 * (the ints of a cost column count units of that scale: one owner, storage/schema.py). */
PyMODINIT_FUNC PyInit__arrow_rows(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "DECIMAL_SCALE", DECIMAL_SCALE) != 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
