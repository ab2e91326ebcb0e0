"""The deployment files in deploy/ and `make install`, checked with the real
tools where this machine has them: promtool, docker-compose and
systemd-analyze (`make deps` installs the first two). Nothing is built into
an image or deployed: the Dockerfile and the Kubernetes manifests are checked
for what they must agree on with the rest of the repository."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml

import ewsenv

ROOT = ewsenv.ROOT
DEPLOY = os.path.join(ROOT, "deploy")

# What ews-processor exports at /metrics: name -> type.
METRICS = {
    "ews_events_consumed_total": "counter",
    "ews_events_decoded_total": "counter",
    "ews_dead_letters_total": "counter",
    "ews_commits_total": "counter",
    "ews_fenced_commits_total": "counter",
    "ews_redis_errors_total": "counter",
    "ews_redis_reconnects_total": "counter",
    "ews_redis_commit_duration_seconds": "histogram",
    "ews_batch_messages": "histogram",
    "ews_alerts_total": "counter",
    "ews_alerts_suppressed_total": "counter",
    "ews_outbox_records": "gauge",
    "ews_outbox_sent_total": "counter",
    "ews_outbox_resent_total": "counter",
    "ews_outbox_delivered_total": "counter",
    "ews_outbox_failures_total": "counter",
    "ews_outbox_parked_total": "counter",
    "ews_outbox_parked_records": "gauge",
    "ews_producer_queue_messages": "gauge",
    "ews_idle_watermark_advances_total": "counter",
    "ews_leader": "gauge",
    "ews_leader_decisions_total": "counter",
    "ews_users_expired_total": "counter",
    "ews_consumer_lag_messages": "gauge",
    "ews_watermark_delay_seconds": "gauge",
    "ews_user_cache_hits_total": "counter",
    "ews_user_cache_misses_total": "counter",
    "ews_partitions_assigned": "gauge",
    "ews_partitions_paused": "gauge",
    "ews_ready": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
}
# Series Prometheus makes itself, which alert rules may use too.
PROMETHEUS_SERIES = {"up"}

# Binaries `make install` installs, among others (ews-devbroker, a test
# broker, is not installed).
INSTALLED_BINS = ["ews-processor", "ews-gen", "ews-alerts", "ews-inspect",
                  "ews-alertmanager"]


def need(tool, package):
    """A tool these checks cannot do without: missing is a failure."""
    path = shutil.which(tool)
    assert path, (f"{tool} not found: `make deps` installs it "
                  f"(Debian package {package})")
    return path


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("cwd", ROOT)
    return subprocess.run(cmd, **kw)


def clean_env():
    """The environment without EWS_* overrides and without the parent make's
    flags (its jobserver is not ours)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("EWS_")
            and k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}


# -- PromQL ------------------------------------------------------------------

PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without",
                "on", "ignoring", "group_left", "group_right", "inf", "nan"}


