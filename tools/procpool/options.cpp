#include "options.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <utility>

#include "gnu_options.hpp"
#include "input.hpp"
#include "pipe_input.hpp"
#include "os/cpu.hpp"

namespace procpool::cli {
namespace {

// Strict number parsing: the whole text must be a finite number. NaN and infinities are refused, and so
// is a value beyond a double's range, which strtod would silently turn into infinity.
double parse_number(const std::string& text, const char* what) {
  if (text.empty()) throw UsageError(fmt::format("{}: empty value", what));
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || std::isnan(value))
    throw UsageError(fmt::format("{}: '{}' is not a number", what, text));
  if (std::isinf(value)) throw UsageError(fmt::format("{}: '{}' is out of range", what, text));
  return value;  // ERANGE with a finite value is an underflow: the tiny value is fine
}

long parse_integer(const std::string& text, const char* what) {
  if (text.empty()) throw UsageError(fmt::format("{}: empty value", what));
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (end != text.c_str() + text.size()) throw UsageError(fmt::format("{}: '{}' is not an integer", what, text));
  if (errno == ERANGE) throw UsageError(fmt::format("{}: '{}' is out of range", what, text));
  return value;
}

// Raw option strings as typed; converted and validated after CLI11 is done.
struct RawOptions {
  std::string jobs;
  std::string joblog;
  bool resume = false, resume_failed = false;
  std::string retries, timeout, grace, halt, tagstring, ctagstring, results, results_layout, delay, memfree, load, colsep;
  bool ctag = false, color = false, color_failed = false, csv = false;
  bool keep_order = false, group = false, line_buffer = false, ungroup = false, tag = false, dry_run = false;
  bool verbose = false, bar = false, eta = false, progress = false, force_progress = false, tty = false;
  bool shell_always = false, link = false, verbose_stderr = false, silent = false, no_keep_order = false;
  bool gnu_noop = false, null = false, no_run_if_empty = false;
  std::string delimiter, replace, max_args, max_replace_args, max_chars;
  bool multiple = false, xargs = false, shuf = false, plus = false, retry_failed = false;
  bool pipe = false, pipepart = false, cat = false, fifo = false, round_robin = false, rrs = false, tee = false;
  std::string block, recstart, recend, trim, max_lines, termseq, block_timeout, bin;
  std::string max_lines_l;  // -l [N]: GNU parallel's optional value
  bool exit_too_long = false;
  std::string nice, tmpdir, header, limit;  // --will-cite, --gnu: GNU parallel's notice and mode; nothing to do here
  std::vector<std::string> arg_files;
  std::vector<CLI::Option*> refused;  // refused_gnu_options(), in table order
  // --broker
  std::string broker, queue, max_queued, max_crashes, max_output, no_worker_timeout, run_ttl;
  std::vector<std::string> env;
  bool insecure_broker = false;
};

void build_app(CLI::App& app, RawOptions& raw) {
  app.prefix_command();  // the first word that is not an option starts the batch file or the template
  app.set_help_flag("-h,--help", "Print this help and exit");
  app.add_option("-j,--jobs,-P,--max-procs,--maxprocs", raw.jobs,
                 "Run up to N jobs at once. N, N% of the CPUs, +N or -N CPUs, 0 = as many as possible "
                 "(default: CPU count)")->type_name("N");
  app.add_option("--joblog,--jl", raw.joblog,
                 "Log every finished job to FILE in GNU parallel's TSV format, one line per job, "
                 "written as soon as the job ends")->type_name("FILE");
  app.add_flag("--resume", raw.resume, "Skip jobs whose sequence number is already in --joblog; append to it");
  app.add_flag("--resume-failed,--resumefailed", raw.resume_failed,
               "Like --resume, but also run again the jobs the joblog records as failed");
  app.add_option("--retries", raw.retries, "Try a failing job up to N times in all (0 = until it succeeds)")
      ->type_name("N");
  app.add_option("--timeout", raw.timeout,
                 "Kill a job's whole process group (TERM, then KILL after --grace) once it has run D: "
                 "30, 1.5s, 2m, 1h, 1d, or N% of the median runtime of the successful jobs so far")
      ->type_name("D");
  app.add_option("--grace", raw.grace, "Time between TERM and KILL when killing a job (default 1s)")
      ->type_name("D");
  app.add_option("--termseq,--term-seq", raw.termseq,
                 "How a job is killed: SIGNAL,MS,SIGNAL,MS... (GNU parallel's; e.g. TERM,200,TERM,100,KILL,25); "
                 "instead of TERM, then KILL after --grace")->type_name("SEQ");
  app.add_option("--halt,--halt-on-error,--haltonerror", raw.halt,
                 "Stop early: now|soon,fail=N|success=N|done=N, or N% of all the jobs (also never, 0, 1, 2, -1, -2, N%). "
                 "now kills the running jobs, soon lets them finish")->type_name("WHEN,COND");
  app.add_flag("-k,--keep-order,--keeporder", raw.keep_order, "Print the jobs' output in input order");
  app.add_flag("--no-keep-order,--nokeeporder,--nok,--no-k", raw.no_keep_order, "Cancel an earlier -k (as from $PARALLEL)");
  app.add_flag("-g,--group", raw.group,
               "Print a job's stdout then its stderr when it ends, never mixed with another job's (default)");
  app.add_flag("--line-buffer,--lb,--line-buffered,--linebuffer,--linebuffered", raw.line_buffer,
               "Print whole lines as soon as they arrive; lines of different jobs may alternate");
  app.add_flag("-u,--ungroup", raw.ungroup, "Jobs write straight to procpool's stdout and stderr: no capture, lines may mix");
  app.add_flag("--tag", raw.tag, "Prefix each output line with the job's arguments and a TAB");
  app.add_option("--tagstring,--tag-string", raw.tagstring,
                 "Prefix each output line with STR (replacement strings allowed) and a TAB")->type_name("STR");
  app.add_flag("--ctag", raw.ctag, "--tag --color");
  app.add_option("--ctagstring,--ctag-string", raw.ctagstring, "--tagstring STR --color")->type_name("STR");
  app.add_flag("--color,--colour", raw.color,
               "Print each job's output lines in its own colours (terminal escape sequences, GNU parallel's)");
  app.add_option("--results,--result,--res", raw.results,
                 "Save each job's output instead of printing it, as GNU parallel: NAME/1/ARG1/2/ARG2/{seq,stdout,"
                 "stderr}; a NAME with replacement strings is the stdout file (and NAME.err, NAME.seq) or, ending "
                 "in /, the directory; NAME.csv, .tsv, .json: one row per job (-.csv: on stdout)")->type_name("NAME");
  app.add_option("--results-layout", raw.results_layout,
                 "gnu (default) or seq: procpool's DIR/SEQ/{cmd,stdout,stderr}, the output printed as well "
                 "(the only layout with --broker)")->type_name("gnu|seq");
  app.add_flag("--dry-run,--dryrun,--dr", raw.dry_run, "Print the commands that would run, run nothing");
  app.add_option("--delay", raw.delay, "Wait at least D between two job starts")->type_name("D");
  app.add_option("--memfree", raw.memfree,
                 "Start a job only while MemAvailable is at least SIZE (GNU parallel's k = 1000, K = Ki = 1024, m, M, g, G...)")
      ->type_name("SIZE");
  app.add_option("--limit", raw.limit,
                 "Before each job start run CMD (/bin/sh -c): exit 0 starts it, 1 waits, 2 kills the youngest job; "
                 "also every 0.1 s while jobs run. 'mem SIZE', 'load N', 'io N' are GNU parallel's "
                 "predefined limits")->type_name("CMD");
  app.add_option("--load", raw.load,
                 "Start a job only while fewer than N (or N% of the CPUs) processes are runnable")
      ->type_name("N");
  app.add_flag("-v", raw.verbose, "Print each job's command on stdout before its output");
  app.add_flag("-t,--verbose", raw.verbose_stderr, "Print each job's command on stderr as it starts");
  app.add_flag("--silent", raw.silent, "Cancel -v and -t (as from $PARALLEL)");
  app.add_flag("--bar", raw.bar, "Show a progress bar on stderr when it is a terminal");
  app.add_flag("--eta", raw.eta, "Show done/left counts and the estimated time left on stderr (terminal)");
  app.add_flag("--progress", raw.progress, "Show done/failed/running counts on stderr (terminal)");
  app.add_flag("--force-progress", raw.force_progress,
               "Draw --bar/--eta/--progress even when stderr is not a terminal");
  app.add_flag("--color-failed,--colour-failed,--colorfailed,--colourfailed,--color-fail,--colour-fail,"
               "--colorfail,--colourfail,--cf",
               raw.color_failed,
               "Print the output of a job that exited non-zero white on red (GNU parallel's; not with -u or "
               "--line-buffer)");
  app.add_option("-C,--colsep,--col-sep", raw.colsep,
                 "Split each argument line into columns {1} {2} ... at this separator (a regex)")
      ->type_name("REGEX");
  app.add_flag("--csv", raw.csv,
               "Read arguments as CSV: columns {1} {2} ... at --colsep's character (default ,), quoted fields "
               "may hold it, quotes and newlines");
  app.add_option("-a,--arg-file,--argfile", raw.arg_files, "Read arguments from FILE (\"-\" is stdin); repeatable")
      ->type_name("FILE")
      ->allow_extra_args(false);  // one file per -a: the template follows
  app.add_flag("--link,--xapply", raw.link,
               "Take one value from every source per job instead of every combination; shorter sources "
               "wrap around (also :::+ and ::::+ for one source)");
  app.add_flag("--will-cite,--willcite,--nn,--nonotice,--no-notice,--gnu", raw.gnu_noop,
               "Accepted for GNU parallel's scripts: procpool prints no notice");
  for (const auto& refused : refused_gnu_options()) {
    const std::string names(refused.names);
    raw.refused.push_back(refused.takes_value ? app.add_option(names)->group("") : app.add_flag(names)->group(""));
  }
  app.add_flag("-0,--null", raw.null, "Arguments are ended by NUL bytes, not newlines (find -print0)");
  app.add_option("-d,--delimiter", raw.delimiter,
                 "Arguments are ended by DELIM, not newlines; \\t \\n \\r \\0 and octal \\NNN work")
      ->type_name("DELIM");
  app.add_option("-n,--max-args,--maxargs", raw.max_args, "Give each job up to N arguments; {} is all of them")
      ->type_name("N");
  app.add_option("-N,--max-replace-args,--maxreplaceargs", raw.max_replace_args,
                 "Give each job up to N arguments, {1}..{N} each; a word holding {} is repeated per argument "
                 "(0: run the command once per argument, without it)")
      ->type_name("N");
  app.add_option("-L", raw.max_lines,
                 "Give each job up to N input lines, as -N N (with --pipe: a record is N lines)")->type_name("N");
  app.add_option("-l,--max-lines,--maxlines", raw.max_lines_l,
                 "Give each job up to N input lines (default 1), {} all of them (with --pipe: a record is N lines)")
      ->expected(0, 1)
      ->type_name("[N]");
  app.add_flag("-x,--exit", raw.exit_too_long,
               "-m/-X: stop (exit 255) when one argument makes the command longer than -s, as GNU parallel");
  app.add_flag("-m", raw.multiple, "Give each job as many arguments as fit in -s (spread evenly over the jobs)");
  app.add_flag("-X,--xargs", raw.xargs, "Like -m, and a word holding {} is repeated per argument");
  app.add_option("-s,--max-chars,--maxchars", raw.max_chars, "-m/-X: the longest command to build (126976)")
      ->type_name("N");
  app.add_option("--nice", raw.nice, "Run the jobs at niceness N (setpriority), procpool itself as it is")
      ->type_name("N");
  app.add_option("--tmpdir,--tempdir", raw.tmpdir,
                 "Where large output spills, and the jobs' TMPDIR (default: $TMPDIR, else /tmp)")->type_name("DIR");
  app.add_option("--header", raw.header,
                 "Each source's first line names its columns: {name} in the command (VALUE as GNU's: any)")
      ->type_name("VALUE");
  app.add_flag("--retry-failed,--retryfailed", raw.retry_failed,
               "Run the failed jobs of --joblog FILE again, commands as logged (the command line's are ignored)");
  app.add_flag("--plus", raw.plus, "Also {..} {...} {+/} {+.} {+..} {+...} {/..} {/...} {slot} {##} {0#} {0%} and the bash-like "
                "{:-x} {:n:m} {#re} {%re} {/re/s} {^re}..., as GNU parallel");
  app.add_flag("--pipe,--spreadstdin", raw.pipe,
               "Cut stdin into chunks of --block bytes (whole records) and give each job one on its stdin");
  app.add_flag("--pipepart,--pipe-part", raw.pipepart,
               "Like --pipe for a seekable FILE given with -a or ::::, read by the jobs, not by procpool");
  app.add_option("--block,--block-size,--blocksize", raw.block,
                 "--pipe, --pipepart: bytes per chunk (1M; k=1000, K=Ki=1024, M, G...); --pipepart -N: N parts per job slot")
      ->type_name("SIZE");
  app.add_flag("--cat", raw.cat, "--pipe, --pipepart: {} is a file holding the job's chunk (implies --pipe)");
  app.add_flag("--fifo", raw.fifo, "--pipe, --pipepart: {} is a FIFO the job reads its chunk from (implies --pipe)");
  app.add_flag("--remove-rec-sep,--removerecsep,--rrs", raw.rrs,
               "--pipe: take --recend and --recstart out of each chunk (not its header)");
  app.add_option("--block-timeout,--blocktimeout,--bt", raw.block_timeout,
                 "--pipe: pass on what was read of a block after DURATION (at its last record end)")
      ->type_name("DURATION");
  app.add_option("--bin", raw.bin, "--pipe: -j jobs; a line goes to job (column COL's number mod -j), as GNU parallel")
      ->type_name("COL");
  app.add_flag("--tee", raw.tee, "--pipe: one job per argument (:::), each given all of stdin; -j defaults to 0");
  app.add_flag("--round-robin,--roundrobin,--round", raw.round_robin,
               "--pipe: start -j jobs and give them the chunks in turn (with -k, strictly in turn)");
  app.add_option("--recstart", raw.recstart, "--pipe, --pipepart: a record starts with STR (\\n \\t \\0 work)")
      ->type_name("STR");
  app.add_option("--recend", raw.recend, "--pipe, --pipepart: a record ends with STR (default \\n)")->type_name("STR");
  app.add_option("--trim", raw.trim,
                 "Take white space off each value: n (none), l (left), r (right), lr or rl (both); "
                 "default lr with --colsep, else n")->type_name("n|l|r|lr");
  app.add_flag("--shuf", raw.shuf, "Generate every job first, then run them in random order");
  app.add_option("-I", raw.replace, "Use STR instead of {} in the command")->type_name("STR");
  app.add_flag("-r,--no-run-if-empty,--norunifempty", raw.no_run_if_empty,
               "Skip arguments that are empty or only white space");
  app.add_flag("--tty", raw.tty, "Give jobs the terminal as stdin (implies -j1 --ungroup); default /dev/null");
  app.add_flag("--shell", raw.shell_always, "Always run commands through /bin/sh -c, never exec them directly");
  app.add_option("--broker", raw.broker,
                 "Run the jobs on the procpool workers serving a Redis queue: redis://[user@]host[:port][/db] "
                 "(password in PROCPOOL_REDIS_PASSWORD); see docs/broker.md")->type_name("URL");
  app.add_option("--queue", raw.queue, "--broker: the queue (default: default)")->type_name("NAME");
  app.add_option("--max-queued", raw.max_queued, "--broker: jobs enqueued and not finished at most (10000)")
      ->type_name("N");
  app.add_option("--max-crashes", raw.max_crashes,
                 "--broker: lost workers one job may cost before it is logged lost (5)")->type_name("N");
  app.add_option("--max-output", raw.max_output, "--broker: output kept per job and stream (16M)")
      ->type_name("SIZE");
  app.add_option("--env", raw.env,
                 "--broker: pass this variable to the jobs (repeatable); locally jobs inherit every variable")
      ->type_name("NAME")->allow_extra_args(false);
  app.add_option("--no-worker-timeout", raw.no_worker_timeout,
                 "--broker: exit 255 after D without a live worker (default: warn every 30s)")->type_name("D");
  app.add_option("--run-ttl", raw.run_ttl, "--broker: how long a run outlives its dead submitter (24h)")
      ->type_name("D");
  app.add_flag("--insecure-broker", raw.insecure_broker,
               "--broker: allow a non-loopback broker without a password");
}

/// --pipe and --pipepart: the words are the command, the sources (if any) the files to cut.
void parse_pipe_options(const CLI::App& app, const RawOptions& raw, Options& opt, std::vector<std::string>& words) {
  const bool part = raw.pipepart;
  const char* name = part ? "--pipepart" : "--pipe";
  opt.pipe = part ? PipeMode::Part : PipeMode::Pipe;
  for (const auto& source : opt.sources) {
    if (source.kind != ArgSource::Kind::File && !raw.tee)
      throw UsageError(fmt::format("{}: ::: arguments cannot be used: the jobs' data is the input (-a FILE, :::: FILE{})",
                                   name, part ? "" : " or stdin"));
    if (part && source.path == "-")
      throw UsageError("--pipepart only works on seekable files, not streams/pipes: use --pipe for stdin");
  }
  if (part && opt.sources.empty()) throw UsageError("--pipepart needs the file to cut: -a FILE or :::: FILE");
  if (!part && opt.sources.size() > 1 && !raw.tee) throw UsageError("--pipe reads one input: stdin, or one -a FILE");
  if (raw.tee) {  // the sources are the jobs' arguments; the data is stdin
    if (part) throw UsageError("--tee: use --pipe --tee < FILE (procpool's --pipepart does not take --tee)");
    if (opt.sources.empty()) throw UsageError("--tee needs arguments (::: A B): one job per argument, each given all of stdin");
    if (raw.cat || raw.fifo || raw.round_robin) throw UsageError("--tee cannot be combined with --cat, --fifo or --round-robin");
    for (const auto& source : opt.sources)
      if (source.kind == ArgSource::Kind::File && source.path == "-")
        throw UsageError("--tee: stdin is the jobs' data; give the arguments with ::: or a file");
    opt.tee = true;
    if (raw.jobs.empty()) opt.jobs = parse_jobs("0", opt.jobs);  // GNU parallel's default with --tee
  }
  if (words.empty()) throw UsageError(fmt::format("{} needs a command to run", name));
  opt.template_mode = true;
  opt.template_words = std::move(words);
  if (app.count("--block") > 0) {
    if (raw.block.empty()) throw UsageError("--block: empty value");
    opt.block = parse_block_size(raw.block);
    if (*opt.block < 0 && !part) throw UsageError(fmt::format("--block '{}': a negative size needs --pipepart", raw.block));
  }
  if (app.count("--recstart") > 0) opt.recstart = raw.recstart;
  if (app.count("--recend") > 0) opt.recend = raw.recend;
  opt.pipe_file = raw.cat ? PipeFile::Cat : raw.fifo ? PipeFile::Fifo : PipeFile::None;
  opt.round_robin = raw.round_robin;
  opt.remove_record_separators = raw.rrs;
  if (app.count("--bin") > 0) {
    const auto& c = raw.bin;
    if (c.empty() || c.size() > 6 || c.find_first_not_of("0123456789") != std::string::npos || std::stoul(c) == 0)
      throw UsageError(fmt::format("--bin '{}': procpool takes a column number (GNU parallel's column names and "
                                   "Perl expressions are not supported)", c));
    if (part || raw.round_robin || raw.tee) throw UsageError("--bin works with --pipe alone (not --pipepart, --round-robin, --tee)");
    opt.bin_column = std::stoul(c);
    if (opt.colsep && *opt.colsep == "\\t") opt.colsep = "\t";  // the usual TSV idiom
  }
  if (app.count("--block-timeout") > 0) {
    if (raw.block_timeout.empty()) throw UsageError("--block-timeout: empty value");
    opt.block_timeout = std::trunc(parse_duration_seconds(raw.block_timeout, "--block-timeout"));  // GNU: int()
    if (opt.block_timeout < 1) throw UsageError("--block-timeout must be at least 1");
    if (part || raw.round_robin || raw.tee)
      throw UsageError("--block-timeout works with --pipe alone (not --pipepart, --round-robin, --tee)");
  }
  if (raw.rrs && part) throw UsageError("--rrs cannot be used with --pipepart: the jobs read the file itself");
  if (raw.round_robin && !raw.retries.empty()) throw UsageError("--retries cannot be combined with --round-robin");
  const std::pair<bool, const char*> excluded[] = {
      {raw.shuf, "--shuf"}, {raw.multiple || raw.xargs, "-m/-X"}, {!raw.colsep.empty() && raw.bin.empty(), "--colsep (except with --bin)"}, {raw.csv, "--csv"},
      {raw.link, "--link"}, {raw.no_run_if_empty, "-r"}, {raw.tty, "--tty"}, {raw.retry_failed, "--retry-failed"},
      {raw.null || app.count("--delimiter") > 0, "-0/-d (use --recend)"}, {!raw.broker.empty(), "--broker"}};
  for (const auto& [given, option] : excluded)
    if (given) throw UsageError(fmt::format("{} cannot be used with {}", option, name));
}

/// The options that cannot work remotely, refused with --broker (after parsing, so each names itself).
void refuse_with_broker(const RawOptions& raw, const Options& opt) {
  if (opt.timeout.percent > 0)
    throw UsageError(fmt::format("--timeout {} needs local runtimes; use a fixed --timeout with --broker", raw.timeout));
  auto has_slot = [](const std::string& text) { return text.find("{%}") != std::string::npos; };
  if (std::any_of(opt.template_words.begin(), opt.template_words.end(), has_slot) ||
      (opt.tagstring && has_slot(*opt.tagstring)))
    throw UsageError("{%} (the job slot) is only known on the worker; use $PARALLEL_JOBSLOT");
  if (raw.line_buffer) throw UsageError("--line-buffer cannot be used with --broker: output arrives with the result");
  if (raw.ungroup) throw UsageError("-u cannot be used with --broker: output arrives with the result");
  if (raw.tty) throw UsageError("--tty cannot be used with --broker: jobs run on the workers' hosts");
  if (!raw.memfree.empty()) throw UsageError("--memfree is a host throttle: set it on procpool worker");
  if (!raw.load.empty()) throw UsageError("--load is a host throttle: set it on procpool worker");
  if (!raw.delay.empty()) throw UsageError("--delay is a host throttle: set it on procpool worker");
  if (opt.limit) throw UsageError("--limit cannot be used with --broker: use procpool worker --memfree or --load");
  if (!raw.jobs.empty()) throw UsageError("-j is set per worker: procpool worker -j N");
  // Options of this runner's own job slots, which a broker run does not use.
  if (opt.retry_failed) throw UsageError("--retry-failed cannot be used with --broker: use --resume-failed");
  if (opt.nice) throw UsageError("--nice cannot be used with --broker: start procpool worker with nice -n N");
  if (!opt.term_seq.empty()) throw UsageError("--termseq cannot be used with --broker: use --grace D");
  if (opt.tmpdir) throw UsageError("--tmpdir cannot be used with --broker: set TMPDIR for procpool worker");
  if (opt.verbose_stderr) throw UsageError("-t/--verbose cannot be used with --broker: use -v");
  if (opt.color) throw UsageError("--color, --ctag and --ctagstring cannot be used with --broker: use --tag or --tagstring");
  if (opt.color_failed) throw UsageError("--color-failed cannot be used with --broker: use --joblog FILE (Exitval)");
}

} // namespace

