/* ariel_count: a QEMU TCG plugin that counts the guest instructions a firmware executes,
 * exactly and per segment, and optionally records the raw data a cycle model needs: each
 * translated block's code and how often it ran, and how often control passed from one block
 * to the next.
 *
 * Counting. Every translated block (TB) gets one inline "add" (generated code, no call, so
 * counting costs little): plain counting adds the block's instruction count to one 64-bit
 * total; with per-block counts, each block adds 1 to its own run counter instead, and the
 * total is the sum of runs times lengths. With edges, a call at each block start does the
 * counting. All of these run when a block starts, so a block that stops part-way (a fault,
 * or an I/O access that QEMU re-executes under -icount) is counted in full; ariel's
 * firmware does neither while it is profiled.
 *
 * Segments. The firmware calls ariel_profile_begin(layer) before and ariel_profile_end(layer)
 * after each kernel (firmware/profile.c). The plugin is given the address of each hook's
 * first instruction; when an instruction at one of them runs, the current segment ends just
 * before that instruction and a new one starts. Segment 0 is start-up until the first
 * marker; then layer 0 (closed by an end marker), the gap to the next begin marker, layer 1,
 * and so on through every inference. Per-block counts and edges are kept per segment too; a
 * block belongs to the segment in which it started.
 *
 * Arguments (QEMU passes each as key=value):
 *   out=PATH        file the results are written to at exit (required)
 *   begin=ADDRESS   address of ariel_profile_begin's first instruction (0x.. or decimal)
 *   end=ADDRESS     address of ariel_profile_end's first instruction
 *   blocks=on|off   per-segment execution counts of every translated block (default off)
 *   edges=on|off    per-segment counts of block-to-block transitions; implies blocks. Needs
 *                   a call at every block execution: about 1.4 times the run time of plain
 *                   counting on a convolutional model.
 *   flash=START:SIZE  the flash region as the firmware is linked: simulate the board's flash
 *                   caches for every instruction fetch and data load from it (implies edges)
 *   icache=BYTES:ENTRIES:WAYS  the instruction side in front of the flash: entries of BYTES
 *                   bytes each (a power of two), ENTRIES / WAYS sets, least recently used
 *                   replacement; ENTRIES 0: no cache, every line fetched is read from flash
 *   dcache=BYTES:ENTRIES:WAYS  the same for data loads
 *
 * Output: a text file, one record per line, fields separated by single spaces, numbers in
 * decimal unless said otherwise:
 *   ariel-count 1 blocks=<0|1> edges=<0|1> flash=<0|1>  header; 1 is the format version
 *   S <index> <closer> <instructions> <offset>  a segment ended. closer: B (begin marker),
 *                                               E (end marker) or X (exit); offset: where in
 *                                               its block the marker was (0 unless a block
 *                                               ran into the hook without a branch)
 *   C <block> <executions>                      (blocks) runs of <block> in that segment
 *   F <from> <to> <count>                       (edges) transitions from block <from> to
 *                                               block <to>; <from> is - for the first block
 *   M <lines> <misses> <sequential> <loads> <load misses> <load lines>
 *                                               (flash) in that segment: instruction lines
 *                                               fetched from flash, how many missed the
 *                                               instruction cache, how many of those misses
 *                                               were the line after the one fetched before;
 *                                               data loads from flash, their misses, and
 *                                               the distinct data lines they touched
 * The C and F lines after an S line belong to that segment. At exit, after the last segment:
 *   B <block> <pc> <instructions> <code>        (blocks) per translated block: its id, start
 *                                               address (hex), instruction count, and each
 *                                               instruction's bytes in hex as they lie in
 *                                               memory, the instructions joined by ':'
 *   T <instructions> <blocks> <segments>        the run's total; last line, so a file that
 *                                               lacks it was cut short
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

ARIEL_PLUGIN_EXPORT int qemu_plugin_version = ARIEL_QEMU_PLUGIN_API_VERSION;

#define NO_ADDRESS UINT64_MAX

/* One translated block, identified by its start address and code. QEMU may translate the
 * same code more than once (after a flush of its translation cache), so the table below
 * maps a retranslation to the block already known and its counts keep accumulating. */
