/*
 * The production KV state machine (src/kv on the memory storage backend) as a simulator
 * state machine: `aspen-sim --sm kv` and the KV sweeps run whole clusters on it.
 */
#ifndef ASPEN_SIM_KVSM_H
#define ASPEN_SIM_KVSM_H

#include "sim/model.h"

extern const struct sm_ops kvsm_ops;

#endif
