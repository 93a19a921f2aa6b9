/*
 * corpus.* actions (issue 5): load encrypted or plain corpora into locked
 * memory once, then count, search and measure them.
 *
 * The family by role: corpus_files.c (file sources shared by load and
 * seal), act_corpus_load.c (corpus.load), act_corpus_seal.c (corpus.seal),
 * act_corpus_query.c (count, search, stats); this file holds the table,
 * the small actions (list, info, unload) and what they all share
 * (act_corpus.h).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_corpus.h"
#include "action.h"
#include "config.h"
#include "creds.h"
#include "corpus_store.h"
#include "job.h"
#include "kiln/corpus.h"
#include "kiln/error.h"

static void corpus_unref_any(void *c)
{
	corpus_unref(c);
}

void corpus_release(struct job *job, struct corpus *c)
{
	/* With other holders this is not the last reference (only a racing
	 * release could make it so, and then the loop wipes: rare, and still
	 * correct), and a work item would cost more than it saves. */
	if (!c)
		return;
	if (atomic_load(&c->refs) > 1)
		corpus_unref(c);
	else
		job_release_on_pool(job, corpus_unref_any, c);
}

struct corpus *corpus_get_or_fail(struct job *job, json_t *args)
{
	const char *name = json_string_value(json_object_get(args, "name"));
	struct corpus *c = corpus_store_get(job_peer(job)->uid, name);

	/* Another user's corpus of that name is just as absent. */
	if (!c)
		job_fail(job, -KILN_E_NOT_FOUND, NULL, "no corpus named '%s'", name);
	return c;
}

/* --- corpus.list / info / unload ----------------------------------------------------- */

/* The caller's corpora; an admin's `"all": true` lists everyone's (names
 * and sizes, each with its owner). */
static void act_list(struct job *job, json_t *args)
{
	const struct kiln_config *cfg = job_config(job);
	uid_t uid = job_peer(job)->uid;
	bool all = json_is_true(json_object_get(args, "all"));

	if (all && !creds_is_admin(cfg, job_peer(job))) {
		job_fail(job, -KILN_E_FORBIDDEN, json_pack("{s:s}", "path", "args.all"),
			 "only admins (root, admin_uids, admin_gids) may list every user's corpora");
		return;
	}
	json_t *list = corpus_store_list(all ? NULL : &uid);
	size_t n = json_array_size(list);

	job_succeed(job, json_pack("{s:o, s:I, s:I, s:I, s:I}", "corpora", list, "memory_bytes",
				   (json_int_t)(all ? corpus_store_memory() : corpus_store_memory_of(uid)),
				   "budget_bytes", (json_int_t)cfg->corpus_memory_budget, "per_uid_bytes",
				   (json_int_t)cfg->corpus_memory_per_uid, "total_memory_bytes",
				   (json_int_t)corpus_store_memory()),
		    "%zu corpora", n);
}

static void act_info(struct job *job, json_t *args)
{
	struct corpus *c = corpus_get_or_fail(job, args);

	if (!c)
		return;
	json_t *data = corpus_summary(c), *docs = json_array();
	for (size_t i = 0; i < c->ndocs; i++) {
		const struct kiln_cdoc *d = &c->docs[i]->cdoc;
		json_array_append_new(docs, json_pack("{s:s, s:I, s:I, s:I}", "name", c->docs[i]->name,
						      "bytes", (json_int_t)d->text_len, "code_points",
						      (json_int_t)d->chars, "lines", (json_int_t)d->lines));
	}
	json_object_set_new(data, "document_list", docs);
	corpus_release(job, c);
	job_succeed(job, data, "corpus info");
}

/* The caller's corpus; an admin may name another user's with "owner". */
static void act_unload(struct job *job, json_t *args)
{
	const char *name = json_string_value(json_object_get(args, "name"));
	json_t *owner = json_object_get(args, "owner");
	uid_t uid = job_peer(job)->uid;
	struct corpus *c;

	if (owner && (uid_t)json_integer_value(owner) != uid) {
		if (!creds_is_admin(job_config(job), job_peer(job))) {
			job_fail(job, -KILN_E_FORBIDDEN, json_pack("{s:s}", "path", "args.owner"),
				 "only admins (root, admin_uids, admin_gids) may unload another user's corpus");
			return;
		}
		uid = (uid_t)json_integer_value(owner);
	}
	c = corpus_store_take(uid, name);
	if (!c) {
		job_fail(job, -KILN_E_NOT_FOUND, NULL, "no corpus named '%s'", name);
		return;
	}
	json_t *data = json_pack("{s:s, s:I}", "name", name, "bytes", (json_int_t)c->bytes);
	/* Released before the reply, which may free the job. */
	corpus_release(job, c);
	job_succeed(job, data, "unloaded '%s'", name);
}

