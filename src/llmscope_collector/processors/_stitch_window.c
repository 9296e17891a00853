/* The stitcher's per-row window loops in C (optional; see processors/stitch.py).
 *
 * `register_batch` and `mark_batch` are `stitch._register` and `stitch._mark` (with `_settle_new`, the
 * first mark of a span, inlined) as one pass each over a batch's LLM rows: the same dict operations on
 * the same `_Trace` dicts in the same order, so the window, the marks and the parent scans' cache come
 * out the same (tests/collector/model/test_stitch_native.py holds the stitcher with and without them
 * equal on arbitrary traces, arrival orders, failed writes and repeats). A row whose span is neither
 * new in the batch nor a duplicate already (a span sent again, a parent with children waiting) is
 * handed back to Python (`slow`, `Stitcher._mark_known`): those are few and their rules stay in one
 * place. The Python loops cost ~0.5 us a span of the writer thread on the ingest bench's requests.
 * `touch_batch` and `pack_written` are `Stitcher._touch` and `_Trace.pack` over a batch's traces, and
 * `blobs` is `stitch._blobs` (the same bytes) in one pass over the columns' buffers instead of ~30 Arrow
 * kernels and a list of their results.
 *
 * The states are passed in (the module's small ints) and compared by identity, as the Python does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <marshal.h>
#include <stdint.h>
#include <string.h>

/* Attribute and method names, interned at import. */
static PyObject *s_project, *s_packed, *s_touched, *s_unwritten, *s_unpack, *s_move_to_end;

/* The states `stitch._STATES` names, in its order. */
enum { UNSEEN, NEW, DUP, NO_PARENT, EMPTY_PARENT, OWN_PARENT, N_STATES };

static int states_of(PyObject *tuple, PyObject **states) {
    if (!PyTuple_CheckExact(tuple) || PyTuple_GET_SIZE(tuple) != N_STATES) {
        PyErr_SetString(PyExc_TypeError, "states: a tuple of the six window states");
        return -1;
    }
    for (int i = 0; i < N_STATES; i++) {
        states[i] = PyTuple_GET_ITEM(tuple, i);
    }
    return 0;
}

static int same_lengths(PyObject **lists, int count) {
    for (int i = 0; i < count; i++) {
        if (!PyList_CheckExact(lists[i])) {
            PyErr_SetString(PyExc_TypeError, "rows: lists");
            return -1;
        }
        if (PyList_GET_SIZE(lists[i]) != PyList_GET_SIZE(lists[0])) {
            PyErr_SetString(PyExc_ValueError, "rows: lists of one length");
            return -1;
        }
    }
    return 0;
}

/* traces[trace_id] as a dict (a `_Trace`), borrowed; NULL with KeyError/TypeError set. */
static PyObject *trace_of(PyObject *traces, PyObject *trace_id) {
    PyObject *trace = PyDict_GetItemWithError(traces, trace_id);
    if (trace == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetObject(PyExc_KeyError, trace_id);
        }
        return NULL;
    }
    if (!PyDict_Check(trace)) {
        PyErr_SetString(PyExc_TypeError, "traces: dicts by trace id");
        return NULL;
    }
    return trace;
}

/* Whether a window value is a box (a tuple) whose state is `state`. */
static int boxed(PyObject *value, PyObject *state) {
    return PyTuple_CheckExact(value) && PyTuple_GET_SIZE(value) > 0 && PyTuple_GET_ITEM(value, 0) == state;
}

/* `box` with its state replaced by `state`: (state, *box[1:]). New reference. */
static PyObject *restated(PyObject *box, PyObject *state) {
    Py_ssize_t n = PyTuple_GET_SIZE(box);
    PyObject *out = PyTuple_New(n);
    if (out == NULL) {
        return NULL;
    }
    Py_INCREF(state);
    PyTuple_SET_ITEM(out, 0, state);
    for (Py_ssize_t i = 1; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(box, i);
        Py_INCREF(item);
        PyTuple_SET_ITEM(out, i, item);
    }
    return out;
}