typedef struct Edge Edge;
typedef struct {
    uint64_t executions; /* runs so far, incremented each time the block starts */
    uint64_t at_segment_start;
    uint64_t pc;
    uint32_t id;
    uint32_t n_insns;
    uint32_t n_bytes;
    uint8_t *sizes; /* each instruction's length in bytes */
    uint8_t *code;
    Edge *last_edge; /* the edge that last led here: in a loop, the next one is the same */
} Block;

struct Edge {
    uint64_t count;
    uint64_t at_segment_start;
    int64_t from; /* -1: no block ran before */
    uint32_t to;
};

/* An instruction at a hook's address, as found in one translated block. */
typedef struct {
    Block *block;
    uint32_t index; /* position of the instruction in the block */
    char closer;    /* 'B' or 'E': which hook */
} Marker;

/* Open-addressing hash table of pointers with power-of-two capacity; the caller compares
 * keys, so one table type serves blocks and edges. */
typedef struct {
    void **slots;
    size_t capacity;
    size_t used;
} Table;

static FILE *out;
static int want_blocks, want_edges;
static uint64_t begin_address = NO_ADDRESS, end_address = NO_ADDRESS;

static uint64_t total;         /* plain counting: instructions run so far */
static uint64_t segment_start; /* total when the current segment began */
static uint64_t segments;      /* segments closed so far */

static Block **blocks;
static size_t n_blocks, blocks_capacity;
static Table block_table;

static Edge **edges;
static size_t n_edges, edges_capacity;
static Table edge_table;
static Block *previous;  /* the block that ran last, for edges */
static Edge *last_taken; /* the edge counted last */

/* One cache in front of the flash: `sets` sets of `ways` entries of 2^shift bytes, each set
 * kept in order of use (most recent first). No entries: every access misses. */
typedef struct {
    unsigned shift;
    uint32_t sets, ways;
    uint64_t *tags; /* sets * ways line numbers, UINT64_MAX when empty */
    uint64_t last;  /* the line accessed last: a repeat is a hit without a search */
} Cache;

/* What the flash model counted in the current segment. */
typedef struct {
    uint64_t lines, misses, sequential; /* instruction side */
    uint64_t loads, load_misses, load_lines; /* data side */
} FlashCounts;

static int want_flash;
static uint64_t flash_start, flash_size;
static Cache icache, dcache;
static FlashCounts flash_now;
static FlashCounts last_block_fetch; /* what the latest block start added (its fetches) */
static uint64_t previous_fetch_line = NO_ADDRESS;
static uint8_t *lines_touched; /* one bit per data line of the flash, this segment */
static uint64_t *touched_list;
static size_t n_touched, touched_capacity;

static void *checked(void *pointer)
{
    if (pointer == NULL) {
        fputs("ariel_count: out of memory\n", stderr);
        abort();
    }
    return pointer;
}

static uint64_t mix(uint64_t key)
{
    key ^= key >> 31;
    key *= 0x9E3779B97F4A7C15u;
    return key ^ (key >> 29);
}

/* Look `line` up in `cache`, make it the most recent of its set; 1 on a hit. */
static int cache_access(Cache *cache, uint64_t line)
{
    if (cache->sets == 0) {
        return 0;
    }
    if (line == cache->last) {
        return 1;
    }
    cache->last = line;
    uint64_t *set = cache->tags + (line % cache->sets) * cache->ways;
    uint32_t way = 0;
    while (way < cache->ways && set[way] != line) {
        way++;
    }
    const int hit = way < cache->ways;
    if (!hit) {
        way = cache->ways - 1; /* the least recently used entry gives way */
    }
    memmove(set + 1, set, way * sizeof *set);
    set[0] = line;
    return hit;
}

static int in_flash(uint64_t address)
{
    return address - flash_start < flash_size;
}

/* `array` (of `count` pointers) with room for one more. Only the arrays of pointers move:
 * the blocks and edges they point to stay put, and so do the counters that generated code
 * increments inside them. */
static void *grow(void *array, size_t count, size_t *capacity, size_t item_size)
{
    if (count < *capacity) {
        return array;
    }
    *capacity = *capacity ? 2 * *capacity : 1024;
    return checked(realloc(array, *capacity * item_size));
}

static void table_grow(Table *table, uint64_t (*hash)(const void *));

