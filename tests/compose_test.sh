#!/usr/bin/env bash
# The container files against the binary they package, offline (no Docker
# engine needed): Dockerfile, docker-compose.yml and deploy/* must agree
# with `sbomd` and with each other.
#
#   compose  `docker-compose config -q` validates docker-compose.yml
#   keys     every SBOMD_ variable named in the container files is a key of
#            `sbomd run --print-config`; each compose service's SBOMD_
#            values (and the Dockerfile's ENV) load with deploy/sbomd.cfg
#   config   deploy/sbomd.cfg loads
#   flags    every `sbomd SUB --flag` in Dockerfile (ENTRYPOINT/CMD/RUN,
#            comments), compose (entrypoint/command, the scripts they
#            run, comments) and deploy/ is in `sbomd SUB --help`
#   packages every Debian package the Dockerfile installs exists
#            (apt-cache show); every library the binary links comes from
#            a package of the runtime stage (readelf + dpkg -S)
#   ports    EXPOSE = http.listen port = compose port target = HEALTHCHECK
#            URL port = Prometheus target port
#   paths    state.dir = the Dockerfile VOLUME = a compose volume target;
#            CMD's -c FILE is where deploy/sbomd.cfg is copied; scan.stores
#            are mounted
#   topics   the topics create-topics creates = kafka.input_topic,
#            output_topic, dead_letter_topic of the sbomd service and the
#            state changelog (state.changelog_topic once sbomd has that key,
#            sbomd-state until then); the demo producer writes the input
#            topic; scan-outcomes' max.message.bytes >= scan.max_sbom_bytes
#            + 1 MiB; the changelog is compacted, with as many partitions as
#            the input topic
#   kafka    against the Apache Kafka release tools/kafka/pom.xml pins (its
#            jars in tools/kafka/lib): the apache/kafka image tags are that
#            version; every KAFKA_ variable of the broker service, mapped as
#            the image maps it (KAFKA_FOO_BAR -> foo.bar), is a broker config
#            of the release (kafka.server.KafkaConfig's list); the KRaft
#            settings agree (roles, node.id a voter on the controller
#            listener, listener names mapped and advertised ones listened
#            on); the image's own start-up code (kafka.docker.
#            KafkaDockerWrapper setup: server.properties from the
#            environment, storage format) accepts the environment; every
#            create-topics --config is a topic config (LogConfig's list);
#            create-topics' commands, run twice against a real broker of the
#            release (scripts/kafka.sh start; its `topics` for
#            kafka-topics.sh), create each topic with the partitions,
#            replication factor and configs written, the changelog compacted
#            and as wide as the input topic
#   events   deploy/demo-events.jsonl: JSON objects with type, kind, id,
#            source (image ids sha256:<64 hex>), accepted by `sbomd emit`
#            (against `sbomd dev-kafka`); the image the demo says is in the
#            store is the one deploy/make-images.sh builds
#
# Usage: tests/compose_test.sh PATH/TO/sbomd
# Exit: 0 all passed, 1 a check failed, 77 skipped (docker-compose, the
# Debian package docker-compose, or python3-yaml is not installed; or only
# the kafka section could not run, for want of Java 17+, the pinned jars in
# tools/kafka/lib or kcat - scripts/setup.sh installs them; with CI=true a
# missing tool is a failure instead). A broker that does not start is a
# failure, never a skip.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SBOMD="${1:-${SBOMD_BIN:-$ROOT/build/sbomd}}"
SBOMD="$(cd "$(dirname "$SBOMD")" && pwd)/$(basename "$SBOMD")"
COMPOSE_FILE="$ROOT/docker-compose.yml"
CFG="$ROOT/deploy/sbomd.cfg"
EVENTS="$ROOT/deploy/demo-events.jsonl"
KAFKA_SH="$ROOT/scripts/kafka.sh"
KAFKA_LIB="$ROOT/tools/kafka/lib"
POM="$ROOT/tools/kafka/pom.xml"

is_ci() { case "${CI:-}" in 1 | true | True | TRUE) return 0 ;; esac; return 1; }
skip() {
  if is_ci; then echo "FAIL: $* (CI needs every tool)" >&2; exit 1; fi
  echo "SKIP: $*"
  exit 77
}

command -v docker-compose >/dev/null 2>&1 ||
  skip "docker-compose is not installed (Debian package docker-compose)"
# The interpreter itself, not a wrapper (a pyenv shim takes a second a
# call), with the yaml module (python3-yaml, a docker-compose dependency).
PY=""
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
  PY=/usr/bin/python3
else
  cand=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
  if [ -n "$cand" ] && "$cand" -c 'import yaml' 2>/dev/null; then PY=$cand; fi
fi
[ -n "$PY" ] || skip "python3 with the yaml module is not installed (python3-yaml)"
[ -x "$SBOMD" ] || { echo "FAIL: no sbomd binary at $SBOMD" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sbomd-compose-test.XXXXXX")"
KAFKA_PID=""
BROKER_DIR="$WORK/broker"  # the pinned release's broker (scripts/kafka.sh)
BROKER_START_PID=""
cleanup() {
  if [ -n "$KAFKA_PID" ]; then
    kill "$KAFKA_PID" 2>/dev/null || true
    wait "$KAFKA_PID" 2>/dev/null || true
  fi
  # The kafka section stops the broker; on any other way out it is killed
  # (still starting, or up).
  if [ -n "$BROKER_START_PID" ]; then
    kill "$BROKER_START_PID" 2>/dev/null || true
    wait "$BROKER_START_PID" 2>/dev/null || true
  fi
  if [ -f "$BROKER_DIR/kafka.pid" ]; then
    "$KAFKA_SH" kill "$BROKER_DIR" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

failures=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $*"; }
bad() { failures=$((failures + 1)); echo "FAIL $*" >&2; }
note() { echo "     $*"; }

# sbomd with no SBOMD_ variable of the caller's (ctest's, a developer's).
sbomd_clean() { env -i PATH="$PATH" "$SBOMD" "$@"; }

# ---- the pinned Apache Kafka release (for the kafka section) -----------------
# tools/kafka/pom.xml pins it; scripts/setup.sh copies its jars to
# tools/kafka/lib. Its broker starts now, in the background, so that it comes
# up while the offline checks run; the kafka section waits for it.
KVER=$("$PY" - "$POM" 2>"$WORK/pom.err" <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {"m": "http://maven.apache.org/POM/4.0.0"}
v = ET.parse(sys.argv[1]).getroot().find("m:properties/m:kafka.version", ns)
if v is None or not (v.text or "").strip():
    sys.exit("no <kafka.version> in <properties>")
print(v.text.strip())
PY
)
# Why the release cannot run here (nothing when it can).
kafka_missing() {
  local line major
  if ! command -v java >/dev/null 2>&1; then
    echo "java is not installed (Apache Kafka $KVER needs Java 17+; scripts/setup.sh)"
    return
  fi
  line=$(java -version 2>&1 | head -n 1)
  major=$(sed -E 's/^[^"]*"(1\.)?([0-9]+).*/\2/' <<<"$line")
  if ! [[ $major =~ ^[0-9]+$ ]] || [ "$major" -lt 17 ]; then
    echo "Apache Kafka $KVER needs Java 17+, found: $line (scripts/setup.sh)"
    return
  fi
  if [ ! -f "$KAFKA_LIB/kafka_2.13-$KVER.jar" ] || [ ! -f "$KAFKA_LIB/kafka-tools-$KVER.jar" ]; then
    echo "tools/kafka/lib has no Apache Kafka $KVER jars (scripts/setup.sh fetches them)"
    return
  fi
  command -v kcat >/dev/null 2>&1 ||
    echo "kcat is not installed (scripts/kafka.sh start needs it; scripts/setup.sh)"
}
KAFKA_MISSING=""
if [ -n "$KVER" ]; then
  KAFKA_MISSING=$(kafka_missing)
  if [ -z "$KAFKA_MISSING" ]; then
    KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}" "$KAFKA_SH" start "$BROKER_DIR" \
      >"$WORK/broker.addr" 2>"$WORK/broker.err" </dev/null &
    BROKER_START_PID=$!
  fi
fi

# ---- compose: validation ----------------------------------------------------
if docker-compose -f "$COMPOSE_FILE" --project-directory "$ROOT" config -q \
     2>"$WORK/compose.err"; then
  ok "compose: docker-compose config -q"
else
  bad "compose: docker-compose config -q: $(cat "$WORK/compose.err")"
fi
# The resolved model (what compose would run), for the checks below.
if ! docker-compose -f "$COMPOSE_FILE" --project-directory "$ROOT" config \
     >"$WORK/compose.yml" 2>"$WORK/compose.err"; then
  bad "compose: docker-compose config: $(cat "$WORK/compose.err")"
  echo "$passes passed, $failures failed" >&2
  exit 1
fi

# ---- what the binary offers -------------------------------------------------
if ! sbomd_clean run --print-config >"$WORK/defaults.cfg" 2>"$WORK/err"; then
  bad "sbomd run --print-config: $(cat "$WORK/err")"
  exit 1
fi
# group.key, one a line, from the printed configuration.
awk '/^[a-z0-9]+ = \{/ { g = $1; next }
     /^};/ { g = ""; next }
     g != "" && /^  [a-z0-9_]+ = / { print g "." $1 }' \
  "$WORK/defaults.cfg" >"$WORK/keys"
