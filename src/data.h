/* data.h: internal interface of the data section of experiments. */
#ifndef ASYM_DATA_H
#define ASYM_DATA_H

#include "cfg.h"
#include "util.h"

/* Reads the `data` map of root into d (every key checked); sets d->c, h, w
 * and classes to the model input the data will have. */
int data_read_config(const Cfg *c, CfgNode *root, AsymDataSpec *d);

#endif
