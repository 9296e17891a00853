/* A generational window of bytes keys in flat arrays (optional; see storage/key_window_native.py).
 *
 * The same window as `storage.dedupe.PureKeyWindow` (the reference: the two answer alike for any
 * sequence of calls, tests/collector/model/test_key_window_native.py): keys go into the current
 * generation; when it holds `generation_size` keys it becomes the newest old one and the oldest of
 * more than OLD_GENERATIONS is forgotten whole. Each generation is a ring entry of its own:
 *
 *   - an open-addressed table of 8-byte slots (32 bits of the key's hash, 1 + the offset of the key
 *     in the arena; 0 is empty), linear probing, at most 2/3 full (sized once: a generation never
 *     holds more than `generation_size` keys);
 *   - an arena of the keys by value: a varint length, then the bytes (any length, the empty key too).
 *   - a filter: 2 bits set per key stored in one 64-bit word of a power-of-two array (8-16 bits a key
 *     of a full generation), cleared when the generation is; a probe skips a generation whose filter
 *     says it cannot hold the key (~5% of the generations a new key asks pass it). `forget` leaves
 *     the bits set (a filter only ever says "may hold").
 *
 * Forgetting the oldest generation clears its table and empties its arena (whose memory is kept for
 * the next current generation: no allocation in the steady state). `forget` deletes a key from a
 * table by backward shift (no tombstones); its arena bytes stay until the generation is forgotten.
 *
 * The hash is Python's hash of the bytes object (cached in the object: the caller's set of the same
 * keys, if any, does not hash them again), or of the same bytes read from a buffer (`_packed` calls:
 * `_Py_HashBytes`, what hash(bytes) computes, so either form finds the other's keys). The batch calls
 * (`add_batch`, `first_unknown`, `remember_new` and the two `_packed` ones) take a list or a buffer
 * and make one pass in C: the writer thread holds the GIL for a batch once, not for a Python loop of
 * probes per key.
 *
 * At the windows' sizes (200-250k keys: ~3 MB of slots, ~10 MB of arenas) a new key's probe was a
 * cache miss per generation (perf: ~54% of `find` on the slot load). Now it reads five filter words
 * (~320 KB a window) and the current generation's slot, and a batch hashes its keys first, then
 * prefetches the filter words of the key PREFETCH_AHEAD places on and, half as far on, the slots the
 * filters point it to. Measured (in one process, the two builds alternating, 6 runs, medians of the
 * 25th-percentile batch): `add_batch` of 10k new span keys into a full 250k window 270-294 -> 82-84
 * ns a key; `first_unknown` of 14k content keys (half held) in a 200k window 350-402 -> 64-65 ns.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define OLD_GENERATIONS 4
#define GENERATIONS (OLD_GENERATIONS + 1)
#define ARENA_MIN 4096
#define PREFETCH_AHEAD 8
/* A buffer of at least this many keys is looked up without the GIL (`first_unknown_packed`; the content
 * store's ~14k keys a flush: py-spy --gil of the collector under the ingest bench put ~3% of its GIL
 * samples on that call, inflated by the thread being descheduled on a busy host while holding it). */
#define GIL_FREE_KEYS 1024

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)(address))
#endif

#if PY_VERSION_HEX >= 0x030E0000
#define HASH_BYTES Py_HashBuffer
#else
#if PY_VERSION_HEX >= 0x030D0000
/* 3.13 declares it only in its internal headers (pycore_pyhash.h), still exported: its prototype here, or C
 * takes the result for an int and a packed key's hash differs from its bytes object's (nox -s native-3.13). */
PyAPI_FUNC(Py_hash_t) _Py_HashBytes(const void *, Py_ssize_t);
#endif
#define HASH_BYTES _Py_HashBytes
#endif

typedef struct {
    uint32_t hash;
    uint32_t ref; /* 1 + offset of the key's record in the arena; 0: an empty slot */
} Slot;

typedef struct {
    Slot *slots;
    uint32_t n_slots;
    uint64_t *filter; /* 2 bits set per key stored (the slots' `hash`), in one of `filter_words` words */
    uint32_t filter_words; /* a power of two: 8-16 bits per key of a full generation */
    Py_ssize_t count;
    unsigned char *arena;
    size_t used, cap;
} Generation;