[ -s "$WORK/keys" ] || { bad "no keys parsed from sbomd run --print-config"; exit 1; }
SUBCMDS=$("$SBOMD" --help | awk '/^commands:/ { on = 1; next }
  on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }' | tr '\n' ' ')
[ -n "$SUBCMDS" ] || { bad "no subcommands parsed from sbomd --help"; exit 1; }

# ---- facts from the container files ---------------------------------------
# One fact a line, TAB-separated; see the print() calls for the kinds.
SUBCMDS="$SUBCMDS" "$PY" - "$ROOT" "$WORK/compose.yml" >"$WORK/facts" \
    2>"$WORK/facts.err" <<'PY'
import glob, json, os, re, shlex, sys
import yaml

root, compose_path = sys.argv[1], sys.argv[2]
subcmds = os.environ["SUBCMDS"].split()
def out(*f): print("\t".join(str(x) for x in f))
INV_RE = re.compile(r"(?<![\w./:-])sbomd[ \t]+(%s)(?![\w-])([^\n]*)"
                    % "|".join(map(re.escape, subcmds)))
def text_invocations(origin, text):
    """`sbomd SUB args` in shell text or prose, up to a separator."""
    text = re.sub(r"\\\n\s*#?", " ", text)
    for m in INV_RE.finditer(text):
        words = [m.group(1)]
        for tok in m.group(2).split():
            if re.search(r"[|;&)<>`]", tok) or tok.startswith("#"):
                break
            words.append(tok.strip("\"',"))
        out("inv", origin, *words)
def argv_invocation(origin, argv):
    if argv and argv[0].rsplit("/", 1)[-1] == "sbomd":
        out("inv", origin, *argv[1:])
        return len(argv) > 1 and argv[1] == "run"
    if len(argv) >= 3 and argv[0].endswith("sh") and argv[1].startswith("-") and "c" in argv[1]:
        text_invocations(origin, argv[2])
    return False

# -- Dockerfile: instructions, continuation lines joined, comments apart.
df_text = open(os.path.join(root, "Dockerfile")).read()
instrs, cur = [], ""
for line in df_text.splitlines():
    s = line.strip()
    if s.startswith("#") or (not s and not cur):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    cur += s
    instrs.append(cur)
    cur = ""
stage = -1
df = {"entrypoint": None, "cmd": None}
def exec_form(arg):
    arg = arg.strip()
    return json.loads(arg) if arg.startswith("[") else ["/bin/sh", "-c", arg]
for ins in instrs:
    op, _, arg = ins.partition(" ")
    op = op.upper()
    if op == "FROM":
        stage += 1
        out("from", stage, arg.split()[0])
    elif op == "RUN":
        for m in re.finditer(r"apt-get\s+install\s+(.*?)(?:&&|;|$)", arg):
            for w in m.group(1).split():
                if not w.startswith("-"):
                    out("pkg", stage, w)
        text_invocations("Dockerfile RUN", arg)
    elif op == "ENV":
        toks = shlex.split(arg)
        if toks and "=" not in toks[0]:
            out("dfenv", toks[0], " ".join(toks[1:]))
        else:
            for t in toks:
                k, _, v = t.partition("=")
                out("dfenv", k, v)
    elif op == "EXPOSE":
        for p in arg.split():
            out("expose", p.split("/")[0])
    elif op == "VOLUME":
        for v in exec_form(arg) if arg.strip().startswith("[") else arg.split():
            out("dfvolume", v)
    elif op == "COPY":
        toks = [t for t in arg.split() if not t.startswith("--")]
        if "--from=" not in arg:
            for src in toks[:-1]:
                out("copy", src, toks[-1])
    elif op == "HEALTHCHECK":
        m = re.search(r"\bCMD\s+(.*)$", arg)
        if m:
            argv = exec_form(m.group(1))
            for w in argv:
                if re.match(r"https?://", w):
                    out("health_url", w)
            argv_invocation("Dockerfile HEALTHCHECK", argv)
    elif op == "ENTRYPOINT":
        df["entrypoint"] = exec_form(arg)
    elif op == "CMD":
        df["cmd"] = exec_form(arg)
if df["entrypoint"] is not None:
    argv = df["entrypoint"] + (df["cmd"] or [])
    argv_invocation("Dockerfile ENTRYPOINT+CMD", argv)
    if df["cmd"] and "-c" in df["cmd"]:
        out("cmd_config", df["cmd"][df["cmd"].index("-c") + 1])

