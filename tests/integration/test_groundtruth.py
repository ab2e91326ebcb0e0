"""Twenty generated scenarios, each through the real broker, Redis and
processor: the alerts must match the generator's truth in every one."""

import concurrent.futures

import ewsenv
import groundtruth

SEEDS = range(1, 21)


def run_seed(broker, redis, tmp_path, seed):
    names = ewsenv.Names(f"truth-seed-{seed}")
    truth = ewsenv.run_gen(names, broker, str(tmp_path / f"{seed}.jsonl"),
                           ["--seed", str(seed)])
    campaigns = [t for t in truth if t["kind"] == "campaign"]
    assert len(campaigns) >= 6 and sum(t["poor"] for t in campaigns) == 2
    summary = next(t for t in truth if t["kind"] == "summary")
    err = ewsenv.run_processor_to_end(names, broker, redis)
    if f"consumed={summary['events']} " not in err:
        return [f"not every event consumed: {err.splitlines()[-1]}"]
    sch = ewsenv.schema("alert.avsc")
    alerts = [ewsenv.avro_decode(sch, value)
              for _, value, _ in ewsenv.consume_all(broker, names.alerts)]
    return groundtruth.problems(truth, alerts)


def test_twenty_seeds_match_the_truth(broker, redis, tmp_path):
    # two scenarios at a time: one per core
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        found = dict(zip(SEEDS, pool.map(
            lambda seed: run_seed(broker, redis, tmp_path, seed), SEEDS)))
    assert {seed: p for seed, p in found.items() if p} == {}