typedef struct {
    PyObject_HEAD
    Py_ssize_t capacity;
    Py_ssize_t generation_size;
    int n_generations; /* GENERATIONS, or 0 when capacity <= 0 (nothing is remembered) */
    int current;       /* ring index of the current generation; the next ones are the oldest first */
    int busy;          /* a call runs without the GIL (first_unknown_packed): any other call is refused */
    Generation generations[GENERATIONS];
} KeyWindow;

typedef struct {
    const char *data;
    size_t len;
    uint32_t hash;
} Key;

/* Set RuntimeError when a call of another thread runs on the window without the GIL: one caller at a time
 * (the writer's thread owns a window), checked since a second one would corrupt it, not just mis-answer. */
static int in_use(const KeyWindow *w) {
    if (!w->busy) return 0;
    PyErr_SetString(PyExc_RuntimeError, "the key window is in use by another thread");
    return 1;
}

static inline uint32_t folded(Py_hash_t h) { return (uint32_t)((uint64_t)h ^ ((uint64_t)h >> 32)); }

static int key_of(PyObject *obj, Key *key) {
    if (!PyBytes_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "window keys are bytes, not %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_hash_t h = PyObject_Hash(obj);
    if (h == -1) return -1;
    key->data = PyBytes_AS_STRING(obj);
    key->len = (size_t)PyBytes_GET_SIZE(obj);
    key->hash = folded(h);
    return 0;
}

/* The keys of `n` list items, into `keys`: how many lead up to the first that is not bytes (its error
 * cleared: the caller processes those first, then `raise_at` raises it, as one key at a time would). */
static Py_ssize_t keys_of(PyObject **items, Py_ssize_t n, Key *keys) {
    for (Py_ssize_t i = 0; i < n; i++) {
        if (key_of(items[i], &keys[i]) < 0) {
            PyErr_Clear();
            return i;
        }
    }
    return n;
}

static void raise_at(PyObject *item) {
    Key key;
    (void)key_of(item, &key);
}

/* How many `width`-byte keys a buffer holds back to back: -1 with ValueError unless `width` is positive
 * and divides its length. */
static Py_ssize_t packed_count(const Py_buffer *data, Py_ssize_t width) {
    if (width <= 0 || data->len % width) {
        PyErr_SetString(PyExc_ValueError, "packed keys: a positive width dividing the buffer's length");
        return -1;
    }
    return data->len / width;
}

static void packed_keys(const Py_buffer *data, Py_ssize_t width, Py_ssize_t n, Key *keys) {
    for (Py_ssize_t i = 0; i < n; i++) {
        keys[i].data = (const char *)data->buf + i * width;
        keys[i].len = (size_t)width;
        keys[i].hash = folded(HASH_BYTES(keys[i].data, width));
    }
}

static inline uint32_t home(uint32_t hash, uint32_t n_slots) { return (uint32_t)(((uint64_t)hash * n_slots) >> 32); }

static int record_equals(const Generation *g, uint32_t ref, const Key *key) {
    const unsigned char *p = g->arena + (ref - 1);
    size_t len = 0;
    int shift = 0;
    for (;;) { /* varint length */
        unsigned char b = *p++;
        len |= (size_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
        shift += 7;
    }
    return len == key->len && memcmp(p, key->data, len) == 0;
}

/* The slot holding `key` (returns 1) or the empty slot ending its probe sequence (returns 0). */
static int find(const Generation *g, const Key *key, uint32_t *pos) {
    uint32_t i = home(key->hash, g->n_slots);
    for (;;) {
        Slot s = g->slots[i];
        if (s.ref == 0) {
            *pos = i;
            return 0;
        }
        if (s.hash == key->hash && record_equals(g, s.ref, key)) {
            *pos = i;
            return 1;
        }
        if (++i == g->n_slots) i = 0;
    }
}

/* The filter word of `hash` and its two bits (the word from the hash's high bits after a multiply by an
 * odd constant, the bits from its low twelve: about independent of each other). */
static inline uint64_t *filter_word(const Generation *g, uint32_t hash) {
    return &g->filter[(uint32_t)(hash * 0x9E3779B1u) >> 16 & (g->filter_words - 1)];
}

static inline uint64_t filter_bits(uint32_t hash) { return (uint64_t)1 << (hash & 63) | (uint64_t)1 << (hash >> 6 & 63); }

/* False when the generation surely does not hold a key of this hash (no probe of its slots needed). */
static inline int may_hold(const Generation *g, uint32_t hash) {
    uint64_t bits = filter_bits(hash);
    return (*filter_word(g, hash) & bits) == bits;
}

/* Whether the window holds `key`; when not and `free_pos` is given, *free_pos is the current generation's
 * slot for it (found whatever the filter says: the key is to be stored there). */
static int held(const KeyWindow *w, const Key *key, uint32_t *free_pos) {
    uint32_t pos;
    const Generation *current = &w->generations[w->current];
    if (free_pos != NULL ? find(current, key, free_pos) : may_hold(current, key->hash) && find(current, key, &pos))
        return 1;
    for (int k = 1; k < w->n_generations; k++) {
        const Generation *g = &w->generations[(w->current + GENERATIONS - k) % GENERATIONS]; /* newest first */
        if (g->count && may_hold(g, key->hash) && find(g, key, &pos)) return 1;
    }
    return 0;
}

/* The two stages of a batch's prefetching (see the top): the filter words of a key PREFETCH_AHEAD on, then,
 * half as far on (the words loaded by now), the home slots of the generations whose filter may hold it
 * (and the current one's when the key is to be stored there: `storing`). */
static inline void prefetch_filters(const KeyWindow *w, uint32_t hash) {
    for (int k = 0; k < w->n_generations; k++) PREFETCH(filter_word(&w->generations[k], hash));
}

static inline void prefetch_slots(const KeyWindow *w, uint32_t hash, int storing) {
    for (int k = 0; k < w->n_generations; k++) {
        const Generation *g = &w->generations[k];
        if ((storing && k == w->current) || (g->count && may_hold(g, hash))) PREFETCH(&g->slots[home(hash, g->n_slots)]);
    }
}

static inline void prefetch_batch(const KeyWindow *w, const Key *batch, Py_ssize_t i, Py_ssize_t n, int storing) {
    if (i + PREFETCH_AHEAD < n) prefetch_filters(w, batch[i + PREFETCH_AHEAD].hash);
    if (i + PREFETCH_AHEAD / 2 < n) prefetch_slots(w, batch[i + PREFETCH_AHEAD / 2].hash, storing);
}

static int store(Generation *g, const Key *key, uint32_t pos) {
    size_t need = g->used + 10 + key->len; /* a varint of a size_t is at most 10 bytes */
    if (need > UINT32_MAX - 1) {           /* offsets are 32 bits: ~4 GiB of keys in one generation */
        PyErr_SetString(PyExc_MemoryError, "a window generation would hold more than 4 GiB of keys");
        return -1;
    }
    if (need > g->cap) { /* grown by a quarter (kept when the generation is reused: rare after warm-up) */
        size_t cap = g->cap + g->cap / 4;
        if (cap < need) cap = need;
        if (cap < ARENA_MIN) cap = ARENA_MIN;
        unsigned char *arena = PyMem_Realloc(g->arena, cap);
        if (arena == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        g->arena = arena;
        g->cap = cap;
    }
    uint32_t ref = (uint32_t)g->used + 1;
    unsigned char *p = g->arena + g->used;
    size_t len = key->len;
    do {
        unsigned char b = len & 0x7f;
        len >>= 7;
        *p++ = b | (len ? 0x80 : 0);
    } while (len);
    memcpy(p, key->data, key->len);
    g->used = (size_t)(p - g->arena) + key->len;
    g->slots[pos].hash = key->hash;
    g->slots[pos].ref = ref;
    *filter_word(g, key->hash) |= filter_bits(key->hash);
    g->count++;
    return 0;
}

/* The current generation is full: it becomes the newest old one, the oldest is forgotten whole. */
static void roll(KeyWindow *w) {
    w->current = (w->current + 1) % GENERATIONS;
    Generation *g = &w->generations[w->current];
    memset(g->slots, 0, (size_t)g->n_slots * sizeof(Slot));
    memset(g->filter, 0, (size_t)g->filter_words * sizeof(uint64_t));
    g->count = 0;
    g->used = 0;
}

/* Remember `key` in the current generation (pos: its empty slot there), rolling when full. */
static int remember_at(KeyWindow *w, const Key *key, uint32_t pos) {
    if (store(&w->generations[w->current], key, pos) < 0) return -1;
    if (w->generations[w->current].count >= w->generation_size) roll(w);
    return 0;
}

/* `add`: 1 when the key was new (now remembered), 0 when held, -1 on error. */
static int add_key(KeyWindow *w, const Key *key) {
    uint32_t pos;
    if (w->n_generations == 0) return 1;
    if (held(w, key, &pos)) return 0;
    return remember_at(w, key, pos) < 0 ? -1 : 1;
}

/* Deletes slot `i` (its key's filter bits stay set: a filter answers "may hold", never "holds"). */
static void delete_at(Generation *g, uint32_t i) {
    uint32_t n = g->n_slots, j = i;
    g->slots[i].ref = 0;
    for (;;) { /* backward shift: move up each later slot of the run whose home is not in (i, j] */
        if (++j == n) j = 0;
        if (g->slots[j].ref == 0) break;
        uint32_t k = home(g->slots[j].hash, n);
        int stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            g->slots[i] = g->slots[j];
            g->slots[j].ref = 0;
            i = j;
        }
    }
    g->count--;
}

static void window_free(KeyWindow *w) {
    for (int k = 0; k < GENERATIONS; k++) {
        PyMem_Free(w->generations[k].slots);
        PyMem_Free(w->generations[k].filter);
        PyMem_Free(w->generations[k].arena);
        w->generations[k].slots = NULL;
        w->generations[k].filter = NULL;
        w->generations[k].arena = NULL;
    }
}

static PyObject *KeyWindow_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"capacity", NULL};
    Py_ssize_t capacity;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n", kwlist, &capacity)) return NULL;
    KeyWindow *w = (KeyWindow *)type->tp_alloc(type, 0);
    if (w == NULL) return NULL;
    w->capacity = capacity;
    w->generation_size = capacity > 0 ? (capacity + OLD_GENERATIONS - 1) / OLD_GENERATIONS : 1;
    if (capacity <= 0) return (PyObject *)w;
    if (w->generation_size > (Py_ssize_t)(UINT32_MAX / 2)) {
        Py_DECREF(w);
        PyErr_SetString(PyExc_OverflowError, "window capacity too large");
        return NULL;
    }
    uint32_t n_slots = (uint32_t)(w->generation_size + w->generation_size / 2 + 1); /* at most 2/3 full */
    uint32_t filter_words = 1;
    while (filter_words < 0x10000 && (Py_ssize_t)filter_words * 8 < w->generation_size) filter_words *= 2;
    for (int k = 0; k < GENERATIONS; k++) {
        w->generations[k].n_slots = n_slots;
        w->generations[k].slots = PyMem_Calloc(n_slots, sizeof(Slot));
        w->generations[k].filter_words = filter_words;
        w->generations[k].filter = PyMem_Calloc(filter_words, sizeof(uint64_t));
        if (w->generations[k].slots == NULL || w->generations[k].filter == NULL) {
            Py_DECREF(w);
            return PyErr_NoMemory();
        }
    }
    w->n_generations = GENERATIONS;
    return (PyObject *)w;
}

