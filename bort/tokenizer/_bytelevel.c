/* bort.tokenizer._bytelevel: GPT-2's pre-tokenization written out by hand, plus a cache piece -> ids.

Why: tiktoken spends most of its time splitting text with GPT-2's regex and building Python lists; GluonNLP
is fast on warm text only because it caches the BPE of every word. This module does what both do best: a
hand-written splitter equal to the regex, a cache of the ids of every piece seen, and a Python callable (the
tiktoken core's BPE of one piece) asked only for pieces not in the cache.

The split equals `re.findall` of
    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
(leftmost-first alternation, every alternative greedy) with the character classes of a table built by the
`regex` module itself (bort/tokenizer/native_bpe.py). At a match start i, with c = text[i]:
  - c is an apostrophe followed by s, t, re, ve, m, ll or d (case-sensitive): that contraction;
  - c is U+0020 followed by a letter, number or other character: the space plus the run of that class;
  - c is a letter, number or other character: the run of its class (an apostrophe is "other", so runs of
    other characters go straight through apostrophes);
  - c is whitespace, with [i, j) the maximal whitespace run from i: \s+(?!\S) takes [i, j) when j is the end
    of the text; else it backs off to [i, j-1), which it may only do when j-i >= 2 (the last whitespace then
    starts the next match, where a lone U+0020 joins the following word); else \s+ takes [i, j).
Every position matches one of these, so the pieces tile the text.

Strings are read in their own storage (1, 2 or 4 bytes a character): no UTF-8 copy is made or cached on the
str. A piece is hashed on its code points; it is spelt in UTF-8 only when the cache misses. Lone surrogates
(which have no UTF-8 form) raise LoneSurrogateError(text_index, character_offset). The GIL is held
throughout: the cache and the int objects are shared state.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define NUM_CODE_POINTS 0x110000

/* Character classes, as in the table given to the constructor (SURROGATE is set here, not by the caller). */
enum { CLASS_OTHER = 0, CLASS_LETTER = 1, CLASS_NUMBER = 2, CLASS_SPACE = 3, CLASS_SURROGATE = 4 };

/* Pieces longer than this are encoded but not cached: long runs (a row of dashes, base64) are rarely repeated
   and would crowd the cache out. */
#define MAX_CACHED_PIECE 128
#define INITIAL_SLOTS 4096

#if PY_VERSION_HEX < 0x03090000
#define CALL_ONE_ARG(callable, arg) PyObject_CallFunctionObjArgs((callable), (arg), NULL)
#else
#define CALL_ONE_ARG(callable, arg) PyObject_CallOneArg((callable), (arg))
#endif

static PyObject *LoneSurrogateError;

/* ------------------------------------------------------------------------------------------ growable ids */

typedef struct {
    uint32_t *data;
    size_t len, cap;
} IdBuffer;

/* Make room for `extra` more uint32 after the first `len` of *data (capacity *cap, first size `initial`). */
static int
grow_u32(uint32_t **data, size_t *cap, size_t len, size_t extra, size_t initial)
{
    if (len + extra <= *cap)
        return 0;
    size_t new_cap = *cap ? *cap : initial;
    while (new_cap < len + extra)
        new_cap *= 2;
    uint32_t *grown = PyMem_Realloc(*data, new_cap * sizeof(uint32_t));
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *data = grown;
    *cap = new_cap;
    return 0;
}

static int
ids_reserve(IdBuffer *buf, size_t extra)
{
    return grow_u32(&buf->data, &buf->cap, buf->len, extra, 256);
}

static int
ids_extend(IdBuffer *buf, const uint32_t *ids, size_t count)
{
    if (ids_reserve(buf, count) < 0)
        return -1;
    memcpy(buf->data + buf->len, ids, count * sizeof(uint32_t));
    buf->len += count;
    return 0;
}

/* ------------------------------------------------------------------------------------------ text access */

/* One str as the splitter sees it. */
typedef struct {
    int kind;
    const void *data;
    Py_ssize_t length;
    const unsigned char *classes;
} Text;