double parse_duration_seconds(const std::string& text, const char* what) {
  if (text.empty()) throw UsageError(fmt::format("{}: empty duration", what));
  double unit = 1;
  std::string number = text;
  switch (text.back()) {
    case 's': unit = 1; number.pop_back(); break;
    case 'm': unit = 60; number.pop_back(); break;
    case 'h': unit = 3600; number.pop_back(); break;
    case 'd': unit = 86400; number.pop_back(); break;
    default: break;
  }
  const double number_value = parse_number(number, what);
  if (number_value < 0) throw UsageError(fmt::format("{}: '{}' is negative", what, text));
  // Saturates: 1e308d is the largest duration, not infinity; the runner turns anything beyond
  // steady_clock's range into "never" (detail::deadline_after).
  return std::min(number_value * unit, std::numeric_limits<double>::max());
}

TimeoutSpec parse_timeout(const std::string& text) {
  TimeoutSpec spec;
  if (!text.empty() && text.back() == '%') {
    spec.percent = parse_number(text.substr(0, text.size() - 1), "--timeout");
    if (spec.percent <= 0) throw UsageError(fmt::format("--timeout: '{}' must be above 0%", text));
    return spec;
  }
  spec.seconds = parse_duration_seconds(text, "--timeout");  // 0: no timeout, as in GNU parallel
  return spec;
}

