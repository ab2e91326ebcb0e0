"""make demo: the main job end to end on the embedded default.

Starts ews-devbroker and redis-server, generates trial cohorts over three
simulated weeks, runs the processor over them, prints every alert as it
arrives, then one summary line; stops everything it started."""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import ewsenv  # noqa: E402

TOPICS = [("product-usage", 8), ("campaign-events", 2), ("ews-alerts", 4),
          ("ews-dlq", 1)]


class Names(ewsenv.Names):
    """The names of config/ews.yaml, as an operator would have them."""

    def __init__(self):
        super().__init__("ews")
        self.usage, self.campaign = "product-usage", "campaign-events"
        self.alerts, self.dlq = "ews-alerts", "ews-dlq"
        self.group, self.prefix = "ews", "ews:"


def main():
    started = time.monotonic()
    broker = redis = tail = None
    try:
        broker = ewsenv.Broker(TOPICS)
        redis = ewsenv.Redis()
        names = Names()
        print(f"demo: broker {broker.bootstrap}, redis 127.0.0.1:{redis.port}",
              flush=True)

        # Alerts as they arrive, one line each, readable by a person.
        tail = subprocess.Popen(
            [os.path.join(ewsenv.BUILD, "ews-alerts"), "-b", broker.bootstrap,
             "-t", names.alerts, "--schemas", ewsenv.SCHEMAS],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        shown = []

        def show():
            for line in tail.stdout:
                shown.append(line)
                print("  " + line, end="", flush=True)

        reader = threading.Thread(target=show, daemon=True)
        reader.start()

        with tempfile.TemporaryDirectory(prefix="ews-demo-") as tmp:
            truth = ewsenv.run_gen(names, broker, os.path.join(tmp, "truth"),
                                   ["--seed", "1"])
        summary = next(t for t in truth if t["kind"] == "summary")
        print(f"demo: generated {summary['events']} events of "
              f"{summary['users']} trial users from {summary['campaigns']} "
              "campaigns over 3 simulated weeks", flush=True)

        err = ewsenv.run_processor_to_end(names, broker, redis)
        report = err.strip().splitlines()[-1]
        rules = dict(re.findall(r" ([A-Z_]+)=(\d+)/\d+", report))
        produced = int(re.search(r"produced=(\d+)", report).group(1))
        ewsenv.wait_for(lambda: len(shown) >= produced, 20, "alerts to arrive")

        users = len(ewsenv.stored_user_ids(redis, "ews:"))
        counts = " ".join(f"{rule}={rules.get(rule, 0)}"
                          for rule in ("USER_DISENGAGED",
                                       "CAMPAIGN_UNDERPERFORMING",
                                       "SALES_READY", "ACCOUNT_AT_RISK"))
        print(f"demo: events={summary['events']} users={users} "
              f"alerts={len(shown)} {counts} "
              f"seconds={time.monotonic() - started:.1f}", flush=True)

        # The funnel of its campaigns, and who to nurture first: the trial
        # users with the lowest engagement now.
        inspect = os.path.join(ewsenv.BUILD, "ews-inspect")
        env = names.env(broker, redis)
        print("demo: ews-inspect funnel", flush=True)
        funnel = subprocess.run([inspect, "funnel"], env=env, check=True,
                                capture_output=True, text=True).stdout
        print("".join("  " + line for line in funnel.splitlines(True)),
              end="", flush=True)
        print("demo: ews-inspect segment trial asc limit=5", flush=True)
        page = json.loads(subprocess.run(
            [inspect, "segment", "trial", "asc", "limit=5"], env=env,
            check=True, capture_output=True, text=True).stdout)
        for u in page["users"]:
            print(f"  {u['user_id']:<14} {u.get('campaign_id') or '-':<8} "
                  f"{u.get('account_id') or '-':<8} "
                  f"E={u['engagement']:.2f}", flush=True)
        return 0
    finally:
        ewsenv.stop(tail)
        for proc in (broker, redis):
            if proc:
                proc.close()


if __name__ == "__main__":
    sys.exit(main())