static void KeyWindow_dealloc(KeyWindow *w) {
    window_free(w);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static Py_ssize_t KeyWindow_len(KeyWindow *w) {
    if (in_use(w)) return -1;
    Py_ssize_t n = 0;
    for (int k = 0; k < w->n_generations; k++) n += w->generations[k].count;
    return n;
}

static int KeyWindow_contains(KeyWindow *w, PyObject *obj) {
    if (in_use(w)) return -1;
    if (!PyBytes_Check(obj)) return 0; /* never a key (the reference's sets answer False too) */
    Key key;
    if (key_of(obj, &key) < 0) return -1;
    return w->n_generations && held(w, &key, NULL);
}

static PyObject *KeyWindow_add(KeyWindow *w, PyObject *obj) {
    Key key;
    if (in_use(w)) return NULL;
    if (key_of(obj, &key) < 0) return NULL;
    int fresh = add_key(w, &key);
    return fresh < 0 ? NULL : PyBool_FromLong(fresh);
}

static PyObject *KeyWindow_add_batch(KeyWindow *w, PyObject *keys) {
    if (in_use(w)) return NULL;
    PyObject *seq = PySequence_Fast(keys, "add_batch takes a sequence of bytes");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *result = PyList_New(n);
    Key *batch = PyMem_Malloc(sizeof(Key) * (size_t)(n ? n : 1));
    if (result == NULL || batch == NULL) {
        if (batch == NULL) PyErr_NoMemory();
        Py_CLEAR(result);
        goto done;
    }
    Py_ssize_t valid = keys_of(items, n, batch);
    for (Py_ssize_t i = 0; i < valid; i++) {
        prefetch_batch(w, batch, i, valid, 1);
        int fresh = add_key(w, &batch[i]);
        if (fresh < 0) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, Py_NewRef(fresh ? Py_True : Py_False));
    }
    if (valid < n) {
        raise_at(items[valid]);
        Py_CLEAR(result);
    }
done:
    PyMem_Free(batch);
    Py_DECREF(seq);
    return result;
}