unsigned parse_jobs(const std::string& text, unsigned cpus) {
  if (text.empty()) throw UsageError("--jobs: empty value");
  constexpr long kMaxJobs = 100000;
  long n = 0;
  if (text.back() == '%') {
    const double percent = parse_number(text.substr(0, text.size() - 1), "--jobs");
    if (percent <= 0) throw UsageError(fmt::format("--jobs: '{}' must be above 0%", text));
    const double wanted = std::floor(cpus * percent / 100.0);
    if (wanted > kMaxJobs) throw UsageError(fmt::format("--jobs: '{}' is too many", text));
    n = static_cast<long>(wanted);
  } else if (text.front() == '+' || text.front() == '-') {
    const long delta = parse_integer(text, "--jobs");
    if (delta > kMaxJobs) throw UsageError(fmt::format("--jobs: '{}' is too many", text));
    n = delta < -kMaxJobs ? 0 : static_cast<long>(cpus) + delta;  // no overflow: both are bounded
  } else {
    n = parse_integer(text, "--jobs");
    if (n < 0) throw UsageError(fmt::format("--jobs: '{}' is negative", text));
    if (n == 0) return 1024;  // "as many as possible": bounded, and capped by the descriptor limit at run time
  }
  if (n > kMaxJobs) throw UsageError(fmt::format("--jobs: '{}' is too many", text));
  return n < 1 ? 1U : static_cast<unsigned>(n);
}

