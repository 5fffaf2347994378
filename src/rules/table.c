/* table.c: the rule table, the only list of rules. A rule is one file
 * defining a Rule (rules.h), named here twice (its declaration and its
 * line in the table); the config parser, the CLI and every list of rules
 * read it through asym_rule_count, asym_rule_name and asym_rule_parse. */
#include "rules/rules.h"

#include <string.h>

extern const Rule RULE_BP, RULE_FA, RULE_DFA, RULE_USF, RULE_BRSF, RULE_FRSF, RULE_KP, RULE_WM, RULE_SA, RULE_AA, RULE_IA;
extern const Rule RULE_SDFA, RULE_DRTP, RULE_DKP, RULE_URFB, RULE_PFA;

/* Numbered from 1 (0: a layer without its own rule), in the order of the
 * AsymRule names the seed rules keep; a new rule is one more line. */
static const Rule *const TABLE[] = {
    NULL,
    &RULE_BP,
    &RULE_FA,
    &RULE_DFA,
    &RULE_USF,
    &RULE_BRSF,
    &RULE_FRSF,
    &RULE_KP,
    &RULE_WM,
    &RULE_SA,
    &RULE_AA,
    &RULE_IA,
    &RULE_SDFA,
    &RULE_DRTP,
    &RULE_DKP,
    &RULE_URFB,
    &RULE_PFA,
};
enum { N_TABLE = (int)(sizeof TABLE / sizeof TABLE[0]) };
_Static_assert((int)N_TABLE <= (int)ASYM_MAX_RULES, "AsymFeedbackSpec.rule_opt holds ASYM_MAX_RULES rules");

const Rule *rule_get(AsymRule r) { return (int)r > 0 && (int)r < N_TABLE ? TABLE[r] : NULL; }

int asym_rule_count(void) { return N_TABLE - 1; }

const char *asym_rule_name(int r) {
    if (r == ASYM_RULE_DEFAULT) return "default";
    return rule_get((AsymRule)r) ? TABLE[r]->name : "?";
}

int asym_rule_parse(const char *name) {
    for (int r = 1; r < N_TABLE; r++)
        if (!strcmp(name, TABLE[r]->name)) return r;
    return ASYM_RULE_DEFAULT;
}