/* first_unknown's answers for `n` keys into `fresh` (touches no Python object: runs without the GIL for a
 * buffer's keys); `seen`: 2n + 1 zeroed slots, a table of the batch's indexes that dedupes it (keys held by
 * the window never enter). */
static void first_unknown_flags(const KeyWindow *w, const Key *batch, Py_ssize_t n, Py_ssize_t *seen, char *fresh) {
    size_t n_slots = (size_t)n * 2 + 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        prefetch_batch(w, batch, i, n, 0);
        fresh[i] = !(w->n_generations && held(w, &batch[i], NULL));
        if (!fresh[i]) continue;
        size_t s = (size_t)(((uint64_t)batch[i].hash * n_slots) >> 32);
        while (seen[s]) {
            const Key *other = &batch[seen[s] - 1];
            if (other->hash == batch[i].hash && other->len == batch[i].len &&
                memcmp(other->data, batch[i].data, other->len) == 0) {
                fresh[i] = 0;
                break;
            }
            if (++s == n_slots) s = 0;
        }
        if (fresh[i]) seen[s] = i + 1;
    }
}

static PyObject *bool_list(const char *flags, Py_ssize_t n) {
    PyObject *result = PyList_New(n);
    for (Py_ssize_t i = 0; i < n && result != NULL; i++) PyList_SET_ITEM(result, i, Py_NewRef(flags[i] ? Py_True : Py_False));
    return result;
}

