/* serve.h - quant-eval's serving modes (--serve-bench, --batch-curve): their own arguments and
 * output, in tools/quant-eval/serve.c. */
#ifndef QUANT_EVAL_SERVE_H
#define QUANT_EVAL_SERVE_H

#include <stdbool.h>

/* argv holds --serve-bench or --batch-curve. */
bool quant_eval_is_serve(int argc, char **argv);
/* The whole run: an exit code. */
int quant_eval_serve(int argc, char **argv);

#endif
