/*
 * replay.c - runs a libFuzzer target over files without libFuzzer, so the
 * corpus (and any crash reproducer added to it) is a plain test under gcc.
 * Usage: fuzz-X FILE|DIR...; prints "N passed, 0 failed" (a crash is a failure).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (fp == NULL) {
		perror(path);
		return -1;
	}
	if (fseek(fp, 0, SEEK_END) != 0) {
		fclose(fp);
		return -1;
	}
	long size = ftell(fp);
	rewind(fp);
	uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
	if (buf == NULL || (size > 0 && fread(buf, 1, (size_t)size, fp) != (size_t)size)) {
		fprintf(stderr, "%s: cannot read\n", path);
		free(buf);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, (size_t)size);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	int count = 0, errors = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			errors++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			errors += replay_file(argv[i]) != 0;
			count++;
			continue;
		}
		DIR *dir = opendir(argv[i]);
		if (dir == NULL) {
			perror(argv[i]);
			errors++;
			continue;
		}
		struct dirent *de;
		while ((de = readdir(dir)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			errors += replay_file(path) != 0;
			count++;
		}
		closedir(dir);
	}
	printf("replayed %d inputs\n", count);
	printf("%d passed, %d failed\n", count - errors, errors);
	return errors == 0 ? 0 : 1;
}
