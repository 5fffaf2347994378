/* table.c: the rule table, the only list of rules. A rule is one file
 * defining a Rule (rules.h), named here twice (its declaration and its
 * entry, in the order of the AsymRule values); the config parser, the CLI
 * and every list of rules read it through asym_rule_name and
 * asym_rule_parse. */
#include "rules/rules.h"

#include <string.h>

extern const Rule RULE_BP, RULE_FA, RULE_DFA, RULE_USF, RULE_BRSF, RULE_FRSF, RULE_KP, RULE_WM;

static const Rule *const TABLE[ASYM_RULE_COUNT] = {
    [ASYM_RULE_BP] = &RULE_BP,
    [ASYM_RULE_FA] = &RULE_FA,
    [ASYM_RULE_DFA] = &RULE_DFA,
    [ASYM_RULE_USF] = &RULE_USF,
    [ASYM_RULE_BRSF] = &RULE_BRSF,
    [ASYM_RULE_FRSF] = &RULE_FRSF,
    [ASYM_RULE_KP] = &RULE_KP,
    [ASYM_RULE_WM] = &RULE_WM,
};

const Rule *rule_get(AsymRule r) { return (int)r > 0 && r < ASYM_RULE_COUNT ? TABLE[r] : NULL; }

const char *asym_rule_name(AsymRule r) {
    if (r == ASYM_RULE_DEFAULT) return "default";
    return rule_get(r) ? TABLE[r]->name : "?";
}

AsymRule asym_rule_parse(const char *name) {
    for (int r = ASYM_RULE_BP; r < ASYM_RULE_COUNT; r++)
        if (!strcmp(name, TABLE[r]->name)) return (AsymRule)r;
    return ASYM_RULE_DEFAULT;
}
