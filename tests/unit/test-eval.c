/* test-eval.c - the pure parts of isq-bench's scoring: log-softmax, KL, percentiles, documents and windows, --sweep lists. */
#include "test.h"
#include "eval.h"
#include "sweep.h"

#include <math.h>

TEST(log_softmax_normalizes_and_finds_the_argmax)
{
	const float x[5] = { 0.5f, 2.0f, -1.0f, 3.25f, 3.25f }; /* a tie: the first wins */
	double lp[5], sum = 0;
	CHECK_EQ_INT(isq_eval_log_softmax(x, 5, lp), 3);
	for (int i = 0; i < 5; i++)
		sum += exp(lp[i]);
	CHECK_NEAR(sum, 1.0, 1e-12);
	/* differences of log-probabilities are differences of logits */
	CHECK_NEAR(lp[1] - lp[0], 1.5, 1e-12);
	/* log(exp(0.5)+exp(2)+exp(-1)+2 exp(3.25)) by hand */
	double lse = log(exp(0.5) + exp(2.0) + exp(-1.0) + 2 * exp(3.25));
	CHECK_NEAR(lp[2], -1.0 - lse, 1e-12);
}

TEST(log_softmax_survives_large_logits)
{
	const float x[3] = { 1000.0f, 1000.0f, 0.0f }; /* exp(1000) overflows without the max shift */
	double lp[3];
	CHECK_EQ_INT(isq_eval_log_softmax(x, 3, lp), 0);
	CHECK_NEAR(lp[0], -log(2.0), 1e-12);
	CHECK(isfinite(lp[2]) && lp[2] < -990);
}

TEST(kl_of_identical_distributions_is_zero)
{
	const float x[4] = { 0.1f, -2.0f, 4.0f, 1.5f };
	double a[4], b[4];
	isq_eval_log_softmax(x, 4, a);
	isq_eval_log_softmax(x, 4, b);
	CHECK_NEAR(isq_eval_kl(a, b, 4), 0.0, 1e-15);
}

TEST(kl_of_two_coins)
{
	/* KL(p || q) for p = (1/2, 1/2), q = (1/4, 3/4): 0.5 ln 2 + 0.5 ln(2/3) */
	double p[2] = { log(0.5), log(0.5) }, q[2] = { log(0.25), log(0.75) };
	CHECK_NEAR(isq_eval_kl(p, q, 2), 0.5 * log(2.0) + 0.5 * log(2.0 / 3.0), 1e-12);
	CHECK(isq_eval_kl(q, p, 2) > 0);
}

TEST(percentile_interpolates_between_neighbours)
{
	const double v[5] = { 1, 2, 4, 8, 16 };
	CHECK_NEAR(isq_eval_percentile(v, 5, 0.0), 1, 0);
	CHECK_NEAR(isq_eval_percentile(v, 5, 1.0), 16, 0);
	CHECK_NEAR(isq_eval_percentile(v, 5, 0.5), 4, 0);
	/* 0.9 * 4 = 3.6: 0.4 of 8 and 0.6 of 16 */
	CHECK_NEAR(isq_eval_percentile(v, 5, 0.9), 0.4 * 8 + 0.6 * 16, 1e-12);
	const double one[1] = { 3 };
	CHECK_NEAR(isq_eval_percentile(one, 1, 0.99), 3, 0);
}

TEST(accumulator_mean_and_standard_error)
{
	struct isq_eval_acc a = { 0 };
	CHECK_NEAR(isq_eval_acc_mean(&a), 0, 0);
	isq_eval_acc_add(&a, 1);
	CHECK_NEAR(isq_eval_acc_err(&a), 0, 0); /* one value: no error */
	isq_eval_acc_add(&a, 2);
	isq_eval_acc_add(&a, 3);
	isq_eval_acc_add(&a, 4);
	CHECK_NEAR(isq_eval_acc_mean(&a), 2.5, 1e-15);
	/* population variance 1.25, over N - 1 = 3 */
	CHECK_NEAR(isq_eval_acc_err(&a), sqrt(1.25 / 3), 1e-12);
}

TEST(top1_rate_and_its_error)
{
	struct isq_eval_result r = { 0 };
	CHECK_NEAR(isq_eval_top1_pct(&r), 0, 0);
	r.scored = 5, r.same_top = 4;
	CHECK_NEAR(isq_eval_top1_pct(&r), 80, 1e-12);
	CHECK_NEAR(isq_eval_top1_err_pct(&r), 100 * sqrt(0.8 * 0.2 / 4), 1e-12);
}

