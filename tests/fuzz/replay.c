/*
 * Replays inputs through a fuzz target without libFuzzer, so that
 * `make test` (gcc, Debian's libavro) and `make asan` run the committed
 * corpus and the regressions on every build:
 *
 *   replay_fuzz_json tests/fuzz/corpus/fuzz_json tests/fuzz/regressions/...
 *
 * Arguments are files, or directories whose files (not dot files, not
 * subdirectories) are taken in name order. Each input is read into a
 * buffer of exactly its size, as libFuzzer does, so that under ASan an
 * overread is reported. A crash or a failed check ends the process with
 * the input named on stderr; otherwise one line:
 *
 *   fuzz-replay fuzz_json: 46 inputs ok
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The sanitizers' hook for their reports; absent without a sanitizer. */
void __sanitizer_set_death_callback(void (*callback)(void))
        __attribute__((weak));

static const char *replay_name;
/* What to say if the current input kills us, made before it runs: a
 * signal handler may only write(). */
static char replay_last[4200];

static void replay_blame(void)
{
        ssize_t n = write(STDERR_FILENO, replay_last, strlen(replay_last));

        (void)n;
}

static void replay_on_signal(int sig)
{
        replay_blame();
        signal(sig, SIG_DFL);
        raise(sig);
}

static int replay_file(const char *path)
{
        struct stat st;
        uint8_t *buf;
        FILE *fp;

        if (!(fp = fopen(path, "rb")) || fstat(fileno(fp), &st)) {
                fprintf(stderr, "fuzz-replay %s: %s: %s\n", replay_name, path,
                        strerror(errno));
                if (fp)
                        fclose(fp);
                return -1;
        }
        /* malloc(0) may return NULL: keep one byte, pass the true size. */
        buf = malloc(st.st_size ? (size_t)st.st_size : 1);
        if (!buf ||
            fread(buf, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
                fprintf(stderr, "fuzz-replay %s: %s: cannot read\n",
                        replay_name, path);
                free(buf);
                fclose(fp);
                return -1;
        }
        fclose(fp);
        snprintf(replay_last, sizeof(replay_last),
                 "fuzz-replay %s: FAILED on %s\n", replay_name, path);
        if (getenv("EWS_FUZZ_VERBOSE"))
                fprintf(stderr, "%s\n", path);
        LLVMFuzzerTestOneInput(buf, (size_t)st.st_size);
        free(buf);
        return 0;
}

static int replay_select(const struct dirent *entry)
{
        return entry->d_name[0] != '.';
}

/* A file, or the files of a directory. Returns the inputs run, or -1. */
static long replay_path(const char *path)
{
        struct dirent **entries;
        struct stat st;
        char file[4096];
        long cnt = 0;
        int n, i;

        if (stat(path, &st)) {
                fprintf(stderr, "fuzz-replay %s: %s: %s\n", replay_name, path,
                        strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode))
                return replay_file(path) ? -1 : 1;
        if ((n = scandir(path, &entries, replay_select, alphasort)) < 0) {
                fprintf(stderr, "fuzz-replay %s: %s: %s\n", replay_name, path,
                        strerror(errno));
                return -1;
        }
        for (i = 0; i < n; i++) {
                snprintf(file, sizeof(file), "%s/%s", path, entries[i]->d_name);
                if (cnt >= 0 && !stat(file, &st) && S_ISREG(st.st_mode))
                        cnt = replay_file(file) ? -1 : cnt + 1;
                free(entries[i]);
        }
        free(entries);
        return cnt;
}

int main(int argc, char **argv)
{
        static const int signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
        const char *slash = strrchr(argv[0], '/');
        long total = 0, cnt;
        size_t i;
        int a;

        /* build/tests/replay_fuzz_json -> fuzz_json */
        replay_name = slash ? slash + 1 : argv[0];
        if (!strncmp(replay_name, "replay_", 7))
                replay_name += 7;
        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
                return 2;
        }
        /* A sanitizer handles the faults and names the input through
         * its death callback, after its report; it leaves abort() (our
         * checks) and SIGILL alone. */
        for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
                if (!__sanitizer_set_death_callback || signals[i] == SIGABRT ||
                    signals[i] == SIGILL)
                        signal(signals[i], replay_on_signal);
        if (__sanitizer_set_death_callback)
                __sanitizer_set_death_callback(replay_blame);
        LLVMFuzzerInitialize(&argc, &argv);
        for (a = 1; a < argc; a++) {
                if ((cnt = replay_path(argv[a])) < 0)
                        return 1;
                total += cnt;
        }
        /* An empty corpus would pass for the wrong reason. */
        if (!total) {
                fprintf(stderr, "fuzz-replay %s: no inputs\n", replay_name);
                return 1;
        }
        printf("fuzz-replay %s: %ld inputs ok\n", replay_name, total);
        return 0;
}
