/* One span's canonical GenAI row by its plan (optional; see normalize.py).
 *
 * `apply_plan(plans, attrs)` does what normalize._python_apply_plan does for a span whose key tuple
 * `plans` already holds: copy the plan's empty row, fill the table's string and integer columns, the
 * columns with several present aliases and the derived ones, then the total. The row is a list, its
 * columns positions, set without hashing: with a dict by column name (copied, filled by hash, viewed
 * and torn down per span) and plans reading the table's literal keys, decode_payload took 113.3k
 * instructions a bench span, 108.2k now (hotpaths.py --callgrind-run, 3 - 0 passes; apply_plan
 * itself 9.2k -> 7.7k). The rules stay in
 * Python: the C only takes the usual value as it is (a non-empty exact `str`, an exact `int` in
 * int64) and calls the plan's Python callables for everything else. It answers None (the Python path
 * decides the whole span) where it does not decide: `attrs` not an exact dict, a key tuple with no
 * plan yet, or an alias value whose presence would take Python's `!=` on a type it does not know.
 *
 * A plan is a normalize._Plan, read by position: (row, strs, ints, multi, derived, total, ...), where row
 * is a list and every column an int position in it (one out of the row's range is a malformed plan), and
 *   strs  = ((column, key, slow), ...)     slow(attrs, value) unless value is a non-empty str
 *   ints  = ((column, key, slow), ...)     slow(attrs, value) unless value is an int64 int; None skipped
 *   multi = ((column, keys, convert), ...) convert(first present value) when one is present
 *   derived = ((column, derive, fast), ...) derive(attrs), unless fast (kind, key, table) answers:
 *                                          MEMO: table[attrs[key]] for an exact str there (not None);
 *                                          LIST: [table.get(r, r) for r in attrs[key]], a non-empty list
 *                                          of non-empty lowercase ASCII exact str (r.lower() is r)
 *   total = (column, input, output, fn)    fn(attrs, row) if fn is not None, else input + output
 * Every tuple's shape is checked (a TypeError names a plan this module was not built for).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define FORMAT 3 /* normalize._FORMAT: the shape of a plan this file reads (2: a list row, columns by position; 3: a
                    * derived step's fast path) */

enum { P_ROW, P_STRS, P_INTS, P_MULTI, P_DERIVED, P_TOTAL, P_FIELDS };
enum { DONE = 0, FAILED = -1, UNDECIDED = -2 };

static int bad_plan(const char *what) {
    PyErr_Format(PyExc_TypeError, "_genai_plan: a plan's %s is not of the shape this module reads", what);
    return FAILED;
}

/* `t` as a tuple of `n` items (n < 0: any length), else NULL with a TypeError. */
static PyObject *tuple_of(PyObject *t, Py_ssize_t n, const char *what) {
    if (!PyTuple_Check(t) || (n >= 0 && PyTuple_GET_SIZE(t) != n)) {
        bad_plan(what);
        return NULL;
    }
    return t;
}

/* normalize._present(value): 1 or 0; UNDECIDED for a type whose `!= ""` / `!= []` may run Python code
 * (a subclass, a foreign type; bytes too, whose comparison with a str warns under -b). */
static int present(PyObject *v) {
    if (v == Py_None) return 0;
    if (PyUnicode_CheckExact(v)) return PyUnicode_GET_LENGTH(v) > 0;
    if (PyList_CheckExact(v)) return PyList_GET_SIZE(v) > 0;
    if (PyLong_CheckExact(v) || PyBool_Check(v) || PyFloat_CheckExact(v) || PyDict_CheckExact(v) ||
        PyTuple_CheckExact(v))
        return 1;
    return UNDECIDED;
}

/* The value of `key` in `attrs` as a new reference (NULL: missing, UNDECIDED; or an error, FAILED). */
static PyObject *value_of(PyObject *attrs, PyObject *key, int *status) {
    PyObject *v = PyDict_GetItemWithError(attrs, key);
    if (v == NULL) {
        *status = PyErr_Occurred() ? FAILED : UNDECIDED;
        return NULL;
    }
    Py_INCREF(v); /* a slow callable may run any code: hold the value while it does */
    return v;
}