# -- docker-compose.yml, as resolved by `docker-compose config`.
c = yaml.safe_load(open(compose_path))
for name, s in (c.get("services") or {}).items():
    image = s.get("image", "")
    out("service", name, image, "build" if "build" in s else "-")
    if re.sub(r"^docker\.io/", "", image).split(":")[0] in ("apache/kafka", "apache/kafka-native"):
        out("kimage", name, image)
    is_sbomd = "build" in s or image.startswith("sbomd")
    envs = s.get("environment") or {}
    if isinstance(envs, list):
        envs = dict(e.partition("=")[::2] for e in envs)
    for k, v in envs.items():
        if k.startswith("SBOMD_"):
            out("env", name, k, "" if v is None else v)
    for p in s.get("ports") or []:
        if isinstance(p, dict):
            out("port", name, p.get("published", ""), p.get("target"))
        else:
            pub, _, tgt = str(p).rpartition(":")
            out("port", name, pub, tgt)
    for v in s.get("volumes") or []:
        if isinstance(v, dict):
            out("volume", name, v.get("type", ""), v.get("source", ""), v.get("target"))
        else:
            parts = v.split(":")
            out("volume", name, "bind" if parts[0].startswith(("/", ".")) else "volume",
                parts[0], parts[1])
    ep, cmd = s.get("entrypoint"), s.get("command")
    if isinstance(ep, str): ep = shlex.split(ep)
    if isinstance(cmd, str): cmd = shlex.split(cmd)
    if is_sbomd:
        if ep is None:
            ep = df["entrypoint"] or []
            if cmd is None:
                cmd = df["cmd"] or []
        argv = list(ep) + list(cmd or [])
        if argv_invocation("compose " + name, argv):
            out("runsvc", name)
        # A script run from a bind mount: scan the host file.
        for w in argv:
            for vol in s.get("volumes") or []:
                if isinstance(vol, dict) and vol.get("type") == "bind" \
                        and w.startswith(vol["target"].rstrip("/") + "/"):
                    host = vol["source"] + w[len(vol["target"].rstrip("/")):]
                    if os.path.isfile(host) and not host.endswith(".jsonl"):
                        text_invocations(os.path.relpath(host, root),
                                         open(host, errors="replace").read())
    if name == "create-topics" or "kafka-topics" in json.dumps([ep, cmd]):
        # The argv the service runs (JSON), the brokers it bootstraps from.
        out("ctargv", name, json.dumps(list(ep or []) + list(cmd or [])))
        text = " ".join(list(ep or []) + list(cmd or []))
        text = text.replace("\\\n", " ")
        for m in re.finditer(r"--bootstrap-server[\s=]+(\S+)", text):
            out("ctboot", name, m.group(1).strip("'\""))
        for line in text.splitlines():
            if "--create" not in line:
                continue
            t = re.search(r"--topic\s+(\S+)", line)
            p = re.search(r"--partitions\s+(\d+)", line)
            mmb = re.search(r"max\.message\.bytes=(\d+)", line)
            topic = t.group(1) if t else "?"
            out("topic", name, topic, p.group(1) if p else "?",
                mmb.group(1) if mmb else "-")
            rf = re.search(r"--replication-factor[\s=]+(\d+)", line)
            out("topicrf", name, topic, rf.group(1) if rf else "?")
            for m in re.finditer(r"--config[\s=]+(\S+)", line):
                k, _, v = m.group(1).strip("'\"").partition("=")
                out("topiccfg", name, topic, k, v)

# -- Prometheus targets.
pp = os.path.join(root, "deploy", "prometheus.yml")
if os.path.exists(pp):
    for sc in (yaml.safe_load(open(pp)) or {}).get("scrape_configs") or []:
        for st in sc.get("static_configs") or []:
            for t in st.get("targets") or []:
                host, _, port = t.rpartition(":")
                out("prom", sc.get("job_name"), host, port, sc.get("metrics_path", "/metrics"))

# -- Every file: SBOMD_ names and `sbomd SUB ...` invocations, in text.
files = ["Dockerfile", "docker-compose.yml"] + sorted(
    os.path.relpath(f, root) for f in glob.glob(os.path.join(root, "deploy", "*"))
    if os.path.isfile(f))
for rel in files:
    text = open(os.path.join(root, rel), errors="replace").read()
    for m in re.finditer(r"\bSBOMD_[A-Z0-9_]*[A-Z0-9]", text):
        out("name", rel, m.group(0))
    text_invocations(rel, text)
PY
if [ -s "$WORK/facts.err" ] || [ ! -s "$WORK/facts" ]; then
  bad "parsing the container files: $(cat "$WORK/facts.err")"
  exit 1
fi
fact() { awk -F'\t' -v k="$1" '$1 == k' "$WORK/facts"; }

# ---- config: deploy/sbomd.cfg loads -----------------------------------------
if sbomd_clean run -c "$CFG" --print-config >"$WORK/deploy.cfg" 2>"$WORK/err"; then
  ok "config: deploy/sbomd.cfg loads"
else
  bad "config: sbomd run -c deploy/sbomd.cfg --print-config: $(cat "$WORK/err")"
fi

# ---- keys: SBOMD_ names, then each service's values ------------------------
env_name() { # group.key -> SBOMD_GROUP_KEY
  printf 'SBOMD_%s' "$(echo "$1" | tr '.a-z' '_A-Z')"
}
while read -r k; do env_name "$k"; echo; done <"$WORK/keys" >"$WORK/envnames"
unknown=0
while IFS=$'\t' read -r _ file name; do
  if ! grep -qx "$name" "$WORK/envnames"; then
    bad "keys: $file names $name, which is no configuration key"
    unknown=$((unknown + 1))
  fi
done < <(fact name)
[ "$unknown" -gt 0 ] ||
  ok "keys: $(fact name | cut -f3 | sort -u | wc -l) SBOMD_ names in the container files are keys"

# Effective configuration per service: deploy/sbomd.cfg (the image's) + the
# Dockerfile's ENV + the service's environment, loaded by the real loader.
declare -a DFENV=()
while IFS=$'\t' read -r _ k v; do
  [[ $k == SBOMD_* ]] && DFENV+=("$k=$v")
done < <(fact dfenv)
if sbomd_clean run -c "$CFG" --print-config >/dev/null 2>"$WORK/err" &&
   env -i PATH="$PATH" "${DFENV[@]}" "$SBOMD" run -c "$CFG" --print-config \
     >"$WORK/image.cfg" 2>"$WORK/err"; then
  ok "keys: the Dockerfile's ENV (${#DFENV[@]} SBOMD_) loads with deploy/sbomd.cfg"
else
  bad "keys: Dockerfile ENV with deploy/sbomd.cfg: $(cat "$WORK/err")"
fi
for svc in $(fact env | cut -f2 | sort -u); do
  vars=()
  while IFS=$'\t' read -r _ s k v; do
    [ "$s" = "$svc" ] && vars+=("$k=$v")
  done < <(fact env)
  if env -i PATH="$PATH" "${DFENV[@]}" "${vars[@]}" "$SBOMD" run -c "$CFG" \
       --print-config >"$WORK/svc-$svc.cfg" 2>"$WORK/err"; then
    ok "keys: compose service $svc: ${#vars[@]} SBOMD_ values load (sbomd run --print-config)"
  else
    bad "keys: compose service $svc: $(cat "$WORK/err")"
  fi
done

# value KEY FILE: a key's value in printed configuration (quotes removed).
value() {
  local g=${1%%.*} k=${1#*.}
  awk -v g="$g" -v k="$k" '
    $0 ~ "^" g " = \\{" { in_g = 1; next }
    /^};/ { in_g = 0 }
    in_g && $1 == k && $2 == "=" {
      sub(/^[^=]*= */, ""); sub(/; *(#.*)?$/, ""); gsub(/"/, ""); print; exit }' "$2"
}
size_bytes() { # "16MiB" -> 16777216
  local s=$1 n u
  n=${s%%[!0-9]*} u=${s#"$n"}
  case "$u" in
    ""|B) echo "$n" ;; KiB) echo $((n << 10)) ;; MiB) echo $((n << 20)) ;;
    GiB) echo $((n << 30)) ;; TiB) echo $((n << 40)) ;; *) echo -1 ;;
  esac
}

# The sbomd service: the compose service whose argv runs `sbomd run`.
RUN_SVC=$(fact runsvc | cut -f2 | head -n 1)
if [ -z "$RUN_SVC" ]; then
  bad "compose: no service runs 'sbomd run'"
  SVC_CFG="$WORK/image.cfg"
else
  SVC_CFG="$WORK/svc-$RUN_SVC.cfg"
  [ -s "$SVC_CFG" ] || SVC_CFG="$WORK/image.cfg"
fi