/* register_batch(traces, trace_ids, span_ids, states) -> set of (trace id, span id): `stitch._register`. */
static PyObject *register_batch(PyObject *self, PyObject *args) {
    PyObject *traces, *rows[2], *states_tuple, *states[N_STATES];
    if (!PyArg_ParseTuple(args, "O!OOO:register_batch", &PyDict_Type, &traces, &rows[0], &rows[1], &states_tuple)) {
        return NULL;
    }
    if (states_of(states_tuple, states) < 0 || same_lengths(rows, 2) < 0) {
        return NULL;
    }
    PyObject *known = PySet_New(NULL);
    if (known == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows[0]); i++) {
        PyObject *trace_id = PyList_GET_ITEM(rows[0], i), *span_id = PyList_GET_ITEM(rows[1], i);
        PyObject *trace = trace_of(traces, trace_id);
        if (trace == NULL) {
            goto fail;
        }
        PyObject *value = PyDict_SetDefault(trace, span_id, states[NEW]); /* borrowed */
        if (value == NULL) {
            goto fail;
        }
        if (value == states[NEW]) {
            continue;
        }
        if (boxed(value, states[UNSEEN])) {
            PyObject *box = restated(value, states[NEW]);
            int failed = box == NULL || PyDict_SetItem(trace, span_id, box) < 0;
            Py_XDECREF(box);
            if (failed) {
                goto fail;
            }
        } else {
            PyObject *pair = PyTuple_Pack(2, trace_id, span_id);
            int failed = pair == NULL || PySet_Add(known, pair) < 0;
            Py_XDECREF(pair);
            if (failed) {
                goto fail;
            }
        }
    }
    return known;
fail:
    Py_DECREF(known);
    return NULL;
}

/* A new span's state at its first mark (`Stitcher._settle_new`): new reference, NULL on error. */
static PyObject *settle_new(PyObject *trace, PyObject *span_id, PyObject *parent, PyObject *blob,
                            PyObject *parent_scans, PyObject **states) {
    int own = PyObject_RichCompareBool(parent, span_id, Py_EQ);
    if (own < 0) {
        return NULL;
    }
    if (own) {
        return Py_NewRef(states[OWN_PARENT]);
    }
    PyObject *siblings = PyDict_GetItemWithError(trace, parent); /* borrowed */
    if (siblings == NULL && PyErr_Occurred()) {
        return NULL;
    }
    if (siblings != NULL && PyTuple_CheckExact(siblings) && PyTuple_GET_SIZE(siblings) == 0) {
        PyErr_SetString(PyExc_IndexError, "tuple index out of range"); /* (as siblings[0]; no box is empty) */
        return NULL;
    }
    if (siblings != NULL && !boxed(siblings, states[UNSEEN])) {
        return Py_NewRef(states[DUP]); /* `_registered(siblings)` */
    }
    int truth = PyObject_IsTrue(parent);
    if (truth < 0) {
        return NULL;
    }
    if (!truth) {
        return Py_NewRef(states[parent == Py_None ? NO_PARENT : EMPTY_PARENT]);
    }
    PyObject *box;
    if (siblings == NULL) {
        box = PyTuple_Pack(2, states[UNSEEN], span_id);
    } else {
        Py_ssize_t n = PyTuple_GET_SIZE(siblings);
        box = PyTuple_New(n + 1);
        if (box != NULL) {
            for (Py_ssize_t i = 0; i < n; i++) {
                PyObject *item = PyTuple_GET_ITEM(siblings, i);
                Py_INCREF(item);
                PyTuple_SET_ITEM(box, i, item);
            }
            Py_INCREF(span_id);
            PyTuple_SET_ITEM(box, n, span_id);
        }
    }
    int failed = box == NULL || PyDict_SetItem(trace, parent, box) < 0;
    Py_XDECREF(box);
    if (failed) {
        return NULL;
    }
    if (PyDict_GET_SIZE(parent_scans)) { /* self._parents.pop(id(trace), None) */
        PyObject *key = PyLong_FromVoidPtr(trace);
        if (key == NULL) {
            return NULL;
        }
        int found = PyDict_Contains(parent_scans, key);
        failed = found < 0 || (found && PyDict_DelItem(parent_scans, key) < 0);
        Py_DECREF(key);
        if (failed) {
            return NULL;
        }
    }
    return Py_NewRef(blob);
}

