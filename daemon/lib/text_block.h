/*
 * The 64-byte block scanner, written once and included by text_simd.c for
 * each instruction set (AVX2, AVX-512) inside a region compiled for it.
 *
 * Before including, text_simd.c defines F(name) (a per-set suffix), the
 * type vec64 (64 bytes of text) and these primitives, each of which turns a
 * block into a bit mask (bit i = byte i):
 *
 *	F(load)(p)          the 64 bytes at p
 *	F(eq)(v, c)         bytes == c
 *	F(range)(v, a, n)   bytes in a .. a + n
 *	F(cont)(v)          continuation bytes (0x80 .. 0xbf)
 *	F(utf8_err)(p, v)   bytes where strict UTF-8 validation fails, looking
 *	                    back up to 3 bytes (p[-3 .. -1] must be readable)
 *
 * A block is split into words with masks: ws marks every byte of every
 * whitespace character, n = ~ws the word bytes.  The word carried in from
 * the previous block ends at the first whitespace and the word running off
 * the end is carried out; both go through the scalar word_end.  Words lying
 * wholly inside the block are counted with mask arithmetic:
 *
 *	starts  = n & ~(n << 1)          first byte of each word
 *	R_k     = bytes ending a run of >= k word bytes (by doubling)
 *	long    = popcount(R & ~(R << 1)) with R = R_{min_length+1}
 *
 * where, in a block holding multi-byte characters, the run lengths are
 * counted in code points: n is first compressed (PEXT) to one bit per code
 * point.  Ignore words are matched on bytes, by and-ing shifted
 * per-byte masks or by a hash probe per word.
 *
 * A block holding bytes >= 0x80 ends before a character that does not fit
 * in it (so it may be 61-64 bytes long and the next block starts on a
 * character), is validated with the lookup-table method of Keiser and
 * Lemire (three nibble lookups and a check that the bytes after 3- and
 * 4-byte leads are continuations), and rescanned on the per-code-point path
 * when that finds any error, so the offset reported is exactly the scalar
 * decoder's.  Multi-byte whitespace and line breaks all start with C2, E1,
 * E2 or E3; each such lead byte is decoded on its own.
 */

/* R_k(n) for 1 <= k <= 63: bit i set when bits i-k+1 .. i are all in n
 * (R_2h = R_h & R_h << h, then R_k = R_h & R_h << (k - h) for h <= k < 2h). */
static inline uint64_t F(runs)(uint64_t n, unsigned k)
{
	unsigned h = 1;

	for (; 2 * h <= k; h *= 2)
		n &= n << h;
	return n & n << (k - h);
}

static inline uint64_t F(ascii_ws)(vec64 v)
{
	return F(range)(v, 0x09, 4) | F(range)(v, 0x1c, 4);
}

/* Line breaks: lb marks the first byte of each multi-byte one. */
static inline void F(lines)(struct text_scan *st, vec64 v, uint64_t valid, uint64_t cps, uint64_t lb)
{
	/* \n \v \f \r and \x1c-\x1e break lines; \r\n counts once. */
	uint64_t cr = F(eq)(v, 0x0d) & valid;
	uint64_t lf = F(eq)(v, 0x0a) & valid;
	uint64_t crlf = lf & (cr << 1 | (uint64_t)st->prev_cr);
	unsigned last = 63 - (unsigned)__builtin_clzll(cps);

	lb |= (F(range)(v, 0x0a, 3) | F(range)(v, 0x1c, 2)) & valid;
	st->breaks += (uint64_t)_mm_popcnt_u64(lb) - (uint64_t)_mm_popcnt_u64(crlf);
	st->prev_cr = (int)(cr >> last & 1);
	st->last_break = (int)(lb >> last & 1);
}

/* Ignore words inside the block, by masks, without a branch on the text.
 * The bytes of a mask word are all word bytes, so a start, an end len-1
 * later and matching bytes in between make exactly this word. */