namespace {

/// A job's own status as GNU parallel reports it for --halt ...=1: its exit code, else
/// 128+signal; a job killed by --timeout (Exitval -1) gives 255.
int job_status(int exitval, int signal) {
  if (exitval != 0) return exitval & 0xff;
  return signal > 0 ? std::min(128 + signal, 255) : 0;
}

int failed_percent(std::uint64_t failed, std::uint64_t of) {
  return static_cast<int>(std::ceil(static_cast<double>(failed) / static_cast<double>(of == 0 ? 1 : of) * 100));
}

} // namespace

std::optional<int> halt_status(const HaltPolicy& halt, const HaltCounts& counts, int exitval, int signal, bool failed) {
  if (halt.when == HaltPolicy::When::Never) return std::nullopt;
  std::uint64_t limit = 0;  // what the condition counts, as in GNU parallel's should_we_halt
  switch (halt.cond) {
    case HaltPolicy::Cond::Fail: if (!failed) return std::nullopt; limit = counts.failed; break;
    case HaltPolicy::Cond::Success: if (failed) return std::nullopt; limit = counts.succeeded; break;
    case HaltPolicy::Cond::Done: limit = counts.done; break;
  }
  double count = halt.threshold;
  std::uint64_t of = counts.done;  // the percentage's base without a known total
  if (halt.percent) {
    if (counts.total) {
      of = *counts.total;
      count = static_cast<double>(*counts.total) * (halt.threshold / 100.0);
    } else {
      if (counts.done < 3) return std::nullopt;
      count = static_cast<double>(counts.done) * (halt.threshold / 100.0);
    }
  }
  if (static_cast<double>(limit) < count) return std::nullopt;
  if (halt.cond == HaltPolicy::Cond::Success) return 0;
  if (count == 1) return job_status(exitval, signal);
  if (halt.percent) return failed_percent(counts.failed, of);
  return static_cast<int>(std::min<std::uint64_t>(counts.failed, 101));
}

int halt_final_status(const HaltPolicy& halt, const HaltCounts& counts) {
  if (halt.when != HaltPolicy::When::Never && halt.percent) return failed_percent(counts.failed, counts.done);
  return static_cast<int>(std::min<std::uint64_t>(counts.failed, 101));
}

HaltPolicy parse_halt(const std::string& text) {
  HaltPolicy policy;
  if (text == "never" || text == "0") return policy;
  // GNU parallel's short forms.
  if (text == "1" || text == "2" || text == "-1" || text == "-2") {
    policy.when = (text == "2" || text == "-2") ? HaltPolicy::When::Now : HaltPolicy::When::Soon;
    policy.cond = text.front() == '-' ? HaltPolicy::Cond::Success : HaltPolicy::Cond::Fail;
    policy.threshold = 1;
    return policy;
  }
  std::string condition = text;
  if (!text.empty() && text.back() == '%' && text.find_first_of(",=") == std::string::npos)
    condition = "fail=" + text;  // --halt 5% = soon,fail=5%
  policy.when = HaltPolicy::When::Soon;
  if (const auto comma = text.find(','); comma != std::string::npos) {
    const std::string when = text.substr(0, comma);
    if (when == "now") policy.when = HaltPolicy::When::Now;
    else if (when == "soon") policy.when = HaltPolicy::When::Soon;
    else throw UsageError(fmt::format("--halt: '{}': expected now or soon before the comma", text));
    condition = text.substr(comma + 1);
  }
  std::string value;
  if (condition.rfind("fail=", 0) == 0) value = condition.substr(5);
  else if (condition.rfind("success=", 0) == 0) { policy.cond = HaltPolicy::Cond::Success; value = condition.substr(8); }
  else if (condition.rfind("done=", 0) == 0) { policy.cond = HaltPolicy::Cond::Done; value = condition.substr(5); }
  else
    throw UsageError(
        fmt::format("--halt: '{}': expected fail=N, fail=N%, success=N, success=N%, done=N or done=N%", text));
  if (!value.empty() && value.back() == '%') {
    policy.percent = true;
    value.pop_back();
    policy.threshold = parse_number(value, "--halt");
    if (policy.threshold <= 0 || policy.threshold > 100)
      throw UsageError(fmt::format("--halt: '{}': the percentage must be in (0, 100]", text));
  } else {
    const long n = parse_integer(value, "--halt");
    if (n < 1) throw UsageError(fmt::format("--halt: '{}': the count must be at least 1", text));
    policy.threshold = static_cast<double>(n);
  }
  return policy;
}

std::uint64_t parse_size(const std::string& text) { return parse_size(text, "--memfree"); }

std::uint64_t parse_size(const std::string& text, const char* what) {
  if (text.empty()) throw UsageError(fmt::format("{}: empty size", what));
  // GNU parallel's multiply_binary_prefix: k = 1000, K = Ki = ki = 1024, m = 10^6, M = Mi = 2^20, ... e, E.
  std::string number = text;
  bool binary = false;
  if (number.size() >= 2 && (number.back() == 'i' || number.back() == 'I') &&
      std::isalpha(static_cast<unsigned char>(number[number.size() - 2]))) {
    binary = true;
    number.pop_back();
  }
  double unit = 1;
  const char letter = number.back();
  const auto power = std::string_view("kmgtpe").find(static_cast<char>(std::tolower(static_cast<unsigned char>(letter))));
  if (power != std::string_view::npos) {
    binary = binary || std::isupper(static_cast<unsigned char>(letter));
    unit = std::pow(binary ? 1024.0 : 1000.0, static_cast<double>(power + 1));
    number.pop_back();
  } else if (binary) {
    throw UsageError(fmt::format("{}: '{}' is not a number", what, text));
  }
  const double value = parse_number(number, what) * unit;
  if (value < 0) throw UsageError(fmt::format("{}: '{}' is negative", what, text));
  // 2^64 exactly: converting it or anything above to uint64_t is undefined (it wrapped to small values).
  constexpr double kTwoTo64 = 18446744073709551616.0;
  if (!(value < kTwoTo64))
    throw UsageError(fmt::format("{}: '{}' is too large (the limit is 16 EiB)", what, text));
  return static_cast<std::uint64_t>(value);
}

