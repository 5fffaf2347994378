/* feedback.c: feedback rules. A weight layer's backward pass asks
 * feedback_matrix() for the matrix standing in for W when it propagates the
 * error to its input (REFERENCE: "Feedback rules"). */
#include "feedback.h"

#include <stdlib.h>

int feedback_attach(Layer *l, FeedbackRule rule) {
    l->fb = asym_calloc(1, sizeof(Feedback));
    if (!l->fb) return ASYM_ERR;
    l->fb->rule = rule;
    return ASYM_OK;
}

const float *feedback_matrix(const Layer *l) {
    if (!l->fb || l->fb->rule == FB_BP || !l->fb->B) return l->W->w;
    return l->fb->B;
}

void feedback_free(Feedback *fb) {
    if (!fb) return;
    free(fb->B);
    free(fb);
}