# ---- flags: every sbomd SUB --flag exists ----------------------------------
# From exec-form argv (compose entrypoint/command, Dockerfile ENTRYPOINT+CMD,
# HEALTHCHECK) and from the text of every file and script they run.
fact inv | cut -f2- >"$WORK/invocations"
nflags=0 badflags=0
while IFS=$'\t' read -r -a w; do
  origin=${w[0]}
  w=("${w[@]:1}")
  [ "${#w[@]}" -gt 0 ] || continue
  sub=${w[0]}
  if ! [[ " $SUBCMDS " == *" $sub "* ]]; then
    bad "flags: $origin: 'sbomd $sub' is no subcommand (sbomd --help: $SUBCMDS)"
    badflags=$((badflags + 1)); continue
  fi
  help=$("$SBOMD" "$sub" --help 2>&1)
  for tok in "${w[@]:1}"; do
    [[ $tok == -* ]] || continue
    flag=${tok%%=*}
    nflags=$((nflags + 1))
    if ! grep -qE -- "(^|[][ ,|])${flag}([][ ,=|]|$)" <<<"$help"; then
      bad "flags: $origin: 'sbomd $sub $flag' is not in 'sbomd $sub --help'"
      badflags=$((badflags + 1))
    fi
  done
done <"$WORK/invocations"
ninv=$(wc -l <"$WORK/invocations")
if [ "$ninv" -eq 0 ]; then
  bad "flags: found no sbomd invocation in the container files"
elif [ "$badflags" -eq 0 ]; then
  ok "flags: $ninv sbomd invocations, $nflags flags, all in --help"
fi

# ---- packages -----------------------------------------------------------------
LAST_STAGE=$(fact from | tail -n 1 | cut -f2)
fact pkg | awk -F'\t' -v s="$LAST_STAGE" '$2 == s { print $3 }' | sort -u >"$WORK/runtime-pkgs"
if [ ! -s "$WORK/runtime-pkgs" ]; then
  bad "packages: no apt-get install in the Dockerfile's runtime stage"
elif ! command -v apt-cache >/dev/null 2>&1; then
  note "packages: apt-cache not available: package names not checked"
else
  # One apt-cache call (each takes a second or more): which names it shows.
  fact pkg | cut -f3 | sort -u >"$WORK/all-pkgs"
  xargs apt-cache show --no-all-versions <"$WORK/all-pkgs" 2>/dev/null |
    sed -n 's/^Package: //p' | sort -u >"$WORK/known-pkgs"
  missing=0
  for p in $(comm -23 "$WORK/all-pkgs" "$WORK/known-pkgs"); do
    bad "packages: the Dockerfile installs $p: apt-cache show finds no such package"
    missing=$((missing + 1))
  done
  [ "$missing" -gt 0 ] || ok "packages: $(fact pkg | cut -f3 | sort -u | wc -l) Debian packages exist (apt-cache show)"
fi
# Every library the binary needs is installed by the runtime stage (or is
# part of every Debian image); sanitizer runtimes of test builds aside.
if command -v readelf >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
  unpackaged=0 nlibs=0
  ldd "$SBOMD" >"$WORK/ldd" 2>&1
  # lib -> path, then one dpkg -S for all, with and without /usr (dpkg's
  # database has either, depending on the package: merged /usr).
  readelf -d "$SBOMD" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
    grep -Ev '^lib(a|ub|t|l)san' | while read -r lib; do
      path=$(awk -v l="$lib" '$1 == l { print $3 }' "$WORK/ldd")
      path=${path#/usr}
      printf '%s\t%s\n' "$lib" "${path:-unresolved}"
    done >"$WORK/libs"
  { cut -f2 "$WORK/libs"; cut -f2 "$WORK/libs" | sed 's|^|/usr|'; } |
    xargs dpkg -S 2>/dev/null |
    sed -E 's/^([^:]+)(:[^:]+)?: (.*)$/\3\t\1/' >"$WORK/lib-pkgs"
  while IFS=$'\t' read -r lib path; do
    nlibs=$((nlibs + 1))
    pkg=$(awk -F'\t' -v p="$path" '$1 == p || $1 == "/usr" p { print $2; exit }' "$WORK/lib-pkgs")
    case "$pkg" in libc6|libgcc-s1) continue ;; esac
    if [ -z "$pkg" ] || ! grep -qx "$pkg" "$WORK/runtime-pkgs"; then
      bad "packages: sbomd needs $lib ($path, package ${pkg:-unknown}), not installed by the runtime stage"
      unpackaged=$((unpackaged + 1))
    fi
  done <"$WORK/libs"
  [ "$unpackaged" -gt 0 ] || ok "packages: the $nlibs libraries sbomd links come from runtime-stage packages"
else
  note "packages: readelf or dpkg not available: linked libraries not checked"
fi

# ---- ports ------------------------------------------------------------------
port_of() { echo "${1##*:}"; }
CFG_PORT=$(port_of "$(value http.listen "$WORK/deploy.cfg")")
SVC_PORT=$(port_of "$(value http.listen "$SVC_CFG")")
EXPOSE=$(fact expose | cut -f2 | tr '\n' ' ' | sed 's/ $//')
HEALTH_PORT=$(fact health_url | cut -f2 | sed -E 's|^https?://[^/:]*:?([0-9]*).*|\1|')
porterr=0
[ -n "$CFG_PORT" ] || { bad "ports: deploy/sbomd.cfg has no http.listen port"; porterr=1; }
[ "$EXPOSE" = "$CFG_PORT" ] ||
  { bad "ports: Dockerfile EXPOSE '$EXPOSE' != http.listen port '$CFG_PORT' of deploy/sbomd.cfg"; porterr=1; }
[ "$SVC_PORT" = "$CFG_PORT" ] ||
  { bad "ports: compose $RUN_SVC's http.listen port '$SVC_PORT' != '$CFG_PORT' (the image's EXPOSE and HEALTHCHECK)"; porterr=1; }
[ "$HEALTH_PORT" = "$CFG_PORT" ] ||
  { bad "ports: HEALTHCHECK URL port '$HEALTH_PORT' != http.listen port '$CFG_PORT'"; porterr=1; }
fact health_url | cut -f2 | grep -q '/healthz$' ||
  { bad "ports: HEALTHCHECK does not probe /healthz"; porterr=1; }
TARGETS=$(fact port | awk -F'\t' -v s="$RUN_SVC" '$2 == s { print $4 }' | tr '\n' ' ' | sed 's/ $//')
[ "$TARGETS" = "$SVC_PORT" ] ||
  { bad "ports: compose $RUN_SVC publishes container port(s) '$TARGETS', http.listen is on '$SVC_PORT'"; porterr=1; }
while IFS=$'\t' read -r _ job host port path; do
  if [ "$port" != "$SVC_PORT" ] || [ "$host" != "$RUN_SVC" ]; then
    bad "ports: Prometheus job $job scrapes $host:$port, sbomd is $RUN_SVC:$SVC_PORT"; porterr=1
  fi
done < <(fact prom)
[ -n "$(fact prom)" ] || { bad "ports: deploy/prometheus.yml has no target"; porterr=1; }
[ "$porterr" -ne 0 ] || ok "ports: EXPOSE, http.listen, compose, HEALTHCHECK and Prometheus agree on $CFG_PORT"

# ---- paths: state volume, config file, image stores -------------------------
patherr=0
STATE_DIR=$(value state.dir "$SVC_CFG")
DF_VOLUME=$(fact dfvolume | cut -f2 | tr '\n' ' ' | sed 's/ $//')
[ "$DF_VOLUME" = "$(value state.dir "$WORK/image.cfg")" ] ||
  { bad "paths: Dockerfile VOLUME '$DF_VOLUME' != state.dir of deploy/sbomd.cfg"; patherr=1; }
fact volume | awk -F'\t' -v s="$RUN_SVC" -v d="$STATE_DIR" '$2 == s && $3 == "volume" && $5 == d' |
  grep -q . || { bad "paths: compose $RUN_SVC has no named volume at state.dir $STATE_DIR"; patherr=1; }