/* first_unknown of `n` keys (of a list or a buffer: `data`, released without the GIL when given and `n` is
 * at least GIL_FREE_KEYS; then hashed there too). */
static PyObject *first_unknown_of(KeyWindow *w, Key *batch, Py_ssize_t n, const Py_buffer *data, Py_ssize_t width) {
    Py_ssize_t *seen = PyMem_RawCalloc((size_t)n * 2 + 1, sizeof(Py_ssize_t));
    char *flags = PyMem_RawMalloc((size_t)(n ? n : 1));
    PyObject *result = NULL;
    if (seen == NULL || flags == NULL) {
        PyErr_NoMemory();
    } else if (data != NULL && n >= GIL_FREE_KEYS) {
        w->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        packed_keys(data, width, n, batch);
        first_unknown_flags(w, batch, n, seen, flags);
        Py_END_ALLOW_THREADS
        w->busy = 0;
    } else {
        if (data != NULL) packed_keys(data, width, n, batch);
        first_unknown_flags(w, batch, n, seen, flags);
    }
    if (seen != NULL && flags != NULL) result = bool_list(flags, n);
    PyMem_RawFree(seen);
    PyMem_RawFree(flags);
    return result;
}

static PyObject *KeyWindow_first_unknown(KeyWindow *w, PyObject *keys) {
    if (in_use(w)) return NULL;
    PyObject *seq = PySequence_Fast(keys, "first_unknown takes a sequence of bytes");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *result = NULL;
    Key *batch = PyMem_Malloc(sizeof(Key) * (size_t)(n ? n : 1));
    Py_ssize_t valid = batch == NULL ? -1 : keys_of(items, n, batch);
    if (batch == NULL) {
        PyErr_NoMemory();
    } else if (valid < n) {
        raise_at(items[valid]); /* nothing remembered: no key is taken before the error */
    } else {
        result = first_unknown_of(w, batch, n, NULL, 0);
    }
    PyMem_Free(batch);
    Py_DECREF(seq);
    return result;
}

/* remember_new of the keys `keep` marks (all when NULL): each added to the current generation unless
 * already there (as the reference's set.update). */
