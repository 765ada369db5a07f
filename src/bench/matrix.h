/*
 * matrix.h — the text-to-image parameter matrix (--matrix): axes of
 * denoising steps, guidance scale and output size, run as one stage per
 * cell at a fixed load, either as the product of the axes or one axis at a
 * time around a baseline (the seed's sensitivity tables: steps 10/25/50,
 * CFG 1/7/12, 768/1024/1280 squared, each against 25 steps, CFG 7, 1024).
 */
#ifndef PB_MATRIX_H
#define PB_MATRIX_H

#include <stddef.h>

#define PB_MATRIX_MAX 64 /* cells (one stage each) */

enum pb_axis { PB_AXIS_STEPS, PB_AXIS_CFG, PB_AXIS_SIZE, PB_AXIS_N };

typedef struct pb_gen_cell {
    int steps;
    double cfg;
    int w, h;
    int axis;        /* one-at-a-time: the axis this cell moves (-1: the baseline; product: -1) */
    char label[64];  /* "steps=10", "cfg=7 size=1024x1024" */
} pb_gen_cell;

/* "axis=v1,v2,... axis=..." (axes separated by spaces or ';': steps,
 * cfg, size=WxH) into cells. base holds the baseline's values (the
 * profile's --steps, --cfg-scale, --width/--height): axes not named keep
 * them. one_at_a_time: the baseline first, then each axis's other values
 * with the rest at the baseline; else the product in the order given.
 * *baseline is the cell equal to base (else 0). Returns 0, or PX_EINVAL /
 * PX_ETOOBIG (more than PB_MATRIX_MAX cells) with a message. */
int pb_matrix_build(const char *spec, const pb_gen_cell *base, int one_at_a_time, pb_gen_cell *cells,
                    int *ncells, int *baseline, char *err, size_t errlen);

/* "steps", "CFG", "resolution". */
const char *pb_axis_name(int axis);

#endif
