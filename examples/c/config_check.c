/* Checks a Vigia config file through the C ABI, then shows its settings through a context.
 *
 *   gcc -I crates/ffi/include examples/c/config_check.c -L target/debug -lvigia_ffi \
 *       -Wl,-rpath,target/debug -o config_check && ./config_check vigia.toml
 *
 * Prints the two JSON envelopes, one per line; exits with the first non-zero status. */
#include <stdio.h>
#include <stdlib.h>

#include "vigia.h"

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    if (text && fread(text, 1, (size_t)len, f) != (size_t)len) { free(text); text = NULL; }
    if (text) text[len] = '\0';
    fclose(f);
    return text;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CONFIG.toml\n", argv[0]);
        return 2;
    }
    char *text = read_file(argv[1]);
    if (!text) {
        perror(argv[1]);
        return 2;
    }
    fprintf(stderr, "libvigia_ffi %s\n", vigia_version());

    char *json = NULL;
    uint32_t status = vigia_config_check(text, NULL, 0, &json);
    printf("%s\n", json);
    vigia_string_free(json);
    if (status != 0) {
        char *message = vigia_last_error();
        fprintf(stderr, "config check failed (%u): %s\n", status, message ? message : "?");
        vigia_string_free(message);
        free(text);
        return (int)status;
    }

    vigia_ctx *ctx = NULL;
    status = vigia_ctx_new(text, NULL, NULL, &ctx);
    free(text);
    if (status != 0) {
        char *message = vigia_last_error();
        fprintf(stderr, "vigia_ctx_new failed (%u): %s\n", status, message ? message : "?");
        vigia_string_free(message);
        return (int)status;
    }
    status = vigia_config_show(ctx, NULL, &json);
    printf("%s\n", json);
    vigia_string_free(json);
    vigia_ctx_free(ctx);
    return (int)status;
}
