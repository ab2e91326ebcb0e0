/* The metrics table: a row added in one place is rendered, and served on
 * /metrics by the HTTP endpoint. */
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
#include "util/metrics.h"
#include "unit_http.h"

static char *render(const struct ews_metrics *m)
{
        char *text = NULL;
        size_t len = 0;
        FILE *fp = open_memstream(&text, &len);

        assert_non_null(fp);
        ews_metrics_render(m, fp);
        assert_int_equal(fclose(fp), 0);
        return text;
}

static void series_two(void *opaque, struct ews_metrics_out *out)
{
        (void)opaque;
        ews_metrics_series(out, "partition=\"0\"", 1.5);
        ews_metrics_series(out, "partition=\"1\"", 2);
}

static void test_rows_render_under_one_help(void **state)
{
        struct ews_metrics *m = ews_metrics_new();
        int64_t a = 3, b = 4, g = 7;
        struct ews_histogram h;
        static const double bounds[] = {1, 10};
        char *text;

        (void)state;
        assert_non_null(m);
        ews_histogram_init(&h, bounds, 2);
        ews_histogram_observe(&h, 0.5);
        ews_histogram_observe(&h, 5);
        assert_int_equal(ews_metrics_add_i64(m, "t_events_total", "Events.",
                                             EWS_METRIC_COUNTER, "topic=\"a\"",
                                             &a),
                         0);
        assert_int_equal(ews_metrics_add_i64(m, "t_gauge", "A gauge.",
                                             EWS_METRIC_GAUGE, "", &g),
                         0);
        /* the same name later: rendered beside its first row */
        assert_int_equal(ews_metrics_add_i64(m, "t_events_total", "Events.",
                                             EWS_METRIC_COUNTER, "topic=\"b\"",
                                             &b),
                         0);
        /* the same name with another type is refused */
        assert_int_equal(ews_metrics_add_i64(m, "t_gauge", "A gauge.",
                                             EWS_METRIC_COUNTER, "", &g),
                         -1);
        assert_int_equal(
                ews_metrics_add_histogram(m, "t_seconds", "Time.", "", &h), 0);
        assert_int_equal(ews_metrics_add_fn(m, "t_lag", "Lag.",
                                            EWS_METRIC_GAUGE, series_two, NULL),
                         0);
        text = render(m);
        assert_string_equal(text, "# HELP t_events_total Events.\n"
                                  "# TYPE t_events_total counter\n"
                                  "t_events_total{topic=\"a\"} 3\n"
                                  "t_events_total{topic=\"b\"} 4\n"
                                  "# HELP t_gauge A gauge.\n"
                                  "# TYPE t_gauge gauge\n"
                                  "t_gauge 7\n"
                                  "# HELP t_seconds Time.\n"
                                  "# TYPE t_seconds histogram\n"
                                  "t_seconds_bucket{le=\"1\"} 1\n"
                                  "t_seconds_bucket{le=\"10\"} 2\n"
                                  "t_seconds_bucket{le=\"+Inf\"} 2\n"
                                  "t_seconds_sum 5.5\n"
                                  "t_seconds_count 2\n"
                                  "# HELP t_lag Lag.\n"
                                  "# TYPE t_lag gauge\n"
                                  "t_lag{partition=\"0\"} 1.5\n"
                                  "t_lag{partition=\"1\"} 2\n");
        free(text);
        /* values are read at each render */
        a = 30;
        text = render(m);
        assert_non_null(strstr(text, "t_events_total{topic=\"a\"} 30\n"));
        free(text);
        ews_metrics_destroy(m);
        ews_metrics_destroy(NULL);
}

static void test_a_row_added_once_is_on_metrics(void **state)
{
        struct ews_http_conf conf = {.bind = "127.0.0.1"};
        struct ews_metrics *m = ews_metrics_new();
        struct ews_http *http;
        int64_t widgets = 42;
        char errstr[256], *text, *reply;

        (void)state;
        conf.port = unit_free_port();
        http = ews_http_new(&conf, errstr, sizeof(errstr));
        assert_non_null(http);
        assert_int_equal(ews_metrics_add_i64(m, "ews_test_widgets_total",
                                             "Widgets made in a test.",
                                             EWS_METRIC_COUNTER, "", &widgets),
                         0);
        text = render(m);
        ews_http_publish(http, text, strlen(text), true);
        reply = unit_http(conf.port, "GET", "/metrics", NULL);
        assert_non_null(strstr(reply, " 200 "));
        assert_non_null(strstr(reply, "# TYPE ews_test_widgets_total "
                                      "counter\news_test_widgets_total 42\n"));
        free(reply);
        reply = unit_http(conf.port, "GET", "/readyz", NULL);
        assert_non_null(strstr(reply, " 200 "));
        free(reply);
        free(text);
        ews_http_destroy(http);
        ews_metrics_destroy(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rows_render_under_one_help),
                cmocka_unit_test(test_a_row_added_once_is_on_metrics),
        };

        cmocka_set_test_filter(getenv("EWS_TEST_FILTER"));
        return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
