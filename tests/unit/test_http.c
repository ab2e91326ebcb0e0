/* The operations endpoint's hardening, without Redis: what a /v1 path may
 * hold, what a 401 says, and /v1 on an open address without a token. The
 * store is a closed port: a request that reaches it gets 503. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ops/http.h"
#include "unit_http.h"

static struct ews_http *start(const char *bind, const char *token, int *port)
{
        struct ews_http_conf conf = {.bind = bind, .token = token};
        struct ews_http *http;
        char errstr[256];

        conf.port = *port = unit_free_port();
        conf.store.host = "127.0.0.1";
        conf.store.port = unit_free_port(); /* nothing listens */
        conf.store.timeout_ms = 200;
        conf.store.prefix = "t:";
        http = ews_http_new(&conf, errstr, sizeof(errstr));
        assert_non_null(http);
        return http;
}

static void expect(int port, const char *method, const char *path,
                   const char *authorization, const char *status,
                   const char *text)
{
        char *reply = unit_http(port, method, path, authorization);

        if (!strstr(reply, status) || (text && !strstr(reply, text)))
                fail_msg("%s %s: %s", method, path, reply);
        free(reply);
}

static void test_an_id_holds_no_nul_control_or_invalid_utf8(void **state)
{
        static const char *const bad[] = {
                "/v1/users/garb-user2%00anything",
                "/v1/users/garb-user2%00",
                "/v1/users/a%0ab",
                "/v1/users/a%1b[2J",
                "/v1/users/a%7f",
                "/v1/users/a%ff",
                "/v1/users/a%c3%28",
                "/v1/users/a%c0%80",
                "/v1/users/a%ed%a0%80",
                "/v1/users/a%e2%82",
                "/v1/users/a%zz",
                "/v1/accounts/a%00b",
        };
        int port;
        struct ews_http *http = start("127.0.0.1", NULL, &port);
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                expect(port, "DELETE", bad[i], NULL, " 400 ", "id");
                expect(port, "GET", bad[i], NULL, " 400 ", "id");
        }
        /* what an id may hold goes on to the store (503: none here) */
        expect(port, "DELETE", "/v1/users/garb-user2", NULL, " 503 ", NULL);
        expect(port, "GET", "/v1/users/caf%c3%a9%20x", NULL, " 503 ", NULL);
        /* as before: an id of EWS_ID_MAX bytes or more names nothing */
        expect(port, "GET",
               "/v1/users/"
               "0123456789012345678901234567890123456789012345678901234567890"
               "1234567890123456789012345678901234567890123456789012345678901"
               "234567",
               NULL, " 404 ", NULL);
        expect(port, "GET", "/healthz", NULL, " 200 ", NULL);
        ews_http_destroy(http);
}

static void test_a_401_asks_for_a_bearer_token(void **state)
{
        static const char *const wrong[] = {
                NULL,           "Bearer",         "Bearer ",
                "Bearer s3cre", "Bearer s3cret2", "Bearer S3CRET",
                "Basic s3cret", "bearer s3cret",  "Bearer s3cret ",
        };
        int port;
        struct ews_http *http = start("127.0.0.1", "s3cret", &port);
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(wrong) / sizeof(*wrong); i++)
                expect(port, "GET", "/v1/users/u1", wrong[i], " 401 ",
                       "\r\nWWW-Authenticate: Bearer");
        expect(port, "GET", "/v1/users/u1", "Bearer s3cret", " 503 ", NULL);
        expect(port, "GET", "/metrics", NULL, " 200 ", NULL);
        ews_http_destroy(http);
}

static void test_v1_needs_a_token_on_an_open_address(void **state)
{
        int port;
        struct ews_http *http = start("0.0.0.0", "", &port);

        (void)state;
        expect(port, "GET", "/v1/users/u1", NULL, " 403 ", "http.token");
        expect(port, "DELETE", "/v1/users/u1", NULL, " 403 ", "http.token");
        expect(port, "GET", "/healthz", NULL, " 200 ", NULL);
        expect(port, "GET", "/metrics", NULL, " 200 ", NULL);
        ews_http_destroy(http);

        http = start("0.0.0.0", "s3cret", &port);
        expect(port, "GET", "/v1/users/u1", NULL, " 401 ", NULL);
        expect(port, "GET", "/v1/users/u1", "Bearer s3cret", " 503 ", NULL);
        ews_http_destroy(http);

        /* all of 127.0.0.0/8 is loopback */
        http = start("127.0.0.1", NULL, &port);
        expect(port, "GET", "/v1/users/u1", NULL, " 503 ", NULL);
        ews_http_destroy(http);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        test_an_id_holds_no_nul_control_or_invalid_utf8),
                cmocka_unit_test(test_a_401_asks_for_a_bearer_token),
                cmocka_unit_test(test_v1_needs_a_token_on_an_open_address),
        };

        cmocka_set_test_filter(getenv("EWS_TEST_FILTER"));
        return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