CMD_CFG=$(fact cmd_config | cut -f2)
fact copy | awk -F'\t' -v d="$CMD_CFG" '$2 == "deploy/sbomd.cfg" && $3 == d' | grep -q . ||
  { bad "paths: CMD reads -c '$CMD_CFG', but deploy/sbomd.cfg is not copied there"; patherr=1; }
stores=$(value scan.stores "$SVC_CFG" | tr -d '[] ' | tr ',' '\n')
for st in $stores; do
  fact volume | awk -F'\t' -v s="$RUN_SVC" -v d="$st" '$2 == s && (d == $5 || index(d, $5 "/") == 1)' |
    grep -q . || { bad "paths: scan.stores entry $st is not mounted into compose $RUN_SVC"; patherr=1; }
done
[ "$patherr" -ne 0 ] || ok "paths: state.dir $STATE_DIR is the VOLUME and a named volume; -c $CMD_CFG; stores mounted"

# ---- topics -------------------------------------------------------------------
IN=$(value kafka.input_topic "$SVC_CFG")
OUTT=$(value kafka.output_topic "$SVC_CFG")
DLQ=$(value kafka.dead_letter_topic "$SVC_CFG")
# sbomd's state changelog: state.changelog_topic once the scale-out work adds
# that key, its default sbomd-state until then.
CHANGELOG=sbomd-state
if grep -qx state.changelog_topic "$WORK/keys"; then
  CHANGELOG=$(value state.changelog_topic "$SVC_CFG")
fi
want=$(printf '%s\n' "$IN" "$OUTT" "$DLQ" "$CHANGELOG" | grep -v '^$' | sort -u | tr '\n' ' ')
have=$(fact topic | cut -f3 | sort -u | tr '\n' ' ')
if [ "$want" = "$have" ]; then
  ok "topics: compose creates the configured topics: $have"
else
  bad "topics: compose creates '$have', $RUN_SVC uses '$want' (input, output, dead letter, state changelog)"
fi
# The changelog: one partition per input partition, keyed by entity, so
# compacted (the kafka section checks what a real broker makes of it).
IN_PARTS=$(fact topic | awk -F'\t' -v t="$IN" '$3 == t { print $4; exit }')
CL_PARTS=$(fact topic | awk -F'\t' -v t="$CHANGELOG" '$3 == t { print $4; exit }')
CL_POLICY=$(fact topiccfg | awk -F'\t' -v t="$CHANGELOG" '$3 == t && $4 == "cleanup.policy" { print $5 }')
if [ -n "$CL_PARTS" ] && [ "$CL_PARTS" = "$IN_PARTS" ] && [ "$CL_POLICY" = compact ]; then
  ok "topics: changelog $CHANGELOG: cleanup.policy=compact, $CL_PARTS partitions, as many as $IN"
else
  bad "topics: changelog $CHANGELOG: ${CL_PARTS:-no} partitions, cleanup.policy '${CL_POLICY}'; needs compact and as many partitions as $IN (${IN_PARTS:-?})"
fi
# The demo producer (and any other emitter) writes the input topic.
while IFS=$'\t' read -r _ svc k v; do
  [ "$svc" = "$RUN_SVC" ] && continue
  case "$k" in
    SBOMD_KAFKA_INPUT_TOPIC)
      [ "$v" = "$IN" ] && ok "topics: $svc produces to $IN" ||
        bad "topics: $svc produces to '$v', $RUN_SVC consumes '$IN'" ;;
    SBOMD_KAFKA_BROKERS)
      [ "$v" = "$(value kafka.brokers "$SVC_CFG")" ] ||
        bad "topics: $svc uses brokers '$v', $RUN_SVC '$(value kafka.brokers "$SVC_CFG")'" ;;
  esac
done < <(fact env)
MAX_SBOM=$(size_bytes "$(value scan.max_sbom_bytes "$SVC_CFG")")
OUT_MMB=$(fact topic | awk -F'\t' -v t="$OUTT" '$3 == t { print $5 }')
if [[ $OUT_MMB =~ ^[0-9]+$ ]] && [ "$MAX_SBOM" -ge 0 ] &&
   [ "$OUT_MMB" -ge $((MAX_SBOM + (1 << 20))) ]; then
  ok "topics: $OUTT max.message.bytes $OUT_MMB >= scan.max_sbom_bytes + 1 MiB ($((MAX_SBOM + (1 << 20))))"
else
  bad "topics: $OUTT max.message.bytes '${OUT_MMB:--}' < scan.max_sbom_bytes ($MAX_SBOM) + 1 MiB: outcomes with big SBOMs would be refused by the broker"
fi

# ---- kafka: against the pinned Apache Kafka release ----------------------------
# JVMs for short commands of the release (class lists, the image's start-up
# code): client compiler only, warnings to stderr, stdout for their output.
kjava() {
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData \
    -Djava.awt.headless=true -Xlog:disable -Xlog:all=warning:stderr \
    -Djava.io.tmpdir="$WORK" \
    -Dlog4j2.configurationFile="$ROOT/tools/kafka/tools-log4j2.properties" \
    -cp "$KAFKA_LIB/*" "$@"
}
# verdicts <FILE: one "ok|bad|note TAB message" a line, from the checks in Python.
verdicts() {
  local v m
  while IFS=$'\t' read -r v m; do
    case "$v" in ok) ok "$m" ;; bad) bad "$m" ;; *) note "$m" ;; esac
  done
}

# The image tags: that release (no Java needed).
kafka_images() {
  local n=0 wrong=0 svc image
  while IFS=$'\t' read -r _ svc image; do
    n=$((n + 1))
    if [ "${image##*:}" != "$KVER" ]; then
      bad "kafka: compose $svc runs $image; tools/kafka/pom.xml pins Apache Kafka $KVER (the release the tests run): use ${image%:*}:$KVER"
      wrong=$((wrong + 1))
    fi
  done < <(fact kimage)
  if [ "$n" -eq 0 ]; then
    bad "kafka: no compose service runs an apache/kafka image"
  elif [ "$wrong" -eq 0 ]; then
    ok "kafka: $(fact kimage | cut -f3 | sort -u | paste -sd, -) ($(fact kimage | cut -f2 | paste -sd, -)) is Apache Kafka $KVER, the release tools/kafka/pom.xml pins"
  fi
}