TEST(windows_cover_every_prediction_once)
{
	/* 10 tokens predict 9: windows of 4, 4, 1 inputs */
	CHECK_EQ_INT(isq_eval_window_len(10, 4, 0), 4);
	CHECK_EQ_INT(isq_eval_window_len(10, 4, 4), 4);
	CHECK_EQ_INT(isq_eval_window_len(10, 4, 8), 1);
	CHECK_EQ_INT(isq_eval_window_len(10, 4, 12), 0);
	/* exactly one window; a lone BOS predicts nothing */
	CHECK_EQ_INT(isq_eval_window_len(5, 4, 0), 4);
	CHECK_EQ_INT(isq_eval_window_len(5, 4, 4), 0);
	CHECK_EQ_INT(isq_eval_window_len(1, 4, 0), 0);
	/* the windows of a tiny token list: the targets are the tokens after the first, in order */
	const int32_t ids[7] = { 1, 10, 11, 12, 13, 14, 15 };
	int32_t seen[8];
	int n_seen = 0, n_win = 0;
	int64_t len;
	for (int64_t at = 0; (len = isq_eval_window_len(7, 3, at)) > 0; at += 3, n_win++)
		for (int64_t j = 0; j < len; j++)
			seen[n_seen++] = ids[at + j + 1];
	CHECK_EQ_INT(n_win, 2);
	CHECK_EQ_INT(n_seen, 6);
	for (int i = 0; i < n_seen && i < 6; i++)
		CHECK_EQ_INT(seen[i], 10 + i);
}

/* Every document of TEXT, each as "[...]", into OUT. */
static void docs(const char *text, char *out, size_t n)
{
	const char *p = text, *end = text + strlen(text), *a, *b;
	size_t o = 0;
	out[0] = '\0';
	while (isq_eval_next_doc(&p, end, &a, &b) && o < n)
		o += (size_t)snprintf(out + o, n - o, "[%.*s]", (int)(b - a), a);
}

TEST(documents_split_at_separator_lines)
{
	char got[256];
	docs("one\n<|endoftext|>\ntwo\n", got, sizeof(got));
	CHECK_STR(got, "[one][two]");
	/* blanks around the separator; stripped documents; an empty one in the middle */
	docs("  a b \n \t<|endoftext|>\r\n<|endoftext|>\nc", got, sizeof(got));
	CHECK_STR(got, "[a b][][c]");
	/* the separator inside a line is text */
	docs("x <|endoftext|> y", got, sizeof(got));
	CHECK_STR(got, "[x <|endoftext|> y]");
	/* a trailing separator ends the text */
	docs("last\n<|endoftext|>", got, sizeof(got));
	CHECK_STR(got, "[last]");
	docs("", got, sizeof(got));
	CHECK_STR(got, "");
}

TEST(sweep_list_parses_types_and_refuses_empty_entries)
{
	struct isq_sweep sw;
	struct isq_errbuf e = { 0 };
	isq_types_init();
	CHECK_EQ_INT(isq_sweep_parse(&sw, "q4_0,q8_0", 1, &e), 0);
	CHECK_EQ_INT((int)sw.n_rows, 5); /* base, then each type without and with the imatrix */
	CHECK_STR(sw.rows[0].series, "base");
	CHECK_STR(sw.rows[1].label, "q4_0");
	CHECK_STR(sw.rows[2].series, "isq + imatrix");
	CHECK_EQ_INT(sw.rows[2].imatrix, 1);
	CHECK_STR(sw.rows[3].label, "q8_0");
	isq_sweep_release(&sw);

	CHECK_EQ_INT(isq_sweep_parse(&sw, "q4_0,,q8_0", 0, &e), ISQ_EINVAL);
	CHECK_STR(isq_errbuf_msg(&e), "an empty entry in 'q4_0,,q8_0'");
	isq_sweep_release(&sw);
	CHECK_EQ_INT(isq_sweep_parse(&sw, "no-such-type-or-file", 0, &e), ISQ_EINVAL);
	CHECK(strstr(isq_errbuf_msg(&e), "(or no such file)") != NULL);
	isq_sweep_release(&sw);
}
