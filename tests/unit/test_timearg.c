/* The tools' time arguments (util/timearg.h): a case table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "util/timearg.h"

static void test_timearg_cases(void **state)
{
        static const struct {
                const char *text;
                bool ok;
                int64_t ms;
        } cases[] = {
                {"1767225600000", true, 1767225600000LL},
                {"2026-01-01", true, 1767225600000LL},
                {"2026-01-05T09:30", true, 1767605400000LL},
                {"2026-01-05 09:30:15Z", true, 1767605415000LL},
                {"2026-01-05T09:30:15", true, 1767605415000LL},
                {"0", false, 0},
                {"-5", false, 0},
                {"", false, 0},
                {"2026-13-01", false, 0},
                {"2026-01-32", false, 0},
                {"2026-01-05T24:00", false, 0},
                {"2026-01-05T09", false, 0},
                {"2026-01-05Tx", false, 0},
                {"2026-01-05 trailing", false, 0},
                {"12abc", false, 0},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int64_t ms = -1;
                bool ok = ews_timearg_parse(cases[i].text, &ms);

                if (ok != cases[i].ok)
                        fail_msg("'%s': %s", cases[i].text,
                                 ok ? "accepted" : "refused");
                if (ok && ms != cases[i].ms)
                        fail_msg("'%s': %lld, want %lld", cases[i].text,
                                 (long long)ms, (long long)cases[i].ms);
                if (!ok && ms != -1)
                        fail_msg("'%s': refused but *ms written",
                                 cases[i].text);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_timearg_cases),
        };

        cmocka_set_test_filter(getenv("EWS_TEST_FILTER"));
        return cmocka_run_group_tests_name("timearg", tests, NULL, NULL);
}