def promql_metrics(expr):
    """The metric names an expression selects (a small tokenizer: strings,
    label matchers, ranges, grouping clauses and $variables dropped; an
    identifier before "(" is a function or an aggregation)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)"
                  r"\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\w+", "", expr)
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?",
                         expr):
        if not m.group(2) and m.group(1).lower() not in PROMQL_WORDS:
            names.add(m.group(1))
    return names


def exported(name):
    """Whether a series name is one the processor exports (a histogram's
    _bucket, _sum and _count included)."""
    if name in METRICS and METRICS[name] != "histogram":
        return True
    base, _, suffix = name.rpartition("_")
    return suffix in ("bucket", "sum", "count") and \
        METRICS.get(base) == "histogram"


def test_promql_metrics_tokenizer():
    assert promql_metrics(
        'histogram_quantile(0.99, sum by (le) (rate('
        'ews_redis_commit_duration_seconds_bucket{instance=~"$instance"}'
        '[$__rate_interval]))) > 1e3 and on(instance) up == 0') == {
            "ews_redis_commit_duration_seconds_bucket", "up"}
    assert exported("ews_batch_messages_count")
    assert not exported("ews_batch_messages")
    assert not exported("ews_ready_count")


# -- Prometheus --------------------------------------------------------------

def test_alert_rules_pass_promtool():
    promtool = need("promtool", "prometheus")
    p = run([promtool, "check", "rules", "deploy/prometheus/alerts.yml"])
    assert p.returncode == 0, p.stdout + p.stderr
    # Each alert fires on its case and not on the normal one next to it.
    p = run([promtool, "test", "rules", "alerts_test.yml"],
            cwd=os.path.join(DEPLOY, "prometheus"))
    assert p.returncode == 0, p.stdout + p.stderr
    # The compose stack's configuration, which loads alerts.yml.
    p = run([promtool, "check", "config", "deploy/prometheus/prometheus.yml"])
    assert p.returncode == 0, p.stdout + p.stderr


def test_alert_rules_use_exported_metrics():
    with open(os.path.join(DEPLOY, "prometheus", "alerts.yml")) as f:
        groups = yaml.safe_load(f)["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) >= 6
    for rule in rules:
        unknown = {n for n in promql_metrics(rule["expr"])
                   if not exported(n) and n not in PROMETHEUS_SERIES}
        assert not unknown, f"{rule['alert']}: {unknown}"
        assert rule["labels"]["severity"] in ("warning", "critical")
    with open(os.path.join(DEPLOY, "prometheus", "prometheus.yml")) as f:
        prom = yaml.safe_load(f)
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["ews"]["static_configs"][0]["targets"] == ["ews:9464"]


# -- Grafana -----------------------------------------------------------------

def dashboard():
    with open(os.path.join(DEPLOY, "grafana", "dashboards", "ews.json")) as f:
        return json.load(f)


def panels_of(items):
    for p in items:
        yield p
        yield from panels_of(p.get("panels", []))


def test_dashboard_queries_use_exported_metrics():
    dash = dashboard()
    with open(os.path.join(DEPLOY, "grafana", "provisioning", "datasources",
                           "prometheus.yml")) as f:
        ds_uid = yaml.safe_load(f)["datasources"][0]["uid"]
    used = set()
    for p in panels_of(dash["panels"]):
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == ds_uid, p["title"]
        assert p.get("targets"), f"{p['title']}: no query"
        for t in p["targets"]:
            names = promql_metrics(t["expr"])
            unknown = {n for n in names if not exported(n)}
            assert not unknown, f"{p['title']}: {unknown} in {t['expr']}"
            used |= names
    for var in dash["templating"]["list"]:
        m = re.fullmatch(r"label_values\((\w+),\s*\w+\)",
                         var["query"]["query"])
        assert m and exported(m.group(1)), var["query"]
    # The panels the dashboard is for.
    for name in ("ews_events_consumed_total", "ews_events_decoded_total",
                 "ews_dead_letters_total", "ews_alerts_total",
                 "ews_consumer_lag_messages", "ews_watermark_delay_seconds",
                 "ews_redis_commit_duration_seconds_bucket",
                 "ews_batch_messages_sum", "ews_user_cache_hits_total",
                 "ews_user_cache_misses_total", "ews_ready",
                 "process_resident_memory_bytes",
                 "process_cpu_seconds_total"):
        assert name in used, f"no panel shows {name}"
    ids = [p["id"] for p in panels_of(dash["panels"])]
    assert len(ids) == len(set(ids)), "panel ids repeat"


def test_dashboard_queries_parse(tmp_path):
    """Each query as Prometheus would get it, Grafana's variables filled in,
    through promtool's parser."""
    promtool = need("promtool", "prometheus")
    rules = []
    for i, p in enumerate(panels_of(dashboard()["panels"])):
        for j, t in enumerate(p.get("targets", [])):
            expr = (t["expr"].replace("$__rate_interval", "1m")
                    .replace("$__interval", "1m").replace("$instance", ".*"))
            rules.append({"record": f"panel_{i}_{j}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "d",
                                                "rules": rules}]}))
    p = run([promtool, "check", "rules", str(path)])
    assert p.returncode == 0, p.stdout + p.stderr


# -- docker-compose ----------------------------------------------------------