static void table_insert(Table *table, uint64_t hash_value, void *item,
                         uint64_t (*hash)(const void *))
{
    if (2 * (table->used + 1) > table->capacity) {
        table_grow(table, hash);
    }
    size_t slot = hash_value & (table->capacity - 1);
    while (table->slots[slot] != NULL) {
        slot = (slot + 1) & (table->capacity - 1);
    }
    table->slots[slot] = item;
    table->used++;
}

static void table_grow(Table *table, uint64_t (*hash)(const void *))
{
    Table bigger = {NULL, table->capacity ? 2 * table->capacity : 4096, 0};
    bigger.slots = checked(calloc(bigger.capacity, sizeof *bigger.slots));
    for (size_t i = 0; i < table->capacity; ++i) {
        if (table->slots[i] != NULL) {
            table_insert(&bigger, hash(table->slots[i]), table->slots[i], hash);
        }
    }
    free(table->slots);
    *table = bigger;
}

static uint64_t block_hash(const void *item)
{
    const Block *block = item;
    return mix(block->pc ^ ((uint64_t)block->n_insns << 48));
}

static uint64_t edge_key(int64_t from, uint32_t to)
{
    return ((uint64_t)from << 32) ^ to;
}

static uint64_t edge_hash(const void *item)
{
    const Edge *edge = item;
    return mix(edge_key(edge->from, edge->to));
}

/* The block with this start address and code, created on first sight. */
static Block *block_for(uint64_t pc, uint32_t n_insns, const uint8_t *sizes,
                        const uint8_t *code, uint32_t n_bytes)
{
    const Block probe = {.pc = pc, .n_insns = n_insns};
    if (block_table.capacity) {
        size_t slot = block_hash(&probe) & (block_table.capacity - 1);
        for (Block *b; (b = block_table.slots[slot]) != NULL;
             slot = (slot + 1) & (block_table.capacity - 1)) {
            if (b->pc == pc && b->n_insns == n_insns && b->n_bytes == n_bytes &&
                memcmp(b->code, code, n_bytes) == 0 && memcmp(b->sizes, sizes, n_insns) == 0) {
                return b;
            }
        }
    }
    Block *block = checked(calloc(1, sizeof *block));
    block->pc = pc;
    block->id = (uint32_t)n_blocks;
    block->n_insns = n_insns;
    block->n_bytes = n_bytes;
    block->sizes = checked(malloc(n_insns ? n_insns : 1));
    block->code = checked(malloc(n_bytes ? n_bytes : 1));
    memcpy(block->sizes, sizes, n_insns);
    memcpy(block->code, code, n_bytes);
    blocks = grow(blocks, n_blocks, &blocks_capacity, sizeof *blocks);
    blocks[n_blocks++] = block;
    table_insert(&block_table, block_hash(block), block, block_hash);
    return block;
}

static Edge *edge_for(int64_t from, uint32_t to)
{
    const uint64_t key = edge_key(from, to);
    if (edge_table.capacity) {
        size_t slot = mix(key) & (edge_table.capacity - 1);
        for (Edge *e; (e = edge_table.slots[slot]) != NULL;
             slot = (slot + 1) & (edge_table.capacity - 1)) {
            if (e->from == from && e->to == to) {
                return e;
            }
        }
    }
    Edge *edge = checked(calloc(1, sizeof *edge));
    edge->from = from;
    edge->to = to;
    edges = grow(edges, n_edges, &edges_capacity, sizeof *edges);
    edges[n_edges++] = edge;
    table_insert(&edge_table, mix(key), edge, edge_hash);
    return edge;
}

/* Instructions run so far. Without blocks, the one counter; with them, the sum over blocks:
 * one inline add per block run instead of two makes block counts nearly as cheap as plain
 * counting, and this sum is only needed at the few segment ends. */
static uint64_t instructions_so_far(void)
{
    if (!want_blocks) {
        return total;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < n_blocks; ++i) {
        sum += blocks[i]->executions * blocks[i]->n_insns;
    }
    return sum;
}

/* The flash model's instruction side: the lines a block's code spans, in order. A block
 * runs from its first instruction to its last, so its lines are fetched at its start. */
