// ggml-llama - a llama forward pass built on ggml, timed with llama-bench's method, so that isq's speed can
// be compared with llama.cpp's compute library on the same machine when llama.cpp itself cannot be built.
//
//   make bench-ggml GGML_DIR=/path/to/ggml    (a checkout of github.com/ggml-org/ggml, built with
//                                              cmake -B build -DGGML_NATIVE=ON -DGGML_LLAMAFILE=ON)
//   build/tests/ggml-llama MODEL.gguf THREADS [PROMPT=64] [GEN=16] [REPS=5] [all]
//
// "all" computes the logits of every prompt token, as llama-imatrix and llama-perplexity do (their lower
// bound: they also copy activations out or score the logits); `ggml-llama M 2 512 0 8 all` is isq-imatrix's
// 8 chunks of 512.
//
// As llama.cpp runs it on AVX2: Q4_0/Q4_K/IQ4_NL weights in ggml's CPU_REPACK buffer, the rest in plain
// CPU buffers, F16 KV cache, flash attention, logits for a batch's last token only, one warm-up.  It
// leaves out llama.cpp's own overhead (batch splitting, sampling), so it is at least as fast as
// llama-bench would be.  Llama architecture, RoPE base 10000, eps 1e-5 (the anchor model's); the ids are
// arbitrary, the output unused.
// Built only by that target, never by CI.
#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "gguf.h"
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>
static int NL, NE, NH, NKV, HD, NFF, NV, NCTX = 1024;
static bool ALL_LOGITS;
static std::map<std::string, ggml_tensor *> W;
static ggml_tensor *KC[64], *VC[64];
static ggml_tensor *w(const std::string &n) { auto it = W.find(n); if (it == W.end()) { fprintf(stderr, "no %s\n", n.c_str()); exit(1); } return it->second; }
static ggml_cgraph *build(ggml_context *c, int n, int p0, ggml_tensor **ids, ggml_tensor **pos, ggml_tensor **mask) {
    ggml_cgraph *gf = ggml_new_graph_custom(c, 4096, false);
    *ids = ggml_new_tensor_1d(c, GGML_TYPE_I32, n); ggml_set_input(*ids);
    *pos = ggml_new_tensor_1d(c, GGML_TYPE_I32, n); ggml_set_input(*pos);
    int nkv = p0 + n, npad = n;
    *mask = ggml_new_tensor_2d(c, GGML_TYPE_F16, nkv, npad); ggml_set_input(*mask);
    ggml_tensor *x = ggml_get_rows(c, w("token_embd.weight"), *ids);
    for (int l = 0; l < NL; l++) {
        char b[64]; auto L = [&](const char *s) { snprintf(b, sizeof b, "blk.%d.%s", l, s); return w(b); };
        ggml_tensor *h = ggml_mul(c, ggml_rms_norm(c, x, 1e-5f), L("attn_norm.weight"));
        ggml_tensor *q = ggml_reshape_3d(c, ggml_mul_mat(c, L("attn_q.weight"), h), HD, NH, n);
        ggml_tensor *k = ggml_reshape_3d(c, ggml_mul_mat(c, L("attn_k.weight"), h), HD, NKV, n);
        ggml_tensor *v = ggml_reshape_3d(c, ggml_mul_mat(c, L("attn_v.weight"), h), HD, NKV, n);
        q = ggml_rope_ext(c, q, *pos, NULL, HD, 0, 0, 10000.0f, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f);
        k = ggml_rope_ext(c, k, *pos, NULL, HD, 0, 0, 10000.0f, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f);
        // cache rows: [HD*NKV] per position
        ggml_tensor *kdst = ggml_view_1d(c, KC[l], (int64_t)HD * NKV * n, ggml_row_size(KC[l]->type, (int64_t)HD * NKV) * p0);
        ggml_tensor *vdst = ggml_view_1d(c, VC[l], (int64_t)HD * NKV * n, ggml_row_size(VC[l]->type, (int64_t)HD * NKV) * p0);
        ggml_build_forward_expand(gf, ggml_cpy(c, k, kdst));
        ggml_build_forward_expand(gf, ggml_cpy(c, v, vdst));
        size_t es = ggml_element_size(KC[l]);
        ggml_tensor *kk = ggml_view_3d(c, KC[l], HD, nkv, NKV, es * HD * NKV, es * HD, 0);
        ggml_tensor *vv = ggml_view_3d(c, VC[l], HD, nkv, NKV, es * HD * NKV, es * HD, 0);
        ggml_tensor *qq = ggml_permute(c, q, 0, 2, 1, 3);
        ggml_tensor *a = ggml_flash_attn_ext(c, qq, kk, vv, *mask, 1.0f / sqrtf((float)HD), 0.0f, 0.0f);
        a = ggml_reshape_2d(c, a, NE, n);
        x = ggml_add(c, x, ggml_mul_mat(c, L("attn_output.weight"), a));
        h = ggml_mul(c, ggml_rms_norm(c, x, 1e-5f), L("ffn_norm.weight"));
        ggml_tensor *g = ggml_swiglu_split(c, ggml_mul_mat(c, L("ffn_gate.weight"), h), ggml_mul_mat(c, L("ffn_up.weight"), h));
        x = ggml_add(c, x, ggml_mul_mat(c, L("ffn_down.weight"), g));
    }
    if (!ALL_LOGITS) x = ggml_view_2d(c, x, NE, 1, x->nb[1], x->nb[1] * (n - 1));  // last token only, as llama-bench
    x = ggml_mul(c, ggml_rms_norm(c, x, 1e-5f), w("output_norm.weight"));
    ggml_build_forward_expand(gf, ggml_mul_mat(c, w("output.weight"), x));
    return gf;
}
static double run(ggml_backend_t be, ggml_gallocr_t ga, int n, int p0) {
    ggml_init_params pc = { 8192 * ggml_tensor_overhead() + ggml_graph_overhead_custom(4096, false), NULL, true };
    ggml_context *c = ggml_init(pc);
    ggml_tensor *ids, *pos, *mask;
    ggml_cgraph *gf = build(c, n, p0, &ids, &pos, &mask);
    ggml_gallocr_alloc_graph(ga, gf);
    std::vector<int32_t> iv(n), pv(n); for (int i = 0; i < n; i++) { iv[i] = (i * 7919 + 3) % NV; pv[i] = p0 + i; }
    ggml_backend_tensor_set(ids, iv.data(), 0, n * 4); ggml_backend_tensor_set(pos, pv.data(), 0, n * 4);
    int nkv = p0 + n, npad = n;
    std::vector<ggml_fp16_t> m((size_t)nkv * npad);
    for (int i = 0; i < npad; i++) for (int j = 0; j < nkv; j++) m[(size_t)i * nkv + j] = ggml_fp32_to_fp16(i < n && j <= p0 + i ? 0.0f : -INFINITY);
    ggml_backend_tensor_set(mask, m.data(), 0, m.size() * 2);
    auto t0 = std::chrono::steady_clock::now();
    ggml_backend_graph_compute(be, gf);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ggml_free(c);
    return s;
}
int main(int argc, char **argv) {
    const char *path = argv[1]; int th = atoi(argv[2]), np = argc > 3 ? atoi(argv[3]) : 64, ng = argc > 4 ? atoi(argv[4]) : 16, reps = argc > 5 ? atoi(argv[5]) : 5;
    ALL_LOGITS = argc > 6 && strcmp(argv[6], "all") == 0;
    ggml_context *meta = NULL;
    gguf_init_params gp = { true, &meta };
    gguf_context *g = gguf_init_from_file(path, gp);
    if (!g) { fprintf(stderr, "cannot read %s\n", path); return 1; }
    auto geti = [&](const char *k) { int64_t id = gguf_find_key(g, k); return id < 0 ? -1 : (int)gguf_get_val_u32(g, id); };
    NL = geti("llama.block_count"); NE = geti("llama.embedding_length"); NH = geti("llama.attention.head_count");
    NKV = geti("llama.attention.head_count_kv"); NFF = geti("llama.feed_forward_length"); HD = NE / NH;
    ggml_backend_t be = ggml_backend_cpu_init(); ggml_backend_cpu_set_n_threads(be, th);
    ggml_backend_dev_t dev = ggml_backend_get_device(be);
    auto get_extra = (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_dev_get_extra_bufts");
    ggml_backend_buffer_type_t rep = get_extra ? get_extra(dev)[0] : NULL;
    ggml_init_params p = { 2 * (size_t)gguf_get_n_tensors(g) * ggml_tensor_overhead(), NULL, true };
    ggml_context *cr = ggml_init(p), *cd = ggml_init(p);
    FILE *f = fopen(path, "rb");
    size_t off0 = gguf_get_data_offset(g);
    std::vector<std::pair<ggml_tensor *, size_t>> load;
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++) {
        const char *name = gguf_get_tensor_name(g, i);
        ggml_tensor *src = ggml_get_tensor(meta, name);
        bool r = rep && (src->type == GGML_TYPE_Q4_0 || src->type == GGML_TYPE_Q4_K || src->type == GGML_TYPE_IQ4_NL) && strstr(name, "token_embd") == NULL;
        ggml_tensor *t = ggml_dup_tensor(r ? cr : cd, src); ggml_set_name(t, name);
        W[name] = t; load.push_back({t, off0 + gguf_get_tensor_offset(g, i)});
    }
    NV = (int)w("token_embd.weight")->ne[1];
    ggml_backend_alloc_ctx_tensors_from_buft(cr, rep ? rep : ggml_backend_get_default_buffer_type(be));
    ggml_backend_alloc_ctx_tensors(cd, be);
    for (auto &lt : load) {
        std::vector<uint8_t> buf(ggml_nbytes(lt.first));
        fseek(f, (long)lt.second, SEEK_SET);
        if (fread(buf.data(), 1, buf.size(), f) != buf.size()) { fprintf(stderr, "short read\n"); return 1; }
        ggml_backend_tensor_set(lt.first, buf.data(), 0, buf.size());
    }
    ggml_context *ck = ggml_init({ 2 * 64 * ggml_tensor_overhead(), NULL, true });
    for (int l = 0; l < NL; l++) { KC[l] = ggml_new_tensor_1d(ck, GGML_TYPE_F16, (int64_t)HD * NKV * NCTX); VC[l] = ggml_new_tensor_1d(ck, GGML_TYPE_F16, (int64_t)HD * NKV * NCTX); }
    ggml_backend_alloc_ctx_tensors(ck, be);
    ggml_gallocr_t ga = ggml_gallocr_new(ggml_backend_get_default_buffer_type(be));
    run(be, ga, np, 0); if (ng > 0) run(be, ga, 1, np);  // warm-up, as llama-bench
    std::vector<double> pp, tg;
    for (int r = 0; r < reps; r++) pp.push_back(np / run(be, ga, np, 0));
    for (int r = 0; ng > 0 && r < reps; r++) { double s = 0; for (int i = 0; i < ng; i++) s += run(be, ga, 1, i); tg.push_back(ng / s); }
    auto ms = [](std::vector<double> &v, double &m, double &sd) { m = 0; for (double x : v) m += x; m /= v.size(); sd = 0; for (double x : v) sd += (x - m) * (x - m); sd = sqrt(sd / (v.size() - 1)); };
    double a, b, c2 = 0, d = 0; ms(pp, a, b); if (ng > 0) ms(tg, c2, d);
    double secs = 0; for (double x : pp) secs += np / x;
    printf("ggml %s threads %d: pp%d %.1f ± %.1f t/s (%d passes %.2f s%s), tg%d %.1f ± %.1f t/s\n", path, th, np, a, b,
           reps, secs, ALL_LOGITS ? ", all logits" : "", ng, c2, d);
    return 0;
}
