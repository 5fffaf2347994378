/* stb_impl.c: stb_image and stb_image_resize compiled from Debian's
 * headers (libstb-dev), for the fuzz targets only. The library build links
 * Debian's compiled libstb; linking these instrumented copies of the same
 * sources instead lets libFuzzer see coverage inside the decoders and
 * AddressSanitizer check their memory accesses. */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
