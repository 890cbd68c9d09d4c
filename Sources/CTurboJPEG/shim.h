#ifndef GANFLOW_CTURBOJPEG_SHIM_H
#define GANFLOW_CTURBOJPEG_SHIM_H
/* libjpeg-turbo's TurboJPEG API (Debian libturbojpeg0-dev). Its error handler longjmps back into
   the failing call, which returns -1 (tjGetErrorStr2/tjGetErrorCode say why): libjpeg's default
   error_exit, which calls exit(), never runs. */
#include <turbojpeg.h>

/* TJSCALED is a macro that does not import. */
static inline int ganflow_tj_scaled(int dimension, int num, int denom) {
    return (dimension * num + denom - 1) / denom;
}
#endif
