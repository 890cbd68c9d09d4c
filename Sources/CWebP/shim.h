#ifndef GANFLOW_CWEBP_SHIM_H
#define GANFLOW_CWEBP_SHIM_H
/* libwebp's decoder (Debian libwebp-dev). WebPGetFeatures and WebPInitDecoderConfig are inline
   wrappers that pass WEBP_DECODER_ABI_VERSION; they import as they are. */
#include <webp/decode.h>
#endif
