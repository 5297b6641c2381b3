#pragma once
// Command-line options of `procpool run`, parsed with CLI11 into one plain struct.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace procpool::cli {

/// A bad command line or bad input: reported on stderr, exit status 255.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class OutputMode { Group, LineBuffer, Ungroup };

struct TimeoutSpec {
  double seconds = 0;  ///< fixed timeout; 0 = none
  double percent = 0;  ///< dynamic timeout, percent of the median successful runtime; 0 = none
};

struct HaltPolicy {
  enum class When { Never, Soon, Now } when = When::Never;
  enum class Cond { Fail, Success, Done } cond = Cond::Fail;  ///< what is counted: fail=, success=, done=
  bool percent = false;     ///< threshold is a percentage of all the jobs (GNU parallel's rule)
  double threshold = 0;
};

/// One argument source of a template run, in command-line order.
struct ArgSource {
  enum class Kind { InlineArgs, File } kind = Kind::InlineArgs;
  std::vector<std::string> args;  ///< for InlineArgs (`::: a b c`)
  std::string path;               ///< for File (`:::: FILE`, `-a FILE`); "-" is stdin
  bool linked = false;            ///< `:::+` / `::::+`: advances with the source before it
};

enum class ProgressStyle { None, Bar, Eta, Progress };

/// One step of --termseq: send `signal` to the job's group, then wait `seconds`.
struct TermStep {
  int signal = 0;
  double seconds = 0;
};

/// --trim: white space taken off each value (GNU parallel's n, l, r, lr).
enum class Trim { None, Left, Right, Both };

/// --results: GNU parallel's layout (DIR/1/VALUE/..., templated names, .csv/.tsv/.json tables; the
/// output is not printed) or procpool's older DIR/SEQ/{cmd,stdout,stderr}, output printed as well.
enum class ResultsLayout { Gnu, Seq };

/// --pipe: stdin (or one file) cut into chunks; --pipepart: a seekable file cut into byte ranges.
enum class PipeMode { None, Pipe, Part };
enum class PipeFile { None, Cat, Fifo };

struct Options {
  unsigned jobs = 1;
  std::optional<std::string> joblog;
  bool resume = false;
  bool resume_failed = false;
  bool retry_failed = false;  ///< --retry-failed: run the joblog's failed jobs again, commands as logged
  unsigned tries = 1;  ///< --retries N: tries in all; 0 = unlimited
  TimeoutSpec timeout;
  double kill_grace_seconds = 1.0;
  std::vector<TermStep> term_seq;  ///< --termseq; empty: TERM, then KILL after kill_grace_seconds
  HaltPolicy halt;
  bool keep_order = false;
  OutputMode output = OutputMode::Group;
  bool tag = false;
  std::optional<std::string> tagstring;
  bool color = false;  ///< --color, --ctag, --ctagstring: each job's lines in its own colours (GNU parallel's)
  bool color_failed = false;  ///< --color-failed: a failed job's grouped lines white on red
  std::optional<std::string> results_dir;
  ResultsLayout results_layout = ResultsLayout::Gnu;  ///< --results-layout; Seq with --broker
  bool dry_run = false;
  double delay_seconds = 0;
  std::uint64_t memfree_bytes = 0;
  double load_limit = 0;  ///< 0 = no limit
  std::optional<std::string> limit;  ///< --limit CMD: GNU parallel's dynamic job limit (limit.hpp)
  bool verbose = false;         ///< -v: each command on stdout, in its job's output
  bool verbose_stderr = false;  ///< -t, --verbose: each command on stderr as it starts (GNU parallel's)
  ProgressStyle progress = ProgressStyle::None;
  bool force_progress = false;  ///< draw progress even when stderr is not a terminal
  std::optional<std::string> colsep;
  bool csv = false;  ///< --csv: arguments are CSV records split at colsep's one character (input.cpp)
  std::optional<Trim> trim;  ///< --trim; default: Both with --colsep, else None (GNU parallel's)
  bool link = false;                    ///< --link/--xapply: every source advances together, the shorter ones wrap around
  std::string delimiter = "\n";  ///< -0, -d: what ends an argument (or a batch-file command)
  bool skip_empty = false;       ///< -r: arguments that are only white space are skipped
  std::string replace_token = "{}";  ///< -I STR: the string for all the arguments in the command
  std::optional<std::size_t> max_args;  ///< -n/-N: records per job (0: -N0, none of them in the command)
  bool fill = false;                    ///< -m/-X: as many records per job as fit in max_chars
  bool context_replace = false;         ///< -X/-N: a word holding {} is repeated per argument
  std::size_t max_chars = 126976;       ///< -s: the longest command -m/-X build
  bool exit_too_long = false;           ///< -x: with -m/-X, one argument too long for -s stops the run
  bool continued_lines = false;         ///< -L/-l: a line ending in white space goes on with the next
  std::optional<int> nice;              ///< --nice N: the jobs run at this niceness
  std::optional<std::string> tmpdir;    ///< --tmpdir DIR: TMPDIR for procpool's spill files and the jobs
  std::size_t header_lines = 0;         ///< --header: lines at the start of each source naming its columns
  bool shuffle = false;                 ///< --shuf: every job is generated first, then run in random order
  bool plus = false;                    ///< --plus: GNU parallel's extra replacement strings
  PipeMode pipe = PipeMode::None;       ///< --pipe, --pipepart: chunks of the input to the jobs' stdin
  std::optional<double> block;          ///< --block: bytes per chunk (negative, --pipepart: parts per slot)
  std::optional<std::string> recstart, recend;  ///< --recstart, --recend as typed (\n... unescaped later)
  std::size_t record_lines = 0;         ///< --pipe -L N: a record is N lines (0: --recend/--recstart's)
  PipeFile pipe_file = PipeFile::None;  ///< --cat, --fifo: {} is a file (a FIFO) holding the job's chunk
  bool round_robin = false;             ///< --round-robin: -j jobs, each given many chunks in turn
  bool remove_record_separators = false;  ///< --rrs: --recend/--recstart taken out of each chunk
  bool tee = false;                     ///< --tee: every job (one per argument) gets all of stdin
  double block_timeout = 0;             ///< --block-timeout: seconds before a partial block is passed on
  std::size_t bin_column = 0;           ///< --bin COL: a line goes to job (its column COL's value mod -j)
  bool tty = false;  ///< jobs read the terminal (/dev/tty) instead of /dev/null
  bool shell_always = false;  ///< never exec directly; always /bin/sh -c