static int remember_keys(KeyWindow *w, const Key *batch, Py_ssize_t n, PyObject **keep) {
    for (Py_ssize_t i = 0; i < n && w->n_generations; i++) {
        uint32_t pos;
        if (keep != NULL && keep[i] != Py_True) continue;
        if (i + PREFETCH_AHEAD < n) {
            Generation *g = &w->generations[w->current];
            PREFETCH(&g->slots[home(batch[i + PREFETCH_AHEAD].hash, g->n_slots)]);
        }
        if (!find(&w->generations[w->current], &batch[i], &pos) && remember_at(w, &batch[i], pos) < 0) return -1;
    }
    return 0;
}

static PyObject *KeyWindow_remember_new(KeyWindow *w, PyObject *keys) {
    if (in_use(w)) return NULL;
    PyObject *seq = PySequence_Fast(keys, "remember_new takes a sequence of bytes");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Key *batch = PyMem_Malloc(sizeof(Key) * (size_t)(n ? n : 1));
    int failed = batch == NULL;
    if (failed) {
        PyErr_NoMemory();
    } else {
        Py_ssize_t valid = keys_of(items, n, batch);
        failed = remember_keys(w, batch, valid, NULL) < 0;
        if (!failed && valid < n && w->n_generations) {
            raise_at(items[valid]);
            failed = 1;
        }
    }
    PyMem_Free(batch);
    Py_DECREF(seq);
    if (failed) return NULL;
    Py_RETURN_NONE;
}

/* first_unknown_packed(data, width) -> list[bool]: first_unknown of the `width`-byte keys `data` holds back
 * to back (a buffer: no bytes object per key; the content store's keys, storage/content.py). */
static PyObject *KeyWindow_first_unknown_packed(KeyWindow *w, PyObject *args) {
    if (in_use(w)) return NULL;
    Py_buffer data;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "y*n", &data, &width)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = packed_count(&data, width);
    Key *batch = n < 0 ? NULL : PyMem_RawMalloc(sizeof(Key) * (size_t)(n ? n : 1));
    if (n >= 0 && batch == NULL) PyErr_NoMemory();
    if (batch != NULL) result = first_unknown_of(w, batch, n, &data, width);
    PyMem_RawFree(batch);
    PyBuffer_Release(&data);
    return result;
}

/* Whether `flags` is a list of `n` bools (checked before any key is remembered: nothing half done). */
static int bool_flags(PyObject *flags, Py_ssize_t n) {
    if (PyList_GET_SIZE(flags) != n) return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!PyBool_Check(PyList_GET_ITEM(flags, i))) return 0;
    return 1;
}

/* remember_new_packed(data, width, keep): remember_new of the keys of `data` (as first_unknown_packed
 * reads them) that `keep` (a list of bools, one a key) marks True. */
static PyObject *KeyWindow_remember_new_packed(KeyWindow *w, PyObject *args) {
    if (in_use(w)) return NULL;
    Py_buffer data;
    Py_ssize_t width;
    PyObject *keep;
    if (!PyArg_ParseTuple(args, "y*nO!", &data, &width, &PyList_Type, &keep)) return NULL;
    int failed = 1;
    Py_ssize_t n = packed_count(&data, width);
    Key *batch = NULL;
    if (n >= 0 && !bool_flags(keep, n)) {
        PyErr_SetString(PyExc_ValueError, "remember_new_packed: keep is a list of bools, one a key");
    } else if (n >= 0) {
        batch = PyMem_Malloc(sizeof(Key) * (size_t)(n ? n : 1));
        if (batch == NULL) {
            PyErr_NoMemory();
        } else {
            packed_keys(&data, width, n, batch);
            failed = remember_keys(w, batch, n, PySequence_Fast_ITEMS(keep)) < 0;
        }
    }
    PyMem_Free(batch);
    PyBuffer_Release(&data);
    if (failed) return NULL;
    Py_RETURN_NONE;
}

