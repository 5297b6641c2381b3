#pragma once
// --pipe and --pipepart (issue 15): the input is cut into chunks at record boundaries, as GNU parallel
// cuts it, and each chunk is fed to one job's stdin through a pipe. --pipe reads stdin (or one file)
// through a buffer; --pipepart only looks at a few KiB around each boundary of a seekable file, and
// the kernel moves each part from the page cache into its job's pipe (splice), never through procpool.
#include "input.hpp"
#include "options.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <poll.h>

namespace procpool::cli {

/// GNU parallel's --block SIZE (multiply_binary_prefix): k = 1000, K = Ki = ki = 1024, m = 10^6,
/// M = Mi = 2^20, and so on up to E; decimals allowed (1.5M). Negative only for --pipepart (parts
/// per job slot). Throws UsageError.
double parse_block_size(const std::string& text);

/// --recstart/--recend as GNU parallel reads them without --regexp: \0 \r \n \t \' \" \\ unescaped.
std::string unescape_record_separator(const std::string& text);

/// Where records split: after `recend`, where `recstart` follows (both may be empty).
struct RecordSplit {
  std::string recend = "\n";
  std::string recstart;

  /// The last split position in `data` (> 0; both strings inside `data`), or npos. With both
  /// strings empty records end anywhere: data.size().
  [[nodiscard]] std::size_t last(std::string_view data) const;
  /// The position after the `n`th record of `data` (GNU's nindex: a split at 0 is not one), or npos.
  [[nodiscard]] std::size_t nth(std::string_view data, std::size_t n) const;
};

/// Gives jobs their chunks after the first, one job fed many chunks on the same stdin: --round-robin
/// (each chunk to one job) and --tee (every chunk to every job). Jobs are numbered from 0.
class ChunkDealer {
 public:
  enum class Result { Chunk, WouldBlock, End };
  virtual ~ChunkDealer() = default;
  /// Job `who`'s next chunk: Chunk, WouldBlock (the input, or jobs behind), End.
  virtual Result take(unsigned who, std::shared_ptr<const struct PipeChunk>& chunk) = 0;
  /// Job `who` reads no more (it ended, or closed its stdin).
  virtual void gone(unsigned who) = 0;
  /// After WouldBlock: true when the input is what is missing (poll fd() then).
  [[nodiscard]] virtual bool waiting_for_input() const = 0;
  [[nodiscard]] virtual int fd() const = 0;
  /// The joblog's Send for job `who`.
  [[nodiscard]] virtual std::uint64_t sent(unsigned who) const = 0;
};

/// One job's stdin: a --header, then a chunk of the stream (--pipe) or a byte range of a file
/// (--pipepart, the file owned by its source). With --round-robin and --tee, the job's first chunk
/// names the ChunkDealer that gives it the next ones.
struct PipeChunk {
  std::string header;
  std::unique_ptr<char[]> bytes;
  std::size_t size = 0;
  int file_fd = -1;
  std::uint64_t offset = 0, length = 0;
  std::shared_ptr<ChunkDealer> dealer;
  unsigned dealer_job = 0;  ///< the job's number among the dealer's jobs
  [[nodiscard]] std::uint64_t total() const { return header.size() + size + length; }
  /// The bytes given to the job (the joblog's Send): total(), or the dealer's count.
  [[nodiscard]] std::uint64_t sent() const;
};

/// Cuts a stream into chunks exactly as GNU parallel's --pipe does (spreadstdin): by size, a chunk
/// ends at the last record split within `block` bytes (a window holding no split grows by 1.3x, with
/// GNU's warning); with `records` > 0 (-N), a chunk is that many records. The data after the
/// last split waits for the next chunk; at the end of the input whatever is left is the last chunk.
/// Memory: the one buffer being filled (the block, or the longest run of records) plus the chunks
/// handed out.
class StreamChunker {
 public:
  /// Reads up to `max` bytes into `to`: the count, 0 at the end, -1 when it would block.
  using ReadFn = std::function<long(char* to, std::size_t max)>;
  enum class Result { Chunk, WouldBlock, End };

  /// `lines` > 0 (--pipe -L N): a chunk is cut after a multiple of `lines` lines, not at `split`.
  StreamChunker(std::uint64_t block, RecordSplit split, std::size_t records, std::size_t header_lines,
                std::size_t lines = 0);
  Result next(PipeChunk& chunk, const ReadFn& read);
  /// --block-timeout: a block not full `seconds` after it began is cut at its last record split.
  void set_block_timeout(double seconds) { block_timeout_ = seconds; }
  /// With --block-timeout, when next() should be called again though no input came.
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> deadline() const;

 private:
  bool fill(const ReadFn& read, std::size_t want);  // false: would block
  void cut(PipeChunk& chunk, std::size_t at);
  std::uint64_t block_;
  RecordSplit split_;
  std::size_t records_;
  std::size_t header_lines_;
  std::size_t lines_;
  bool header_done_ = false;
  std::string header_;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0, begin_ = 0, end_ = 0;  // the unread data is [begin_, end_)
  bool eof_ = false;
  double block_timeout_ = 0;
  std::optional<std::chrono::steady_clock::time_point> block_started_;  // --block-timeout
};

/// The split positions of a --pipepart file, as GNU parallel's find_split_positions: every `block`
/// bytes after `skip`, the first record split at or after it (read in small windows with pread).
/// Returns the boundaries, first `skip`, last the file's size.
std::vector<std::uint64_t> part_positions(int fd, std::uint64_t size, std::uint64_t block, std::uint64_t skip,
                                          const RecordSplit& split);

/// --pipe / --pipepart job source: one job per chunk, the template expanded without arguments.
std::unique_ptr<JobSource> make_pipe_source(const Options& options);
/// --pipe --tee: the jobs of `args` (one per argument), every one given all of stdin.
std::unique_ptr<JobSource> make_tee_source(const Options& options, std::unique_ptr<JobSource> args);

/// Feeds chunks into their jobs' stdin pipes from the runner's poll loop, without blocking it.
class ChunkFeeds {
 public:
  explicit ChunkFeeds(unsigned slots) : feeds_(slots) {}
  ~ChunkFeeds();
  ChunkFeeds(const ChunkFeeds&) = delete;
  ChunkFeeds& operator=(const ChunkFeeds&) = delete;

  /// A pipe for `slot`'s next job: returns the read end, to be its stdin (the caller closes it once
  /// the job has started), and writes what fits at once. Throws std::system_error.
  int open(unsigned slot, std::shared_ptr<const PipeChunk> chunk);
  /// Writes what fits into every open feed (after poll); a feed whose job stopped reading (EPIPE)
  /// is closed.
  void pump();
  /// Closes `slot`'s feed (its job ended).
  void close(unsigned slot);
  void add_poll_fds(std::vector<pollfd>& fds) const;

 private:
  struct Feed {
    int fd = -1;
    std::shared_ptr<const PipeChunk> chunk;
    std::uint64_t done = 0;  // bytes written, header included
    std::shared_ptr<ChunkDealer> dealer;  // --round-robin, --tee: where the next chunks come from
    unsigned dealer_job = 0;
    bool starved = false;  // all written, the dealer's next chunk not there yet
  };
  bool pump(Feed& feed);  // true when the feed took a new chunk
  void close(Feed& feed);
  std::vector<Feed> feeds_;
};

} // namespace procpool::cli