  /// --broker: the run goes to a Redis queue served by `procpool worker`s (broker/submit.cpp).
  struct Broker {
    std::string url;                  ///< as typed; parsed by broker::parse_broker_url
    std::string queue = "default";
    std::uint64_t max_queued = 10000;  ///< enqueued, not finished
    unsigned max_crashes = 5;          ///< lost workers one job may cost
    std::uint64_t max_output = 16ULL << 20;  ///< per stream and job, kept by the worker
    std::vector<std::string> env;      ///< --env NAME: variables passed to the jobs
    double no_worker_timeout = 0;      ///< 0: warn only
    double run_ttl = 86400;
    bool insecure = false;
  };
  std::optional<Broker> broker;

  bool template_mode = false;
  std::vector<std::string> template_words;  ///< joined with spaces into the command template
  std::vector<ArgSource> sources;
  std::string batch_file = "-";  ///< batch mode: file of commands, "-" is stdin
};

/// `procpool worker`: runs jobs from a broker queue.
struct WorkerOptions {
  std::string url;
  std::string queue = "default";
  unsigned jobs = 1;
  double lease_seconds = 10;
  std::string host_name;  ///< joblog Host; default gethostname()
  std::optional<std::string> workdir;
  double exit_when_idle = 0;  ///< 0: never
  std::uint64_t max_jobs = 0; ///< 0: no limit
  std::uint64_t max_output = 0;  ///< 0: the run's
  std::uint64_t memfree_bytes = 0;
  double load_limit = 0;
  double delay_seconds = 0;
  bool shell_always = false;
  bool insecure = false;
  bool noop = false;  ///< benchmarks only: report exit 0 without spawning
};

/// `procpool status`.
struct StatusOptions {
  std::string url;
  std::string queue = "default";
  bool json = false;
  double watch = 0;  ///< 0: once
  bool insecure = false;
};

std::optional<WorkerOptions> parse_worker_options(const std::vector<std::string>& args);
std::optional<StatusOptions> parse_status_options(const std::vector<std::string>& args);

/// The full `procpool run` help text (also shown by `procpool --help`).
std::string run_help_text();

/// GNU parallel's unquote_printf for -d: \t \n \r, \NNN and \N (octal).
std::string unquote_printf(const std::string& text);

/// Splits `text` into words as Perl's Text::ParseWords::shellwords does (GNU parallel's $PARALLEL).
std::vector<std::string> shell_words(const std::string& text);
/// `args` after the words of $PARALLEL, GNU parallel's default options.
std::vector<std::string> with_parallel_env(const std::vector<std::string>& args);

/// Parses the arguments after `run`. Throws UsageError for anything invalid.
/// Returns std::nullopt when help was requested and printed.
std::optional<Options> parse_run_options(const std::vector<std::string>& args);

// Value parsers, exposed for tests and reuse.
double parse_duration_seconds(const std::string& text, const char* what);  ///< 30, 1.5s, 2m, 1h, 1d
TimeoutSpec parse_timeout(const std::string& text);                         ///< a duration or N%
unsigned parse_jobs(const std::string& text, unsigned cpu_count);           ///< N, N%, +N, -N, 0
HaltPolicy parse_halt(const std::string& text);

struct HaltCounts {
  std::uint64_t done = 0, failed = 0, succeeded = 0;  ///< including the job just ended
  std::optional<std::uint64_t> total;  ///< all the jobs of the run, when known in advance (for N%)
};
/// --halt after a job ended: the exit status to halt with, as GNU parallel computes it (success:
/// 0; a count of 1: the job's status, 128+signal, 255 for a timeout; N%: the percentage of the jobs
/// that failed, rounded up; else the number of failed jobs, at most 101), or nullopt when the
/// condition does not hold. Without a known total, N% is judged over the jobs done (at least 3).
std::optional<int> halt_status(const HaltPolicy& halt, const HaltCounts& counts, int exitval, int signal, bool failed);
/// The exit status of a run that ends without its --halt condition met: GNU parallel's
/// percentage of failed jobs for N%, else the failed count (at most 101).
int halt_final_status(const HaltPolicy& halt, const HaltCounts& counts);
std::uint64_t parse_size(const std::string& text);  ///< 100, 10k, 2M, 1Gi, 1T: GNU parallel's (k = 1000, K = 1024)
/// GNU parallel's --termseq: SIGNAL,MS,SIGNAL,MS,... (names with or without SIG, or numbers; a last
/// signal may go without its wait).
std::vector<TermStep> parse_termseq(const std::string& text);
std::uint64_t parse_size(const std::string& text, const char* what);  ///< `what` names the option in errors

} // namespace procpool::cli