static inline Py_UCS4
char_at(const Text *text, Py_ssize_t index)
{
    return PyUnicode_READ(text->kind, text->data, index);
}

static inline int
class_at(const Text *text, Py_ssize_t index)
{
    return text->classes[char_at(text, index)];
}

static int
text_init(Text *text, PyObject *str, const unsigned char *classes)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(str) < 0)
        return -1;
#endif
    text->kind = PyUnicode_KIND(str);
    text->data = PyUnicode_DATA(str);
    text->length = PyUnicode_GET_LENGTH(str);
    text->classes = classes;
    return 0;
}

/* ------------------------------------------------------------------------------------------ the splitter */

static Py_ssize_t
run_end(const Text *text, Py_ssize_t index, int cls)
{
    while (index < text->length && class_at(text, index) == cls)
        index++;
    return index;
}

/* Length of the contraction ('s 't 're 've 'm 'll 'd) at `index`, which holds an apostrophe, or 0. */
static Py_ssize_t
contraction_length(const Text *text, Py_ssize_t index)
{
    if (index + 1 >= text->length)
        return 0;
    Py_UCS4 second = char_at(text, index + 1);
    if (second == 's' || second == 't' || second == 'm' || second == 'd')
        return 2;
    if (index + 2 >= text->length)
        return 0;
    Py_UCS4 third = char_at(text, index + 2);
    if ((second == 'r' && third == 'e') || (second == 'v' && third == 'e') || (second == 'l' && third == 'l'))
        return 3;
    return 0;
}

/* End of the piece that starts at `start` (< length), or -1 when the character there is a lone surrogate. */
static Py_ssize_t
piece_end(const Text *text, Py_ssize_t start)
{
    Py_UCS4 first = char_at(text, start);
    if (first == '\'') {
        Py_ssize_t contraction = contraction_length(text, start);
        if (contraction)
            return start + contraction;
    }
    if (first == ' ' && start + 1 < text->length) {
        int next = class_at(text, start + 1);
        if (next == CLASS_LETTER || next == CLASS_NUMBER || next == CLASS_OTHER)
            return run_end(text, start + 1, next);
    }
    int cls = text->classes[first];
    if (cls == CLASS_SURROGATE)
        return -1;
    if (cls != CLASS_SPACE)
        return run_end(text, start + 1, cls);
    Py_ssize_t end = run_end(text, start + 1, CLASS_SPACE);
    if (end == text->length || end - start == 1)
        return end;
    return end - 1;
}

/* ------------------------------------------------------------------------------------------ the cache */

/* An open-addressing table. Keys (code points) and values (ids) live in one arena of uint32, so a slot holds
   offsets, and growing the arena or the table moves no pointers. key_len == 0 marks an empty slot (pieces are
   never empty). */
typedef struct {
    uint64_t hash;
    uint32_t offset;  /* arena[offset .. offset+key_len) = code points, then ids_len ids */
    uint32_t key_len;
    uint32_t ids_len;
} Slot;

typedef struct {
    PyObject_HEAD
    unsigned char *classes;  /* NUM_CODE_POINTS entries */
    PyObject *miss;          /* callable: UTF-8 bytes of one piece -> ids */
    PyObject **id_objects;   /* the int object of every id, made once, so a list is filled by INCREF */
    Py_ssize_t vocab_size;
    Slot *slots;
    size_t num_slots;        /* a power of two */
    size_t num_entries;
    uint32_t *arena;
    size_t arena_len, arena_cap;  /* in uint32 */
    size_t max_entries;
    size_t max_arena;             /* in uint32 */
    unsigned long long hits, misses, clears;
} PieceCache;

/* Buffers of one call. Not kept on the PieceCache: the miss callable runs Python code, during which another
   thread may call the same PieceCache (the cache itself is only touched between Python calls, so it stays
   consistent). */