static void fetch_block(const Block *block)
{
    const FlashCounts before = flash_now;
    if (block->n_bytes > 0 && in_flash(block->pc)) {
        const uint64_t first = block->pc >> icache.shift;
        const uint64_t last = (block->pc + block->n_bytes - 1) >> icache.shift;
        for (uint64_t line = first; line <= last; ++line) {
            flash_now.lines++;
            if (!cache_access(&icache, line)) {
                flash_now.misses++;
                flash_now.sequential += line == previous_fetch_line + 1;
            }
            previous_fetch_line = line;
        }
    }
    last_block_fetch.lines = flash_now.lines - before.lines;
    last_block_fetch.misses = flash_now.misses - before.misses;
    last_block_fetch.sequential = flash_now.sequential - before.sequential;
}

/* The flash model's data side: runs after every memory access, and counts the loads.
 * QEMU 7.2 (Debian 12) calls a callback registered for reads only (QEMU_PLUGIN_MEM_R) at
 * stores instead, so the callback takes both and asks which it is. */
static void on_access(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr,
                      void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (qemu_plugin_mem_is_store(info) || !in_flash(vaddr)) {
        return;
    }
    flash_now.loads++;
    const uint64_t line = vaddr >> dcache.shift;
    if (!cache_access(&dcache, line)) {
        flash_now.load_misses++;
    }
    const uint64_t bit = (vaddr - flash_start) >> dcache.shift;
    if (!(lines_touched[bit / 8] & (1u << (bit % 8)))) {
        lines_touched[bit / 8] |= (uint8_t)(1u << (bit % 8));
        flash_now.load_lines++;
        touched_list = grow(touched_list, n_touched, &touched_capacity, sizeof *touched_list);
        touched_list[n_touched++] = bit;
    }
}

/* Edges only: runs at the start of every block execution, and counts it. */
static void on_block_start(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    Block *block = userdata;
    block->executions++;
    const int64_t from = previous ? (int64_t)previous->id : -1;
    Edge *edge = block->last_edge;
    if (edge == NULL || edge->from != from) {
        edge = edge_for(from, block->id);
        block->last_edge = edge;
    }
    edge->count++;
    last_taken = edge;
    previous = block;
    if (want_flash) {
        fetch_block(block);
    }
}

/* End the current segment `boundary` instructions into the run. `carried`, if not NULL, is
 * the block that is running now and starts the next segment: its execution (and the edge
 * into it) have already been counted, so they move to the next segment. */
static void close_segment(char closer, uint64_t boundary, uint32_t offset, const Block *carried)
{
    fprintf(out, "S %llu %c %llu %u\n", (unsigned long long)segments, closer,
            (unsigned long long)(boundary - segment_start), offset);
    segments++;
    segment_start = boundary;
    if (!want_blocks) {
        return;
    }
    for (size_t i = 0; i < n_blocks; ++i) {
        Block *b = blocks[i];
        const uint64_t now = b->executions - (b == carried ? 1u : 0u);
        if (now != b->at_segment_start) {
            fprintf(out, "C %u %llu\n", b->id, (unsigned long long)(now - b->at_segment_start));
        }
        b->at_segment_start = now;
    }
    for (size_t i = 0; i < n_edges; ++i) {
        Edge *e = edges[i];
        const uint64_t now = e->count - (carried != NULL && e == last_taken ? 1u : 0u);
        if (now != e->at_segment_start) {
            if (e->from < 0) {
                fprintf(out, "F - %u %llu\n", e->to,
                        (unsigned long long)(now - e->at_segment_start));
            } else {
                fprintf(out, "F %lld %u %llu\n", (long long)e->from, e->to,
                        (unsigned long long)(now - e->at_segment_start));
            }
        }
        e->at_segment_start = now;
    }
    if (want_flash) {
        /* The carried block's fetches belong to the next segment, like its execution. */
        const FlashCounts moved = carried != NULL ? last_block_fetch : (FlashCounts){0};
        fprintf(out, "M %llu %llu %llu %llu %llu %llu\n",
                (unsigned long long)(flash_now.lines - moved.lines),
                (unsigned long long)(flash_now.misses - moved.misses),
                (unsigned long long)(flash_now.sequential - moved.sequential),
                (unsigned long long)flash_now.loads, (unsigned long long)flash_now.load_misses,
                (unsigned long long)flash_now.load_lines);
        flash_now = moved;
        for (size_t i = 0; i < n_touched; ++i) {
            lines_touched[touched_list[i] / 8] = 0;
        }
        n_touched = 0;
    }
}