static inline void F(ignore_masks)(struct text_scan *st, uint64_t n, uint64_t starts, vec64 v)
{
	uint64_t ends = n & ~(n >> 1), m, k;
	unsigned w, j;

	for (w = 0; w < st->nmask; w++) {
		unsigned len = (unsigned)st->mask[w].len;
		const unsigned char *b = st->mask[w].bytes;

		m = starts & (ends >> (len - 1)) & F(eq)(v, b[0]);
		if (!m)
			continue; /* the common case in most text: no word of this length starts so */
		for (j = 1; j < len; j++)
			m &= F(eq)(v, b[j]) >> j;
		k = (uint64_t)_mm_popcnt_u64(m);
		st->ignored += k;
		st->ignored_long += k & -st->mask[w].is_long;
	}
}

/* Ignore words inside the block, one hash probe per word of a listed length. */
static inline void F(ignore_probe)(struct text_scan *st, size_t pos, uint64_t n, uint64_t starts, uint64_t cps)
{
	while (starts) {
		unsigned b = (unsigned)_tzcnt_u64(starts);
		/* n's top bit is clear here, so ~(n >> b) has a set bit. */
		unsigned len = (unsigned)_tzcnt_u64(~(n >> b));

		starts &= starts - 1;
		if ((st->ign_lens >> len & 1) && kiln_text_scan_ignored(st, st->s + pos + b, len)) {
			uint64_t cp = (uint64_t)_mm_popcnt_u64(cps >> b & ((1ull << len) - 1));

			st->ignored++;
			st->ignored_long += cp > st->min_length;
		}
	}
}

/*
 * Ends the word carried into the block at byte offset end (add: its code
 * points in this block) if there is one (iw), with few branches on the
 * text.  The scan leaves 8 bytes after every block, so the word's first
 * 8 bytes can be loaded as an integer.
 */
static inline void F(carried_end)(struct text_scan *st, size_t end, uint64_t add, uint64_t iw)
{
	size_t len = end - st->wstart;
	uint64_t is_long = st->wcp + add > st->min_length, hit = 0, x;

	st->words += iw;
	st->long_words += iw & is_long;
	if (st->short_ok) {
		memcpy(&x, st->s + st->wstart, 8);
		x &= _bzhi_u64(~0ull, 8 * (unsigned)(len < 8 ? len : 8));
		for (unsigned w = 0; w < st->nmask; w++)
			hit |= (st->mask[w].len == len) & (st->mask[w].val == x);
		st->ignored += hit & iw;
		st->ignored_long += hit & iw & is_long;
	} else if (iw && (st->ign_lens >> (len < 64 ? len : 0) & 1) &&
		   kiln_text_scan_ignored(st, st->s + st->wstart, len)) {
		st->ignored++;
		st->ignored_long += is_long;
	}
}

/* Whether the valid multi-byte character c (lead C2, E1, E2 or E3) is a
 * whitespace character: kiln_text_is_space() for those. */