typedef struct {
    IdBuffer ids;       /* the current text's ids */
    IdBuffer miss_ids;  /* ids of one missed piece */
    char *utf8;         /* UTF-8 of one missed piece */
    size_t utf8_cap;
} Scratch;

static void
scratch_free(Scratch *scratch)
{
    PyMem_Free(scratch->ids.data);
    PyMem_Free(scratch->miss_ids.data);
    PyMem_Free(scratch->utf8);
}

/* FNV-1a over whole code points, so a piece hashes the same whatever the storage kind of its str. */
static uint64_t
piece_hash(const Text *text, Py_ssize_t start, Py_ssize_t end)
{
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (Py_ssize_t i = start; i < end; i++)
        hash = (hash ^ char_at(text, i)) * 0x100000001b3ULL;
    return hash;
}

/* FNV's low bits mix poorly; the slot index comes from the finaliser of MurmurHash3. */
static size_t
slot_index(uint64_t hash, size_t mask)
{
    hash ^= hash >> 33;
    hash *= 0xff51afd7ed558ccdULL;
    hash ^= hash >> 33;
    return (size_t)hash & mask;
}

static int
key_equals(const PieceCache *self, const Slot *slot, const Text *text, Py_ssize_t start, Py_ssize_t end)
{
    if (slot->key_len != (uint32_t)(end - start))
        return 0;
    const uint32_t *key = self->arena + slot->offset;
    for (Py_ssize_t i = start; i < end; i++)
        if (*key++ != char_at(text, i))
            return 0;
    return 1;
}

/* The slot holding the piece, or the empty slot where it would go. */
static Slot *
find_slot(PieceCache *self, uint64_t hash, const Text *text, Py_ssize_t start, Py_ssize_t end)
{
    size_t mask = self->num_slots - 1;
    for (size_t index = slot_index(hash, mask);; index = (index + 1) & mask) {
        Slot *slot = &self->slots[index];
        if (slot->key_len == 0 || (slot->hash == hash && key_equals(self, slot, text, start, end)))
            return slot;
    }
}

