/* recipe_print.h - quant-recipe check's output: the recipe's stages and modifiers, and with a
 * model the plan (the tensors each modifier touches, the estimated output size). */
#ifndef RECIPE_PRINT_H
#define RECIPE_PRINT_H

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_recipe.h"

/* Text on stdout; p and ck NULL without --model. */
void recipe_print_text(const lq_recipe *r, const lq_plan *p, const lq_checkpoint *ck);
/* One JSON document on stdout; avail: lq_recipe_check_available's status. */
void recipe_print_json(const lq_recipe *r, const lq_plan *p, lq_status avail);

#endif
