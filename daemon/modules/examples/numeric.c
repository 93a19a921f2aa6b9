/*
 * Example module "numeric": arithmetic on arrays of floats passed as
 * attachments (raw native-endian doubles, no JSON for the numbers).
 *
 *   numeric.add          {"a": int, "b": int} -> {"sum"}            (the cheapest call)
 *   numeric.sum          {"values": [numbers]} -> {"sum", "n"}      (an array in JSON args)
 *   numeric.dot          {"n": N}, attachment x[N] then y[N] -> {"dot"}
 *   numeric.running_sum  attachment x[N] -> attachment s[N], s[i] = x[0] + ... + x[i]
 *
 * The plain C functions kiln_example_* are exported too, so a benchmark can
 * call the very same code through ctypes.
 *
 * Build: cc -shared -fPIC -O2 $(pkg-config --cflags kiln-module) numeric.c -o numeric.so
 */
#include <kiln/module.h>

KILN_MODULE_DECLARE();

int64_t kiln_example_add(int64_t a, int64_t b)
{
	return a + b;
}

double kiln_example_dot(const double *x, const double *y, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += x[i] * y[i];
	return s;
}

void kiln_example_running_sum(const double *x, double *out, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++) {
		s += x[i];
		out[i] = s;
	}
}

static int add(kiln_mod_call *call)
{
	int64_t a, b, sum;

	/* The schema made both required integers; the checks stay cheap. */
	if (kiln_mod_arg_int(call, "a", &a) || kiln_mod_arg_int(call, "b", &b))
		return kiln_mod_fail(call, KILN_E_INVALID_ARGS, "a and b must be integers");
	if (__builtin_add_overflow(a, b, &sum))
		return kiln_mod_fail(call, KILN_E_INVALID_ARGS, "a + b overflows a 64-bit integer");
	return kiln_mod_result_int(call, "sum", kiln_example_add(a, b));
}

static int sum(kiln_mod_call *call)
{
	const double *v;
	size_t n;
	double s = 0;

	if (kiln_mod_arg_f64_array(call, "values", &v, &n))
		return kiln_mod_fail(call, KILN_E_INVALID_ARGS, "values must be an array of numbers");
	for (size_t i = 0; i < n; i++)
		s += v[i];
	kiln_mod_result_int(call, "n", (int64_t)n);
	if (kiln_mod_result_float(call, "sum", s))
		return kiln_mod_fail(call, KILN_E_INVALID_ARGS, "the sum is not finite");
	return 0;
}

static int dot(kiln_mod_call *call)
{
	const void *p;
	const double *x;
	size_t count;
	int64_t n;

	if (kiln_mod_arg_int(call, "n", &n))
		return kiln_mod_fail(call, KILN_E_INVALID_ARGS, "n must be an integer");
	if (kiln_mod_attachment_array(call, KILN_MOD_F64, &p, &count) || count != 2 * (uint64_t)n)
		return kiln_mod_fail(call, KILN_E_INVALID_ARGS,
				     "the attachment must hold 2n = %lld doubles (x then y)", 2 * (long long)n);
	x = p;
	if (kiln_mod_result_float(call, "dot", kiln_example_dot(x, x + n, (size_t)n)))
		return kiln_mod_fail(call, KILN_E_INVALID_ARGS, "the dot product is not finite");
	return 0;
}

static int running_sum(kiln_mod_call *call)
{
	const void *p;
	double *out;
	size_t n;

	if (kiln_mod_attachment_array(call, KILN_MOD_F64, &p, &n))
		return kiln_mod_fail(call, KILN_E_INVALID_ARGS, "the attachment must be an array of doubles");
	out = kiln_mod_output(call, n * sizeof(double));
	if (!out && n)
		return kiln_mod_fail(call, KILN_E_TOO_LARGE, "no room for %zu doubles of output", n);
	kiln_example_running_sum(p, out, n);
	kiln_mod_result_int(call, "n", (int64_t)n);
	kiln_mod_message(call, "running sum of %zu doubles", n);
	return 0;
}

static const struct kiln_mod_action actions[] = {
	{ "numeric.add", "Sum of two 64-bit integers (the cheapest module call).",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"a\",\"b\"],"
	  "\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"}}}",
	  "{\"type\":\"object\",\"properties\":{\"sum\":{\"type\":\"integer\"}}}", add },
	{ "numeric.sum", "Sum of a JSON array of numbers.",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"values\"],"
	  "\"properties\":{\"values\":{\"type\":\"array\",\"items\":{\"type\":\"number\"}}}}",
	  "{\"type\":\"object\",\"properties\":{\"sum\":{\"type\":\"number\"},\"n\":{\"type\":\"integer\"}}}", sum },
	{ "numeric.dot", "Dot product of x and y, sent as 2n native doubles (x then y) in the attachment.",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"n\"],"
	  "\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":0}}}",
	  "{\"type\":\"object\",\"properties\":{\"dot\":{\"type\":\"number\"}}}", dot },
	{ "numeric.running_sum", "Running sum of the attachment's doubles, as an attachment of doubles.",
	  "{\"type\":\"object\",\"additionalProperties\":false}",
	  "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"},\"attachment\":{\"type\":\"integer\"}}}",
	  running_sum },
};

int kiln_module_init(kiln_mod_registry *reg)
{
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		int rc = kiln_mod_register(reg, &actions[i]);
		if (rc)
			return rc;
	}
	return 0;
}
