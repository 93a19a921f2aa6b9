/*
 * Work queue with threads of its own (see workq.h).
 */
#include "workq.h"

static void append(struct workq_item **head, struct workq_item **tail, struct workq_item *it)
{
	it->next = NULL;
	if (*tail)
		(*tail)->next = it;
	else
		*head = it;
	*tail = it;
}

static void *thread_main(void *arg)
{
	struct workq *q = arg;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct workq_item *it;
		while (!q->todo && !q->stop)
			pthread_cond_wait(&q->cv, &q->mu);
		/* Stopping still drains the queue. */
		if (!q->todo)
			break;
		it = q->todo;
		q->todo = it->next;
		if (!q->todo)
			q->todo_tail = NULL;
		pthread_mutex_unlock(&q->mu);
		q->work(it);
		pthread_mutex_lock(&q->mu);
		append(&q->done_head, &q->done_tail, it);
		uv_async_send(&q->async);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* Loop thread: runs done() for every finished item, in order. */
static void run_done(struct workq *q)
{
	struct workq_item *it, *next;

	pthread_mutex_lock(&q->mu);
	it = q->done_head;
	q->done_head = q->done_tail = NULL;
	pthread_mutex_unlock(&q->mu);
	for (; it; it = next) {
		next = it->next;
		q->done(it);
	}
}

static void on_async(uv_async_t *a)
{
	run_done(a->data);
}

int workq_start(struct workq *q, uv_loop_t *loop, int nthreads, void (*work)(struct workq_item *it),
		void (*done)(struct workq_item *it))
{
	if (nthreads > WORKQ_MAX_THREADS)
		nthreads = WORKQ_MAX_THREADS;
	q->work = work;
	q->done = done;
	q->stop = false;
	q->todo = q->todo_tail = q->done_head = q->done_tail = NULL;
	if (uv_async_init(loop, &q->async, on_async) != 0)
		return -1;
	q->async.data = q;
	uv_unref((uv_handle_t *)&q->async);
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->started = true;
	for (q->nthreads = 0; q->nthreads < nthreads; q->nthreads++)
		if (pthread_create(&q->threads[q->nthreads], NULL, thread_main, q) != 0)
			break;
	if (q->nthreads == 0) {
		workq_stop(q);
		return -1;
	}
	return 0;
}

void workq_push(struct workq *q, struct workq_item *it)
{
	pthread_mutex_lock(&q->mu);
	append(&q->todo, &q->todo_tail, it);
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

bool workq_find_queued(struct workq *q, bool (*fn)(struct workq_item *it, void *ctx), void *ctx)
{
	bool found = false;

	pthread_mutex_lock(&q->mu);
	for (struct workq_item *it = q->todo; it && !found; it = it->next)
		found = fn(it, ctx);
	pthread_mutex_unlock(&q->mu);
	return found;
}

void workq_stop(struct workq *q)
{
	if (!q->started)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	q->nthreads = 0;
	run_done(q);
	uv_close((uv_handle_t *)&q->async, NULL);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	q->started = false;
}