/* --- Family ----------------------------------------------------------------------------- */

static void corpus_family_shutdown(void)
{
	corpus_store_clear();
}

static void corpus_family_stats(json_t *into)
{
	json_object_set_new(into, "corpora", json_integer((json_int_t)corpus_store_count()));
	json_object_set_new(into, "corpus_memory_bytes", json_integer((json_int_t)corpus_store_memory()));
}

static void corpus_family_stats_per_uid(json_t *per_uid)
{
	json_t *mine = corpus_store_per_uid(), *v;
	const char *uid;

	json_object_foreach(mine, uid, v) {
		json_t *o = dispatch_uid_figures(per_uid, (unsigned)strtoul(uid, NULL, 10));
		json_object_set(o, "corpora", json_object_get(v, "corpora"));
		json_object_set(o, "corpus_memory_bytes", json_object_get(v, "memory_bytes"));
	}
	json_decref(mine);
}

static size_t corpus_family_memory(void)
{
	return corpus_store_memory();
}

#define NAME_PROP "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200}"
#define FILES_PROPS                                                                                 \
	"\"paths\":{\"type\":\"array\",\"maxItems\":100000,\"items\":{\"type\":\"string\",\"minLength\":1}}," \
	"\"dir\":{\"type\":\"string\",\"minLength\":1},"                                          \
	"\"glob\":{\"type\":\"string\",\"minLength\":1,\"description\":\"fnmatch pattern in dir, default *\"}," \
	"\"passphrase\":{\"type\":\"string\",\"maxLength\":4096},"                                 \
	"\"key_file\":{\"type\":\"string\",\"minLength\":1,\"description\":\"first line is the passphrase\"}"
#define FILES_ONEOF "\"oneOf\":[{\"required\":[\"paths\"]},{\"required\":[\"dir\"]}]"
#define CASE_PROP "\"case\":{\"enum\":[\"sensitive\",\"insensitive\"]}"
#define OBJ "\"type\":\"object\",\"additionalProperties\":false,"