# The broker service's environment and the topic configs against the
# release's lists of configs; the KRaft settings; writes the environment the
# image's start-up code is run with, what it should write, and create-topics'
# argv for the broker of scripts/kafka.sh.
kafka_static() {
  kjava kafka.server.KafkaConfig >"$WORK/broker-configs.html" 2>"$WORK/err"
  sed -n 's/.*id="brokerconfigs_\([^"]*\)".*/\1/p' "$WORK/broker-configs.html" |
    sort -u >"$WORK/broker-configs"
  if [ ! -s "$WORK/broker-configs" ]; then
    bad "kafka: java kafka.server.KafkaConfig listed no broker configs: $(head -n 20 "$WORK/err")"
    return 1
  fi
  kjava org.apache.kafka.storage.internals.log.LogConfig >"$WORK/topic-configs.html" 2>"$WORK/err"
  sed -n 's/.*id="topicconfigs_\([^"]*\)".*/\1/p' "$WORK/topic-configs.html" |
    sort -u >"$WORK/topic-configs"
  if [ ! -s "$WORK/topic-configs" ]; then
    bad "kafka: java org.apache.kafka.storage.internals.log.LogConfig listed no topic configs: $(head -n 20 "$WORK/err")"
    return 1
  fi
  "$PY" - "$WORK" "$KVER" "$KAFKA_SH" <<'PY' >"$WORK/kafka.verdicts" 2>"$WORK/err"
import difflib, json, os, re, shlex, sys
import yaml

work, kver, kafka_sh = sys.argv[1:4]
rel = f"Apache Kafka {kver}"
c = yaml.safe_load(open(os.path.join(work, "compose.yml")))
services = c.get("services") or {}
facts = [l.rstrip("\n").split("\t") for l in open(os.path.join(work, "facts"))]
broker_cfgs = set(open(os.path.join(work, "broker-configs")).read().split())
topic_cfgs = set(open(os.path.join(work, "topic-configs")).read().split())
def ok(m): print("ok\t" + m)
def bad(m): print("bad\t" + m)
def hint(name, known):
    m = difflib.get_close_matches(name, known, 1, 0.8)
    return f" (did you mean {m[0]}?)" if m else ""

# The broker: the apache/kafka service that runs the image's own command.
kimages = {f[1] for f in facts if f[0] == "kimage"}
brokers = [n for n in kimages
           if services[n].get("entrypoint") is None and services[n].get("command") is None]
if len(brokers) != 1:
    bad(f"kafka: want one broker service (apache/kafka, the image's own command), found {brokers or 'none'}")
    sys.exit(0)
name = brokers[0]
svc = services[name]
env = svc.get("environment") or {}
if isinstance(env, list):
    env = dict(e.partition("=")[::2] for e in env)
env = {k: "" if v is None else str(v) for k, v in env.items()}

# How the image turns its environment into server.properties (the release's
# kafka.docker.KafkaDockerWrapper): KAFKA_ dropped, lower case, _ -> .,
# ___ -> -, __ -> _; its own variables (JVM, log4j; CLUSTER_ID for the
# storage format) are not configs.
IMAGE_VARS = {"CLUSTER_ID", "KAFKA_VERSION", "KAFKA_HEAP_OPTS", "KAFKA_LOG4J_OPTS",
              "KAFKA_OPTS", "KAFKA_JMX_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS",
              "KAFKA_GC_LOG_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS",
              "KAFKA_TOOLS_LOG4J_LOGLEVEL", "KAFKA_JMX_HOSTNAME"}
def prop(var):
    return (var.replace("KAFKA_", "", 1).lower().replace("_", ".")
            .replace("...", "-").replace("..", "_"))
props, unknown = {}, 0
for k, v in sorted(env.items()):
    if k in IMAGE_VARS:
        continue
    if not k.startswith("KAFKA_"):
        bad(f"kafka: compose {name} sets {k}: not KAFKA_ nor the image's own (CLUSTER_ID): the image ignores it")
        unknown += 1
        continue
    props[prop(k)] = v
    if prop(k) not in broker_cfgs:
        bad(f"kafka: compose {name}: {k} is {prop(k)}, no broker config of {rel}{hint(prop(k), broker_cfgs)}")
        unknown += 1
if not unknown:
    ok(f"kafka: compose {name}: its {len(props)} KAFKA_ variables are broker configs of {rel}"
       f" ({len(broker_cfgs)} in kafka.server.KafkaConfig), CLUSTER_ID the image's own")

# KRaft, one node.
def items(p):
    return [x.strip() for x in props.get(p, "").split(",") if x.strip()]
def endpoints(p):
    eps, errs = {}, []
    for e in items(p):
        m = re.fullmatch(r"([A-Za-z0-9_]+)://(\[[^\]]*\]|[^:/]*):(\d+)", e)
        if m:
            eps[m.group(1)] = (m.group(2), m.group(3))
        else:
            errs.append(f"{p}: '{e}' is not NAME://HOST:PORT")
    return eps, errs
problems = []
roles = items("process.roles")
if not {"broker", "controller"} <= set(roles):
    problems.append(f"process.roles is '{props.get('process.roles', '')}': one node needs broker,controller")
listeners, errs = endpoints("listeners")
problems += errs
if not listeners:
    problems.append("no listeners")
advertised, errs = endpoints("advertised.listeners")
problems += errs
ctl = items("controller.listener.names")
if not ctl:
    problems.append("controller.listener.names is not set")
for n in ctl:
    if n not in listeners:
        problems.append(f"controller listener {n} is not in listeners ({', '.join(listeners)})")
ibl = props.get("inter.broker.listener.name") or props.get("security.inter.broker.protocol") or "PLAINTEXT"
if ibl not in listeners:
    problems.append(f"inter.broker.listener.name {ibl} is not in listeners ({', '.join(listeners)})")
elif ibl in ctl:
    problems.append(f"inter.broker.listener.name {ibl} is a controller listener")
if "listener.security.protocol.map" in props:
    spm = dict(x.split(":", 1) for x in items("listener.security.protocol.map") if ":" in x)
else:
    spm = {p: p for p in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")}
for n in listeners:
    if n not in spm:
        problems.append(f"listener {n} is not in listener.security.protocol.map ({', '.join(spm)})")
for n in advertised:
    if n not in listeners:
        problems.append(f"advertised listener {n} is not in listeners ({', '.join(listeners)})")
nid = props.get("node.id", "")
voters = {}
if "controller.quorum.voters" not in props:
    problems.append("controller.quorum.voters is not set: the image formats its storage for static voters only"
                    + (" (controller.quorum.bootstrap.servers alone is refused)"
                       if "controller.quorum.bootstrap.servers" in props else ""))
else:
    for v in items("controller.quorum.voters"):
        m = re.fullmatch(r"(\d+)@(\[[^\]]*\]|[^:]+):(\d+)", v)
        if m:
            voters[m.group(1)] = (m.group(2), m.group(3))
        else:
            problems.append(f"controller.quorum.voters: '{v}' is not ID@HOST:PORT")
    if nid not in voters:
        problems.append(f"node.id '{nid}' is not in controller.quorum.voters ({props['controller.quorum.voters']})")
    else:
        host, port = voters[nid]
        ctl_ports = {listeners[n][1] for n in ctl if n in listeners}
        if port not in ctl_ports:
            problems.append(f"voter {nid}@{host}:{port}: port {port} is not the controller listener's ({', '.join(sorted(ctl_ports)) or 'none'})")
        names = {name, svc.get("hostname")} - {None}
        if host not in names:
            problems.append(f"voter {nid}@{host}:{port}: {host} is not the service's name or hostname ({', '.join(sorted(names))})")
for p in problems:
    bad(f"kafka: compose {name}: KRaft: {p}")
if not problems:
    ok(f"kafka: compose {name}: KRaft: node {nid} is {','.join(roles)}, voter {nid}@{':'.join(voters[nid])}"
       f" on controller listener {','.join(ctl)}; listeners {','.join(listeners)} mapped;"
       f" inter-broker {ibl}; advertised {','.join(advertised)} listened on")

# create-topics: known topic configs, bootstrapping from an advertised listener.
cfgs = [f for f in facts if f[0] == "topiccfg"]
badcfg = 0
for _, s, topic, k, v in cfgs:
    if k not in topic_cfgs:
        bad(f"kafka: compose {s}: --config {k}={v} (topic {topic}) is no topic config of {rel}{hint(k, topic_cfgs)}")
        badcfg += 1
if not badcfg:
    ok(f"kafka: create-topics: its {len(cfgs)} --config settings are topic configs of {rel}"
       f" ({len(topic_cfgs)} in LogConfig)")
adv_addrs = {f"{h}:{p}" for h, p in advertised.values()}
boots = sorted({(f[1], f[2]) for f in facts if f[0] == "ctboot"})
for s, b in boots:
    if b not in adv_addrs:
        bad(f"kafka: compose {s} bootstraps from {b}, not an advertised listener of {name} ({', '.join(sorted(adv_addrs))})")

# The image's start-up code is run with the broker's environment, its data
# directories moved into the work directory.
image_dir = os.path.join(work, "kafka-image")
run_env = dict(env)
run_env["KAFKA_LOG_DIRS"] = os.path.join(image_dir, "data")
for var in ("KAFKA_LOG_DIR", "KAFKA_METADATA_LOG_DIR"):
    if var in run_env:
        run_env[var] = os.path.join(image_dir, var.lower())
with open(os.path.join(work, "kafka-image.env"), "w") as f:
    f.write("".join(f"{k}={v}\0" for k, v in sorted(run_env.items())))
with open(os.path.join(work, "kafka-image.want"), "w") as f:
    f.write("".join(f"{prop(k)}={v}\n" for k, v in sorted(run_env.items())
                    if k.startswith("KAFKA_") and k not in IMAGE_VARS))

# create-topics' argv for the broker of scripts/kafka.sh: its `topics` for
# the image's kafka-topics.sh, a placeholder for the bootstrap address.
TOOL = "/opt/kafka/bin/kafka-topics.sh"
for f in facts:
    if f[0] != "ctargv":
        continue
    argv = json.loads(f[2])
    if not argv:
        bad(f"kafka: compose {f[1]}: no entrypoint/command to run")
        continue
    if argv[0] == TOOL:
        argv = [kafka_sh, "topics"] + argv[1:]
    argv = [a.replace(TOOL, shlex.quote(kafka_sh) + " topics") for a in argv]
    for _, b in boots:
        argv = [a.replace(b, "@BOOTSTRAP@") for a in argv]
    left = sorted(set(re.findall(r"/opt/kafka/\S*", " ".join(argv))))
    if left:
        bad(f"kafka: compose {f[1]} runs {', '.join(left)}: the test runs only kafka-topics.sh (as scripts/kafka.sh topics)")
        continue
    with open(os.path.join(work, "ctargv." + f[1]), "w") as out:
        out.write("".join(a + "\0" for a in argv))
PY
  if [ -s "$WORK/err" ]; then
    bad "kafka: checking the broker service and create-topics: $(cat "$WORK/err")"
    return 1
  fi
  verdicts <"$WORK/kafka.verdicts"
}

# The image's own start-up code, from the release's jars: server.properties
# from the environment, then the storage format (which validates the config
# as a KRaft node and needs CLUSTER_ID and static voters).
kafka_image_setup() {
  local d="$WORK/kafka-image" kenv
  [ -f "$WORK/kafka-image.env" ] || return 0
  mkdir -p "$d/default" "$d/mounted" "$d/final"
  mapfile -d '' kenv <"$WORK/kafka-image.env"
  if ! env -i PATH="$PATH" "${kenv[@]}" timeout 120 java -Xmx256m -XX:+UseSerialGC \
       -XX:TieredStopAtLevel=1 -XX:-UsePerfData -Xlog:disable -Xlog:all=warning:stderr \
       -Djava.io.tmpdir="$WORK" -cp "$KAFKA_LIB/*" kafka.docker.KafkaDockerWrapper setup \
       --default-configs-dir "$d/default" --mounted-configs-dir "$d/mounted" \
       --final-configs-dir "$d/final" >"$WORK/kafka-image.out" 2>&1; then
    bad "kafka: the image's start-up (kafka.docker.KafkaDockerWrapper setup, Apache Kafka $KVER) refuses the broker's environment: $(tail -n 20 "$WORK/kafka-image.out")"
    return 1
  fi
  grep -v '^$' "$d/final/server.properties" | sort >"$WORK/kafka-image.have"
  sort "$WORK/kafka-image.want" | diff "$WORK/kafka-image.have" - >"$WORK/err"
  if [ -s "$WORK/err" ]; then
    bad "kafka: the image's server.properties (< ) differs from the test's mapping of KAFKA_ variables (> ): $(cat "$WORK/err")"
    return 1
  fi
  ok "kafka: the image's start-up (KafkaDockerWrapper setup, $KVER) writes $(wc -l <"$WORK/kafka-image.have") properties from the environment and formats the storage: $(grep -m 1 -o 'metadata.version [^ ]*' "$WORK/kafka-image.out" | sed 's/\.$//')"
}

# describe_rows FILE: "topic TAB partitions TAB replication TAB k=v,..." a
# line from `kafka-topics --describe`, configs as the broker reports them.
describe_rows() {
  awk -F'\t' '/^Topic: / && /PartitionCount: / {
      t = p = r = c = ""
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^Topic: /) t = substr($i, 8)
        else if ($i ~ /^PartitionCount: /) p = substr($i, 17)
        else if ($i ~ /^ReplicationFactor: /) r = substr($i, 20)
        else if ($i ~ /^Configs: ?/) { c = $i; sub(/^Configs: ?/, "", c) }
      }
      print t "\t" p "\t" r "\t" c }' "$1"
}
# described TOPIC FIELD (2 partitions, 3 replication) or a config's value.
described() {
  case "$2" in
    2 | 3) awk -F'\t' -v t="$1" -v f="$2" '$1 == t { print $f }' "$WORK/described" ;;
    *) awk -F'\t' -v t="$1" -v k="$2" '$1 == t {
         n = split($4, kv, ","); v = ""; found = 0
         for (i = 1; i <= n; i++) {
           if (kv[i] ~ /=/) { if (found) break; split(kv[i], a, "="); if (a[1] == k) { found = 1; v = substr(kv[i], length(k) + 2) } }
           else if (found) v = v "," kv[i]
         }
         if (found) print v }' "$WORK/described" ;;
  esac
}