std::vector<TermStep> parse_termseq(const std::string& text) {
  std::vector<std::string> fields;
  for (std::size_t at = 0;;) {
    const auto comma = text.find(',', at);
    fields.push_back(text.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  std::vector<TermStep> steps;
  for (std::size_t i = 0; i < fields.size(); i += 2) {
    std::string name = fields[i];
    if (name.rfind("SIG", 0) == 0) name.erase(0, 3);
    TermStep step;
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
      step.signal = static_cast<int>(parse_integer(name, "--termseq"));
    } else {
      for (int sig = 1; sig < NSIG && step.signal == 0; ++sig)
        if (const char* abbrev = ::sigabbrev_np(sig); abbrev != nullptr && name == abbrev) step.signal = sig;
    }
    if (step.signal <= 0 || step.signal >= NSIG)
      throw UsageError(fmt::format("--termseq: '{}' is not a signal (TERM, KILL, INT, 15...)", fields[i]));
    if (i + 1 < fields.size()) {
      const double ms = parse_number(fields[i + 1], "--termseq");
      if (ms < 0) throw UsageError(fmt::format("--termseq: '{}' is negative", fields[i + 1]));
      step.seconds = ms / 1000;
    }
    steps.push_back(step);
  }
  return steps;
}

std::string run_help_text() {
  CLI::App app{"Run shell commands from a batch file, or a command template over arguments, on N workers.",
               "procpool run"};
  RawOptions raw;
  build_app(app, raw);
  app.footer(
      "Usage:\n"
      "  procpool run [OPTIONS] [BATCH_FILE|-]        one shell command per line (blank lines and # comments\n"
      "                                               skipped); no file or - reads stdin\n"
      "  procpool run [OPTIONS] TEMPLATE ::: ARG...   run TEMPLATE once per argument\n"
      "  procpool run [OPTIONS] TEMPLATE :::: ARGFILE one argument per line of ARGFILE\n"
      "  procpool run [OPTIONS] -a ARGFILE TEMPLATE   the same; TEMPLATE words after the options\n"
      "  procpool run [OPTIONS] WORD WORD... < ARGS   a template of two or more words, arguments from stdin\n"
      "  procpool run [OPTIONS] --pipe COMMAND < DATA DATA cut into --block chunks of whole records, one per\n"
      "                                               job on its stdin (--pipepart -a FILE: FILE's parts)\n"
      "  procpool sem [-j N] [--id NAME] [--fg] CMD   a counting semaphore across invocations (GNU sem)\n"
      "Several ::: / :::: / -a sources combine: every combination, the last source varying fastest;\n"
      ":::+ / ::::+ link a source to the one before (one value of each per job), --link links them all.\n"
      "Default options may come from $PARALLEL. GNU parallel options procpool lacks are refused (exit 255).\n"
      "\n"
      "Replacement strings in TEMPLATE and --tagstring (values are shell-quoted):\n"
      "  {}  the argument(s)   {.}  without extension   {/}  basename   {//}  dirname\n"
      "  {/.} basename without extension   {#}  job sequence number   {%}  job slot (1..jobs)\n"
      "  {N} the Nth source or --colsep column, also {N.} {N/} {N//} {N/.}\n"
      "A TEMPLATE without replacement strings gets the arguments appended; one whose first word holds\n"
      "one is not quoted ({} alone runs the argument as a command). {= perl =} is refused.\n"
      "\n"
      "Exit status: 0 all jobs succeeded; 1-100 that many jobs failed; 101 more than 100 failed;\n"
      "with --halt: GNU parallel's (fail=1: the job's status; fail=N: failed count; N%: percent failed);\n"
      "255 bad usage, bad input, or interrupted (SIGINT, SIGTERM); SIGHUP lets running jobs finish;\n"
      "a closed stdout ends procpool with SIGPIPE.\n"
      "Jobs get /dev/null as stdin (--pipe: their chunk) and these variables: PARALLEL_SEQ, PARALLEL_JOBSLOT,\n"
      "PARALLEL_PID.");
  return app.help();
}

namespace {

bool is_source_separator(const std::string& word) {
  return word == ":::" || word == "::::" || word == ":::+" || word == "::::+";
}

} // namespace

std::string unquote_printf(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) { out += text[i]; continue; }
    const char next = text[i + 1];
    if (next == 't') { out += '\t'; ++i; continue; }
    if (next == 'n') { out += '\n'; ++i; continue; }
    if (next == 'r') { out += '\r'; ++i; continue; }
    std::size_t digits = 0;
    while (digits < 3 && i + 1 + digits < text.size() && text[i + 1 + digits] >= '0' && text[i + 1 + digits] <= '7')
      ++digits;
    // GNU parallel takes three octal digits, else exactly one ("\12" is byte 1, then '2').
    if (digits >= 1) {
      const std::size_t used = digits == 3 ? 3 : 1;
      out += static_cast<char>(std::stoi(text.substr(i + 1, used), nullptr, 8));
      i += used;
      continue;
    }
    out += text[i];
  }
  return out;
}

