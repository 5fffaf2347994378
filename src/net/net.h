/* net.h: what the library's upper folders (train, dist) see of a network
 * beyond the public AsymNet calls: its shared state and its top chain. */
#ifndef ASYM_NET_H
#define ASYM_NET_H

#include "rules/rules.h"

/* The network's shared layer state (layers.h) and its top-level chain. */
NetCtx *net_ctx(AsymNet *net);
Seq *net_seq(AsymNet *net);

#endif
