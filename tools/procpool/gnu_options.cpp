#include "gnu_options.hpp"

#include <array>

namespace procpool::cli {
namespace {

constexpr std::string_view kPipe =
    "procpool's --pipe and --pipepart take --block, --recstart, --recend, -N, --cat, --fifo, --round-robin, --rrs, --tee, --block-timeout and --bin; for "
    "the rest split the input "
    "first (split -l N --filter)";
constexpr std::string_view kRemote =
    "procpool has no ssh execution; use procpool run --broker URL with procpool worker on each host (docs/broker.md)";
constexpr std::string_view kReplace =
    "procpool knows only the standard replacement strings {} {.} {/} {//} {/.} {#} {%} {N}";
constexpr std::string_view kSemaphore =
    "semaphore mode is procpool sem [-j N] [--id NAME] [--fg|--bg] [--st SECS] COMMAND (or procpool run with "
    "only those options before the command) and procpool sem --wait";
constexpr std::string_view kInfo = "use nproc, lscpu or getconf ARG_MAX";

constexpr std::array kRefused = {
    // Several arguments per job.
    // Input format.
    RefusedOption{"-E", true, "arguments are read to the end; cut the input first: sed '/^EOF$/q'"},
    RefusedOption{"-e,--eof", false, "arguments are read to the end; cut the input first: sed '/^EOF$/q'"},
    RefusedOption{"--skip-first-line,--skipfirstline", false, "drop it first: tail -n +2 FILE | procpool run ..."},
    RefusedOption{"--arg-sep,--argsep", true, "use ::: (and :::+)"},
    RefusedOption{"--arg-file-sep,--argfilesep", true, "use :::: (and ::::+)"},
    RefusedOption{"--linkinputsource,--xapplyinputsource", true, "use --link, :::+ or ::::+"},
    RefusedOption{"-q,--quote", false, "quote the command yourself; arguments are always quoted"},
    RefusedOption{"--shebang,--hashbang", false, "run procpool run from the script instead"},
    // Replacement strings.
    RefusedOption{"-i,--replace", false, kReplace},
    RefusedOption{"-U,--extensionreplace,--er", true, kReplace},
    RefusedOption{"--basenamereplace,--bnr", true, kReplace},
    RefusedOption{"--dirnamereplace,--dnr", true, kReplace},
    RefusedOption{"--basenameextensionreplace,--bner", true, kReplace},
    RefusedOption{"--seqreplace", true, kReplace},
    RefusedOption{"--slotreplace", true, kReplace},
    RefusedOption{"--rpl", true, kReplace},
    RefusedOption{"--parens", true, kReplace},
    RefusedOption{"--process-slot-var,--processslotvar", true, "jobs get PARALLEL_JOBSLOT and PARALLEL_SEQ"},
    // --pipe's other companions (--pipe, --pipepart, --block, --recstart, --recend, --cat, --fifo,
  // --round-robin, --rrs, --tee, --block-timeout, --bin are procpool's).
    RefusedOption{"--regexp,--regex", false, kPipe},
    RefusedOption{"--shard", true, kPipe},
    RefusedOption{"--group-by,--groupby", true, kPipe},
    RefusedOption{"--output-as-files,--outputasfiles,--files", false, "use --results DIR"},
    // Running and output.
    // Semaphore mode: main.cpp sends `run` with only sem's options (is_semaphore_run) to procpool sem;
    // among run's options these are refused.
    RefusedOption{"--semaphore", false, kSemaphore},
    RefusedOption{"--semaphore-name,--semaphorename,--id", true, kSemaphore},
    RefusedOption{"--semaphore-timeout,--semaphoretimeout,--st", true, kSemaphore},
    RefusedOption{"--fg", false, kSemaphore},
    RefusedOption{"--bg", false, kSemaphore},
    RefusedOption{"--wait", false, kSemaphore},
    RefusedOption{"--memsuspend", true, "use --memfree SIZE"},
    RefusedOption{"--noswap", false, "use --memfree SIZE or --load N"},
    RefusedOption{"--compress", false, "procpool spills large output uncompressed to $TMPDIR"},
    RefusedOption{"--compress-program,--use-compress-program,--usecompressprogram,--compressprogram", true,
                  "procpool spills large output uncompressed to $TMPDIR"},
    RefusedOption{"--decompress-program,--use-decompress-program,--usedecompressprogram,--decompressprogram", true,
                  "procpool spills large output uncompressed to $TMPDIR"},
    RefusedOption{"--latest-line,--latestline,--ll", false, "use --line-buffer"},
    RefusedOption{"--total-jobs,--totaljobs,--total", true, "--bar counts a regular file's lines in advance"},
    RefusedOption{"-p,--interactive", false, "use --dry-run to see the commands first"},
    RefusedOption{"-o,--open-tty", false, "use --tty"},
    RefusedOption{"--tmux,--tmuxpane,--tmux-pane", false, "use --results DIR or --line-buffer --tag"},
    RefusedOption{"--ctrl-c,--ctrlc", false, "Ctrl-C stops procpool and its jobs"},
    RefusedOption{"--no-ctrl-c,--no-ctrlc,--noctrlc", false, "Ctrl-C stops procpool and its jobs"},
    RefusedOption{"--embed", false, "call procpool run from your script"},
    RefusedOption{"--filter", true, "filter the input first (grep, awk)"},
    RefusedOption{"--template,--tmpl", true, "generate the files in the command (sed, envsubst)"},
    RefusedOption{"--session", false, "procpool passes its whole environment to the jobs"},
    RefusedOption{"--plain", false, "procpool reads no profile"},
    RefusedOption{"-J,--profile", true, "put default options in $PARALLEL"},
    RefusedOption{"--record-env,--recordenv", false, "procpool passes its whole environment to the jobs"},
    RefusedOption{"--min-version,--minversion", true, "use procpool --version"},
    RefusedOption{"-V,--version", false, "use procpool --version"},
    RefusedOption{"--citation,--bibtex", false, "procpool needs no citation notice"},
    RefusedOption{"-D,--debug", true, "use --dry-run or -v"},
    RefusedOption{"-Y,--bug", false, "see the README"},
    RefusedOption{"--tollef", false, "use ::: (GNU parallel retired it too)"},
    RefusedOption{"--sql,--sqlmaster,--sql-master", true, "use --broker URL (a Redis queue)"},
    RefusedOption{"--sqlworker,--sql-worker", true, "use procpool worker --broker URL"},
    RefusedOption{"--sqlandworker,--sql-and-worker", true, "use --broker URL and procpool worker"},
    RefusedOption{"--shell-completion,--shellcompletion", true, "procpool run --help lists the options"},
    RefusedOption{"--shellquote,--shell-quote,--shell_quote", false, "printf '%q\\n' (bash) quotes for the shell"},
    RefusedOption{"--show-limits,--showlimits", false, kInfo},
    RefusedOption{"--max-line-length-allowed,--maxlinelengthallowed", false, kInfo},
    RefusedOption{"--number-of-cpus,--numberofcpus", false, kInfo},
    RefusedOption{"--number-of-sockets,--numberofsockets", false, kInfo},
    RefusedOption{"--number-of-cores,--numberofcores", false, kInfo},
    RefusedOption{"--number-of-threads,--numberofthreads", false, kInfo},
    RefusedOption{"--use-sockets-instead-of-threads,--usesocketsinsteadofthreads", false,
                  "procpool counts the CPUs it may run on (sched_getaffinity); use -j N"},
    RefusedOption{"--use-cores-instead-of-threads,--usecoresinsteadofthreads", false,
                  "procpool counts the CPUs it may run on (sched_getaffinity); use -j N"},
    RefusedOption{"--use-cpus-instead-of-cores,--usecpusinsteadofcores", false,
                  "procpool counts the CPUs it may run on (sched_getaffinity); use -j N"},
    // Remote execution.
    RefusedOption{"-S,--sshlogin", true, kRemote},
    RefusedOption{"--sshloginfile,--slf", true, kRemote},
    RefusedOption{"--ssh", true, kRemote},
    RefusedOption{"--ssh-delay,--sshdelay", true, kRemote},
    RefusedOption{"-M,--controlmaster", false, kRemote},
    RefusedOption{"--transferfile,--transfer-file,--transferfiles,--transfer-files,--tf", true, kRemote},
    RefusedOption{"--transfer", false, kRemote},
    RefusedOption{"--return", true, kRemote},
    RefusedOption{"--cleanup", false, kRemote},
    RefusedOption{"--trc", true, kRemote},
    RefusedOption{"--basefile,--bf,-B", true, kRemote},
    RefusedOption{"--workdir,--work-dir,--wd,-W", true, "cd in the command: 'cd DIR && ...' (procpool worker has --workdir)"},
    RefusedOption{"--onall", false, kRemote},
    RefusedOption{"--nonall", false, kRemote},
    RefusedOption{"--filter-hosts,--filterhosts,--filter-host", false, kRemote},
    RefusedOption{"--hgrp,--hostgrp,--hostgroup,--hostgroups", false, kRemote},
    RefusedOption{"--rsync-opts,--rsyncopts", true, kRemote},
    RefusedOption{"-T", false, kRemote},
    RefusedOption{"-H", true, kRemote},
};

} // namespace

std::span<const RefusedOption> refused_gnu_options() { return kRefused; }

} // namespace procpool::cli