/* The position `column` names in the row `out` (a list), or -1 with a TypeError (a malformed plan). */
static Py_ssize_t position(PyObject *out, PyObject *column) {
    Py_ssize_t i = PyLong_CheckExact(column) ? PyLong_AsSsize_t(column) : -1;
    if (i < 0 || i >= PyList_GET_SIZE(out)) {
        PyErr_Clear();
        bad_plan("column");
        return -1;
    }
    return i;
}

/* out[column] = value, a new reference (NULL: an error, FAILED). */
static int set_new(PyObject *out, PyObject *column, PyObject *value) {
    if (value == NULL) return FAILED;
    Py_ssize_t i = position(out, column);
    if (i < 0) {
        Py_DECREF(value);
        return FAILED;
    }
    PyObject *old = PyList_GET_ITEM(out, i);
    PyList_SET_ITEM(out, i, value);
    Py_DECREF(old);
    return DONE;
}

static PyObject *call2(PyObject *fn, PyObject *a, PyObject *b) {
    PyObject *args[2] = {a, b};
    return PyObject_Vectorcall(fn, args, 2, NULL);
}

/* strs and ints: (column, key, slow) each; `ints` says which fast value is taken as it is. */
static int single_columns(PyObject *steps, int ints, PyObject *attrs, PyObject *out) {
    if (!tuple_of(steps, -1, ints ? "ints" : "strs")) return FAILED;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(steps); i++) {
        PyObject *step = tuple_of(PyTuple_GET_ITEM(steps, i), 3, ints ? "int step" : "str step");
        if (step == NULL) return FAILED;
        PyObject *column = PyTuple_GET_ITEM(step, 0), *slow = PyTuple_GET_ITEM(step, 2);
        int status = DONE;
        PyObject *value = value_of(attrs, PyTuple_GET_ITEM(step, 1), &status);
        if (value == NULL) return status;
        int fast;
        if (ints) {
            int overflow = 0;
            fast = PyLong_CheckExact(value) && (PyLong_AsLongLongAndOverflow(value, &overflow), !overflow);
            if (!fast) {
                int p = present(value);
                if (p != 1) { /* not present: the row keeps its None */
                    Py_DECREF(value);
                    if (p == 0) continue;
                    return p;
                }
            }
        } else {
            fast = PyUnicode_CheckExact(value) && PyUnicode_GET_LENGTH(value) > 0;
        }
        if (fast) {
            status = set_new(out, column, value); /* (takes the reference) */
        } else {
            status = set_new(out, column, call2(slow, attrs, value));
            Py_DECREF(value);
        }
        if (status != DONE) return status;
    }
    return DONE;
}

/* multi: (column, keys, convert) each: convert(the first present value), as normalize._first finds it. */
static int multi_columns(PyObject *steps, PyObject *attrs, PyObject *out) {
    if (!tuple_of(steps, -1, "multi")) return FAILED;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(steps); i++) {
        PyObject *step = tuple_of(PyTuple_GET_ITEM(steps, i), 3, "multi step");
        if (step == NULL) return FAILED;
        PyObject *keys = tuple_of(PyTuple_GET_ITEM(step, 1), -1, "multi step's keys");
        if (keys == NULL) return FAILED;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(keys); k++) {
            PyObject *v = PyDict_GetItemWithError(attrs, PyTuple_GET_ITEM(keys, k));
            if (v == NULL) {
                if (PyErr_Occurred()) return FAILED;
                continue; /* absent: `attrs.get` answers None */
            }
            int p = present(v);
            if (p == UNDECIDED) return UNDECIDED;
            if (p == 0) continue;
            Py_INCREF(v);
            int status = set_new(out, PyTuple_GET_ITEM(step, 0), PyObject_CallOneArg(PyTuple_GET_ITEM(step, 2), v));
            Py_DECREF(v);
            if (status != DONE) return status;
            break;
        }
    }
    return DONE;
}

enum { FAST_MEMO = 0, FAST_LIST = 1 }; /* normalize._FAST_MEMO, _FAST_LIST */