static const struct action corpus_actions[] = {
	{ "corpus.load",
	  "Decrypts files (openssl enc as the CLI writes it, kiln sealed, or plain UTF-8) in parallel into "
	  "locked memory as a named corpus; atomic: any failing file leaves the corpus unchanged, and the "
	  "message names the first failing files with their reasons.",
	  "{" OBJ "\"required\":[\"name\"]," FILES_ONEOF ",\"properties\":{" NAME_PROP "," FILES_PROPS ","
	  "\"format\":{\"enum\":[\"auto\",\"openssl-enc\",\"sealed\",\"plain\"],\"description\":\"auto: "
	  "openssl enc (binary or -a base64), kiln sealed, else plain text, except that with a passphrase, "
	  "key_file or key every file must decrypt unless allow_plain\"},"
	  "\"cipher\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":47,\"description\":\"openssl enc "
	  "-CIPHER: any EVP cipher name it accepts (aes-256-cbc default, aes-128-ctr, chacha20, camellia-256-cbc, "
	  "aria-256-cbc, ...)\"},"
	  "\"digest\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":47,\"description\":\"openssl enc "
	  "-md: any EVP digest (sha256 default)\"},"
	  "\"kdf\":{\"enum\":[\"pbkdf2\",\"legacy\"],\"description\":\"pbkdf2 (-pbkdf2/-iter, default) or "
	  "legacy EVP_BytesToKey (neither)\"},"
	  "\"iterations\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100000000,\"description\":\"-iter "
	  "(10000 default)\"},"
	  "\"nosalt\":{\"type\":\"boolean\",\"description\":\"files written with -nosalt\"},"
	  "\"salt\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":16,\"description\":\"-S: hex salt "
	  "of files written with it (they carry no header)\"},"
	  "\"key\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":128,\"description\":\"-K: raw "
	  "key, hex (instead of a passphrase)\"},"
	  "\"iv\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":32,\"description\":\"-iv: hex, "
	  "with key\"},"
	  "\"detect\":{\"type\":\"boolean\",\"description\":\"try the common cipher/digest/kdf combinations "
	  "(the bounded list in include/kiln/seal.h) on the first openssl file and use the one that decrypts; "
	  "source.openssl reports it\"},"
	  "\"allow_plain\":{\"type\":\"boolean\",\"description\":\"with a passphrase or key, load files that "
	  "are not encrypted as plain text instead of failing them\"}}}",
	  "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
	  "\"documents\":{\"type\":\"integer\"},\"bytes\":{\"type\":\"integer\"},"
	  "\"load_ms\":{\"type\":\"number\"},\"kdf_ms\":{\"type\":\"number\"},"
	  "\"failed\":{\"type\":\"array\"}}}",
	  corpus_act_load, 0 },
	{ "corpus.count",
	  "Whole-word counts per document, as len(re.findall(r'\\b'+re.escape(w)+r'\\b', text[, re.I])).",
	  "{" OBJ "\"required\":[\"name\"],\"properties\":{" NAME_PROP ","
	  "\"word\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4096},"
	  "\"words\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":100,"
	  "\"items\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4096}}," CASE_PROP "}}",
	  "{\"type\":\"object\",\"properties\":{\"case\":{\"type\":\"string\"},"
	  "\"total\":{\"type\":\"integer\",\"description\":\"matches of every word\"},"
	  "\"words\":{\"type\":\"array\",\"description\":\"one entry per word (also for `word`)\","
	  "\"items\":{\"type\":\"object\",\"properties\":{\"word\":{\"type\":\"string\"},"
	  "\"total\":{\"type\":\"integer\"},\"documents\":{\"type\":\"object\","
	  "\"description\":\"document name -> matches\"}}}}}}",
	  corpus_act_count, 0 },
	{ "corpus.search",
	  "Literal search: document, line, column (code points, 1-based) and line text of each match.",
	  "{" OBJ "\"required\":[\"name\",\"query\"],\"properties\":{" NAME_PROP ","
	  "\"query\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4096}," CASE_PROP ","
	  "\"whole_word\":{\"type\":\"boolean\"},"
	  "\"max_results\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":10000}}}",
	  "{\"type\":\"object\",\"properties\":{\"query\":{\"type\":\"string\"},"
	  "\"count\":{\"type\":\"integer\",\"description\":\"every match in the corpus\"},"
	  "\"returned\":{\"type\":\"integer\",\"description\":\"matches in results (at most max_results)\"},"
	  "\"truncated\":{\"type\":\"boolean\"},\"results\":{\"type\":\"array\"}}}",
	  corpus_act_search, 0 },
	{ "corpus.stats", "text.stats over each document and the whole corpus.",
	  "{" OBJ "\"required\":[\"name\"],\"properties\":{" NAME_PROP ","
	  "\"min_length\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":1000000},"
	  "\"ignore\":{\"type\":\"array\",\"maxItems\":10000,\"items\":{\"type\":\"string\"}}}}",
	  "{\"type\":\"object\",\"properties\":{\"total\":{\"type\":\"object\"},"
	  "\"documents\":{\"type\":\"object\"}}}",
	  corpus_act_stats, 0 },
	{ "corpus.list",
	  "The caller's loaded corpora with sizes, and the memory limits; all: every user's (admins only).",
	  "{" OBJ "\"properties\":{\"all\":{\"type\":\"boolean\"}}}",
	  "{\"type\":\"object\",\"properties\":{\"corpora\":{\"type\":\"array\"}}}", act_list, 0 },
	{ "corpus.info", "One corpus: sizes, source formats and its documents.",
	  "{" OBJ "\"required\":[\"name\"],\"properties\":{" NAME_PROP "}}",
	  "{\"type\":\"object\",\"properties\":{\"document_list\":{\"type\":\"array\"}}}", act_info, 0 },
	{ "corpus.unload", "Wipes and frees one of the caller's corpora (admins: owner names another user's).",
	  "{" OBJ "\"required\":[\"name\"],\"properties\":{" NAME_PROP ","
	  "\"owner\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":4294967295}}}",
	  "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
	  "\"bytes\":{\"type\":\"integer\"}}}",
	  act_unload, 0 },
	{ "corpus.seal",
	  "Encrypts UTF-8 files into out_dir as kiln sealed files (<name>.kseal) sharing one KDF salt.",
	  "{" OBJ "\"required\":[\"out_dir\"]," FILES_ONEOF ",\"properties\":{" FILES_PROPS ","
	  "\"out_dir\":{\"type\":\"string\",\"minLength\":1},"
	  "\"kdf\":{\"enum\":[\"scrypt\",\"pbkdf2\"]},"
	  "\"iterations\":{\"type\":\"integer\",\"minimum\":1000,\"maximum\":100000000},"
	  "\"log2_n\":{\"type\":\"integer\",\"minimum\":10,\"maximum\":22},"
	  "\"r\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":32},"
	  "\"p\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":16},"
	  "\"overwrite\":{\"type\":\"boolean\"}}}",
	  "{\"type\":\"object\",\"properties\":{\"files\":{\"type\":\"array\"},"
	  "\"kdf\":{\"type\":\"object\"},\"kdf_ms\":{\"type\":\"number\"}}}",
	  corpus_act_seal, 0 },
};

const struct action_family family_corpus = {
	.name = "corpus",
	.actions = corpus_actions,
	.count = sizeof corpus_actions / sizeof corpus_actions[0],
	.shutdown = corpus_family_shutdown,
	.stats = corpus_family_stats,
	.stats_per_uid = corpus_family_stats_per_uid,
	.memory_held = corpus_family_memory,
};
