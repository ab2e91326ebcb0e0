/* A segment page's cursor (store/segment_read.c): what is one, read back
 * into its parts, for a table of cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "store/views.h"

struct cursor_case {
        const char *text;
        int ok, part;
        double score;
        const char *member;
};

static const struct cursor_case cases[] = {
        {"0:1.5:u-1", 1, 0, 1.5, "u-1"},
        {"1:490896.123456789:u-001-0019", 1, 1, 490896.123456789, "u-001-0019"},
        {"1:inf:u-0", 1, 1, INFINITY, "u-0"},
        {"0:-inf:u-0", 1, 0, -INFINITY, "u-0"},
        {"0:2:a:b", 1, 0, 2, "a:b"}, /* the member is the rest */
        {"7", 0, 0, 0, NULL},        /* an earlier version's rank */
        {"2:1:u", 0, 0, 0, NULL},
        {"0::u", 0, 0, 0, NULL},
        {"0:1:", 0, 0, 0, NULL},
        {"0:1x:u", 0, 0, 0, NULL},
        {"0:nan:u", 0, 0, 0, NULL},
        {"0-1:u", 0, 0, 0, NULL},
        {"", 0, 0, 0, NULL},
};

static void test_cursor_cases(void **state)
{
        char score_text[32], member[EWS_ID_MAX];
        double score;
        size_t i;
        int part;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct cursor_case *c = &cases[i];
                int rc = ews_store_segment_cursor_parse(
                        c->text, &part, &score, score_text, sizeof(score_text),
                        member, sizeof(member));

                print_message("%s\n", c->text);
                assert_int_equal(rc, c->ok ? 0 : -1);
                if (!c->ok)
                        continue;
                assert_int_equal(part, c->part);
                assert_true(score == c->score);
                assert_string_equal(member, c->member);
        }
}

/* A member as long as an id may be fits; one longer is no cursor. */
static void test_cursor_member_bound(void **state)
{
        char text[EWS_SEGMENT_CURSOR_MAX + 8], score_text[32],
                member[EWS_ID_MAX];
        double score;
        int part;

        (void)state;
        memset(text, 'u', sizeof(text));
        memcpy(text, "0:1.5:", 6);
        text[6 + EWS_ID_MAX - 1] = '\0';
        assert_int_equal(ews_store_segment_cursor_parse(
                                 text, &part, &score, score_text,
                                 sizeof(score_text), member, sizeof(member)),
                         0);
        text[6 + EWS_ID_MAX - 1] = 'u';
        text[6 + EWS_ID_MAX] = '\0';
        assert_int_equal(ews_store_segment_cursor_parse(
                                 text, &part, &score, score_text,
                                 sizeof(score_text), member, sizeof(member)),
                         -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cursor_cases),
                cmocka_unit_test(test_cursor_member_bound),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
