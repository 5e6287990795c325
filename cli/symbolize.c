/*
 * symbolize.c - crash frames made readable for people: the preload shim
 * writes frames as backtrace_symbols does; addr2line and nm, when binutils
 * are installed, turn them into function, file and line.
 */
#include "supervise.h"

#include <string.h>
#include <unistd.h>

/* The address of a symbol in a binary, from nm (its symbol table, then its dynamic one). */
static bool symbol_address(const char *path, const char *sym, unsigned long long *ret)
{
	static const char *const flags[] = { "--defined-only", "-D --defined-only" };
	char cmd[1200], line[512];

	if (access("/usr/bin/nm", X_OK) != 0)
		return false;
	for (size_t i = 0; i < 2; i++) {
		FILE *p;
		bool found = false;

		snprintf(cmd, sizeof(cmd), "/usr/bin/nm %s '%s' 2>/dev/null", flags[i], path);
		p = popen(cmd, "r");
		if (!p)
			return false;
		while (!found && fgets(line, sizeof(line), p)) {
			char name[256], type;
			unsigned long long a;

			if (sscanf(line, "%llx %c %255s", &a, &type, name) == 3 && strcmp(name, sym) == 0) {
				*ret = a;
				found = true;
			}
		}
		pclose(p);
		if (found)
			return true;
	}
	return false;
}

/*
 * A frame as backtrace_symbols writes it, "path(+0x12f4)[0x...]" or
 * "path(func+0x2a)[0x...]", made readable with addr2line when binutils are
 * there and the binary has symbols or debug information: "func at
 * file.c:42 (path+0x12f4)". Left as it was otherwise.
 */
void cli_symbolize(const char *frame, char *out, size_t size)
{
	const char *open_ = strchr(frame, '('), *close_, *plus;
	char path[512], sym[256] = "", cmd[1200], fn[256] = "", loc[512] = "";
	unsigned long long off, base = 0;
	FILE *p;

	snprintf(out, size, "%s", frame);
	if (!open_ || !(close_ = strchr(open_, ')')) || (size_t)(open_ - frame) >= sizeof(path))
		return;
	plus = memchr(open_, '+', (size_t)(close_ - open_));
	if (!plus || (size_t)(plus - open_ - 1) >= sizeof(sym) || sscanf(plus, "+0x%llx", &off) != 1)
		return;
	snprintf(path, sizeof(path), "%.*s", (int)(open_ - frame), frame);
	snprintf(sym, sizeof(sym), "%.*s", (int)(plus - open_ - 1), open_ + 1);
	if (strpbrk(path, "'\\\"$`") || access("/usr/bin/addr2line", X_OK) != 0)
		return;
	if (sym[0] && !symbol_address(path, sym, &base))
		return;
	snprintf(cmd, sizeof(cmd), "/usr/bin/addr2line -f -C -e '%s' 0x%llx 2>/dev/null", path, base + off);
	p = popen(cmd, "r");
	if (!p)
		return;
	if (fgets(fn, sizeof(fn), p) && fgets(loc, sizeof(loc), p)) {
		fn[strcspn(fn, "\n")] = '\0';
		loc[strcspn(loc, "\n")] = '\0';
		if (strcmp(fn, "??") != 0)
			snprintf(out, size, "%s at %s (%s+0x%llx)", fn,
			         strncmp(loc, "??", 2) == 0 ? "?" : loc, path, base + off);
	}
	pclose(p);
}

