#ifndef GANFLOW_CHEIF_SHIM_H
#define GANFLOW_CHEIF_SHIM_H
/* libheif's decoder (Debian libheif-dev): HEIF files, HEVC-coded (HEIC, through libde265) and
   AV1-coded (AVIF, through dav1d or libaom). */
#include <libheif/heif.h>
#endif
