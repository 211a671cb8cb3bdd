/* kv_report.c - the KV-cache keys of quant-eval's JSON (kv_report.h). */
#include "quant-eval/kv_report.h"

bool quant_eval_kv_static(const lq_model *m) {
    const lq_kv_type t = lq_model_kv_cache(m);
    return lq_model_kv_static(m) && (t == LQ_KV_Q8 || t == LQ_KV_FP8);
}

void quant_eval_kv_json(json_t *j, const lq_model *m) {
    const lq_kv_type t = lq_model_kv_cache(m);
    json_object_set_new(j, "kv_cache", json_string(lq_kv_type_name(t)));
    json_object_set_new(j, "kv_cache_scales", json_string(t == LQ_KV_F32 || t == LQ_KV_F16 ? "none"
                                                          : quant_eval_kv_static(m) ? "static" : "per-token"));
    json_object_set_new(j, "kv_cache_bytes_per_pos", json_integer((json_int_t)lq_model_kv_bytes_per_pos(m, t)));
}
