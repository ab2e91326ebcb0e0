"""tests/lint/include_graph.py on small made-up trees (pytest)."""

import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "include_graph.py")


def tree(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def run(root):
    proc = subprocess.run([sys.executable, SCRIPT, str(root)],
                          capture_output=True, text=True, timeout=30)
    return proc.returncode, proc.stdout, proc.stderr


CLEAN = {
    "util/ews.h": "#include <stdint.h>\n",
    "score/score.h": '#include "util/ews.h"\n',
    "score/score.c": '#include "score/score.h"\n#include <math.h>\n',
    "rules/rules.h": '#include "util/ews.h"\n',
    "rules/rules.c": '#include "rules/rules.h"\n#include "score/score.h"\n',
    "store/store.c": ('#include "rules/rules.h"\n'
                      "#include <hiredis/hiredis.h>\n"),
    "pipeline/pipeline.c": ('#include "store/store.c"\n'
                            '#include "rules/rules.h"\n'),
    "tools/ews_x.h": "",
    "tools/ews_x.c": ('#include "ews_x.h"\n#include <avro.h>\n'
                      "/* #include <cmocka.h> in a comment */\n"
                      'const char *s = "/* not a comment";\n'
                      '#include "pipeline/pipeline.c"\n'),
    "main.c": '#include "pipeline/pipeline.c"\n#include "score/score.h"\n',
}


def test_clean_tree_passes_and_prints_the_graph(tmp_path):
    rc, out, err = run(tree(tmp_path, CLEAN))
    assert rc == 0, out + err
    words = " ".join(out.split())
    assert "rules -> score (1), util (1)" in words
    assert "tools -> pipeline (1) [libs: avro (1)]" in words
    assert "main -> score (1), pipeline (1)" in words
    assert "lint: ok" in out


def test_cycle_between_modules_fails_with_its_files(tmp_path):
    files = dict(CLEAN)
    files["score/score.c"] += '#include "rules/rules.h"\n'
    rc, out, err = run(tree(tmp_path, files))
    assert rc == 1
    assert "include cycle between modules: score -> rules -> score" in err
    assert "score -> rules: score/score.c:3" in err
    assert "rules -> score: rules/rules.c:2" in err


def test_foreign_library_fails(tmp_path):
    files = dict(CLEAN)
    files["score/score.c"] += "#include <librdkafka/rdkafka.h>\n"
    files["rules/rules.c"] += "#include <cmocka.h>\n"
    rc, out, err = run(tree(tmp_path, files))
    assert rc == 1
    assert ("score/score.c:3: module score includes <librdkafka/rdkafka.h> "
            "of library librdkafka, which is only for: in_kafka, "
            "out_kafka, tools") in err
    assert ("rules/rules.c:3: module rules includes <cmocka.h> of library "
            "cmocka, which is only for: no module under the root") in err


def test_stage_including_the_driver_or_ops_fails(tmp_path):
    files = dict(CLEAN)
    files["ops/config.h"] = ""
    files["store/store.c"] += ('#include "ops/config.h"\n'
                               '#include "pipeline/pipeline.c"\n')
    rc, out, err = run(tree(tmp_path, files))
    assert rc == 1
    assert 'store/store.c:3: stage store includes "ops/config.h" of ops' in err
    assert ('store/store.c:4: stage store includes "pipeline/pipeline.c" '
            "of pipeline") in err
    # store -> pipeline -> store is also a cycle.
    assert "include cycle between modules: store -> pipeline -> store" in err


def test_missing_quoted_include_fails(tmp_path):
    files = dict(CLEAN)
    files["score/score.c"] += '#include "score/gone.h"\n'
    rc, out, err = run(tree(tmp_path, files))
    assert rc == 1
    assert 'score/score.c:3: "score/gone.h" is not found' in err


def test_the_processor_tree_passes():
    root = os.path.join(os.path.dirname(SCRIPT), "..", "..", "processor")
    rc, out, err = run(root)
    assert rc == 0, out + err
