/*
 * dnnl.c — the shared oneDNN CPU engine (dnnl.h).
 */
#include "engine/dnnl.h"

#include <pthread.h>

static dnnl_engine_t g_engine;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void engine_init(void)
{
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) g_engine = NULL;
}

dnnl_engine_t px_dnnl_engine(void)
{
    pthread_once(&g_once, engine_init);
    return g_engine;
}
