#ifndef GANFLOW_CZIP_SHIM_H
#define GANFLOW_CZIP_SHIM_H
#include <zip.h>
#endif