/* One row's window value after its mark: new reference, NULL on error. */
static PyObject *mark_row(PyObject *trace_id, PyObject *trace, PyObject *span_id, PyObject *parent, PyObject *blob,
                          PyObject *parent_scans, PyObject *slow, PyObject **states) {
    PyObject *value = PyDict_GetItemWithError(trace, span_id); /* borrowed */
    if (value == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetObject(PyExc_KeyError, span_id);
        }
        return NULL;
    }
    if (value == states[DUP]) {
        return Py_NewRef(value);
    }
    if (value != states[NEW]) {
        return PyObject_CallFunctionObjArgs(slow, trace_id, trace, span_id, value, parent, blob, NULL);
    }
    PyObject *state = settle_new(trace, span_id, parent, blob, parent_scans, states);
    if (state != NULL && PyDict_SetItem(trace, span_id, state) < 0) {
        Py_CLEAR(state);
    }
    return state;
}

/* mark_batch(traces, trace_ids, span_ids, parents, blobs, parent_scans, states, slow) -> list of bool:
 * `Stitcher._mark`'s loop (its count of duplicates is the caller's). */
static PyObject *mark_batch(PyObject *self, PyObject *args) {
    PyObject *traces, *rows[4], *parent_scans, *states_tuple, *slow, *states[N_STATES];
    if (!PyArg_ParseTuple(args, "O!OOOOO!OO:mark_batch", &PyDict_Type, &traces, &rows[0], &rows[1], &rows[2],
                          &rows[3], &PyDict_Type, &parent_scans, &states_tuple, &slow)) {
        return NULL;
    }
    if (states_of(states_tuple, states) < 0 || same_lengths(rows, 4) < 0) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(rows[0]);
    PyObject *dups = PyList_New(n);
    if (dups == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *trace_id = PyList_GET_ITEM(rows[0], i);
        PyObject *trace = trace_of(traces, trace_id);
        if (trace == NULL) {
            goto fail;
        }
        /* Held across the row: `slow` runs Python code. */
        PyObject *row[5] = {trace_id, trace, PyList_GET_ITEM(rows[1], i), PyList_GET_ITEM(rows[2], i),
                            PyList_GET_ITEM(rows[3], i)};
        for (int k = 0; k < 5; k++) {
            Py_INCREF(row[k]);
        }
        PyObject *state = mark_row(row[0], row[1], row[2], row[3], row[4], parent_scans, slow, states);
        for (int k = 0; k < 5; k++) {
            Py_DECREF(row[k]);
        }
        if (state == NULL) {
            goto fail;
        }
        PyList_SET_ITEM(dups, i, Py_NewRef(state == states[DUP] ? Py_True : Py_False));
        Py_DECREF(state);
    }
    return dups;
fail:
    Py_DECREF(dups); /* (its unset items are NULL: list_dealloc skips them) */
    return NULL;
}

/* `trace` (a new reference, stolen) unpacked if packed (`_Trace.unpack`); NULL on error. */
static PyObject *unpacked(PyObject *trace) {
    PyObject *packed = PyObject_GetAttr(trace, s_packed);
    if (packed == NULL) {
        Py_DECREF(trace);
        return NULL;
    }
    int held = packed != Py_None;
    Py_DECREF(packed);
    if (held) {
        PyObject *done = PyObject_CallMethodNoArgs(trace, s_unpack);
        if (done == NULL) {
            Py_DECREF(trace);
            return NULL;
        }
        Py_DECREF(done);
    }
    return trace;
}