/* An exact str, not empty, of ASCII with no uppercase letter: its lower() is equal to it. */
static int lower_ascii(PyObject *v) {
    if (!PyUnicode_CheckExact(v) || !PyUnicode_IS_ASCII(v) || PyUnicode_GET_LENGTH(v) == 0) return 0;
    const Py_UCS1 *c = PyUnicode_1BYTE_DATA(v);
    for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(v); i++)
        if (c[i] >= 'A' && c[i] <= 'Z') return 0;
    return 1;
}

/* `[table.get(r, r) for r in list]` (a new reference) when every item of the non-empty `list` is lower_ascii,
 * else NULL (with an error or not). */
static PyObject *list_mapped(PyObject *list, PyObject *table) {
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (n == 0) return NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!lower_ascii(PyList_GET_ITEM(list, i))) return NULL;
    PyObject *mapped = PyList_New(n);
    for (Py_ssize_t i = 0; mapped != NULL && i < n; i++) {
        PyObject *r = PyList_GET_ITEM(list, i), *to = PyDict_GetItemWithError(table, r);
        if (to == NULL && PyErr_Occurred()) Py_CLEAR(mapped);
        else PyList_SET_ITEM(mapped, i, Py_NewRef(to != NULL ? to : r));
    }
    return mapped;
}

/* The value a derived step's fast path `fast` ((kind, key, table): normalize._Fast, or None) gives `attrs`, as
 * a new reference; NULL where its function decides (an error set: FAILED). The function's own usual case, without
 * its call: ~2.2k instructions a bench span of decode_payload's. */
static PyObject *fast_value(PyObject *fast, PyObject *attrs) {
    if (fast == Py_None) return NULL;
    if (!tuple_of(fast, 3, "derived step's fast path") || !PyLong_CheckExact(PyTuple_GET_ITEM(fast, 0)) ||
        !PyDict_CheckExact(PyTuple_GET_ITEM(fast, 2))) {
        if (!PyErr_Occurred()) bad_plan("derived step's fast path");
        return NULL;
    }
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(fast, 0));
    PyObject *table = PyTuple_GET_ITEM(fast, 2), *v = PyDict_GetItemWithError(attrs, PyTuple_GET_ITEM(fast, 1));
    if (v == NULL) return NULL;
    if (kind == FAST_MEMO && PyUnicode_CheckExact(v)) {
        PyObject *to = PyDict_GetItemWithError(table, v);
        return to != NULL && to != Py_None ? Py_NewRef(to) : NULL;
    }
    if (kind == FAST_LIST && PyList_CheckExact(v)) return list_mapped(v, table);
    return NULL;
}

/* derived: (column, derive, fast) each: the fast path's value, else derive(attrs). */
static int derived_columns(PyObject *steps, PyObject *attrs, PyObject *out) {
    if (!tuple_of(steps, -1, "derived")) return FAILED;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(steps); i++) {
        PyObject *step = tuple_of(PyTuple_GET_ITEM(steps, i), 3, "derived step");
        if (step == NULL) return FAILED;
        PyObject *value = fast_value(PyTuple_GET_ITEM(step, 2), attrs);
        if (value == NULL) {
            if (PyErr_Occurred()) return FAILED;
            value = PyObject_CallOneArg(PyTuple_GET_ITEM(step, 1), attrs);
        }
        int status = set_new(out, PyTuple_GET_ITEM(step, 0), value);
        if (status != DONE) return status;
    }
    return DONE;
}

/* `x or 0` as a new reference. */
static PyObject *or_zero(PyObject *x, PyObject *zero) {
    int truth = PyObject_IsTrue(x);
    if (truth < 0) return NULL;
    PyObject *r = truth ? x : zero;
    Py_INCREF(r);
    return r;
}

/* total: (column, input, output, fn): fn(attrs, out), else (out[input] or 0) + (out[output] or 0) when
 * either is not None. */
