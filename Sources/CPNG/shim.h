#ifndef GANFLOW_CPNG_SHIM_H
#define GANFLOW_CPNG_SHIM_H
#include <png.h>

/* PNG_IMAGE_SIZE and friends are macros that do not import. */
static inline size_t ganflow_png_image_size(const png_image *image) { return PNG_IMAGE_SIZE(*image); }
static inline size_t ganflow_png_image_row_stride(const png_image *image) { return PNG_IMAGE_ROW_STRIDE(*image); }
static inline int ganflow_png_image_failed(const png_image *image) { return PNG_IMAGE_FAILED(*image); }
#endif