std::vector<std::string> shell_words(const std::string& text) {
  // Text::ParseWords::shellwords, which GNU parallel uses for $PARALLEL: blanks separate words,
  // '...' is literal, "..." and a bare backslash escape the next character.
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::exchange(word, {}));
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\' && i + 1 < text.size()) {
      word += text[++i];
    } else if (c == '\'' || c == '"') {
      std::size_t j = i + 1;
      for (; j < text.size() && text[j] != c; ++j) {
        if (c == '"' && text[j] == '\\' && j + 1 < text.size()) ++j;
        word += text[j];
      }
      if (j == text.size()) throw UsageError(fmt::format("$PARALLEL: unmatched {} in '{}'", c, text));
      i = j;
    } else {
      word += c;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::vector<std::string> with_parallel_env(const std::vector<std::string>& args) {
  const char* env = std::getenv("PARALLEL");
  if (env == nullptr || *env == '\0') return args;
  std::vector<std::string> all = shell_words(env);
  all.insert(all.end(), args.begin(), args.end());
  return all;
}

std::optional<Options> parse_run_options(const std::vector<std::string>& args) {
  // Everything from the first ::: or :::: (or :::+, ::::+) on names argument sources; CLI11 parses
  // what comes before.
  std::size_t split = args.size();
  for (std::size_t i = 0; i < args.size(); ++i)
    if (is_source_separator(args[i])) { split = i; break; }

  CLI::App app{"procpool run", "procpool run"};
  RawOptions raw;
  build_app(app, raw);
  std::vector<std::string> reversed(args.rbegin() + static_cast<std::ptrdiff_t>(args.size() - split), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::cout << run_help_text();
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what());
  }
  for (std::size_t i = 0; i < raw.refused.size(); ++i) {
    if (raw.refused[i]->count() == 0) continue;
    const std::string_view names = refused_gnu_options()[i].names;
    const auto long_name = names.find("--");  // the long spelling, when there is one, names it best
    const std::string_view name = names.substr(long_name == std::string_view::npos ? 0 : long_name);
    throw UsageError(fmt::format("{}: GNU parallel's option is not supported by procpool run: {}",
                                 name.substr(0, name.find(',')), refused_gnu_options()[i].advice));
  }
  std::vector<std::string> words = app.remaining();
  if (!words.empty() && words.front().size() > 1 && words.front().front() == '-' && words.front() != "--")
    throw UsageError(fmt::format("unknown option '{}' (see procpool run --help)", words.front()));
  if (!words.empty() && words.front() == "--") words.erase(words.begin());
  // -l's value is optional: as GNU parallel (Getopt::Long's :f), a word after -l that is no number is
  // not its value but the command's first word.
  std::optional<double> max_lines_l;
  if (app.count("--max-lines") > 0) {
    char* end = nullptr;
    const double value = raw.max_lines_l.empty() ? 0 : std::strtod(raw.max_lines_l.c_str(), &end);
    if (!raw.max_lines_l.empty() && (end != raw.max_lines_l.c_str() + raw.max_lines_l.size() || !std::isfinite(value))) {
      words.insert(words.begin(), raw.max_lines_l);
      max_lines_l = 1;
    } else {
      if (value < 0) throw UsageError(fmt::format("--max-lines: '{}' is negative", raw.max_lines_l));
      max_lines_l = std::max(1.0, std::ceil(value));  // -l and -l 0 are -l 1
    }
  }

  // An option given an empty value (`-j ''`, often an unset shell variable) is an error, not the default.
  const std::pair<const char*, const std::string*> valued_options[] = {
      {"--jobs", &raw.jobs},       {"--joblog", &raw.joblog}, {"--retries", &raw.retries},
      {"--timeout", &raw.timeout}, {"--grace", &raw.grace},   {"--halt", &raw.halt},
      {"--results", &raw.results}, {"--delay", &raw.delay},   {"--memfree", &raw.memfree},
      {"--load", &raw.load},       {"--colsep", &raw.colsep}, {"--broker", &raw.broker},
      {"--queue", &raw.queue},     {"--max-queued", &raw.max_queued}, {"--max-crashes", &raw.max_crashes},
      {"--max-output", &raw.max_output}, {"--no-worker-timeout", &raw.no_worker_timeout},
      {"--run-ttl", &raw.run_ttl}};
  for (const auto& [name, value] : valued_options)
    if (app.count(name) > 0 && value->empty()) throw UsageError(fmt::format("{}: empty value", name));

  Options opt;
  const auto cpus = static_cast<unsigned>(os::cpu_count());
  opt.jobs = raw.jobs.empty() ? cpus : parse_jobs(raw.jobs, cpus);
  if (!raw.joblog.empty()) opt.joblog = raw.joblog;
  opt.resume = raw.resume;
  opt.resume_failed = raw.resume_failed;

  if (!raw.retries.empty()) {
    const long n = parse_integer(raw.retries, "--retries");
    if (n < 0) throw UsageError(fmt::format("--retries: '{}' is negative", raw.retries));
    // Saturates rather than wrapping (4294967296 wrapped to 0, "until it succeeds").
    opt.tries = static_cast<unsigned>(std::min<long>(n, std::numeric_limits<unsigned>::max()));
  }
  if (!raw.timeout.empty()) opt.timeout = parse_timeout(raw.timeout);
  if (!raw.grace.empty()) opt.kill_grace_seconds = parse_duration_seconds(raw.grace, "--grace");
  if (app.count("--termseq") > 0) {
    if (!raw.grace.empty()) throw UsageError("--termseq and --grace exclude each other");
    opt.term_seq = parse_termseq(raw.termseq);
  }
  if (!raw.halt.empty()) opt.halt = parse_halt(raw.halt);
  opt.keep_order = raw.keep_order && !raw.no_keep_order;
  if (static_cast<int>(raw.group) + static_cast<int>(raw.line_buffer) + static_cast<int>(raw.ungroup) > 1)
    throw UsageError("--group, --line-buffer and --ungroup exclude each other");
  if (raw.line_buffer) opt.output = OutputMode::LineBuffer;
  if (raw.ungroup) opt.output = OutputMode::Ungroup;
  // GNU parallel's: --ctag is --tag --color, --ctagstring --tagstring --color; --tagstring wins over --ctagstring.
  opt.tag = raw.tag || raw.ctag;
  if (!raw.tagstring.empty()) opt.tagstring = raw.tagstring;
  else if (!raw.ctagstring.empty()) opt.tagstring = raw.ctagstring;
  opt.color = raw.color || raw.ctag || app.count("--ctagstring") > 0;
  opt.color_failed = raw.color_failed;
  if (!raw.results.empty()) opt.results_dir = raw.results;
  // GNU parallel's --resume also reads --results' files (not a table's, not procpool's seq layout).
  const auto lower_results = [&] {
    std::string lower = raw.results;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower;
  }();
  const bool results_table = lower_results.ends_with(".csv") || lower_results.ends_with(".tsv") ||
                             lower_results.ends_with(".json");
  if (opt.resume_failed && !opt.joblog) throw UsageError("--resume and --resume-failed need --joblog FILE");
  if (opt.resume && !opt.joblog && (!opt.results_dir || results_table || raw.results_layout == "seq" || !raw.broker.empty()))
    throw UsageError("--resume needs --joblog FILE or --results NAME (GNU parallel's layout, not a table)");
  if (app.count("--results-layout") > 0) {
    if (raw.results_layout != "gnu" && raw.results_layout != "seq")
      throw UsageError(fmt::format("--results-layout: '{}' must be gnu or seq", raw.results_layout));
    if (!opt.results_dir) throw UsageError("--results-layout needs --results NAME");
    opt.results_layout = raw.results_layout == "seq" ? ResultsLayout::Seq : ResultsLayout::Gnu;
  }
  opt.dry_run = raw.dry_run;
  if (!raw.delay.empty()) opt.delay_seconds = parse_duration_seconds(raw.delay, "--delay");
  if (!raw.memfree.empty()) opt.memfree_bytes = parse_size(raw.memfree);
  if (!raw.load.empty()) {
    if (raw.load.back() == '%')
      opt.load_limit = parse_number(raw.load.substr(0, raw.load.size() - 1), "--load") * cpus / 100.0;
    else
      opt.load_limit = parse_number(raw.load, "--load");
    if (opt.load_limit <= 0) throw UsageError(fmt::format("--load: '{}' must be above 0", raw.load));
  }
  if (app.count("--limit") > 0) {
    if (raw.limit.empty()) throw UsageError("--limit: empty value");
    opt.limit = raw.limit;
  }
  opt.verbose = raw.verbose && !raw.silent;
  opt.verbose_stderr = raw.verbose_stderr && !raw.silent;
  if (raw.bar) opt.progress = ProgressStyle::Bar;
  else if (raw.eta) opt.progress = ProgressStyle::Eta;
  else if (raw.progress) opt.progress = ProgressStyle::Progress;
  opt.force_progress = raw.force_progress;
  if (!raw.colsep.empty()) opt.colsep = raw.colsep;
  if (raw.csv) {
    // GNU parallel's Text::CSV: one separator character, `,` by default; values are trimmed only when
    // --colsep was given (its --trim lr default comes with --colsep, before --csv sets the `,`).
    opt.csv = true;
    if (!opt.colsep) {
      opt.colsep = ",";
      if (app.count("--trim") == 0) opt.trim = Trim::None;
    }
    if (*opt.colsep == "\\t") opt.colsep = "\t";  // the usual TSV idiom
    if (opt.colsep->size() != 1 || *opt.colsep == "\"")
      throw UsageError(fmt::format("--csv: --colsep '{}' must be one character other than \" (or \\t)", raw.colsep));
  }
  if (app.count("--trim") > 0) {
    if (raw.trim == "n") opt.trim = Trim::None;
    else if (raw.trim == "l") opt.trim = Trim::Left;
    else if (raw.trim == "r") opt.trim = Trim::Right;
    else if (raw.trim == "lr" || raw.trim == "rl") opt.trim = Trim::Both;
    else throw UsageError(fmt::format("--trim: '{}' must be one of n, l, r, lr, rl", raw.trim));
  }
  opt.link = raw.link;
  if (raw.null && app.count("--delimiter") > 0) throw UsageError("-0 and -d exclude each other");
  if (raw.null) opt.delimiter = std::string(1, '\0');
  if (app.count("--delimiter") > 0) {
    opt.delimiter = unquote_printf(raw.delimiter);
    if (opt.delimiter.empty()) throw UsageError("--delimiter: empty value");
  }
  opt.skip_empty = raw.no_run_if_empty;
  opt.tty = raw.tty;
  if (opt.tty) { opt.jobs = 1; opt.output = OutputMode::Ungroup; }
  opt.shell_always = raw.shell_always;

  for (const auto& file : raw.arg_files) opt.sources.push_back({ArgSource::Kind::File, {}, file, false});
  for (std::size_t i = split; i < args.size();) {
    const bool is_file = args[i].rfind("::::", 0) == 0;
    const bool linked = args[i].back() == '+';  // :::+ / ::::+: linked to the source before
    std::size_t j = i + 1;
    ArgSource source;
    source.kind = ArgSource::Kind::InlineArgs;
    source.linked = linked;
    while (j < args.size() && !is_source_separator(args[j])) {
      if (is_file) opt.sources.push_back({ArgSource::Kind::File, {}, args[j], linked});
      else source.args.push_back(args[j]);
      ++j;
    }
    if (is_file && j == i + 1) throw UsageError(fmt::format("{} needs at least one argument file", args[i]));
    if (!is_file) opt.sources.push_back(std::move(source));  // an empty ::: is one empty value (input.cpp)
    i = j;
  }

  if (raw.pipe && raw.pipepart) throw UsageError("--pipe and --pipepart exclude each other");
  if (raw.cat && raw.fifo) throw UsageError("--fifo cannot be combined with --cat");
  if (raw.pipe || raw.pipepart || raw.cat || raw.fifo) {  // GNU parallel: --cat, --fifo imply --pipe
    parse_pipe_options(app, raw, opt, words);
  } else if (app.count("--block") > 0 || app.count("--recstart") > 0 || app.count("--recend") > 0) {
    throw UsageError("--block, --recstart and --recend need --pipe or --pipepart");
  } else if (raw.round_robin || raw.rrs || app.count("--block-timeout") > 0 || app.count("--bin") > 0) {
    throw UsageError("--round-robin, --rrs, --block-timeout and --bin need --pipe or --pipepart");
  } else if (!opt.sources.empty()) {
    opt.template_mode = true;
    opt.template_words = std::move(words);
  } else if (words.size() >= 2 || (words.size() == 1 && (raw.multiple || raw.xargs || !raw.max_args.empty() ||
                                                          !raw.max_replace_args.empty() || !raw.max_lines.empty() ||
                                                          max_lines_l))) {
    // One word is a batch file, except with -n/-N/-m/-X, which only make sense with a template.
    opt.template_mode = true;
    opt.template_words = std::move(words);
    opt.sources.push_back({ArgSource::Kind::File, {}, "-"});
  } else if (words.size() == 1) {
    opt.batch_file = words.front();
  }
  if (!opt.template_mode && opt.colsep)
    throw UsageError(fmt::format("{} needs a template and arguments (::: or -a)", opt.csv ? "--csv" : "--colsep"));
  auto count_option = [&](const std::string& text, const char* name, long min) {
    const long n = parse_integer(text, name);
    if (n < min) throw UsageError(fmt::format("{}: '{}' must be at least {}", name, text, min));
    return static_cast<std::size_t>(n);
  };
  if (app.count("--max-args") > 0) opt.max_args = count_option(raw.max_args, "--max-args", 1);
  if (app.count("--max-replace-args") > 0) {
    // With --pipe, -N counts records per job: at least one.
    opt.max_args = count_option(raw.max_replace_args, "--max-replace-args", opt.pipe == PipeMode::None ? 0 : 1);
    opt.context_replace = true;
  }
  if (app.count("-L") > 0) {
    const std::size_t lines = count_option(raw.max_lines, "-L", 0);
    if (opt.pipe != PipeMode::None) {
      // GNU parallel: with --pipe a record is N lines; with -N as well, a chunk is N x L lines.
      if (lines == 0) throw UsageError("-L: '0' must be at least 1 with --pipe");
      if (opt.max_args) *opt.max_args *= lines;
      else opt.record_lines = lines;
    } else {
      opt.continued_lines = lines > 0;
      if (!opt.max_args) {
        opt.max_args = lines;  // as -N N: -n or -N, when given, wins (GNU parallel's)
        if (!(raw.multiple || raw.xargs)) opt.context_replace = true;
      }
    }
  }
  if (max_lines_l && app.count("-L") == 0) {
    // GNU parallel's -l N: -L N without its context replace (-L, when given too, wins).
    if (*max_lines_l > 1e9) throw UsageError(fmt::format("--max-lines: '{}' is too large", raw.max_lines_l));
    const auto lines = static_cast<std::size_t>(*max_lines_l);
    if (opt.pipe != PipeMode::None) {
      if (opt.max_args) *opt.max_args *= lines;
      else opt.record_lines = lines;
    } else {
      opt.continued_lines = true;
      if (!opt.max_args) opt.max_args = lines;
    }
  }
  if (opt.pipe == PipeMode::Part && (opt.max_args || opt.record_lines))
    throw UsageError("-n/-N/-L (records per job) work with --pipe, not with --pipepart: use --pipe < FILE");
  opt.fill = raw.multiple || raw.xargs;
  opt.exit_too_long = raw.exit_too_long;
  if (raw.xargs) opt.context_replace = true;
  if (app.count("--max-chars") > 0) {
    if (!opt.fill) throw UsageError("--max-chars (-s) limits what -m or -X put in one command: add one of them");
    opt.max_chars = count_option(raw.max_chars, "--max-chars", 1);
  }
  if ((opt.fill || opt.max_args) && !opt.template_mode)
    throw UsageError("-n, -N, -m and -X need a template and arguments (::: or -a)");
  if (app.count("--nice") > 0) {
    const long n = parse_integer(raw.nice, "--nice");
    if (n < -20 || n > 19) throw UsageError(fmt::format("--nice: '{}' must be -20 to 19", raw.nice));
    opt.nice = static_cast<int>(n);
  }
  if (app.count("--tmpdir") > 0) {
    if (raw.tmpdir.empty()) throw UsageError("--tmpdir: empty value");
    opt.tmpdir = raw.tmpdir;
  }
  opt.shuffle = raw.shuf;
  opt.retry_failed = raw.retry_failed;
  if (opt.retry_failed && !opt.joblog) throw UsageError("--retry-failed needs --joblog FILE");
  opt.plus = raw.plus;
  if (app.count("--header") > 0) {
    // Whatever the value (`:`, `.*`, a number), GNU parallel takes the first line of each source
    // as the header outside --pipe.
    opt.header_lines = 1;
    if (!opt.template_mode) throw UsageError("--header needs a template and arguments (::: or -a)");
    if (opt.pipe != PipeMode::None && raw.header != ":") {
      // With --pipe GNU parallel's value is a regex for the header put before every chunk: `:` (one
      // line) and N (N lines) are what procpool takes.
      if (raw.header.find_first_not_of("0123456789") != std::string::npos)
        throw UsageError(fmt::format("--header '{}': with --pipe, procpool takes : (one line) or a number of lines", raw.header));
      opt.header_lines = static_cast<std::size_t>(parse_integer(raw.header, "--header"));
    }
  }
  if (app.count("-I") > 0) {
    if (raw.replace.empty()) throw UsageError("-I: empty value");
    opt.replace_token = raw.replace;
    // Tags are raw text: -I's string is simply renamed there (the broker expands them too).
    if (opt.tagstring)
      for (auto at = opt.tagstring->find(raw.replace); at != std::string::npos; at = opt.tagstring->find(raw.replace, at + 2))
        opt.tagstring->replace(at, raw.replace.size(), "{}");
  }
  for (const auto& word : opt.template_words) refuse_perl_expression(word, "the command");
  if (opt.tagstring) refuse_perl_expression(*opt.tagstring, "--tagstring");
  if (opt.plus) {  // an unsupported --plus string is refused now, not when the first job starts
    const CommandTemplate command(join_words(opt.template_words), opt.replace_token, true);
    if (command.needs_total() && opt.pipe != PipeMode::None)
      throw UsageError("--pipe is incompatible with {##} and {0#} (the number of jobs is not known in advance)");
    if (opt.tagstring && CommandTemplate(*opt.tagstring, "{}", true).may_skip())
      throw UsageError("--tagstring: {choose_k} and {uniq} are only supported in the command");
    if (command.may_skip() && opt.pipe != PipeMode::None)
      throw UsageError("--pipe: {choose_k} and {uniq} need arguments");
    if (opt.tagstring && opt.pipe != PipeMode::None && CommandTemplate(*opt.tagstring, "{}", true).needs_total())
      throw UsageError("--pipe is incompatible with {##} and {0#} (the number of jobs is not known in advance)");
  }
  int stdin_users = opt.template_mode ? 0 : (opt.batch_file == "-" ? 1 : 0);
  if (opt.pipe == PipeMode::Pipe && opt.sources.empty()) ++stdin_users;
  for (const auto& s : opt.sources)
    if (s.kind == ArgSource::Kind::File && s.path == "-") ++stdin_users;
  if (stdin_users > 1) throw UsageError("stdin (-) can be read by one input source only");

  // --env is not among them: without --broker it is GNU parallel's local --env, a no-op (jobs inherit
  // the whole environment).
  const bool broker_only = !raw.queue.empty() || !raw.max_queued.empty() || !raw.max_crashes.empty() ||
                           !raw.max_output.empty() || !raw.no_worker_timeout.empty() ||
                           !raw.run_ttl.empty() || raw.insecure_broker;
  if (raw.broker.empty() && broker_only)
    throw UsageError("--queue, --max-queued, --max-crashes, --max-output, --no-worker-timeout, --run-ttl "
                     "and --insecure-broker need --broker URL");
  if (!raw.broker.empty()) {
    Options::Broker b;
    b.url = raw.broker;
    if (!raw.queue.empty()) b.queue = raw.queue;
    if (!raw.max_queued.empty()) {
      const long n = parse_integer(raw.max_queued, "--max-queued");
      if (n < 1) throw UsageError(fmt::format("--max-queued: '{}' must be at least 1", raw.max_queued));
      b.max_queued = static_cast<std::uint64_t>(n);
    }
    if (!raw.max_crashes.empty()) {
      const long n = parse_integer(raw.max_crashes, "--max-crashes");
      if (n < 1 || n > 1000000) throw UsageError(fmt::format("--max-crashes: '{}' must be 1 to 1000000", raw.max_crashes));
      b.max_crashes = static_cast<unsigned>(n);
    }
    if (!raw.max_output.empty()) b.max_output = parse_size(raw.max_output, "--max-output");
    b.env = raw.env;
    if (!raw.no_worker_timeout.empty())
      b.no_worker_timeout = parse_duration_seconds(raw.no_worker_timeout, "--no-worker-timeout");
    if (!raw.run_ttl.empty()) {
      b.run_ttl = parse_duration_seconds(raw.run_ttl, "--run-ttl");
      if (b.run_ttl < 10) throw UsageError(fmt::format("--run-ttl: '{}' must be at least 10s", raw.run_ttl));
    }
    b.insecure = raw.insecure_broker;
    // The broker writes procpool's own layout as the results arrive.
    if (opt.results_dir && app.count("--results-layout") > 0 && opt.results_layout != ResultsLayout::Seq)
      throw UsageError("--results-layout gnu cannot be used with --broker: its results are DIR/SEQ/{cmd,stdout,stderr}");
    opt.results_layout = ResultsLayout::Seq;
    if (!opt.dry_run) refuse_with_broker(raw, opt);
    opt.broker = std::move(b);
  }
  return opt;
}

