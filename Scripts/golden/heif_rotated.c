/* Writes a HEIC whose container says how to turn the stored picture upright (irot/imir boxes from
   libheif's encoding option image_orientation), as a phone stores a portrait photo: Debian's
   libheif 1.15 with x265. Used by Scripts/golden/heif_fixtures.py (pillow-heif writes no irot).

     heif_rotated RAW_RGB WIDTH HEIGHT ORIENTATION OUT.heic

   RAW_RGB holds WIDTH x HEIGHT interleaved 8-bit RGB samples, the picture as stored; ORIENTATION
   is the EXIF orientation (1 to 8) that turns it upright. */
#include <libheif/heif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char* what, struct heif_error e) {
    fprintf(stderr, "heif_rotated: %s: %s\n", what, e.message);
    return 1;
}

int main(int argc, char** argv) {
    if (argc != 6) { fprintf(stderr, "usage: heif_rotated RAW_RGB WIDTH HEIGHT ORIENTATION OUT.heic\n"); return 2; }
    int w = atoi(argv[2]), h = atoi(argv[3]), orientation = atoi(argv[4]);
    FILE* f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    unsigned char* rgb = malloc((size_t)w * h * 3);
    if (fread(rgb, 1, (size_t)w * h * 3, f) != (size_t)w * h * 3) { fprintf(stderr, "heif_rotated: short read\n"); return 1; }
    fclose(f);

    struct heif_image* image;
    struct heif_error e = heif_image_create(w, h, heif_colorspace_RGB, heif_chroma_interleaved_RGB, &image);
    if (e.code) return fail("heif_image_create", e);
    e = heif_image_add_plane(image, heif_channel_interleaved, w, h, 8);
    if (e.code) return fail("heif_image_add_plane", e);
    int stride;
    uint8_t* plane = heif_image_get_plane(image, heif_channel_interleaved, &stride);
    for (int y = 0; y < h; y++) memcpy(plane + (size_t)y * stride, rgb + (size_t)y * w * 3, (size_t)w * 3);

    struct heif_context* context = heif_context_alloc();
    struct heif_encoder* encoder;
    e = heif_context_get_encoder_for_format(context, heif_compression_HEVC, &encoder);
    if (e.code) return fail("no HEVC encoder", e);
    heif_encoder_set_lossy_quality(encoder, 85);
    struct heif_encoding_options* options = heif_encoding_options_alloc();
    options->image_orientation = (enum heif_orientation)orientation;
    e = heif_context_encode_image(context, image, encoder, options, NULL);
    if (e.code) return fail("heif_context_encode_image", e);
    e = heif_context_write_to_file(context, argv[5]);
    if (e.code) return fail("heif_context_write_to_file", e);
    heif_encoding_options_free(options);
    heif_encoder_release(encoder);
    heif_image_release(image);
    heif_context_free(context);
    free(rgb);
    return 0;
}