def test_compose_file_parses():
    compose = need("docker-compose", "docker-compose")
    env = clean_env()
    for k in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"):
        env.pop(k, None)
    p = run([compose, "-f", "deploy/compose.yaml", "config"], env=env)
    assert p.returncode == 0, p.stderr
    services = yaml.safe_load(p.stdout)["services"]
    assert {"kafka", "kafka-init", "redis", "ews", "generator", "prometheus",
            "grafana"} <= set(services)

    redis_cmd = " ".join(services["redis"]["command"])
    assert "--maxmemory-policy noeviction" in redis_cmd
    assert "--appendonly yes" in redis_cmd

    ews = services["ews"]
    assert ews["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert os.path.samefile(ews["build"]["context"], ROOT)
    assert ews["environment"]["EWS_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert ews["environment"]["EWS_HTTP_BIND"] == "0.0.0.0"
    assert services["generator"]["profiles"] == ["generator"]

    # --profile alertmanager: Alertmanager and the bridge that posts to it
    assert services["alertmanager"]["profiles"] == ["alertmanager"]
    bridge = services["ews-alertmanager"]
    assert bridge["profiles"] == ["alertmanager"]
    assert bridge["entrypoint"] == ["/usr/local/bin/ews-alertmanager"]
    args = bridge["command"]
    assert args[args.index("-b") + 1] == "kafka:9092"
    assert args[args.index("-u") + 1] == "http://alertmanager:9093"

    # docker-compose does not check bind mounts: every file the stack mounts
    # is in the repository.
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0] if isinstance(vol, str) else vol["source"]
            if src.startswith("/"):
                assert os.path.exists(src), f"{name} mounts missing {src}"


# -- Dockerfile --------------------------------------------------------------

def dockerfile_stages():
    """Each stage's instructions, continuation lines joined."""
    with open(os.path.join(DEPLOY, "docker", "Dockerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def apt_packages(stage):
    pkgs = set()
    for line in stage:
        for m in re.finditer(r"apt-get install ([^&]*)", line):
            pkgs |= {w for w in m.group(1).split()
                     if not w.startswith("-")}
    return pkgs


def makefile_deb_packages():
    with open(os.path.join(ROOT, "Makefile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    return re.search(r"^DEB_PACKAGES\s*:=(.*)$", text, re.M).group(1).split()


def needed_packages(binaries):
    """binary -> the Debian packages that hold the shared libraries it links
    directly (readelf's NEEDED, found where ldd finds them)."""
    files = {}
    for binary in binaries:
        needed = re.findall(r"\(NEEDED\).*\[(.+)\]",
                            run(["readelf", "-d", binary]).stdout)
        paths = dict(re.findall(r"^\s*(\S+) => (/\S+)",
                                run(["ldd", binary]).stdout, re.M))
        files[binary] = [os.path.realpath(paths[n]) for n in needed]
    # One dpkg -S for all (it reads its whole database each time). With
    # merged /usr, dpkg may know a file under either name.
    owner = {}
    every = {f for fs in files.values() for f in fs}
    aliases = {f[4:] if f.startswith("/usr/") else "/usr" + f: f
               for f in every}
    out = run(["dpkg", "-S", *every, *aliases]).stdout
    for pkg, path in re.findall(r"^([^:\s]+)(?::[^:\s]+)?: (\S+)$", out,
                                re.M):
        owner[aliases.get(path, path)] = pkg
    for binary, fs in files.items():
        assert all(f in owner for f in fs), (binary, fs, owner)
    return {b: {owner[f] for f in fs} for b, fs in files.items()}


def test_dockerfile_agrees_with_the_build(installed):
    build, runtime = dockerfile_stages()
    assert build[0].split()[1] == runtime[0].split()[1] == \
        "debian:bookworm-slim"
    # The build stage has every library -dev package the Makefile's build
    # uses (libcmocka-dev is the unit tests').
    dev = {p for p in makefile_deb_packages()
           if p.endswith("-dev") and p != "libcmocka-dev"}
    assert dev <= apt_packages(build), dev - apt_packages(build)
    # The runtime stage has the package of every library the installed
    # binaries link. Sanitizer runtimes come with `make asan` builds only.
    have = apt_packages(runtime) | {"libc6"}
    bindir = os.path.join(installed, "usr", "local", "bin")
    bins = [os.path.join(bindir, name) for name in os.listdir(bindir)]
    for binary, pkgs in needed_packages(bins).items():
        missing = {p for p in pkgs
                   if not re.match(r"lib(asan|ubsan|lsan)\d", p)} - have
        assert not missing, f"{binary} needs {missing}"
    # What it copies from the build stage is what `make install` lays out.
    for line in runtime:
        m = re.match(r"COPY --from=build /out(\S+)", line)
        if m:
            assert os.path.isdir(installed + m.group(1)), m.group(0)
    user = next(line.split()[1] for line in runtime if line.startswith("USER"))
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) > 0
    assert "EXPOSE 9464" in runtime
    entry = next(line for line in runtime if line.startswith("ENTRYPOINT"))
    assert json.loads(entry.split(None, 1)[1]) == [
        "/usr/local/bin/ews-processor", "-c", "/etc/ews/ews.yaml"]
    # The files the build stage copies are in the build context.
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        ignored = [line.strip().rstrip("/") for line in f
                   if line.strip() and not line.startswith("#")]
    for line in build:
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert os.path.exists(os.path.join(ROOT, src)), src
                assert src.rstrip("/") not in ignored, src


# -- Kubernetes --------------------------------------------------------------

def k8s_objects():
    objs = {}
    kdir = os.path.join(DEPLOY, "k8s")
    with open(os.path.join(kdir, "kustomization.yaml")) as f:
        resources = yaml.safe_load(f)["resources"]
    assert sorted(resources) == sorted(
        n for n in os.listdir(kdir) if n != "kustomization.yaml")
    for name in resources:
        with open(os.path.join(kdir, name)) as f:
            for doc in yaml.safe_load_all(f):
                objs[(doc["kind"], doc["metadata"]["name"])] = doc
    return objs


def test_k8s_manifests_fit_together():
    objs = k8s_objects()
    dep = objs[("Deployment", "ews-processor")]
    spec = dep["spec"]["template"]["spec"]
    (ctr,) = spec["containers"]
    assert dep["spec"]["replicas"] == 2
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()

    ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
    assert ports == {"metrics": 9464}
    assert ctr["livenessProbe"]["httpGet"] == {"path": "/healthz",
                                               "port": "metrics"}
    assert ctr["readinessProbe"]["httpGet"] == {"path": "/readyz",
                                                "port": "metrics"}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(ctr["resources"][kind])

    # Non-root, as the image's user.
    runtime = dockerfile_stages()[1]
    uid = next(line.split()[1] for line in runtime
               if line.startswith("USER")).split(":")[0]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert str(spec["securityContext"]["runAsUser"]) == uid
    assert ctr["securityContext"]["allowPrivilegeEscalation"] is False

    # Environment and ews.yaml from ConfigMaps that exist.
    env_cms = [e["configMapRef"]["name"] for e in ctr["envFrom"]
               if "configMapRef" in e]
    assert env_cms and all(("ConfigMap", n) in objs for n in env_cms)
    for n in env_cms:
        assert all(k.startswith("EWS_") for k in objs[("ConfigMap", n)]
                   ["data"]), n
    vols = {v["name"]: v for v in spec["volumes"]}
    mount = next(m for m in ctr["volumeMounts"] if m["mountPath"] == "/etc/ews")
    cm = objs[("ConfigMap", vols[mount["name"]]["configMap"]["name"])]
    assert "ews.yaml" in cm["data"]
    assert spec["terminationGracePeriodSeconds"] > 10

    # Service and ServiceMonitor find the pods and the port by name; the
    # Service's name is the scrape job alerts.yml expects (job="ews").
    svc = objs[("Service", "ews")]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert svc["spec"]["ports"][0]["targetPort"] == "metrics"
    (sm,) = [o for (k, _), o in objs.items() if k == "ServiceMonitor"]
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"]["selector"]["matchLabels"].items() <= \
        svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]


def test_k8s_alertmanager_bridge(installed):
    """The optional ews-alertmanager Deployment: off (0 replicas) until its
    URL is set, runs an installed binary as the image's user, and takes the
    brokers from the processor's ews-env."""
    objs = k8s_objects()
    dep = objs[("Deployment", "ews-alertmanager")]
    assert dep["spec"]["replicas"] == 0
    spec = dep["spec"]["template"]["spec"]
    (ctr,) = spec["containers"]
    binary = os.path.basename(ctr["command"][0])
    assert os.path.exists(os.path.join(installed, "usr", "local", "bin",
                                       binary)), binary
    args = ctr["args"]
    assert args[args.index("-b") + 1] == "$(EWS_KAFKA_BOOTSTRAP_SERVERS)"
    env_cm = objs[("ConfigMap", ctr["envFrom"][0]["configMapRef"]["name"])]
    assert "EWS_KAFKA_BOOTSTRAP_SERVERS" in env_cm["data"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # the processor's Service does not select the bridge
    svc = objs[("Service", "ews")]
    assert not svc["spec"]["selector"].items() <= labels.items()


def test_alertmanager_config_passes_amtool():
    amtool = need("amtool", "prometheus-alertmanager")
    p = run([amtool, "check-config",
             os.path.join(DEPLOY, "alertmanager", "alertmanager.yml")])
    assert p.returncode == 0, p.stdout + p.stderr


def check_config(binary, config, env_extra=None, cwd=None):
    env = clean_env()
    env.update(env_extra or {})
    p = run([binary, "--check-config", "-c", config], env=env, cwd=cwd)
    assert p.returncode == 0, p.stderr
    return dict(re.findall(r"^(\S+): (.*)$", p.stdout, re.M))


def test_shipped_configurations_are_valid(installed, tmp_path):
    """The Kubernetes ConfigMap's ews.yaml with its environment, and the
    installed configuration with the compose file's environment, as the
    processor reads them."""
    binary = os.path.join(ewsenv.BUILD, "ews-processor")
    share = "/usr/local/share/ews/schemas"
    # --check-config loads the schemas: here they are where make install
    # put them under DESTDIR, in the image and on a host at share
    schemas = {"EWS_DECODE_SCHEMA_DIR": installed + share}
    objs = k8s_objects()
    text = objs[("ConfigMap", "ews-config")]["data"]["ews.yaml"]
    assert yaml.safe_load(text)["decode"]["schema.dir"] == share
    cm = tmp_path / "ews.yaml"
    cm.write_text(text)
    eff = check_config(binary, str(cm),
                       {**objs[("ConfigMap", "ews-env")]["data"], **schemas})
    assert eff["http.bind"] == '"0.0.0.0"'

    config = os.path.join(installed, "etc/ews/ews.yaml")
    with open(config) as f:
        assert yaml.safe_load(f)["decode"]["schema.dir"] == share
    with open(os.path.join(DEPLOY, "compose.yaml")) as f:
        compose_env = yaml.safe_load(f)["services"]["ews"]["environment"]
    eff = check_config(binary, config,
                       {**{k: str(v) for k, v in compose_env.items()},
                        **schemas})
    assert eff["redis.host"] == '"redis"'
    assert eff["kafka.bootstrap.servers"] == '"kafka:9092"'


# -- make install and systemd ------------------------------------------------

def make_install(destdir, *args):
    # -o all: install what the suite built; never compile here.
    p = run(["make", "-o", "all", "install", f"DESTDIR={destdir}",
             f"BUILD={ewsenv.BUILD}", *args], env=clean_env())
    assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    destdir = str(tmp_path_factory.mktemp("destdir"))
    make_install(destdir)
    return destdir


def test_make_install_lays_out_the_files(installed):
    d = installed
    for name in INSTALLED_BINS:
        assert os.access(f"{d}/usr/local/bin/{name}", os.X_OK), name
    assert not os.path.exists(f"{d}/usr/local/bin/ews-devbroker")
    assert sorted(os.listdir(f"{d}/usr/local/share/ews/schemas")) == \
        sorted(n for n in os.listdir(os.path.join(ROOT, "schemas"))
               if n.endswith(".avsc"))
    unit = f"{d}/usr/local/lib/systemd/system/ews-processor.service"
    with open(unit) as f:
        assert "ExecStart=/usr/local/bin/ews-processor -c /etc/ews/ews.yaml" \
            in f.read()
    # The configuration names the installed schemas, so it works from any
    # directory.
    with open(f"{d}/etc/ews/ews.yaml") as f:
        assert re.search(r"^  schema\.dir: /usr/local/share/ews/schemas ",
                         f.read(), re.M)


def test_make_install_keeps_an_existing_configuration(tmp_path):
    conf = tmp_path / "etc" / "ews" / "ews.yaml"
    conf.parent.mkdir(parents=True)
    conf.write_text("redis:\n  host: mine\n")
    p = make_install(str(tmp_path), "PREFIX=/usr")
    assert conf.read_text() == "redis:\n  host: mine\n"
    assert "kept" in p.stdout
    # The new one is beside the binaries; other prefixes' paths are theirs.
    with open(tmp_path / "usr" / "share" / "ews" / "ews.yaml") as f:
        assert "schema.dir: /usr/share/ews/schemas " in f.read()
    with open(tmp_path / "usr/lib/systemd/system/ews-processor.service") as f:
        unit = f.read()
    assert "ExecStart=/usr/bin/ews-processor " in unit
    assert "/usr/local" not in unit


def test_systemd_unit_verifies(installed, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed here")
    with open(f"{installed}/usr/local/lib/systemd/system/"
              "ews-processor.service") as f:
        unit = f.read()
    # verify checks that ExecStart's binary exists: point it at the
    # installed copy.
    unit = unit.replace("ExecStart=/usr/local/bin/",
                        f"ExecStart={installed}/usr/local/bin/")
    path = tmp_path / "ews-processor.service"
    path.write_text(unit)
    p = run([analyze, "--man=no", "verify", str(path)])
    # verify exits 0 on unknown keys and bad values too: any word about our
    # unit is a failure.
    ours = [line for line in (p.stdout + p.stderr).splitlines()
            if "ews-processor" in line]
    assert p.returncode == 0 and not ours, p.stdout + p.stderr
    for key in ("User=ews", "Restart=on-failure", "RestartPreventExitStatus=2",
                "NoNewPrivileges=yes", "ProtectSystem=strict"):
        assert f"\n{key}\n" in unit, key


# -- The installed processor -------------------------------------------------

def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return None, ""


def test_installed_processor_serves_probes_and_metrics(installed, broker,
                                                       redis, names, tmp_path):
    """The installed binary with the installed configuration, started away
    from the repository, as the unit and the image start it: probes answer,
    every metric the dashboard and the alerts use is exported, and SIGTERM
    ends it cleanly well within the unit's TimeoutStopSec."""
    ewsenv.run_gen(names, broker, str(tmp_path / "truth"),
                   ["--seed", "3", "--campaigns", "1",
                    "--users-per-campaign", "5", "--days", "2"])
    env = names.env(broker, redis)
    # /usr/local/share/ews/schemas as the configuration says, under DESTDIR.
    env["EWS_DECODE_SCHEMA_DIR"] = f"{installed}/usr/local/share/ews/schemas"
    port = ewsenv.free_port()
    env["EWS_HTTP_PORT"] = str(port)
    proc = subprocess.Popen(
        [f"{installed}/usr/local/bin/ews-processor", "-c",
         f"{installed}/etc/ews/ews.yaml", *ewsenv.FAST_CONSUMER],
        env=env, cwd=str(tmp_path), stderr=subprocess.PIPE, text=True)
    try:
        ewsenv.wait_for(lambda: proc.poll() is not None
                        or http_get(port, "/readyz")[0] == 200, 20,
                        "/readyz")
        assert proc.poll() is None, proc.stderr.read()
        assert http_get(port, "/healthz")[0] == 200
        status, text = http_get(port, "/metrics")
        assert status == 200
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        assert {n: types.get(n) for n in METRICS} == METRICS

        used = set()
        for p in panels_of(dashboard()["panels"]):
            for t in p.get("targets", []):
                used |= promql_metrics(t["expr"])
        with open(os.path.join(DEPLOY, "prometheus", "alerts.yml")) as f:
            for g in yaml.safe_load(f)["groups"]:
                for r in g["rules"]:
                    used |= promql_metrics(r["expr"]) - PROMETHEUS_SERIES
        for name in used:
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in types or types.get(base) == "histogram", name
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("no exit within 30 s of SIGTERM")
        err = proc.stderr.read()
    assert rc == 0, err[-2000:]
    assert time.monotonic() - started < 15
