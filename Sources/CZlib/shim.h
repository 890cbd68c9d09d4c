#ifndef GANFLOW_CZLIB_SHIM_H
#define GANFLOW_CZLIB_SHIM_H
#include <zlib.h>
#endif