/* One trace of `Stitcher._touch`'s loop (its `touched` set by the caller): a new reference, NULL on error. */
static PyObject *touch_one(PyObject *windows, PyObject *project, PyObject *trace_id, PyObject *make, PyObject *keyed) {
    PyObject *trace = PyDict_GetItemWithError(windows, trace_id); /* borrowed */
    if (trace == NULL && PyErr_Occurred()) {
        return NULL;
    }
    if (trace != NULL) {
        PyObject *owner = PyObject_GetAttr(trace, s_project);
        int mine = owner == NULL ? -1 : PyObject_RichCompareBool(owner, project, Py_EQ);
        Py_XDECREF(owner);
        if (mine < 0) {
            return NULL;
        }
        if (mine) {
            Py_INCREF(trace); /* (move_to_end keeps it in `windows`; held across the call all the same) */
            PyObject *moved = PyObject_CallMethodOneArg(windows, s_move_to_end, trace_id);
            if (moved == NULL) {
                Py_DECREF(trace);
                return NULL;
            }
            Py_DECREF(moved);
            return unpacked(trace);
        }
    } else {
        PyObject *key = PyTuple_Pack(2, project, trace_id);
        int keyed_too = key == NULL ? -1 : PyDict_Contains(windows, key);
        Py_XDECREF(key);
        if (keyed_too < 0) {
            return NULL;
        }
        if (!keyed_too) { /* a new window (most) */
            PyObject *made = PyObject_CallOneArg(make, project);
            if (made != NULL && PyObject_SetItem(windows, trace_id, made) < 0) {
                Py_CLEAR(made);
            }
            return made;
        }
    }
    PyObject *made = PyObject_CallFunctionObjArgs(keyed, project, trace_id, trace == NULL ? Py_True : Py_False, NULL);
    return made == NULL ? NULL : unpacked(made);
}

/* The distinct ids in the order of each one's last row (`reversed(dict.fromkeys(reversed(ids)))`), as a
 * list in reverse: new reference, NULL on error. */
static PyObject *last_rows_reversed(PyObject *ids) {
    PyObject *seen = PySet_New(NULL), *order = PyList_New(0);
    if (seen == NULL || order == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = PyList_GET_SIZE(ids) - 1; i >= 0; i--) {
        PyObject *id = PyList_GET_ITEM(ids, i);
        int found = PySet_Contains(seen, id);
        if (found < 0 || (!found && (PySet_Add(seen, id) < 0 || PyList_Append(order, id) < 0))) {
            goto fail;
        }
    }
    Py_DECREF(seen);
    return order;
fail:
    Py_XDECREF(seen);
    Py_XDECREF(order);
    return NULL;
}

/* touch_batch(windows, project, trace_ids, now, make, keyed) -> {trace id: trace}: `Stitcher._touch`
 * (`make`: `_Trace.new`; `keyed`: `Stitcher._touch_keyed`). */
static PyObject *touch_batch(PyObject *self, PyObject *args) {
    PyObject *windows, *project, *trace_ids, *now, *make, *keyed;
    if (!PyArg_ParseTuple(args, "O!OO!OOO:touch_batch", &PyDict_Type, &windows, &project, &PyList_Type, &trace_ids,
                          &now, &make, &keyed)) {
        return NULL;
    }
    PyObject *order = last_rows_reversed(trace_ids);
    PyObject *found = order == NULL ? NULL : PyDict_New();
    if (found == NULL) {
        Py_XDECREF(order);
        return NULL;
    }
    for (Py_ssize_t i = PyList_GET_SIZE(order) - 1; i >= 0; i--) {
        PyObject *trace_id = PyList_GET_ITEM(order, i);
        PyObject *trace = touch_one(windows, project, trace_id, make, keyed);
        int failed = trace == NULL || PyObject_SetAttr(trace, s_touched, now) < 0 ||
                     PyDict_SetItem(found, trace_id, trace) < 0;
        Py_XDECREF(trace);
        if (failed) {
            Py_DECREF(order);
            Py_DECREF(found);
            return NULL;
        }
    }
    Py_DECREF(order);
    return found;
}

