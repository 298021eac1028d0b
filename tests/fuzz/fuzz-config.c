/*
 * fuzz-config.c - libFuzzer target for the configuration parser: any file
 * content must give a configuration or file:line errors, never a crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
ignore(void *ctx, bool fatal, const char *message)
{
	(void)ctx;
	(void)fatal;
	(void)message;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/moat-fuzz-config.%ld", (long)getpid());
	FILE *fp = fopen(path, "wb");
	if (fp == NULL)
		return 0;
	/* Name resolution would make the target slow and network-bound. */
	netaddr_numeric_only = true;
	for (size_t i = 0; i < size; i++)
		fputc(data[i], fp);
	fclose(fp);
	/* Rule files have their own fuzz target; a "rules" line here could
	 * name any file, so none are loaded. */
	char *o[] = { "rules=" };
	struct config *cfg = config_load(path, o, 1, ignore, NULL);
	config_unref(&cfg);
	unlink(path);
	return 0;
}
