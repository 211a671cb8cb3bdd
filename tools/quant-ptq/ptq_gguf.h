/* ptq_gguf.h - quant-ptq --format gguf: llama-quantize's job (a GGUF file of one of its types or
 * mixes) as its own argument set, so quant-ptq.c only dispatches. */
#ifndef PTQ_GGUF_H
#define PTQ_GGUF_H

#include <stdbool.h>

/* Whether argv asks for --format gguf (the only other value, the default, is "ct"). */
bool ptq_gguf_wanted(int argc, char **argv);
/* The whole run; returns the exit code. */
int ptq_gguf_main(int argc, char **argv);

#endif
