/* bp.c: exact backpropagation, B = W: the layer has no B of its own. */
#include "rules/rules.h"

const Rule RULE_BP = {.name = "bp"};