namespace {

/// Parses `args` (CLI11 wants them reversed); false when help was asked for and printed.
bool parse_or_help(CLI::App& app, const std::vector<std::string>& args) {
  try {
    app.parse(std::vector<std::string>(args.rbegin(), args.rend()));
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return false;
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what());
  }
  return true;
}

double parse_lease(const std::string& text) {
  const double lease = parse_duration_seconds(text, "--lease");
  if (lease < 0.5 || lease > 3600) throw UsageError(fmt::format("--lease: '{}' must be 0.5s to 1h", text));
  return lease;
}

} // namespace

std::optional<WorkerOptions> parse_worker_options(const std::vector<std::string>& args) {
  CLI::App app{"Run jobs from a procpool broker queue (procpool run --broker) on this host.", "procpool worker"};
  app.set_help_flag("-h,--help", "Print this help and exit");
  WorkerOptions w;
  std::string jobs, lease, idle, max_jobs, max_output, memfree, load, delay, workdir;
  app.add_option("--broker", w.url, "redis://[user@]host[:port][/db] or redis+unix:///path.sock[?db=N]; "
                 "password in PROCPOOL_REDIS_PASSWORD")->type_name("URL")->required();
  app.add_option("--queue", w.queue, "The queue to serve (default: default)")->type_name("NAME");
  app.add_option("-j,--jobs", jobs, "Run up to N jobs at once (default: CPU count); N, N%, +N, -N")->type_name("N");
  app.add_option("--lease", lease, "Heartbeat lease, shared by the queue's workers (default 10s): a host silent "
                 "this long has its jobs requeued")->type_name("D");
  app.add_option("--host-name", w.host_name, "Name in the joblog's Host column (default: the host name)")
      ->type_name("NAME");
  app.add_option("--workdir", workdir, "Run the jobs in this directory")->type_name("DIR");
  app.add_option("--exit-when-idle", idle, "Exit 0 after D with no job (for srun, mpirun, sbatch --array)")
      ->type_name("D");
  app.add_option("--max-jobs", max_jobs, "Claim no more than N jobs, then exit 0 when they are done")->type_name("N");
  app.add_option("--max-output", max_output, "Keep at most SIZE per job and stream (below the run's)")
      ->type_name("SIZE");
  app.add_option("--memfree", memfree, "Claim a job only while MemAvailable is at least SIZE")->type_name("SIZE");
  app.add_option("--load", load, "Claim a job only while fewer than N processes are runnable")->type_name("N");
  app.add_option("--delay", delay, "Wait at least D between two job starts")->type_name("D");
  app.add_flag("--shell", w.shell_always, "Always run commands through /bin/sh -c");
  app.add_flag("--insecure-broker", w.insecure, "Allow a non-loopback broker without a password");
  app.add_flag("--noop", w.noop, "Benchmarks only: report each job as exit 0 without running it")->group("");
  if (!parse_or_help(app, args)) return std::nullopt;
  const auto cpus = static_cast<unsigned>(os::cpu_count());
  w.jobs = jobs.empty() ? cpus : parse_jobs(jobs, cpus);
  if (!lease.empty()) w.lease_seconds = parse_lease(lease);
  if (!idle.empty()) w.exit_when_idle = parse_duration_seconds(idle, "--exit-when-idle");
  if (!max_jobs.empty()) {
    const long n = parse_integer(max_jobs, "--max-jobs");
    if (n < 1) throw UsageError(fmt::format("--max-jobs: '{}' must be at least 1", max_jobs));
    w.max_jobs = static_cast<std::uint64_t>(n);
  }
  if (!max_output.empty()) w.max_output = parse_size(max_output, "--max-output");
  if (!memfree.empty()) w.memfree_bytes = parse_size(memfree);
  if (!load.empty()) {
    w.load_limit = parse_number(load, "--load");
    if (w.load_limit <= 0) throw UsageError(fmt::format("--load: '{}' must be above 0", load));
  }
  if (!delay.empty()) w.delay_seconds = parse_duration_seconds(delay, "--delay");
  if (!workdir.empty()) w.workdir = workdir;
  return w;
}

std::optional<StatusOptions> parse_status_options(const std::vector<std::string>& args) {
  CLI::App app{"Show a procpool broker queue: jobs waiting, workers, runs (read from Redis only).", "procpool status"};
  app.set_help_flag("-h,--help", "Print this help and exit");
  StatusOptions s;
  std::string watch;
  app.add_option("--broker", s.url, "redis://[user@]host[:port][/db] or redis+unix:///path.sock[?db=N]")
      ->type_name("URL")->required();
  app.add_option("--queue", s.queue, "The queue (default: default)")->type_name("NAME");
  app.add_flag("--json", s.json, "Print one JSON object");
  app.add_option("--watch", watch, "Redraw every D")->type_name("D");
  app.add_flag("--insecure-broker", s.insecure, "Allow a non-loopback broker without a password");
  if (!parse_or_help(app, args)) return std::nullopt;
  if (!watch.empty()) {
    s.watch = parse_duration_seconds(watch, "--watch");
    if (s.watch < 0.1) throw UsageError(fmt::format("--watch: '{}' must be at least 0.1s", watch));
  }
  return s;
}

} // namespace procpool::cli
