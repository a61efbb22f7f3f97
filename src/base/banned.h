/*
 * banned.h — functions Aspen code must never call, poisoned so a use fails to compile.
 *
 * strcpy/strcat/sprintf/vsprintf write without a bound; gets cannot be used safely at
 * all; strtok keeps hidden global state. Use snprintf/memcpy with explicit lengths, the
 * growable buffer in base/buf.h, or strtok_r.
 *
 * The build force-includes this file (-include) into every translation unit of ours.
 * That is safe because we include the system headers that declare these functions
 * first: their include guards then keep them from being read again after the poison,
 * and macros defined before the poison may still mention the names.
 */
#ifndef ASPEN_BANNED_H
#define ASPEN_BANNED_H

#include <stdio.h>
#include <string.h>

#pragma GCC poison strcpy strcat sprintf vsprintf gets strtok

#endif