static inline int F(mb_space)(uint32_t c)
{
	return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
	       c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/*
 * Counts the block of k (1-64) bytes at pos: ws (every byte of every
 * whitespace character), cps (the first byte of every code point) and lb
 * (first bytes of multi-byte line breaks) are within its k bytes.
 */
static inline __attribute__((always_inline)) void F(consume)(struct text_scan *st, size_t pos, unsigned k,
							      vec64 v, uint64_t ws, uint64_t cps, uint64_t lb)
{
	uint64_t valid = k == 64 ? ~0ull : (1ull << k) - 1;
	uint64_t n = ~ws & valid, starts, iw, co;
	unsigned lead, top;

	st->code_points += (uint64_t)_mm_popcnt_u64(cps);
	if (st->want_lines)
		F(lines)(st, v, valid, cps, lb);
	if (!ws) {
		if (!st->in_word) {
			st->in_word = 1;
			st->wstart = pos;
			st->wcp = 0;
		}
		st->wcp += (uint64_t)_mm_popcnt_u64(cps);
		return;
	}
	lead = (unsigned)_tzcnt_u64(ws);
	top = 63 - (unsigned)__builtin_clzll(ws);
	iw = (uint64_t)st->in_word;
	/* The carried word, if any, ends at the first whitespace. */
	F(carried_end)(st, pos + lead, (uint64_t)_mm_popcnt_u64(_bzhi_u64(cps, lead)), iw);
	n &= ~(_bzhi_u64(~0ull, lead) & -iw);
	/* The word running off the end, if any, starts after the last one. */
	co = n >> (k - 1) & 1;
	n &= ~(~0ull << top << 1 & -co);
	st->in_word = (int)co;
	st->wstart = pos + top + 1;
	st->wcp = (uint64_t)_mm_popcnt_u64(cps >> top >> 1);
	if (!n)
		return;
	starts = n & ~(n << 1);
	st->words += (uint64_t)_mm_popcnt_u64(starts);
	if (st->min_length < 63) {
		uint64_t w = _pext_u64(n, cps);
		uint64_t r = F(runs)(w, (unsigned)st->min_length + 1);

		st->long_words += (uint64_t)_mm_popcnt_u64(r & ~(r << 1));
	}
	if (!st->ign_count)
		return;
	if (st->mask_ok)
		F(ignore_masks)(st, n, starts, v);
	else
		F(ignore_probe)(st, pos, n, starts, cps);
}

/*
 * A block at pos holding bytes >= 0x80 (pos is on a character, 64 bytes are
 * left).  Returns the position after what was scanned.
 */
static inline __attribute__((always_inline)) size_t F(mixed)(struct text_scan *st, size_t pos, vec64 v)
{
	const unsigned char *p = st->s + pos;
	uint64_t cont = F(cont)(v), valid, ws, cand, lb = 0, err;
	unsigned last, k;

	if (!~cont)
		return kiln_text_scan_scalar(st, pos, pos + 64); /* reports the error */
	/* The last character must fit; if not, the block ends before it. */
	last = 63 - (unsigned)__builtin_clzll(~cont);
	k = last + kiln_utf8_seq_len(p[last]) > 64 ? last : 64;
	if (pos >= 3) {
		err = F(utf8_err)(p, v);
	} else {
		unsigned char buf[3 + 64] = { 0 };

		memcpy(buf + 3 - pos, st->s, pos);
		memcpy(buf + 3, p, 64);
		err = F(utf8_err)(buf + 3, v);
	}
	/* With k < 64, an error at byte k means the character before it is
	 * cut short. */
	if (err & (k == 64 ? ~0ull : (2ull << k) - 1))
		return kiln_text_scan_scalar(st, pos, pos + k);
	valid = k == 64 ? ~0ull : (1ull << k) - 1;
	ws = F(ascii_ws)(v) & valid;
	cand = (F(eq)(v, 0xc2) | F(range)(v, 0xe1, 2)) & valid;
	while (cand) {
		unsigned i = (unsigned)_tzcnt_u64(cand);
		uint32_t c = kiln_utf8_decode_valid(p + i);

		cand &= cand - 1;
		if (F(mb_space)(c))
			ws |= (c < 0x800 ? 3ull : 7ull) << i;
		if (st->want_lines && kiln_text_scan_is_break(c))
			lb |= 1ull << i;
	}
	F(consume)(st, pos, k, v, ws, ~cont & valid, lb);
	return pos + k;
}

static int F(scan)(struct text_scan *st, const kiln_cancel *cancel)
{
	size_t len = st->len, pos = 0, poll = 0;

	/* 8 bytes more than a block, for carried_end's loads. */
	while (len - pos >= 64 + 8) {
		vec64 v;

		if (pos >= poll) {
			if (kiln_cancelled(cancel))
				return -KILN_E_CANCELLED;
			poll = pos + POLL_BYTES;
		}
		v = F(load)(st->s + pos);
		pos = F(mixed)(st, pos, v);
		if (st->bad)
			return 0;
	}
	kiln_text_scan_scalar(st, pos, len);
	return 0;
}
