/*
 * classic.h — the weights-free "classic" engine: PatchMatch completion for
 * object removal, Telea fast marching for thin masks, and "auto" choosing by
 * mask thickness. Registered as px_engine_classic_ops (engine_impl.h).
 */
#ifndef PX_ENGINE_CLASSIC_CLASSIC_H
#define PX_ENGINE_CLASSIC_CLASSIC_H

/* Holes whose distance transform stays at or below this many pixels (strokes
 * up to about twice as wide) count as thin and go to Telea under "auto". */
#define PX_CLASSIC_THIN_RADIUS 4.0f

#endif