# create-topics' commands against a real broker of the release, twice
# (create, then again as on every `up`), then what the broker made of them.
kafka_broker() {
  local rc addr took svc argv run topics topic want got nbad cfgs k v
  wait "$BROKER_START_PID"
  rc=$?
  BROKER_START_PID=""
  addr=$(head -n 1 "$WORK/broker.addr")
  if [ "$rc" -ne 0 ] || [ -z "$addr" ]; then
    bad "kafka: the Apache Kafka $KVER broker did not start (scripts/kafka.sh start, exit $rc): $(tail -n 40 "$WORK/broker.err")"
    return 1
  fi
  took=$(sed -n 's/.* up in \([0-9.]*\) s.*/ in \1 s/p' "$WORK/broker.err" | head -n 1)
  ok "kafka: an Apache Kafka $KVER broker (scripts/kafka.sh start, a fresh directory) is up at $addr$took"
  for svc in $(fact ctargv | cut -f2); do
    [ -f "$WORK/ctargv.$svc" ] || continue
    mapfile -d '' argv <"$WORK/ctargv.$svc"
    argv=("${argv[@]//@BOOTSTRAP@/$addr}")
    for run in 1 2; do
      if env -i PATH="$PATH" HOME="$WORK" TMPDIR="$WORK" timeout 240 "${argv[@]}" \
           >"$WORK/ct.$svc.$run" 2>&1; then
        if [ "$run" = 1 ]; then
          ok "kafka: compose $svc: its commands run against it ($(grep -c '^Created topic' "$WORK/ct.$svc.$run") topics created; scripts/kafka.sh topics for kafka-topics.sh)"
        else
          ok "kafka: and again, harmlessly, as on every 'up' (--if-not-exists; $(grep -c '^Created topic' "$WORK/ct.$svc.$run") created)"
        fi
      else
        bad "kafka: compose $svc: its commands fail against the $KVER broker (run $run): $(tail -n 30 "$WORK/ct.$svc.$run")"
        return 1
      fi
    done
    topics=$(fact topic | awk -F'\t' -v s="$svc" '$2 == s { print $3 }' | paste -sd, -)
    if ! timeout 120 "$KAFKA_SH" topics --bootstrap-server "$addr" --describe \
         --topic "$topics" >"$WORK/describe.out" 2>"$WORK/err"; then
      bad "kafka: kafka-topics --describe --topic $topics: $(tail -n 20 "$WORK/err")"
      return 1
    fi
    describe_rows "$WORK/describe.out" >"$WORK/described"
    # Each topic as written: partitions, replication factor, --config values.
    while IFS=$'\t' read -r _ _ topic want _; do
      nbad=0
      got=$(described "$topic" 2)
      if [ -z "$got" ]; then
        bad "kafka: $topic: not in the broker's --describe"
        continue
      fi
      [ "$got" = "$want" ] ||
        { bad "kafka: $topic: $got partitions on the broker, $want written"; nbad=1; }
      want=$(fact topicrf | awk -F'\t' -v s="$svc" -v t="$topic" '$2 == s && $3 == t { print $4 }')
      got=$(described "$topic" 3)
      [ "$got" = "$want" ] ||
        { bad "kafka: $topic: replication factor $got on the broker, $want written"; nbad=1; }
      cfgs=""
      while IFS=$'\t' read -r _ _ _ k v; do
        got=$(described "$topic" "$k")
        [ "$got" = "$v" ] ||
          { bad "kafka: $topic: $k=${got:-(default)} on the broker, $v written"; nbad=1; }
        cfgs="$cfgs $k=$v"
      done < <(fact topiccfg | awk -F'\t' -v s="$svc" -v t="$topic" '$2 == s && $3 == t')
      [ "$nbad" -ne 0 ] ||
        ok "kafka: $topic on the broker as written: $(described "$topic" 2) partitions, replication $(described "$topic" 3),$cfgs"
    done < <(fact topic | awk -F'\t' -v s="$svc" '$2 == s')
  done
  # The changelog: compacted, one partition per input partition.
  got=$(described "$CHANGELOG" 2)
  want=$(described "$IN" 2)
  if [ -n "$got" ] && [ "$got" = "$want" ] && [ "$(described "$CHANGELOG" cleanup.policy)" = compact ]; then
    ok "kafka: changelog $CHANGELOG on the broker: cleanup.policy=compact, $got partitions, as many as $IN"
  else
    bad "kafka: changelog $CHANGELOG on the broker: ${got:-no} partitions, cleanup.policy '$(described "$CHANGELOG" cleanup.policy)'; want compact and as many partitions as $IN (${want:-?})"
  fi
  if "$KAFKA_SH" stop "$BROKER_DIR" 2>"$WORK/err" && [ ! -f "$BROKER_DIR/kafka.pid" ]; then
    ok "kafka: broker stopped ($(grep -o 'stopped in [^ ]* s' "$WORK/err"))"
  else
    bad "kafka: scripts/kafka.sh stop: $(cat "$WORK/err")"
  fi
}

