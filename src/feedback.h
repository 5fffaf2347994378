/* feedback.h: the one place that decides which matrix a weight layer's
 * input gradient uses, and how that matrix changes over training. Exact
 * backpropagation passes W itself. */
#ifndef ASYM_FEEDBACK_H
#define ASYM_FEEDBACK_H

#include "layer.h"

typedef enum FeedbackRule { FB_BP = 1 } FeedbackRule;

struct Feedback {
    FeedbackRule rule;
    float *B;           /* W's shape; NULL while the rule is bp */
};

/* Attaches the network-wide rule to a weight layer. */
int feedback_attach(Layer *l, FeedbackRule rule);
/* The matrix used in place of W in the input-gradient half. */
const float *feedback_matrix(const Layer *l);
void feedback_free(Feedback *fb);

#endif
