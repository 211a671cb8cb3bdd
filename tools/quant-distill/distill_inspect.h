/* distill_inspect.h - quant-distill --inspect: a dataset's summary and one record, as text or
 * JSON (a soft-label directory, or a --sequences directory). Returns the tool's exit code. */
#ifndef DISTILL_INSPECT_H
#define DISTILL_INSPECT_H

#include <stdbool.h>
#include <stdint.h>

int distill_inspect(const char *path, int64_t record, int positions, bool json);

#endif