/* `_Trace.pack`: the entries as one marshal string (the dict emptied first), 0 or -1 on error. */
static int pack_one(PyObject *trace) {
    PyObject *entries = PyDict_Copy(trace);
    if (entries == NULL) {
        return -1;
    }
    PyDict_Clear(trace);
    /* A second reference while dumped, as `marshal.dumps(entries)` has (the caller's and the argument's):
     * marshal then flags the dict as `_Trace.pack` does, and the packed strings are the same bytes. */
    Py_INCREF(entries);
    PyObject *packed = PyMarshal_WriteObjectToString(entries, Py_MARSHAL_VERSION);
    Py_DECREF(entries);
    Py_DECREF(entries);
    int failed = packed == NULL || PyObject_SetAttr(trace, s_packed, packed) < 0;
    Py_XDECREF(packed);
    return failed ? -1 : 0;
}

/* pack_written(traces): each of the dict's traces without unwritten spans packed, its `unwritten` None
 * (`Stitcher._note_written`'s last loop). */
static PyObject *pack_written(PyObject *self, PyObject *traces) {
    if (!PyDict_Check(traces)) {
        PyErr_SetString(PyExc_TypeError, "traces: a dict of traces");
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *trace_id, *trace;
    while (PyDict_Next(traces, &pos, &trace_id, &trace)) {
        Py_INCREF(trace);
        PyObject *unwritten = PyObject_GetAttr(trace, s_unwritten);
        int waiting = unwritten == NULL ? -1 : PyObject_IsTrue(unwritten);
        Py_XDECREF(unwritten);
        int failed = waiting < 0 ||
                     (!waiting && (PyObject_SetAttr(trace, s_unwritten, Py_None) < 0 || pack_one(trace) < 0));
        Py_DECREF(trace);
        if (failed) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

/* An Arrow array's buffers as passed from Python: (validity or None, values, offset). */
typedef struct {
    Py_buffer validity, values;
    int has_validity;
    Py_ssize_t offset;
} Column;

static void column_release(Column *column) {
    if (column->has_validity) {
        PyBuffer_Release(&column->validity);
    }
    if (column->values.obj != NULL) {
        PyBuffer_Release(&column->values);
    }
}

/* `spec`: (validity buffer or None, values buffer, offset); `width`: bytes a value (0: bits). 0 or -1. */
static int column_of(PyObject *spec, Py_ssize_t rows, int width, Column *column) {
    PyObject *validity;
    memset(column, 0, sizeof(*column));
    if (!PyArg_ParseTuple(spec, "Oy*n:column", &validity, &column->values, &column->offset)) {
        return -1;
    }
    if (validity != Py_None) {
        if (PyObject_GetBuffer(validity, &column->validity, PyBUF_SIMPLE) < 0) {
            column_release(column);
            return -1;
        }
        column->has_validity = 1;
    }
    Py_ssize_t end = column->offset + rows;
    int fits = column->offset >= 0 && column->values.len >= (width ? end * width : (end + 7) / 8) &&
               (!column->has_validity || column->validity.len >= (end + 7) / 8);
    if (!fits) {
        column_release(column);
        PyErr_SetString(PyExc_ValueError, "column: buffers shorter than its rows");
        return -1;
    }
    return 0;
}

static int bit(const Py_buffer *bits, Py_ssize_t i) {
    return (((const unsigned char *)bits->buf)[i >> 3] >> (i & 7)) & 1;
}

static int valid(const Column *column, Py_ssize_t row) {
    return !column->has_validity || bit(&column->validity, column->offset + row);
}

/* A null-as-0 int64 value (an Arrow int64 column, or the low word of a decimal128's). */
static int64_t int64_at(const Column *column, Py_ssize_t row, int width) {
    int64_t value;
    if (!valid(column, row)) {
        return 0;
    }
    memcpy(&value, (const char *)column->values.buf + (column->offset + row) * width, sizeof(value));
    return value;
}

static void put_le(unsigned char *out, uint64_t value, int width) {
    for (int i = 0; i < width; i++) {
        out[i] = (unsigned char)(value >> (8 * i));
    }
}

#define MAX_TOKENS 16

/* blobs(date_code, tokens, known, cost) -> list of bytes: `stitch._blobs` (tokens: a tuple of int64 column
 * specs, null as 0; known: a bool column spec, null as False; cost: a decimal128 column spec whose values'
 * unscaled integers fit int64, as `COST_TYPE`'s do; the row count is the known column's `rows`). */
static PyObject *blobs(PyObject *self, PyObject *args) {
    int date_code;
    Py_ssize_t rows;
    PyObject *token_specs, *known_spec, *cost_spec;
    if (!PyArg_ParseTuple(args, "inO!OO:blobs", &date_code, &rows, &PyTuple_Type, &token_specs, &known_spec,
                          &cost_spec)) {
        return NULL;
    }
    Py_ssize_t n_tokens = PyTuple_GET_SIZE(token_specs);
    if (n_tokens > MAX_TOKENS || rows < 0) {
        PyErr_SetString(PyExc_ValueError, "blobs: too many token columns");
        return NULL;
    }
    Column tokens[MAX_TOKENS], known, cost;
    Py_ssize_t ready = 0;
    PyObject *out = NULL;
    for (; ready < n_tokens; ready++) {
        if (column_of(PyTuple_GET_ITEM(token_specs, ready), rows, 8, &tokens[ready]) < 0) {
            goto done;
        }
    }
    if (column_of(known_spec, rows, 0, &known) < 0) {
        goto done;
    }
    if (column_of(cost_spec, rows, 16, &cost) < 0) {
        column_release(&known);
        goto done;
    }
    int width = 4; /* every count within int32: 4 bytes each, else 8 */
    for (Py_ssize_t t = 0; t < n_tokens && width == 4; t++) {
        for (Py_ssize_t row = 0; row < rows; row++) {
            int64_t value = int64_at(&tokens[t], row, 8);
            if (value < INT32_MIN || value > INT32_MAX) {
                width = 8;
                break;
            }
        }
    }
    Py_ssize_t size = 5 + n_tokens * width + 8;
    out = PyList_New(rows);
    for (Py_ssize_t row = 0; out != NULL && row < rows; row++) {
        PyObject *blob = PyBytes_FromStringAndSize(NULL, size);
        if (blob == NULL) {
            Py_CLEAR(out);
            break;
        }
        unsigned char *at = (unsigned char *)PyBytes_AS_STRING(blob);
        at[0] = (unsigned char)width;
        put_le(at + 1, (uint64_t)(uint32_t)date_code, 4);
        for (Py_ssize_t t = 0; t < n_tokens; t++) {
            put_le(at + 5 + t * width, (uint64_t)int64_at(&tokens[t], row, 8), width);
        }
        int is_known = valid(&known, row) && bit(&known.values, known.offset + row);
        int64_t units = is_known ? int64_at(&cost, row, 16) : INT64_MIN;
        put_le(at + 5 + n_tokens * width, (uint64_t)units, 8);
        PyList_SET_ITEM(out, row, blob);
    }
    column_release(&known);
    column_release(&cost);
done:
    for (Py_ssize_t t = 0; t < ready; t++) {
        column_release(&tokens[t]);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"register_batch", register_batch, METH_VARARGS, "Register a batch's LLM spans (stitch._register)."},
    {"mark_batch", mark_batch, METH_VARARGS, "Mark a batch's LLM rows (stitch.Stitcher._mark's loop)."},
    {"touch_batch", touch_batch, METH_VARARGS, "The windows of a batch's traces (stitch.Stitcher._touch)."},
    {"blobs", blobs, METH_VARARGS, "The LLM rows' contribution blobs (stitch._blobs)."},
    {"pack_written", pack_written, METH_O, "Pack the traces without unwritten spans (stitch._Trace.pack)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_stitch_window", NULL, -1, methods};

PyMODINIT_FUNC PyInit__stitch_window(void) {
    const char *names[] = {"project", "packed", "touched", "unwritten", "unpack", "move_to_end"};
    PyObject **slots[] = {&s_project, &s_packed, &s_touched, &s_unwritten, &s_unpack, &s_move_to_end};
    for (int i = 0; i < 6; i++) {
        if (*slots[i] == NULL && (*slots[i] = PyUnicode_InternFromString(names[i])) == NULL) {
            return NULL;
        }
    }
    return PyModule_Create(&module);
}