static int total_column(PyObject *step, PyObject *attrs, PyObject *out) {
    if (!tuple_of(step, 4, "total")) return FAILED;
    PyObject *column = PyTuple_GET_ITEM(step, 0), *fn = PyTuple_GET_ITEM(step, 3);
    if (fn != Py_None) return set_new(out, column, call2(fn, attrs, out));
    Py_ssize_t i = position(out, PyTuple_GET_ITEM(step, 1)), j = i < 0 ? -1 : position(out, PyTuple_GET_ITEM(step, 2));
    if (j < 0) return FAILED;
    PyObject *a = Py_NewRef(PyList_GET_ITEM(out, i)), *b = Py_NewRef(PyList_GET_ITEM(out, j));
    int status = DONE;
    if (a != Py_None || b != Py_None) {
        PyObject *zero = PyLong_FromLong(0), *x = NULL, *y = NULL;
        if (zero != NULL && (x = or_zero(a, zero)) != NULL && (y = or_zero(b, zero)) != NULL)
            status = set_new(out, column, PyNumber_Add(x, y));
        else
            status = FAILED;
        Py_XDECREF(zero);
        Py_XDECREF(x);
        Py_XDECREF(y);
    }
    Py_DECREF(a);
    Py_DECREF(b);
    return status;
}

static int apply(PyObject *plan, PyObject *attrs, PyObject *out) {
    int status = single_columns(PyTuple_GET_ITEM(plan, P_STRS), 0, attrs, out);
    if (status == DONE) status = single_columns(PyTuple_GET_ITEM(plan, P_INTS), 1, attrs, out);
    if (status == DONE) status = multi_columns(PyTuple_GET_ITEM(plan, P_MULTI), attrs, out);
    if (status == DONE) status = derived_columns(PyTuple_GET_ITEM(plan, P_DERIVED), attrs, out);
    if (status == DONE) status = total_column(PyTuple_GET_ITEM(plan, P_TOTAL), attrs, out);
    return status;
}

/* The plan `plans` holds for the tuple of `attrs`'s keys, as a new reference; NULL with no error: none. */
static PyObject *plan_of(PyObject *plans, PyObject *attrs) {
    Py_ssize_t n = PyDict_GET_SIZE(attrs), pos = 0, i = 0;
    PyObject *keys = PyTuple_New(n), *key, *value;
    if (keys == NULL) return NULL;
    while (i < n && PyDict_Next(attrs, &pos, &key, &value)) {
        Py_INCREF(key);
        PyTuple_SET_ITEM(keys, i++, key);
    }
    PyObject *plan = NULL;
    if (i == n) { /* (a dict's size is its count of items) */
        plan = PyDict_GetItemWithError(plans, keys);
        Py_XINCREF(plan);
    }
    Py_DECREF(keys);
    return plan;
}

static PyObject *apply_plan(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_plan(plans, attrs) takes 2 arguments");
        return NULL;
    }
    PyObject *plans = args[0], *attrs = args[1];
    if (!PyDict_CheckExact(plans) || !PyDict_CheckExact(attrs)) Py_RETURN_NONE;
    PyObject *plan = plan_of(plans, attrs);
    if (plan == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    PyObject *out = NULL;
    if (!PyTuple_Check(plan) || PyTuple_GET_SIZE(plan) < P_FIELDS || !PyList_CheckExact(PyTuple_GET_ITEM(plan, P_ROW))) {
        bad_plan("row");
    } else if ((out = PyList_GetSlice(PyTuple_GET_ITEM(plan, P_ROW), 0, PY_SSIZE_T_MAX)) != NULL) {
        Py_INCREF(attrs); /* (a callable could drop the caller's last reference) */
        int status = apply(plan, attrs, out);
        Py_DECREF(attrs);
        if (status != DONE) {
            Py_CLEAR(out);
            if (status == UNDECIDED) {
                Py_DECREF(plan);
                Py_RETURN_NONE;
            }
        }
    }
    Py_DECREF(plan);
    return out;
}

static PyMethodDef METHODS[] = {
    {"apply_plan", (PyCFunction)(void (*)(void))apply_plan, METH_FASTCALL,
     "apply_plan(plans, attrs) -> list | None: normalize._python_apply_plan's row, or None where it does not "
     "decide."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_genai_plan", NULL, -1, METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__genai_plan(void) {
    PyObject *m = PyModule_Create(&MODULE);
    if (m != NULL && PyModule_AddIntConstant(m, "FORMAT", FORMAT) < 0) Py_CLEAR(m);
    return m;
}
