/*
 * dnnl.h — the process's one oneDNN CPU engine, shared by every module that
 * calls oneDNN (the LaMa convolutions, the Z-Image GEMMs and the VAE), so
 * primitives made by one can run on streams made by another.
 */
#ifndef PX_ENGINE_DNNL_H
#define PX_ENGINE_DNNL_H

#include <dnnl.h>

/* The CPU engine, made on first use; NULL if oneDNN cannot make one. */
dnnl_engine_t px_dnnl_engine(void);

#endif