/* Runs when the instruction at a hook's address executes. QEMU runs a block's own
 * instrumentation (the inline counters, the edge callback) before that of its first
 * instruction, so the count so far already holds the whole block. */
static void on_marker(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    const Marker *marker = userdata;
    const uint64_t boundary = instructions_so_far() - (marker->block->n_insns - marker->index);
    close_segment(marker->closer, boundary, marker->index,
                  marker->index == 0 ? marker->block : NULL);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    const size_t n_insns = qemu_plugin_tb_n_insns(tb);
    if (!want_blocks) {
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &total, n_insns);
    }
    const int markers = begin_address != NO_ADDRESS || end_address != NO_ADDRESS;
    if (!want_blocks && !markers) {
        return;
    }
    /* Thumb instructions are 2 or 4 bytes, so 4 bytes per instruction is enough. */
    uint8_t *sizes = checked(malloc(n_insns ? n_insns : 1));
    uint8_t *code = checked(malloc(4 * n_insns + 4));
    uint32_t n_bytes = 0;
    for (size_t i = 0; i < n_insns; ++i) {
        const struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        size_t size = qemu_plugin_insn_size(insn);
        if (size > 4) {
            size = 4;
        }
        sizes[i] = (uint8_t)size;
        memcpy(code + n_bytes, qemu_plugin_insn_data(insn), size);
        n_bytes += (uint32_t)size;
    }
    Block *block = block_for(qemu_plugin_tb_vaddr(tb), (uint32_t)n_insns, sizes, code, n_bytes);
    free(sizes);
    free(code);
    if (want_edges) {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_block_start, QEMU_PLUGIN_CB_NO_REGS, block);
    } else if (want_blocks) {
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
                                                 &block->executions, 1);
    }
    for (size_t i = 0; want_flash && i < n_insns; ++i) {
        qemu_plugin_register_vcpu_mem_cb(qemu_plugin_tb_get_insn(tb, i), on_access,
                                         QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
    }
    for (size_t i = 0; markers && i < n_insns; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
        if (vaddr != begin_address && vaddr != end_address) {
            continue;
        }
        /* Kept for the rest of the run: QEMU may run this translation at any later time. */
        Marker *marker = checked(malloc(sizeof *marker));
        marker->block = block;
        marker->index = (uint32_t)i;
        marker->closer = vaddr == begin_address ? 'B' : 'E';
        qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, marker);
    }
}

static void on_qemu_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    total = instructions_so_far();
    close_segment('X', total, 0, NULL);
    for (size_t i = 0; want_blocks && i < n_blocks; ++i) {
        const Block *b = blocks[i];
        fprintf(out, "B %u %llx %u ", b->id, (unsigned long long)b->pc, b->n_insns);
        const uint8_t *byte = b->code;
        for (uint32_t k = 0; k < b->n_insns; ++k) {
            if (k > 0) {
                fputc(':', out);
            }
            for (uint8_t j = 0; j < b->sizes[k]; ++j) {
                fprintf(out, "%02x", *byte++);
            }
        }
        fputc('\n', out);
    }
    fprintf(out, "T %llu %zu %llu\n", (unsigned long long)total, want_blocks ? n_blocks : 0,
            (unsigned long long)segments);
    fclose(out);
    out = NULL;
}

/* "on"/"off" (also true/false, yes/no, 1/0) into *flag; 0 if the value is none of them. */
static int parse_flag(const char *value, int *flag)
{
    static const char *const yes[] = {"on", "true", "yes", "1"};
    static const char *const no[] = {"off", "false", "no", "0"};
    for (size_t i = 0; i < 4; ++i) {
        if (strcmp(value, yes[i]) == 0 || strcmp(value, no[i]) == 0) {
            *flag = strcmp(value, yes[i]) == 0;
            return 1;
        }
    }
    return 0;
}

static int parse_address(const char *value, uint64_t *address)
{
    char *rest;
    *address = strtoull(value, &rest, 0);
    return *value != '\0' && *rest == '\0';
}

/* START:SIZE, both numbers (0x.. or decimal), SIZE > 0. */
static int parse_region(const char *value, uint64_t *start, uint64_t *size)
{
    char *rest;
    *start = strtoull(value, &rest, 0);
    if (rest == value || *rest != ':') {
        return 0;
    }
    const char *second = rest + 1;
    *size = strtoull(second, &rest, 0);
    return rest != second && *rest == '\0' && *size > 0;
}