static PyObject *KeyWindow_forget(KeyWindow *w, PyObject *keys) {
    if (in_use(w)) return NULL;
    PyObject *it = PyObject_GetIter(keys);
    if (it == NULL) return NULL;
    PyObject *obj;
    while ((obj = PyIter_Next(it)) != NULL) {
        Key key;
        int bad = key_of(obj, &key) < 0;
        for (int k = 0; k < w->n_generations && !bad; k++) {
            uint32_t pos;
            Generation *g = &w->generations[k];
            if (g->count && find(g, &key, &pos)) delete_at(g, pos);
        }
        Py_DECREF(obj);
        if (bad) break;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyObject *KeyWindow_nbytes(KeyWindow *w, void *closure) {
    if (in_use(w)) return NULL;
    size_t n = 0;
    for (int k = 0; k < w->n_generations; k++) {
        const Generation *g = &w->generations[k];
        n += (size_t)g->n_slots * sizeof(Slot) + (size_t)g->filter_words * sizeof(uint64_t) + g->cap;
    }
    return PyLong_FromSize_t(n);
}

static PyObject *KeyWindow_capacity(KeyWindow *w, void *closure) { return PyLong_FromSsize_t(w->capacity); }

static PyMethodDef METHODS[] = {
    {"add", (PyCFunction)KeyWindow_add, METH_O, "add(key) -> bool: remember key; False when it was held (a duplicate)."},
    {"add_batch", (PyCFunction)KeyWindow_add_batch, METH_O, "add_batch(keys) -> list[bool]: [add(k) for k in keys]."},
    {"first_unknown", (PyCFunction)KeyWindow_first_unknown, METH_O,
     "first_unknown(keys) -> list[bool]: True at the first occurrence of each key not held (nothing is remembered)."},
    {"remember_new", (PyCFunction)KeyWindow_remember_new, METH_O,
     "remember_new(keys): remember keys not held (each added to the current generation unless already there)."},
    {"first_unknown_packed", (PyCFunction)KeyWindow_first_unknown_packed, METH_VARARGS,
     "first_unknown_packed(data, width) -> list[bool]: first_unknown of the width-byte keys data holds back to back."},
    {"remember_new_packed", (PyCFunction)KeyWindow_remember_new_packed, METH_VARARGS,
     "remember_new_packed(data, width, keep): remember_new of the keys of data that keep (list[bool]) marks."},
    {"forget", (PyCFunction)KeyWindow_forget, METH_O, "forget(keys): stop remembering keys, in every generation."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef GETSET[] = {
    {"capacity", (getter)KeyWindow_capacity, NULL, "the number of newest keys always remembered", NULL},
    {"nbytes", (getter)KeyWindow_nbytes, NULL, "bytes allocated for the tables, filters and arenas", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods SEQUENCE = {
    .sq_length = (lenfunc)KeyWindow_len,
    .sq_contains = (objobjproc)KeyWindow_contains,
};

static PyTypeObject KeyWindowType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "llmscope_collector.storage._key_window.KeyWindow",
    .tp_basicsize = sizeof(KeyWindow),
    .tp_dealloc = (destructor)KeyWindow_dealloc,
    .tp_as_sequence = &SEQUENCE,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "KeyWindow(capacity): remembers at least the `capacity` newest bytes keys (see the module source).",
    .tp_methods = METHODS,
    .tp_getset = GETSET,
    .tp_new = KeyWindow_new,
};

/* span_keys(project, trace_offsets, trace_data, span_offsets, span_data, start, length) -> list[bytes]:
 * `storage.dedupe.span_keys` of `length` rows read from two Arrow string arrays' buffers (int32 offsets
 * and UTF-8 data; `start`: the arrays' offset, the same for both; no nulls): the writer thread made two
 * lists of str objects and hex-decoded them in Python, per span (~1 us a span), for keys it only hands
 * to a window. Same keys for any ids (tests/collector/model/test_key_window_native.py): 32 + 16 hex
 * digits give b"h" + the 24 id bytes + project, anything else b"t" + trace + "/" + span + "/" + project. */
/* A byte's hex digit value, or -1: filled at module init (a lookup per digit, no branches on its range). */
static signed char HEX_VALUE[256];

static void init_hex_values(void) {
    memset(HEX_VALUE, -1, sizeof HEX_VALUE);
    for (int i = 0; i < 10; i++) HEX_VALUE['0' + i] = (signed char)i;
    for (int i = 0; i < 6; i++) HEX_VALUE['a' + i] = HEX_VALUE['A' + i] = (signed char)(10 + i);
}

/* The bytes of `n` hex digits at `text` into `out` (n / 2 bytes); 0 when one is not a hex digit. */
static int unhex(const unsigned char *text, Py_ssize_t n, unsigned char *out) {
    int bad = 0;
    for (Py_ssize_t i = 0; i < n; i += 2) {
        int high = HEX_VALUE[text[i]], low = HEX_VALUE[text[i + 1]];
        bad |= high | low; /* negative once any digit is not one */
        *out++ = (unsigned char)(((unsigned)high & 0xfu) << 4 | ((unsigned)low & 0xfu));
    }
    return bad >= 0;
}

typedef struct {
    Py_buffer offsets, data;
} StringBuffers;

/* Row `i`'s text of a string array; -1 with ValueError when its offsets leave the buffers. */
static int string_at(const StringBuffers *column, Py_ssize_t i, const unsigned char **text, Py_ssize_t *len) {
    const int32_t *offsets = (const int32_t *)column->offsets.buf;
    if ((i + 2) * (Py_ssize_t)sizeof(int32_t) > column->offsets.len) goto bad;
    int32_t begin = offsets[i], end = offsets[i + 1];
    if (begin < 0 || end < begin || end > column->data.len) goto bad;
    *text = (const unsigned char *)column->data.buf + begin;
    *len = end - begin;
    return 0;
bad:
    PyErr_SetString(PyExc_ValueError, "span_keys: string offsets outside their buffers");
    return -1;
}

static PyObject *one_span_key(const char *project, Py_ssize_t project_len, const unsigned char *trace,
                              Py_ssize_t trace_len, const unsigned char *span, Py_ssize_t span_len) {
    unsigned char ids[24];
    if (trace_len == 32 && span_len == 16 && unhex(trace, 32, ids) && unhex(span, 16, ids + 16)) {
        PyObject *key = PyBytes_FromStringAndSize(NULL, 1 + 24 + project_len);
        if (key == NULL) return NULL;
        char *out = PyBytes_AS_STRING(key);
        out[0] = 'h';
        memcpy(out + 1, ids, 24);
        memcpy(out + 25, project, (size_t)project_len);
        return key;
    }
    PyObject *key = PyBytes_FromStringAndSize(NULL, 1 + trace_len + 1 + span_len + 1 + project_len);
    if (key == NULL) return NULL;
    char *out = PyBytes_AS_STRING(key);
    *out++ = 't';
    memcpy(out, trace, (size_t)trace_len);
    out += trace_len;
    *out++ = '/';
    memcpy(out, span, (size_t)span_len);
    out += span_len;
    *out++ = '/';
    memcpy(out, project, (size_t)project_len);
    return key;
}

static PyObject *span_keys(PyObject *module, PyObject *args) {
    const char *project;
    Py_ssize_t project_len, start, length;
    StringBuffers traces, spans;
    if (!PyArg_ParseTuple(args, "y#y*y*y*y*nn", &project, &project_len, &traces.offsets, &traces.data,
                          &spans.offsets, &spans.data, &start, &length))
        return NULL;
    PyObject *keys = NULL;
    if (start < 0 || length < 0) {
        PyErr_SetString(PyExc_ValueError, "span_keys: negative start or length");
        goto done;
    }
    keys = PyList_New(length);
    if (keys == NULL) goto done;
    for (Py_ssize_t i = 0; i < length; i++) {
        const unsigned char *trace, *span;
        Py_ssize_t trace_len, span_len;
        if (string_at(&traces, start + i, &trace, &trace_len) < 0 || string_at(&spans, start + i, &span, &span_len) < 0)
            goto fail;
        PyObject *key = one_span_key(project, project_len, trace, trace_len, span, span_len);
        if (key == NULL) goto fail;
        PyList_SET_ITEM(keys, i, key);
    }
    goto done;
fail:
    Py_CLEAR(keys);
done:
    PyBuffer_Release(&traces.offsets);
    PyBuffer_Release(&traces.data);
    PyBuffer_Release(&spans.offsets);
    PyBuffer_Release(&spans.data);
    return keys;
}

static PyMethodDef MODULE_METHODS[] = {
    {"span_keys", span_keys, METH_VARARGS,
     "span_keys(project, trace_offsets, trace_data, span_offsets, span_data, start, length) -> list[bytes]"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_key_window", NULL, -1, MODULE_METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__key_window(void) {
    init_hex_values();
    if (PyType_Ready(&KeyWindowType) < 0) return NULL;
    PyObject *m = PyModule_Create(&MODULE);
    if (m == NULL) return NULL;
    Py_INCREF(&KeyWindowType);
    if (PyModule_AddObject(m, "KeyWindow", (PyObject *)&KeyWindowType) < 0) {
        Py_DECREF(&KeyWindowType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