KAFKA_SKIPPED=""
if [ -z "$KVER" ]; then
  bad "kafka: the Kafka version of tools/kafka/pom.xml: $(cat "$WORK/pom.err")"
else
  kafka_images
  if [ -n "$KAFKA_MISSING" ]; then
    if is_ci; then
      bad "kafka: $KAFKA_MISSING (CI needs every tool)"
    else
      note "kafka: SKIP: $KAFKA_MISSING"
      KAFKA_SKIPPED=$KAFKA_MISSING
    fi
  else
    # (the broker, still starting, is killed on the way out when the
    # lists of configs cannot be had)
    kafka_static && { kafka_image_setup; kafka_broker; }
  fi
fi

# ---- events: deploy/demo-events.jsonl -----------------------------------------
if "$PY" - "$EVENTS" >"$WORK/set-ids" 2>"$WORK/err" <<'PY'
import json, re, sys
errs = []
for n, line in enumerate(open(sys.argv[1]), 1):
    try:
        e = json.loads(line)
    except ValueError as x:
        errs.append(f"line {n}: not JSON: {x}"); continue
    if not isinstance(e, dict):
        errs.append(f"line {n}: not an object"); continue
    for k in ("type", "kind", "id", "source"):
        if not isinstance(e.get(k), str) or not e[k]:
            errs.append(f"line {n}: {k} missing or not a non-empty string")
    if e.get("type") not in ("SET", "UNSET"):
        errs.append(f"line {n}: type {e.get('type')!r} is not SET or UNSET")
    elif f'"type":"{e["type"]}"' not in line:
        errs.append(f'line {n}: not written "type":"{e["type"]}" (demo-producer.sh splits on it)')
    if e.get("kind") not in ("CONTAINER_IMAGE", "HOST"):
        errs.append(f"line {n}: kind {e.get('kind')!r} is not CONTAINER_IMAGE or HOST")
    if e.get("kind") == "CONTAINER_IMAGE" and not re.fullmatch(r"sha256:[0-9a-f]{64}", str(e.get("id"))):
        errs.append(f"line {n}: image id {e.get('id')!r} is not sha256:<64 lowercase hex>")
    for k in ("repo_tags", "repo_digests"):
        if k in e and not (isinstance(e[k], list) and all(isinstance(x, str) for x in e[k])):
            errs.append(f"line {n}: {k} is not a list of strings")
    if e.get("type") == "SET" and e.get("kind") == "CONTAINER_IMAGE":
        print(e["id"])
if errs:
    sys.exit("\n".join(errs))
PY
then
  ok "events: deploy/demo-events.jsonl: $(wc -l <"$EVENTS") well-formed events"
else
  bad "events: deploy/demo-events.jsonl: $(cat "$WORK/err")"
fi
# What `sbomd emit` itself accepts, against a local broker.
"$SBOMD" dev-kafka --topic "$IN:2" --bootstrap-file "$WORK/kafka.addr" \
  >"$WORK/kafka.log" 2>&1 &
KAFKA_PID=$!
for _ in $(seq 100); do
  [ -s "$WORK/kafka.addr" ] && break
  kill -0 "$KAFKA_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -s "$WORK/kafka.addr" ]; then
  nev=$(grep -c . "$EVENTS")
  if env -i PATH="$PATH" "$SBOMD" emit -b "$(cat "$WORK/kafka.addr")" -t "$IN" \
       --wait 20s <"$EVENTS" >"$WORK/emit.out" 2>&1 &&
     grep -q "$nev sent to $IN, 0 refused, 0 not delivered" "$WORK/emit.out"; then
    ok "events: sbomd emit sends all $nev to $IN (sbomd dev-kafka)"
  else
    bad "events: sbomd emit < deploy/demo-events.jsonl: $(cat "$WORK/emit.out")"
  fi
else
  bad "events: sbomd dev-kafka did not start: $(cat "$WORK/kafka.log")"
fi
kill "$KAFKA_PID" 2>/dev/null; wait "$KAFKA_PID" 2>/dev/null; KAFKA_PID=""
# The image deploy/make-images.sh builds is one the demo reports.
if command -v tar >/dev/null 2>&1; then
  if IMG=$(PYTHON="$PY" bash "$ROOT/deploy/make-images.sh" "$WORK/images" 2>"$WORK/err"); then
    if grep -qx "$IMG" "$WORK/set-ids" &&
       "$SBOMD" scan "oci:$WORK/images@$IMG" >/dev/null 2>"$WORK/err"; then
      ok "events: deploy/make-images.sh builds $IMG, which the demo SETs and sbomd scans"
    else
      bad "events: deploy/make-images.sh built '$IMG': not SET by deploy/demo-events.jsonl or not scannable: $(cat "$WORK/err")"
    fi
  else
    bad "events: deploy/make-images.sh failed: $(cat "$WORK/err")"
  fi
fi

echo "$passes passed, $failures failed"
if [ "$failures" -eq 0 ] && [ -n "$KAFKA_SKIPPED" ]; then
  echo "SKIP: kafka: $KAFKA_SKIPPED (the other checks passed)"
  exit 77
fi
[ "$failures" -eq 0 ]