/* BYTES:ENTRIES:WAYS into an empty cache; BYTES a power of two, ENTRIES a multiple of
 * WAYS (ENTRIES 0: no cache). */
static int parse_cache(const char *value, Cache *cache)
{
    unsigned long long bytes, entries, ways;
    char end;
    if (sscanf(value, "%llu:%llu:%llu%c", &bytes, &entries, &ways, &end) != 3 || bytes == 0 ||
        (bytes & (bytes - 1)) != 0 || bytes > 4096 || ways == 0 || entries % ways != 0 ||
        entries > 65536) {
        return 0;
    }
    cache->shift = 0;
    while ((1ull << cache->shift) < bytes) {
        cache->shift++;
    }
    cache->sets = (uint32_t)(entries / ways);
    cache->ways = (uint32_t)ways;
    cache->last = NO_ADDRESS;
    cache->tags = checked(malloc((entries ? entries : 1) * sizeof *cache->tags));
    for (unsigned long long i = 0; i < entries; ++i) {
        cache->tags[i] = NO_ADDRESS;
    }
    return 1;
}

/* Say why the plugin will not load. On stderr, not qemu_plugin_outs: QEMU shows plugin log
 * lines only when run with -d plugin, and then QEMU's message alone is no help. */
static int refuse(const char *what, const char *argument)
{
    fprintf(stderr, "ariel_count: %s: %s\n", what, argument);
    return 1;
}

ARIEL_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                            int argc, char **argv)
{
    /* The counters are plain memory, not atomics: exact only with one vCPU, which is what
     * every Cortex-M machine has. */
    if (info->system_emulation && info->system.max_vcpus > 1) {
        return refuse("needs a machine with one CPU", info->target_name);
    }
    const char *path = NULL;
    for (int i = 0; i < argc; ++i) {
        const char *arg = argv[i];
        const char *value = strchr(arg, '=');
        if (value == NULL) {
            return refuse("arguments are key=value", arg);
        }
        const size_t key = (size_t)(value++ - arg);
        int ok = 1;
        if (key == 3 && strncmp(arg, "out", key) == 0) {
            path = value;
        } else if (key == 5 && strncmp(arg, "begin", key) == 0) {
            ok = parse_address(value, &begin_address);
        } else if (key == 3 && strncmp(arg, "end", key) == 0) {
            ok = parse_address(value, &end_address);
        } else if (key == 6 && strncmp(arg, "blocks", key) == 0) {
            ok = parse_flag(value, &want_blocks);
        } else if (key == 5 && strncmp(arg, "edges", key) == 0) {
            ok = parse_flag(value, &want_edges);
        } else if (key == 5 && strncmp(arg, "flash", key) == 0) {
            ok = parse_region(value, &flash_start, &flash_size);
            want_flash = ok;
        } else if (key == 6 && strncmp(arg, "icache", key) == 0) {
            ok = parse_cache(value, &icache);
        } else if (key == 6 && strncmp(arg, "dcache", key) == 0) {
            ok = parse_cache(value, &dcache);
        } else {
            return refuse("unknown argument (known: out, begin, end, blocks, edges, flash, "
                          "icache, dcache)", arg);
        }
        if (!ok) {
            return refuse("bad value", arg);
        }
    }
    if (path == NULL) {
        return refuse("missing argument", "out=PATH");
    }
    out = fopen(path, "w");
    if (out == NULL) {
        return refuse("cannot write", path);
    }
    /* Segments and blocks make many small lines: buffer them in large writes. */
    setvbuf(out, NULL, _IOFBF, 1 << 20);
    if (want_flash && (icache.tags == NULL || dcache.tags == NULL)) {
        return refuse("the flash model needs both caches described", "icache=, dcache=");
    }
    if (want_flash) {
        lines_touched = checked(calloc((flash_size >> dcache.shift) / 8 + 1, 1));
    }
    want_edges = want_edges || want_flash;
    want_blocks = want_blocks || want_edges;
    fprintf(out, "ariel-count 1 blocks=%d edges=%d flash=%d\n", want_blocks, want_edges,
            want_flash);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
    return 0;
}