static int
grow_slots(PieceCache *self)
{
    size_t num_slots = self->num_slots * 2, mask = num_slots - 1;
    Slot *slots = PyMem_Calloc(num_slots, sizeof(Slot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t old = 0; old < self->num_slots; old++) {
        if (self->slots[old].key_len == 0)
            continue;
        size_t index = slot_index(self->slots[old].hash, mask);
        while (slots[index].key_len != 0)
            index = (index + 1) & mask;
        slots[index] = self->slots[old];
    }
    PyMem_Free(self->slots);
    self->slots = slots;
    self->num_slots = num_slots;
    return 0;
}

/* Forget every piece (the cache is only ever a shortcut, so this is always safe). */
static void
clear_cache(PieceCache *self)
{
    memset(self->slots, 0, self->num_slots * sizeof(Slot));
    self->num_entries = 0;
    self->arena_len = 0;
    self->clears++;
}

static int
reserve_arena(PieceCache *self, size_t extra)
{
    return grow_u32(&self->arena, &self->arena_cap, self->arena_len, extra, 1 << 16);
}

/* Store piece -> ids; when the limits would be passed the cache is emptied first. */
static int
cache_insert(PieceCache *self, uint64_t hash, const Text *text, Py_ssize_t start, Py_ssize_t end,
             const uint32_t *ids, size_t num_ids)
{
    size_t key_len = (size_t)(end - start), need = key_len + num_ids;
    if (self->num_entries + 1 > self->max_entries || self->arena_len + need > self->max_arena)
        clear_cache(self);
    if (need > self->max_arena || self->max_entries == 0)
        return 0;  /* does not fit even in an empty cache */
    if ((self->num_entries + 1) * 2 > self->num_slots && grow_slots(self) < 0)
        return -1;
    if (reserve_arena(self, need) < 0)
        return -1;
    Slot *slot = find_slot(self, hash, text, start, end);
    if (slot->key_len != 0)
        return 0;  /* another thread stored it while the miss callable ran */
    uint32_t *stored = self->arena + self->arena_len;
    for (Py_ssize_t i = start; i < end; i++)
        *stored++ = char_at(text, i);
    memcpy(stored, ids, num_ids * sizeof(uint32_t));
    slot->hash = hash;
    slot->offset = (uint32_t)self->arena_len;
    slot->key_len = (uint32_t)key_len;
    slot->ids_len = (uint32_t)num_ids;
    self->arena_len += need;
    self->num_entries++;
    return 0;
}

/* ------------------------------------------------------------------------------------------ cache misses */

/* UTF-8 of text[start:end] into scratch->utf8 (no surrogates here: the splitter rejected them). */
static Py_ssize_t
spell_utf8(Scratch *scratch, const Text *text, Py_ssize_t start, Py_ssize_t end)
{
    size_t need = (size_t)(end - start) * 4;
    if (need > scratch->utf8_cap) {
        char *buffer = PyMem_Realloc(scratch->utf8, need);
        if (buffer == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        scratch->utf8 = buffer;
        scratch->utf8_cap = need;
    }
    unsigned char *out = (unsigned char *)scratch->utf8;
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 c = char_at(text, i);
        if (c < 0x80) {
            *out++ = (unsigned char)c;
        } else if (c < 0x800) {
            *out++ = (unsigned char)(0xC0 | (c >> 6));
            *out++ = (unsigned char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            *out++ = (unsigned char)(0xE0 | (c >> 12));
            *out++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            *out++ = (unsigned char)(0x80 | (c & 0x3F));
        } else {
            *out++ = (unsigned char)(0xF0 | (c >> 18));
            *out++ = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
            *out++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            *out++ = (unsigned char)(0x80 | (c & 0x3F));
        }
    }
    return (Py_ssize_t)(out - (unsigned char *)scratch->utf8);
}

/* Copy the miss callable's result into scratch->miss_ids, checking that it is a non-empty sequence of ids in
   the vocabulary (a wrong id would index past id_objects). */
static int
store_miss_ids(PieceCache *self, Scratch *scratch, PyObject *result)
{
    PyObject *seq = PySequence_Fast(result, "the miss callable must return a sequence of ints");
    if (seq == NULL)
        return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    scratch->miss_ids.len = 0;
    if (count == 0) {
        PyErr_SetString(PyExc_ValueError, "the miss callable returned no ids for a non-empty piece");
        Py_DECREF(seq);
        return -1;
    }
    if (ids_reserve(&scratch->miss_ids, (size_t)count) < 0) {
        Py_DECREF(seq);
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t k = 0; k < count; k++) {
        long idx = PyLong_AsLong(items[k]);
        if (idx == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        if (idx < 0 || idx >= self->vocab_size) {
            PyErr_Format(PyExc_ValueError, "the miss callable returned id %ld, outside 0..%zd", idx,
                         self->vocab_size - 1);
            Py_DECREF(seq);
            return -1;
        }
        scratch->miss_ids.data[k] = (uint32_t)idx;
    }
    scratch->miss_ids.len = (size_t)count;
    Py_DECREF(seq);
    return 0;
}

/* The miss callable's ids for text[start:end], into scratch->miss_ids. */
static int
ask_miss(PieceCache *self, Scratch *scratch, const Text *text, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t size = spell_utf8(scratch, text, start, end);
    if (size < 0)
        return -1;
    PyObject *piece = PyBytes_FromStringAndSize(scratch->utf8, size);
    if (piece == NULL)
        return -1;
    PyObject *result = CALL_ONE_ARG(self->miss, piece);
    Py_DECREF(piece);
    if (result == NULL)
        return -1;
    int status = store_miss_ids(self, scratch, result);
    Py_DECREF(result);
    return status;
}

/* ------------------------------------------------------------------------------------------ encoding */

/* Append the ids of text[start:end] to scratch->ids: from the cache, else from the miss callable. */
static int
encode_piece(PieceCache *self, Scratch *scratch, const Text *text, Py_ssize_t start, Py_ssize_t end)
{
    int cacheable = end - start <= MAX_CACHED_PIECE;
    uint64_t hash = 0;
    if (cacheable) {
        hash = piece_hash(text, start, end);
        Slot *slot = find_slot(self, hash, text, start, end);
        if (slot->key_len != 0) {
            self->hits++;
            return ids_extend(&scratch->ids, self->arena + slot->offset + slot->key_len, slot->ids_len);
        }
    }
    self->misses++;
    if (ask_miss(self, scratch, text, start, end) < 0)
        return -1;
    /* Looked up again inside cache_insert: the callable may have run code that changed the cache. */
    if (cacheable && cache_insert(self, hash, text, start, end, scratch->miss_ids.data, scratch->miss_ids.len) < 0)
        return -1;
    return ids_extend(&scratch->ids, scratch->miss_ids.data, scratch->miss_ids.len);
}

/* A list of the int objects of scratch->ids: no int is made, each is shared. */
static PyObject *
ids_to_list(PieceCache *self, const IdBuffer *ids)
{
    PyObject *list = PyList_New((Py_ssize_t)ids->len);
    if (list == NULL)
        return NULL;
    for (size_t k = 0; k < ids->len; k++) {
        PyObject *item = self->id_objects[ids->data[k]];
        Py_INCREF(item);
        PyList_SET_ITEM(list, (Py_ssize_t)k, item);
    }
    return list;
}

/* index: the item's place in encode_many's texts, or -1 for split's one text. */
static int
check_str(PyObject *item, Py_ssize_t index)
{
    if (PyUnicode_Check(item))
        return 0;
    if (index < 0)
        PyErr_Format(PyExc_TypeError, "text must be a str, got %.100s", Py_TYPE(item)->tp_name);
    else
        PyErr_Format(PyExc_TypeError, "texts[%zd] must be a str, got %.100s", index, Py_TYPE(item)->tp_name);
    return -1;
}

static void
raise_lone_surrogate(Py_ssize_t text_index, Py_ssize_t offset)
{
    PyObject *args = Py_BuildValue("(nn)", text_index, offset);
    if (args != NULL) {
        PyErr_SetObject(LoneSurrogateError, args);
        Py_DECREF(args);
    }
}

static PyObject *
encode_text(PieceCache *self, Scratch *scratch, PyObject *str, Py_ssize_t index)
{
    Text text;
    if (check_str(str, index) < 0 || text_init(&text, str, self->classes) < 0)
        return NULL;
    scratch->ids.len = 0;
    for (Py_ssize_t start = 0; start < text.length;) {
        Py_ssize_t end = piece_end(&text, start);
        if (end < 0) {
            raise_lone_surrogate(index, start);
            return NULL;
        }
        if (encode_piece(self, scratch, &text, start, end) < 0)
            return NULL;
        start = end;
    }
    return ids_to_list(self, &scratch->ids);
}

static PyObject *
encode_sequence(PieceCache *self, Scratch *scratch, PyObject *seq)
{
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyList_New(count);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t index = 0; index < count; index++) {
        /* `seq` is our own reference (a list or tuple), so its items stay alive while the callable runs. */
        PyObject *ids = encode_text(self, scratch, PySequence_Fast_GET_ITEM(seq, index), index);
        if (ids == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, index, ids);
    }
    return out;
}

static PyObject *
PieceCache_encode_many(PieceCache *self, PyObject *texts)
{
    PyObject *seq = PySequence_Fast(texts, "encode_many expects a sequence of str");
    if (seq == NULL)
        return NULL;
    Scratch scratch = {0};
    PyObject *out = encode_sequence(self, &scratch, seq);
    scratch_free(&scratch);
    Py_DECREF(seq);
    return out;
}

static PyObject *
PieceCache_split(PieceCache *self, PyObject *str)
{
    Text text;
    if (check_str(str, -1) < 0 || text_init(&text, str, self->classes) < 0)
        return NULL;
    PyObject *pieces = PyList_New(0);
    if (pieces == NULL)
        return NULL;
    for (Py_ssize_t start = 0; start < text.length;) {
        Py_ssize_t end = piece_end(&text, start);
        if (end < 0) {
            raise_lone_surrogate(0, start);
            Py_DECREF(pieces);
            return NULL;
        }
        PyObject *piece = PyUnicode_Substring(str, start, end);
        if (piece == NULL || PyList_Append(pieces, piece) < 0) {
            Py_XDECREF(piece);
            Py_DECREF(pieces);
            return NULL;
        }
        Py_DECREF(piece);
        start = end;
    }
    return pieces;
}

static PyObject *
PieceCache_cache_info(PieceCache *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{s:n,s:n,s:n,s:K,s:K,s:K}", "entries", (Py_ssize_t)self->num_entries,
                         "bytes", (Py_ssize_t)((self->arena_len * sizeof(uint32_t)) +
                                               self->num_slots * sizeof(Slot)),
                         "slots", (Py_ssize_t)self->num_slots, "hits", self->hits, "misses", self->misses,
                         "clears", self->clears);
}

static PyObject *
PieceCache_clear(PieceCache *self, PyObject *Py_UNUSED(ignored))
{
    clear_cache(self);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ the type */

static int
copy_classes(PieceCache *self, PyObject *table)
{
    Py_buffer view;
    if (PyObject_GetBuffer(table, &view, PyBUF_SIMPLE) < 0)
        return -1;
    if (view.len != NUM_CODE_POINTS) {
        PyErr_Format(PyExc_ValueError, "the class table needs %d entries, got %zd", NUM_CODE_POINTS, view.len);
        PyBuffer_Release(&view);
        return -1;
    }
    const unsigned char *given = view.buf;
    for (Py_ssize_t i = 0; i < view.len; i++) {
        if (given[i] > CLASS_SPACE) {
            PyErr_Format(PyExc_ValueError, "class table entry %zd is %d; classes are 0..3", i, given[i]);
            PyBuffer_Release(&view);
            return -1;
        }
    }
    self->classes = PyMem_Malloc(NUM_CODE_POINTS);
    if (self->classes == NULL) {
        PyBuffer_Release(&view);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(self->classes, given, NUM_CODE_POINTS);
    PyBuffer_Release(&view);
    /* Surrogates get a class of their own, so that any run stops at one and the splitter reports it. */
    memset(self->classes + 0xD800, CLASS_SURROGATE, 0xE000 - 0xD800);
    return 0;
}

static int
make_id_objects(PieceCache *self)
{
    self->id_objects = PyMem_Calloc((size_t)self->vocab_size, sizeof(PyObject *));
    if (self->id_objects == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t idx = 0; idx < self->vocab_size; idx++) {
        self->id_objects[idx] = PyLong_FromSsize_t(idx);
        if (self->id_objects[idx] == NULL)
            return -1;
    }
    return 0;
}

static int
PieceCache_init(PieceCache *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"classes", "miss", "vocab_size", "max_entries", "max_bytes", NULL};
    PyObject *table, *miss;
    Py_ssize_t vocab_size, max_entries = 1 << 20, max_bytes = 64 << 20;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOn|nn:PieceCache", keywords, &table, &miss, &vocab_size,
                                     &max_entries, &max_bytes))
        return -1;
    if (self->classes != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "PieceCache is already initialised");
        return -1;
    }
    if (!PyCallable_Check(miss)) {
        PyErr_SetString(PyExc_TypeError, "miss must be callable");
        return -1;
    }
    if (vocab_size <= 0 || vocab_size > (Py_ssize_t)UINT32_MAX || max_entries < 0 || max_bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "vocab_size must be positive, max_entries and max_bytes >= 0");
        return -1;
    }
    if (copy_classes(self, table) < 0)
        return -1;
    Py_INCREF(miss);
    self->miss = miss;
    self->vocab_size = vocab_size;
    if (make_id_objects(self) < 0)
        return -1;
    self->max_entries = (size_t)max_entries;
    /* The arena's offsets are uint32. */
    self->max_arena = (size_t)max_bytes / sizeof(uint32_t);
    if (self->max_arena > UINT32_MAX)
        self->max_arena = UINT32_MAX;
    self->num_slots = INITIAL_SLOTS;
    self->slots = PyMem_Calloc(self->num_slots, sizeof(Slot));
    if (self->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int
PieceCache_traverse(PieceCache *self, visitproc visit, void *arg)
{
    Py_VISIT(self->miss);
    return 0;
}

static int
PieceCache_clear_refs(PieceCache *self)
{
    Py_CLEAR(self->miss);
    return 0;
}

static void
PieceCache_dealloc(PieceCache *self)
{
    PyObject_GC_UnTrack(self);
    PieceCache_clear_refs(self);
    if (self->id_objects != NULL) {
        for (Py_ssize_t idx = 0; idx < self->vocab_size; idx++)
            Py_XDECREF(self->id_objects[idx]);
        PyMem_Free(self->id_objects);
    }
    PyMem_Free(self->classes);
    PyMem_Free(self->slots);
    PyMem_Free(self->arena);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef PieceCache_methods[] = {
    {"encode_many", (PyCFunction)PieceCache_encode_many, METH_O,
     "encode_many(texts) -> list of id lists, one per str"},
    {"split", (PyCFunction)PieceCache_split, METH_O, "split(text) -> GPT-2's pre-tokenized pieces of text"},
    {"cache_info", (PyCFunction)PieceCache_cache_info, METH_NOARGS,
     "cache_info() -> dict of entries, bytes, slots, hits, misses, clears"},
    {"clear", (PyCFunction)PieceCache_clear, METH_NOARGS, "clear() forgets every cached piece"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PieceCacheType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bort.tokenizer._bytelevel.PieceCache",
    .tp_doc = PyDoc_STR(
        "PieceCache(classes, miss, vocab_size, max_entries=1<<20, max_bytes=64<<20)\n\n"
        "classes: 0x110000 bytes, the class of every code point (0 other, 1 letter, 2 number, 3 whitespace).\n"
        "miss: callable, UTF-8 bytes of one pre-tokenized piece -> its ids (each in 0..vocab_size-1).\n"
        "max_entries, max_bytes: cache limits; when one would be passed the cache is emptied."),
    .tp_basicsize = sizeof(PieceCache),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)PieceCache_init,
    .tp_dealloc = (destructor)PieceCache_dealloc,
    .tp_traverse = (traverseproc)PieceCache_traverse,
    .tp_clear = (inquiry)PieceCache_clear_refs,
    .tp_methods = PieceCache_methods,
};

static struct PyModuleDef bytelevel_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "bort.tokenizer._bytelevel",
    .m_doc = "GPT-2's pre-tokenization by hand with a piece -> ids cache (see bort/tokenizer/native_bpe.py).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__bytelevel(void)
{
    if (PyType_Ready(&PieceCacheType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&bytelevel_module);
    if (module == NULL)
        return NULL;
    LoneSurrogateError = PyErr_NewExceptionWithDoc(
        "bort.tokenizer._bytelevel.LoneSurrogateError",
        "A str holds a lone surrogate, which has no UTF-8 form; args: (text index, character offset).",
        PyExc_ValueError, NULL);
    if (LoneSurrogateError == NULL) {
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(LoneSurrogateError);
    Py_INCREF(&PieceCacheType);
    if (PyModule_AddIntConstant(module, "MAX_CACHED_PIECE", MAX_CACHED_PIECE) < 0 ||
        PyModule_AddObject(module, "LoneSurrogateError", LoneSurrogateError) < 0 ||
        PyModule_AddObject(module, "PieceCache", (PyObject *)&PieceCacheType) < 0) {
        Py_DECREF(LoneSurrogateError);
        Py_DECREF(&PieceCacheType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
