// procpool run --broker against a real redis-server and real workers: the same output, joblog and exit
// status as a local run; the refusals; the server checks; output caps; no worker.
#include "broker_helpers.hpp"

using namespace brokertest;

namespace {

std::vector<std::string> worker_args(const std::string& url, const std::string& jobs = "2") {
  return {"worker", "--broker", url, "-j", jobs, "--lease", "1s", "--exit-when-idle", "5s"};
}

/// Joblog rows without Host, Starttime and JobRuntime (fields 1-3), sorted by Seq.
std::vector<std::vector<std::string>> comparable_rows(const std::string& path) {
  auto rows = joblog_rows(path);
  for (auto& row : rows) row.erase(row.begin() + 1, row.begin() + 4);
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return std::stol(a[0]) < std::stol(b[0]); });
  return rows;
}

} // namespace

TEST_CASE("Broker.Run.SameAsLocal") {
  RedisServer redis;
  TempDir dir;
  const std::string long_word(1024 * 1024, 'x');
  write_file(dir / "b.txt",
             "echo crlf\r\necho " + long_word + "\necho \xff\xfe-bytes\nexit 3\necho to-err >&2; exit 1\n"
             "sh -c 'kill -TERM $$'\nprintf 'no newline'\necho $PARALLEL_SEQ\ntrue\n");
  const auto local = sh(dir, "$P run -j2 -k --joblog local.log b.txt > local.out 2> local.err; echo rc=$?");
  Background w1(dir, worker_args(redis.url()), "w1");
  Background w2(dir, worker_args(redis.url()), "w2");
  const auto remote =
      sh(dir, "$P run --broker " + redis.url() + " -k --joblog remote.log b.txt > remote.out 2> remote.err; echo rc=$?");
  CHECK(local.out == "rc=3\n");
  CHECK(remote.out == local.out);
  CHECK(read_file(dir / "remote.out") == read_file(dir / "local.out"));
  CHECK(read_file(dir / "remote.err") == read_file(dir / "local.err"));
  CHECK(comparable_rows(dir / "remote.log") == comparable_rows(dir / "local.log"));
  for (const auto& row : joblog_rows(dir / "remote.log")) CHECK(row.at(1) != ":");  // the worker's host
}

TEST_CASE("Broker.Run.TagVerboseResultsStatus") {
  RedisServer redis;
  TempDir dir;
  Background w(dir, worker_args(redis.url()), "w");
  const auto r = sh(dir, "$P run --broker " + redis.url() +
                             " -k --tag -v --results res echo {} ::: a b c; echo rc=$?");
  CHECK(r.out == "a\techo a\na\ta\nb\techo b\nb\tb\nc\techo c\nc\tc\nrc=0\n");
  CHECK(read_file(dir / "res/2/stdout") == "b\n");
  const auto s = sh(dir, "$P status --broker " + redis.url() + " --json");
  CHECK(s.exit_code == 0);
  CHECK(s.out.find("\"done\":3") != std::string::npos);
  CHECK(s.out.find("\"workers\":[{") != std::string::npos);
}

TEST_CASE("Broker.Run.TagstringWithPlus") {
  RedisServer redis;
  TempDir dir;
  Background w(dir, worker_args(redis.url()), "w");
  // --plus replacement strings in --tagstring, as locally and as GNU parallel ({+.}: the extension).
  const auto r = sh(dir, "$P run --broker " + redis.url() + " --plus --tagstring '{+.}' -k echo ::: a/b.c d/e.txt");
  CHECK(r.out == "c\ta/b.c\ntxt\td/e.txt\n");
  // A tag without a replacement string is the text alone, as GNU parallel's (the arguments are not appended).
  const auto plain = sh(dir, "$P run --broker " + redis.url() + " --tagstring X -k echo ::: a b");
  CHECK(plain.out == "X\ta\nX\tb\n");
}

TEST_CASE("Broker.Run.Environment") {
  RedisServer redis;
  TempDir dir;
  Background w(dir, worker_args(redis.url(), "1"), "w");
  // Only --env variables travel; the job sees the worker's environment plus procpool's variables.
  const auto r = sh(dir, "FOO=bar BAR=baz $P run --broker " + redis.url() +
                             " --env FOO -k ::: 'echo ${FOO-unset} ${BAR-unset} $PARALLEL_SEQ $PARALLEL_JOBSLOT "
                             "$PROCPOOL_ATTEMPT ${PROCPOOL_RUN:+run} ${PROCPOOL_HOST:+host} ${PARALLEL_PID:+pid}'");
  CHECK(r.out == "bar unset 1 1 1 run host pid\n");
}

TEST_CASE("Broker.Run.Refusals") {
  TempDir dir;
  const std::string u = " --broker redis://127.0.0.1:1/0 ";
  const std::pair<std::string, std::string> cases[] = {
      {"-j 4", "procpool: -j is set per worker: procpool worker -j N\n"},
      {"--line-buffer", "procpool: --line-buffer cannot be used with --broker: output arrives with the result\n"},
      {"--tty", "procpool: --tty cannot be used with --broker: jobs run on the workers' hosts\n"},
      {"--memfree 1G", "procpool: --memfree is a host throttle: set it on procpool worker\n"},
      {"--timeout 200%", "procpool: --timeout 200% needs local runtimes; use a fixed --timeout with --broker\n"},
      {"echo {%} :::", "procpool: {%} (the job slot) is only known on the worker; use $PARALLEL_JOBSLOT\n"},
  };
  for (const auto& [args, message] : cases) {
    const auto r = sh(dir, "$P run" + u + args + " x");
    CHECK_MESSAGE(r.exit_code == 255, args);
    CHECK(r.err == message);
  }
  // No broker needed for --dry-run.
  CHECK(sh(dir, "$P run" + u + "--dry-run echo ::: a").out == "echo a\n");
  // Refused before any connection: no password on a non-loopback host.
  const auto insecure = sh(dir, "unset PROCPOOL_REDIS_PASSWORD; $P worker --broker redis://10.0.0.5:6379/0");
  CHECK(insecure.exit_code == 255);
  CHECK(insecure.err ==
        "procpool: refusing redis://10.0.0.5:6379/0 without a password: anyone who reaches it can run commands as this "
        "user; set PROCPOOL_REDIS_PASSWORD or pass --insecure-broker\n");
  // Unreachable: the URL without its password.
  const int port = free_port();
  const auto down = sh(dir, "$P run --broker redis://u:secret@127.0.0.1:" + std::to_string(port) + "/0 true ::: 1");
  CHECK(down.exit_code == 255);
  CHECK(down.err.find("procpool: cannot connect to redis://u:***@127.0.0.1:" + std::to_string(port) +
                      "/0: Connection refused\n") != std::string::npos);
  CHECK(down.err.find("secret") == std::string::npos);
}

TEST_CASE("Broker.Run.EvictionPolicyRefused") {
  RedisServer redis({"--maxmemory-policy", "allkeys-lru"});
  TempDir dir;
  const std::string expected =
      "procpool: " + redis.url() + " has maxmemory-policy allkeys-lru; procpool needs noeviction\n";
  const auto run = sh(dir, "$P run --broker " + redis.url() + " true ::: 1");
  CHECK(run.exit_code == 255);
  CHECK(run.err == expected);
  const auto worker = sh(dir, "$P worker --broker " + redis.url());
  CHECK(worker.exit_code == 255);
  CHECK(worker.err == expected);
}

TEST_CASE("Broker.Run.ProtocolMismatch") {
  RedisServer redis;
  TempDir dir;
  CHECK(redis.cmd("SET pp:{q1}:proto 2") == "+OK");
  const auto r = sh(dir, "$P run --broker " + redis.url() + " --queue q1 true ::: 1");
  CHECK(r.exit_code == 255);
  CHECK(r.err == "procpool: queue 'q1' speaks broker protocol 2; this procpool speaks 1\n");
}

TEST_CASE("Broker.Run.OutputCap") {
  RedisServer redis;
  TempDir dir;
  Background w(dir, worker_args(redis.url(), "1"), "w");
  const auto r = sh(dir, "$P run --broker " + redis.url() +
                             " --max-output 1M --joblog j.log ::: 'head -c 20971520 /dev/zero' > out; echo rc=$?; wc -c < out");
  CHECK(r.out == "rc=0\n1048576\n");
  CHECK(r.err.find("procpool: job 1 (host ") != std::string::npos);
  CHECK(r.err.find("): stdout truncated at 1 MiB (--max-output)\n") != std::string::npos);
  const auto rows = joblog_rows(dir / "j.log");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0][5] == "20971520");  // Receive counts every byte
}

TEST_CASE("Broker.Run.HaltRetriesTimeoutAsLocal") {
  RedisServer redis;
  TempDir dir;
  Background w(dir, worker_args(redis.url(), "2"), "w");
  const std::string u = " --broker " + redis.url() + " ";
  // --retries 3: a job failing twice then succeeding is logged once, succeeded.
  write_file(dir / "flaky.sh", "n=$(cat count.$1 2>/dev/null || echo 0); n=$((n+1)); echo $n > count.$1; [ $n -ge 3 ]\n");
  for (const std::string& mode : {std::string(), u}) {
    const std::string tag = mode.empty() ? std::string("local") : std::string("remote");
    const auto r = sh(dir, "rm -f count.*; $P run " + mode + " --retries 3 --joblog " + tag + ".retries sh flaky.sh ::: a b; echo rc=$?");
    CHECK_MESSAGE(r.out == "rc=0\n", (tag + ": " + r.err));
    const auto t = sh(dir, "$P run " + mode + " --timeout 1s --joblog " + tag + ".timeout ::: 'sleep 30' true; echo rc=$?");
    CHECK_MESSAGE(t.out == "rc=1\n", tag);
    CHECK(t.err.find("procpool: job 1 timed out and was killed: sleep 30\n") != std::string::npos);
    const auto h = sh(dir, "$P run " + mode + " --halt now,fail=1 --joblog " + tag + ".halt ::: 'exit 7' 'sleep 0.5; exit 7'; echo rc=$?");
    CHECK_MESSAGE(h.out == "rc=7\n", tag);
  }
  for (const char* what : {"retries", "timeout", "halt"})
    CHECK_MESSAGE(comparable_rows(dir / (std::string("remote.") + what)) == comparable_rows(dir / (std::string("local.") + what)),
                  what);
}

TEST_CASE("Broker.Run.NoWorker") {
  RedisServer redis;
  TempDir dir;
  const auto start = std::chrono::steady_clock::now();
  const auto r = sh(dir, "$P run --broker " + redis.url() + " --no-worker-timeout 2s true ::: 1");
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.exit_code == 255);
  CHECK(took <= 3s);
  CHECK(r.err.find("procpool: no worker serves queue 'default'; start one: procpool worker --broker " + redis.url() +
                   "\n") != std::string::npos);
}
