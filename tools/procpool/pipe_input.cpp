#include "pipe_input.hpp"

#include "os/fd.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <iostream>
#include <regex>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace procpool::cli {
namespace {

constexpr std::size_t kMaxWrite = 1 << 20;         // one write or splice into a feed
constexpr std::size_t kDefaultPipeSize = 64 * 1024;
constexpr std::size_t kFeedPipeSize = 1 << 20;     // a feed's pipe at most (/proc/sys/fs/pipe-max-size)
constexpr unsigned kFeedPipeSlots = 16;            // larger pipes only up to this many slots: the
                                                   // per-user pipe budget (64 MiB) stays for output
constexpr std::size_t kFirstWindow = 4096;         // --pipepart: bytes read to find a split
constexpr std::size_t kLargestWindow = 1 << 20;

[[noreturn]] void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

/// The header lines (--header with --pipe: `:` is one line, N is N lines), cut from the front of
/// `data`: the header's length, or npos when `data` holds fewer lines.
std::size_t header_length(std::string_view data, std::size_t lines) {
  std::size_t at = 0;
  for (std::size_t i = 0; i < lines; ++i) {
    const auto nl = data.find('\n', at);
    if (nl == std::string_view::npos) return std::string_view::npos;
    at = nl + 1;
  }
  return at;
}

} // namespace

double parse_block_size(const std::string& text) {
  if (text.empty()) throw UsageError("--block: empty value");
  char* end = nullptr;
  const double number = std::strtod(text.c_str(), &end);
  const std::string suffix(end);
  if (end == text.c_str() || !std::isfinite(number)) throw UsageError(fmt::format("--block: '{}' is not a size", text));
  double unit = 1;
  if (!suffix.empty()) {
    constexpr std::string_view kLetters = "kmgtpe";
    const char letter = suffix[0];
    const auto power = kLetters.find(static_cast<char>(std::tolower(static_cast<unsigned char>(letter))));
    const bool binary_suffix = suffix.size() == 2 && (suffix[1] == 'i' || suffix[1] == 'I');
    if (power == std::string_view::npos || suffix.size() > 2 || (suffix.size() == 2 && !binary_suffix))
      throw UsageError(fmt::format("--block: '{}': expected a number with k, K, Ki, M, Mi, G... (GNU parallel's)", text));
    const bool binary = binary_suffix || std::isupper(static_cast<unsigned char>(letter));
    unit = std::pow(binary ? 1024.0 : 1000.0, static_cast<double>(power + 1));
  }
  const double bytes = std::trunc(number * unit);
  if (bytes == 0 || !std::isfinite(bytes) || std::fabs(bytes) > 1e15)
    throw UsageError(fmt::format("--block: '{}' must be 1 byte to 1 PB (or negative with --pipepart)", text));
  return bytes;
}

std::string unescape_record_separator(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) { out += text[i]; continue; }
    switch (text[i + 1]) {
      case '0': out += '\0'; break;
      case 'r': out += '\r'; break;
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case '\'': case '"': case '\\': out += text[i + 1]; break;
      default: out += '\\'; continue;  // kept as typed, as GNU parallel's s///gee keeps it
    }
    ++i;
  }
  return out;
}

std::size_t RecordSplit::last(std::string_view data) const {
  const std::string joined = recend + recstart;
  if (joined.empty()) return data.empty() ? std::string_view::npos : data.size();
  std::size_t at = std::string_view::npos;
  if (joined.size() == 1) {
    if (const void* p = ::memrchr(data.data(), joined[0], data.size()))
      at = static_cast<std::size_t>(static_cast<const char*>(p) - data.data());
  } else {
    at = data.rfind(joined);
  }
  if (at == std::string_view::npos || at + recend.size() == 0) return std::string_view::npos;
  return at + recend.size();
}

std::size_t RecordSplit::nth(std::string_view data, std::size_t n) const {
  const std::string joined = recend + recstart;
  std::size_t at = 0;
  for (std::size_t i = 0; i < n; ++i) {
    at = joined.size() == 1 ? data.find(joined[0], at + 1) : data.find(joined, at + 1);
    if (at == std::string_view::npos) return at;
  }
  return at + recend.size();
}

StreamChunker::StreamChunker(std::uint64_t block, RecordSplit split, std::size_t records, std::size_t header_lines,
                             std::size_t lines)
    : block_(block), split_(std::move(split)), records_(records), header_lines_(header_lines), lines_(lines) {}

namespace {

/// GNU parallel's pass_n_line_records: the position after the last whole group of `lines` lines of
/// `data`, or npos when it holds fewer.
std::size_t after_line_groups(std::string_view data, std::size_t lines) {
  std::size_t count = 0;
  for (const char c : data) count += c == '\n' ? 1 : 0;
  std::size_t keep = count - count % lines;
  if (keep == 0) return std::string_view::npos;
  std::size_t at = 0;
  for (;; ++at)
    if (data[at] == '\n' && --keep == 0) return at + 1;
}

} // namespace

bool StreamChunker::fill(const ReadFn& read, std::size_t want) {
  if (end_ + want > capacity_) {
    // Room for `want` more: move the data to the front, or into a larger buffer.
    const std::size_t used = end_ - begin_;
    if (used + want > capacity_ || !buffer_) {
      const std::size_t grown = std::max(used + want, capacity_ + capacity_ / 2);
      auto larger = std::make_unique_for_overwrite<char[]>(grown);
      if (used > 0) std::memcpy(larger.get(), buffer_.get() + begin_, used);
      buffer_ = std::move(larger);
      capacity_ = grown;
    } else {
      std::memmove(buffer_.get(), buffer_.get() + begin_, used);
    }
    begin_ = 0;
    end_ = used;
  }
  const long n = read(buffer_.get() + end_, want);
  if (n < 0) return false;
  if (n == 0) eof_ = true;
  end_ += static_cast<std::size_t>(n);
  return true;
}

void StreamChunker::cut(PipeChunk& chunk, std::size_t at) {
  block_started_.reset();  // the next block's --block-timeout starts when its reading does
  chunk.header = header_;
  chunk.size = at;
  if (begin_ == 0 && at >= capacity_ / 2) {
    // A large chunk takes the buffer itself; what follows it moves to a fresh one.
    chunk.bytes = std::move(buffer_);
    buffer_ = std::make_unique_for_overwrite<char[]>(capacity_);
    end_ -= at;
    if (end_ > 0) std::memcpy(buffer_.get(), chunk.bytes.get() + at, end_);
    return;
  }
  chunk.bytes = std::make_unique_for_overwrite<char[]>(at);
  std::memcpy(chunk.bytes.get(), buffer_.get() + begin_, at);
  begin_ += at;
}

std::optional<std::chrono::steady_clock::time_point> StreamChunker::deadline() const {
  if (block_timeout_ <= 0 || !block_started_) return std::nullopt;
  return *block_started_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::chrono::duration<double>(block_timeout_));
}

StreamChunker::Result StreamChunker::next(PipeChunk& chunk, const ReadFn& read) {
  while (!header_done_) {
    const std::string_view data(buffer_.get() + begin_, end_ - begin_);
    const std::size_t length = header_lines_ == 0 ? 0 : header_length(data, header_lines_);
    if (length != std::string_view::npos || eof_) {
      const std::size_t taken = std::min(length, data.size());
      header_.assign(data.data(), taken);
      begin_ += taken;
      header_done_ = true;
      break;
    }
    if (!fill(read, static_cast<std::size_t>(block_))) return Result::WouldBlock;
  }
  for (;;) {
    const std::string_view data(buffer_.get() + begin_, end_ - begin_);
    if (records_ > 0) {
      if (const auto at = split_.nth(data, records_); at != std::string_view::npos) {
        cut(chunk, at);
        return Result::Chunk;
      }
    } else if (lines_ > 0 && (data.size() >= block_ || (eof_ && !data.empty()))) {
      // Whole groups of lines, also at the end of the input (then the rest is one more chunk).
      if (const auto at = after_line_groups(data, lines_); at != std::string_view::npos) {
        cut(chunk, at);
        return Result::Chunk;
      }
      if (!eof_) {
        const auto grown = static_cast<std::uint64_t>(std::ceil(static_cast<double>(block_) * 1.3 + 1));
        std::cerr << fmt::format("procpool: warning: A record was longer than {}. Increasing to --blocksize {}.\n",
                                 block_, grown);
        block_ = grown;
      }
    } else if (data.size() >= block_) {
      if (const auto at = split_.last(data); at != std::string_view::npos) {
        cut(chunk, at);
        return Result::Chunk;
      }
      // No split in a whole block: a record longer than the block. GNU parallel grows it.
      const auto grown = static_cast<std::uint64_t>(std::ceil(static_cast<double>(block_) * 1.3 + 1));
      std::cerr << fmt::format("procpool: warning: A record was longer than {}. Increasing to --blocksize {}.\n",
                               block_, grown);
      block_ = grown;
    }
    if (eof_) {
      if (data.empty()) return Result::End;
      cut(chunk, data.size());
      return Result::Chunk;
    }
    const std::size_t want = records_ > 0 ? static_cast<std::size_t>(block_) : static_cast<std::size_t>(block_) - data.size();
    if (block_timeout_ > 0 && !block_started_) block_started_ = std::chrono::steady_clock::now();
    if (!fill(read, want)) {
      // --block-timeout, as GNU parallel's alarm around each block's reads: the block so far, up to
      // its last record split (none: wait again).
      if (const auto due = deadline(); due && std::chrono::steady_clock::now() >= *due) {
        block_started_.reset();
        if (const auto at = split_.last(data); at != std::string_view::npos && records_ == 0 && lines_ == 0) {
          cut(chunk, at);
          return Result::Chunk;
        }
        block_started_ = std::chrono::steady_clock::now();
      }
      return Result::WouldBlock;
    }
  }
}

std::vector<std::uint64_t> part_positions(int fd, std::uint64_t size, std::uint64_t block, std::uint64_t skip,
                                          const RecordSplit& split) {
  std::vector<std::uint64_t> positions{skip};
  const std::string joined = split.recend + split.recstart;
  std::string window;
  for (std::uint64_t at = block + skip; at < size; at += block) {
    if (joined.empty()) {  // records end anywhere
      positions.push_back(at);
      continue;
    }
    window.clear();
    std::size_t read_size = kFirstWindow;
    bool found = false;
    for (;;) {
      const std::size_t old = window.size();
      window.resize(old + read_size);
      ssize_t n = 0;
      do n = ::pread(fd, window.data() + old, read_size, static_cast<off_t>(at + old));
      while (n < 0 && errno == EINTR);
      if (n < 0) throw UsageError(fmt::format("--pipepart: cannot read the file: {}", std::strerror(errno)));
      window.resize(old + static_cast<std::size_t>(n));
      if (n == 0) break;
      const std::size_t from = old >= joined.size() ? old - joined.size() + 1 : 0;
      if (const auto i = window.find(joined, from); i != std::string::npos) {
        at += i + split.recend.size();
        positions.push_back(at);
        found = true;
        break;
      }
      read_size = std::min(read_size * 2, kLargestWindow);
    }
    if (!found) break;  // no split up to the end of the file: none after a later point either
  }
  if (positions.back() != size) positions.push_back(size);
  return positions;
}

/// --rrs, as GNU parallel's remove_rec_sep: every recend+recstart out of the chunk (not its header),
/// then a recstart at its start and a recend at its end (Perl's $: or before a final newline).
void remove_record_separators(PipeChunk& chunk, const RecordSplit& split) {
  std::string_view data(chunk.bytes.get(), chunk.size);
  std::string out;
  out.reserve(data.size());
  const std::string joined = split.recend + split.recstart;
  if (joined.empty()) return;
  for (std::size_t at = 0;;) {
    const auto found = data.find(joined, at);
    out.append(data.substr(at, found == std::string_view::npos ? std::string_view::npos : found - at));
    if (found == std::string_view::npos) break;
    at = found + joined.size();
  }
  if (!split.recstart.empty() && out.starts_with(split.recstart)) out.erase(0, split.recstart.size());
  if (const std::string& end = split.recend; !end.empty()) {
    if (out.ends_with(end)) out.erase(out.size() - end.size());
    else if (out.ends_with(end + "\n")) out.erase(out.size() - end.size() - 1, end.size());
  }
  std::memcpy(chunk.bytes.get(), out.data(), out.size());
  chunk.size = out.size();
}

/// --round-robin (GNU parallel's): -j jobs, started with the first -j chunks, then each given more
/// chunks on the same stdin. `strict` (with -k, as GNU parallel's blocking writes do): chunk k goes to
/// job k mod N. Otherwise to whichever job's pipe takes it first. Memory: at most one chunk waits per
/// job, besides the ones being written.
class RoundRobin final : public ChunkDealer {
 public:
  using NextChunk = std::function<StreamChunker::Result(PipeChunk&)>;
  RoundRobin(NextChunk next, int fd, unsigned jobs, bool strict)
      : next_(std::move(next)), fd_(fd), jobs_(std::max(1U, jobs)), strict_(strict), waiting_(jobs_),
        gone_(jobs_, false), sent_(jobs_, 0) {}

  /// WouldBlock: the input, or another job's waiting chunk.
  Result take(unsigned who, std::shared_ptr<const PipeChunk>& chunk) override {
    const auto r = fetch(who);
    if (r == Result::Chunk) chunk = std::move(waiting_[who]);
    return r;
  }
  /// Reads until job `who` has a chunk waiting (Chunk), or WouldBlock, End.
  Result fetch(unsigned who) {
    waiting_for_input_ = false;
    for (;;) {
      if (waiting_[who]) return Result::Chunk;
      if (eof_) return Result::End;
      // Job k's first chunk is chunk k; after those, strictly in turn or to the job asking.
      const auto target = static_cast<unsigned>(read_ < jobs_ ? read_ : strict_ ? read_ % jobs_ : who);
      if (target != who && waiting_[target]) return Result::WouldBlock;
      auto next = std::make_shared<PipeChunk>();
      switch (next_(*next)) {
        case StreamChunker::Result::WouldBlock: waiting_for_input_ = true; return Result::WouldBlock;
        case StreamChunker::Result::End: eof_ = true; return Result::End;
        case StreamChunker::Result::Chunk: break;
      }
      if (read_ >= jobs_) next->header.clear();  // a job gets the --header once, with its first chunk
      ++read_;
      sent_[target] += next->total();
      if (gone_[target]) continue;  // that job stopped reading: its chunks are dropped
      waiting_[target] = std::move(next);
    }
  }
  void gone(unsigned who) override {
    gone_[who] = true;
    waiting_[who].reset();
  }
  [[nodiscard]] bool waiting_for_input() const override { return waiting_for_input_; }
  [[nodiscard]] int fd() const override { return fd_; }
  [[nodiscard]] std::uint64_t sent(unsigned who) const override { return sent_[who]; }

 private:
  NextChunk next_;
  int fd_;
  unsigned jobs_;
  bool strict_;
  std::vector<std::shared_ptr<PipeChunk>> waiting_;
  std::vector<bool> gone_;
  std::vector<std::uint64_t> sent_;
  std::uint64_t read_ = 0;  // chunks read so far
  bool eof_ = false, waiting_for_input_ = false;
};

/// --tee: every chunk to every job (GNU parallel's: one job per argument, all running at once). A chunk
/// is read when fewer than kHeld are held, and dropped once every job still reading has taken it, so a
/// slow job holds the others back instead of memory growing. The joblog's Send is 0, as GNU parallel's.
class TeeDealer final : public ChunkDealer {
 public:
  static constexpr std::size_t kHeld = 4;
  using NextChunk = std::function<StreamChunker::Result(PipeChunk&)>;
  TeeDealer(NextChunk next, int fd, std::size_t jobs) : next_(std::move(next)), fd_(fd), next_index_(jobs, 0), gone_(jobs, false) {}

  Result take(unsigned who, std::shared_ptr<const PipeChunk>& chunk) override {
    waiting_for_input_ = false;
    for (;;) {
      if (next_index_[who] < first_ + held_.size()) {
        chunk = held_[next_index_[who]++ - first_];
        drop_taken();
        return Result::Chunk;
      }
      if (eof_) return Result::End;
      if (held_.size() >= kHeld) return Result::WouldBlock;  // the slowest job's feed is polled
      auto read = std::make_shared<PipeChunk>();
      switch (next_(*read)) {
        case StreamChunker::Result::WouldBlock: waiting_for_input_ = true; return Result::WouldBlock;
        case StreamChunker::Result::End: eof_ = true; return Result::End;
        case StreamChunker::Result::Chunk: break;
      }
      if (first_ + held_.size() > 0) read->header.clear();  // the --header once, before the first chunk
      held_.push_back(std::move(read));
    }
  }
  void gone(unsigned who) override {
    gone_[who] = true;
    drop_taken();
  }
  [[nodiscard]] bool waiting_for_input() const override { return waiting_for_input_; }
  [[nodiscard]] int fd() const override { return fd_; }
  [[nodiscard]] std::uint64_t sent(unsigned) const override { return 0; }

 private:
  void drop_taken() {
    while (!held_.empty()) {
      for (std::size_t j = 0; j < next_index_.size(); ++j)
        if (!gone_[j] && next_index_[j] <= first_) return;
      held_.pop_front();
      ++first_;
    }
  }
  NextChunk next_;
  int fd_;
  std::vector<std::uint64_t> next_index_;  // per job: the next chunk's number
  std::vector<bool> gone_;
  std::deque<std::shared_ptr<const PipeChunk>> held_;  // chunks first_, first_ + 1...
  std::uint64_t first_ = 0;
  bool eof_ = false, waiting_for_input_ = false;
};

/// Perl's numeric value of a string (leading blanks, sign, digits, decimals, exponent; else 0), as
/// GNU parallel's --bin takes a column's.
double perl_number(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::size_t end = i;
  if (end < text.size() && (text[end] == '+' || text[end] == '-')) ++end;
  const std::size_t digits = end;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
  if (end < text.size() && text[end] == '.') {
    ++end;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
  }
  if (end == digits || (end == digits + 1 && text[digits] == '.')) return 0;
  if (end < text.size() && (text[end] == 'e' || text[end] == 'E')) {
    std::size_t e = end + 1;
    if (e < text.size() && (text[e] == '+' || text[e] == '-')) ++e;
    if (e < text.size() && std::isdigit(static_cast<unsigned char>(text[e]))) {
      end = e;
      while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    }
  }
  return std::strtod(std::string(text.substr(i, end - i)).c_str(), nullptr);
}

/// --bin COL: each line goes to the job whose number (1 to -j) is the column's value modulo -j, as
/// GNU parallel's binner (job -j for 0; Perl's %, whose result has the sign of -j). Lines keep their
/// order within a job. A job's lines gather until it takes them; reading stops while one has over a
/// block waiting, so memory stays within about -j blocks.
class BinDealer final : public ChunkDealer {
 public:
  using NextChunk = std::function<StreamChunker::Result(PipeChunk&)>;
  BinDealer(NextChunk next, int fd, unsigned jobs, std::size_t column, std::string colsep, std::size_t limit)
      : next_(std::move(next)), fd_(fd), column_(column), colsep_(std::move(colsep)), limit_(limit),
        waiting_(std::max(1U, jobs)), gone_(waiting_.size(), false) {
    if (colsep_.find_first_of("\\^$.|?*+()[]{}") != std::string::npos) regex_.emplace(colsep_, std::regex::ECMAScript);
  }

  Result take(unsigned who, std::shared_ptr<const PipeChunk>& chunk) override {
    waiting_for_input_ = false;
    for (;;) {
      if (!waiting_[who].empty()) {
        auto out = std::make_shared<PipeChunk>();
        out->size = waiting_[who].size();
        out->bytes = std::make_unique_for_overwrite<char[]>(out->size);
        std::memcpy(out->bytes.get(), waiting_[who].data(), out->size);
        waiting_[who].clear();
        chunk = std::move(out);
        return Result::Chunk;
      }
      if (eof_) return Result::End;
      for (const auto& lines : waiting_)
        if (lines.size() > limit_) return Result::WouldBlock;  // that job's feed is polled
      PipeChunk read;
      switch (next_(read)) {
        case StreamChunker::Result::WouldBlock: waiting_for_input_ = true; return Result::WouldBlock;
        case StreamChunker::Result::End: eof_ = true; return Result::End;
        case StreamChunker::Result::Chunk: break;
      }
      const std::string_view data(read.bytes.get(), read.size);
      for (std::size_t at = 0; at < data.size();) {
        const auto nl = data.find('\n', at);
        const std::size_t end = nl == std::string_view::npos ? data.size() : nl + 1;
        const std::string_view line = data.substr(at, end - at);
        const auto n = static_cast<double>(waiting_.size());
        double bin = std::fmod(std::trunc(perl_number(field(line))), n);
        if (bin < 0) bin += n;
        const std::size_t job = bin == 0 ? waiting_.size() - 1 : static_cast<std::size_t>(bin) - 1;
        if (!gone_[job]) waiting_[job].append(line);
        at = end;
      }
    }
  }
  void gone(unsigned who) override {
    gone_[who] = true;
    waiting_[who].clear();
    waiting_[who].shrink_to_fit();
  }
  [[nodiscard]] bool waiting_for_input() const override { return waiting_for_input_; }
  [[nodiscard]] int fd() const override { return fd_; }
  [[nodiscard]] std::uint64_t sent(unsigned) const override { return 0; }  // GNU parallel's Send with --bin

 private:
  /// Column `column_` (from 1) of `line`, as Perl's split $sep, $_, $col+1 ("" when there are fewer).
  [[nodiscard]] std::string_view field(std::string_view line) const {
    std::size_t from = 0;
    for (std::size_t i = 1;; ++i) {
      std::size_t at = std::string_view::npos, length = 0;
      if (regex_) {
        std::match_results<std::string_view::const_iterator> m;
        if (std::regex_search(line.begin() + static_cast<std::ptrdiff_t>(from), line.end(), m, *regex_) && m.length(0) > 0) {
          at = from + static_cast<std::size_t>(m.position(0));
          length = static_cast<std::size_t>(m.length(0));
        }
      } else if (const auto found = line.find(colsep_, from); found != std::string_view::npos) {
        at = found;
        length = colsep_.size();
      }
      if (i == column_) return line.substr(from, at == std::string_view::npos ? std::string_view::npos : at - from);
      if (at == std::string_view::npos) return {};
      from = at + length;
    }
  }

  NextChunk next_;
  int fd_;
  std::size_t column_;
  std::string colsep_;
  std::optional<std::regex> regex_;
  std::size_t limit_;
  std::vector<std::string> waiting_;  // per job: its lines not yet taken
  std::vector<bool> gone_;
  bool eof_ = false, waiting_for_input_ = false;
};

std::uint64_t PipeChunk::sent() const { return dealer ? dealer->sent(dealer_job) : total(); }

namespace {

/// What both pipe sources share: the command, expanded with one empty argument ({} is '', as in
/// GNU parallel) and nothing appended. With --cat and --fifo, {} is $PARALLEL_TMP (appended when the
/// command has no replacement string), a file or FIFO the job's shell fills from its stdin, as GNU
/// parallel's wrappers do.
class PipeSourceBase : public JobSource {
 public:
  explicit PipeSourceBase(const Options& options)
      : template_(join_words(options.template_words), options.replace_token, options.plus,
                  options.pipe_file != PipeFile::None),
        file_(options.pipe_file) {
    if (file_ == PipeFile::None) return;
    // One directory per run for the jobs' files: removed at the end, also if a job was killed first.
    const char* env_tmp = std::getenv("TMPDIR");
    std::string dir = options.tmpdir ? *options.tmpdir : env_tmp != nullptr && *env_tmp != '\0' ? env_tmp : "/tmp";
    dir += "/procpool-pipe-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr)
      throw UsageError(fmt::format("{}: cannot make a directory like '{}': {}", file_ == PipeFile::Cat ? "--cat" : "--fifo",
                                   dir, std::strerror(errno)));
    files_dir_ = dir;
  }
  ~PipeSourceBase() override {
    std::error_code ignored;
    if (!files_dir_.empty()) std::filesystem::remove_all(files_dir_, ignored);
  }
  PipeSourceBase(const PipeSourceBase&) = delete;
  PipeSourceBase& operator=(const PipeSourceBase&) = delete;

  [[nodiscard]] std::string command_for(const JobInput& job, unsigned slot) const override {
    if (file_ == PipeFile::None) return template_.expand({std::string()}, job.seq, slot, true);
    return template_.expand({"$PARALLEL_TMP"}, job.seq, slot, false);  // GNU's: the variable, unquoted
  }
  [[nodiscard]] std::string wrap_command(const JobInput& job, const std::string& command) const override {
    if (file_ == PipeFile::None) return command;
    const std::string path = shell_quote(fmt::format("{}/par{}", files_dir_, job.seq));
    if (file_ == PipeFile::Cat)
      return fmt::format("PARALLEL_TMP={}; export PARALLEL_TMP; trap 'rm -f \"$PARALLEL_TMP\"' EXIT\n"
                         "cat > \"$PARALLEL_TMP\" || exit 255\n{}",
                         path, command);
    // The command runs in the background reading the FIFO while the shell's cat fills it; the job's
    // status is the command's. As in GNU parallel, a command that never opens {} leaves cat waiting.
    return fmt::format("PARALLEL_TMP={}; export PARALLEL_TMP; mkfifo -m 600 \"$PARALLEL_TMP\" || exit 255\n"
                       "trap 'rm -f \"$PARALLEL_TMP\"' EXIT\n{{ {}\n}} &\ncat > \"$PARALLEL_TMP\"; wait $!",
                       path, command);
  }

 protected:
  CommandTemplate template_;
  PipeFile file_;
  std::string files_dir_;
  std::uint64_t seq_ = 0;
};

RecordSplit record_split(const Options& options) {
  RecordSplit split;
  // GNU parallel's recstartrecend(): either one alone, or both.
  if (options.recstart || options.recend) {
    split.recstart = options.recstart ? unescape_record_separator(*options.recstart) : std::string();
    split.recend = options.recend ? unescape_record_separator(*options.recend) : std::string();
  }
  return split;
}

class StreamPipeSource final : public PipeSourceBase {
 public:
  explicit StreamPipeSource(const Options& options)
      : PipeSourceBase(options),
        split_(record_split(options)),
        remove_separators_(options.remove_record_separators),
        chunker_(static_cast<std::uint64_t>(options.block.value_or(1 << 20)), split_,
                 options.max_args.value_or(0), options.header_lines, options.record_lines) {
    // With --tee the sources are the jobs' arguments and the data is stdin.
    if (!options.tee && !options.sources.empty() && options.sources.front().path != "-") {
      path_ = options.sources.front().path;
      fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) throw UsageError(fmt::format("cannot open '{}': {}", path_, std::strerror(errno)));
      owns_fd_ = true;
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw UsageError(fmt::format("cannot read '{}': {}", path_, std::strerror(errno)));
    if (S_ISDIR(st.st_mode)) throw UsageError(fmt::format("cannot read '{}': it is a directory", path_));
    may_block_ = !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);
    if (options.block_timeout > 0) chunker_.set_block_timeout(options.block_timeout);
    if (options.bin_column > 0) {
      bin_jobs_ = std::max(1U, options.jobs);
      bin_ = std::make_shared<BinDealer>([this](PipeChunk& chunk) { return read_chunk(chunk); }, fd_, bin_jobs_,
                                         options.bin_column, options.colsep.value_or(","),
                                         static_cast<std::size_t>(options.block.value_or(1 << 20)));
    }
    if (options.round_robin) {
      robin_jobs_ = std::max(1U, options.jobs);
      robin_ = std::make_shared<RoundRobin>([this](PipeChunk& chunk) { return read_chunk(chunk); }, fd_,
                                            robin_jobs_, options.keep_order);
    }
    read_ = [this](char* to, std::size_t max) -> long {
      if (may_block_) {  // stdin stays blocking (it may be shared): look before reading
        pollfd pfd{fd_, POLLIN, 0};
        if (::poll(&pfd, 1, 0) == 0) return -1;
      }
      for (;;) {
        const ssize_t n = ::read(fd_, to, max);
        if (n >= 0) return static_cast<long>(n);
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return -1;
        throw UsageError(fmt::format("cannot read '{}': {}", path_, std::strerror(errno)));
      }
    };
  }
  ~StreamPipeSource() override {
    if (owns_fd_) ::close(fd_);
  }
  StreamPipeSource(const StreamPipeSource&) = delete;
  StreamPipeSource& operator=(const StreamPipeSource&) = delete;

  Result next(JobInput& job) override {
    std::shared_ptr<const PipeChunk> chunk;
    if (bin_) {  // --bin: -j jobs at once, whether their bins get lines or not
      if (seq_ >= bin_jobs_) return Result::End;
      auto first = std::make_shared<PipeChunk>();
      first->dealer = bin_;
      first->dealer_job = static_cast<unsigned>(seq_);
      chunk = std::move(first);
    } else if (robin_) {  // --round-robin: job k starts with chunk k
      if (seq_ >= robin_jobs_) return Result::End;
      const auto r = robin_->fetch(static_cast<unsigned>(seq_));
      if (r != ChunkDealer::Result::Chunk) return r == ChunkDealer::Result::End ? Result::End : Result::WouldBlock;
      auto first = std::make_shared<PipeChunk>();
      first->dealer = robin_;  // an empty first chunk: the job's feed takes chunk k from the dealer
      first->dealer_job = static_cast<unsigned>(seq_);
      chunk = std::move(first);
    } else {
      auto read = std::make_shared<PipeChunk>();
      switch (read_chunk(*read)) {
        case StreamChunker::Result::WouldBlock: return Result::WouldBlock;
        case StreamChunker::Result::End: return Result::End;
        case StreamChunker::Result::Chunk: break;
      }
      chunk = std::move(read);
    }
    job.seq = ++seq_;
    job.args.clear();
    job.chunk = std::move(chunk);
    return Result::Job;
  }
  [[nodiscard]] int wait_fd() const override { return fd_; }
  [[nodiscard]] std::optional<std::uint64_t> count_total() const override { return std::nullopt; }
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> wake_time() const override {
    return chunker_.deadline();
  }

  /// The next chunk of the input (--rrs applied).
  StreamChunker::Result read_chunk(PipeChunk& chunk) {
    const auto r = chunker_.next(chunk, read_);
    if (r == StreamChunker::Result::Chunk && remove_separators_) remove_record_separators(chunk, split_);
    return r;
  }

 private:

  RecordSplit split_;
  bool remove_separators_ = false;  // --rrs
  StreamChunker chunker_;
  StreamChunker::ReadFn read_;
  std::shared_ptr<RoundRobin> robin_;  // --round-robin
  unsigned robin_jobs_ = 0;
  std::shared_ptr<BinDealer> bin_;  // --bin
  unsigned bin_jobs_ = 0;
  std::string path_ = "-";
  int fd_ = STDIN_FILENO;
  bool owns_fd_ = false;
  bool may_block_ = false;
};

class PartPipeSource final : public PipeSourceBase {
 public:
  explicit PartPipeSource(const Options& options) : PipeSourceBase(options) {
    const RecordSplit split = record_split(options);
    struct File {
      int fd;
      std::uint64_t size;
    };
    std::vector<File> files;
    std::uint64_t total_size = 0;
    for (const auto& source : options.sources) {
      // O_NONBLOCK: opening a FIFO must not wait for a writer before it is refused.
      const int fd = ::open(source.path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0) throw UsageError(fmt::format("cannot open '{}': {}", source.path, std::strerror(errno)));
      fds_.emplace_back(fd);
      struct stat st {};
      if (::fstat(fd, &st) != 0) throw UsageError(fmt::format("cannot read '{}': {}", source.path, std::strerror(errno)));
      std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
      if (S_ISBLK(st.st_mode)) {
        if (::ioctl(fd, BLKGETSIZE64, &size) != 0) throw UsageError(fmt::format("cannot size '{}': {}", source.path, std::strerror(errno)));
      } else if (!S_ISREG(st.st_mode)) {
        throw UsageError(fmt::format("--pipepart only works on seekable files, not streams/pipes: '{}' is not a "
                                     "seekable file; use --pipe < FILE",
                                     source.path));
      }
      (void)::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      files.push_back({fd, size});
      total_size += size;
    }
    // GNU parallel's default: 10 parts per job slot (with --round-robin, one); --block -N: N parts per slot.
    const double block = options.block.value_or(options.round_robin ? -1 : -10);
    const std::uint64_t block_bytes =
        block > 0 ? static_cast<std::uint64_t>(block)
                  : 1 + static_cast<std::uint64_t>(static_cast<double>(total_size) / std::max(1U, options.jobs) / -block);
    for (const auto& file : files) {
      std::string header;
      if (options.header_lines > 0) {  // the first lines, put before every part
        std::string head(std::min<std::uint64_t>(file.size, kLargestWindow), '\0');
        const ssize_t n = ::pread(file.fd, head.data(), head.size(), 0);
        head.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        const auto length = header_length(head, options.header_lines);
        header = head.substr(0, length == std::string::npos ? head.size() : length);
      }
      const auto positions = part_positions(file.fd, file.size, block_bytes, header.size(), split);
      for (std::size_t i = 0; i + 1 < positions.size(); ++i)
        if (positions[i + 1] > positions[i]) parts_.push_back({file.fd, positions[i], positions[i + 1] - positions[i], header});
    }
  }

  Result next(JobInput& job) override {
    if (next_ == parts_.size()) return Result::End;
    const Part& part = parts_[next_++];
    auto chunk = std::make_shared<PipeChunk>();
    chunk->header = part.header;
    chunk->file_fd = part.fd;
    chunk->offset = part.offset;
    chunk->length = part.length;
    job.seq = ++seq_;
    job.args.clear();
    job.chunk = std::move(chunk);
    return Result::Job;
  }
  [[nodiscard]] int wait_fd() const override { return -1; }
  [[nodiscard]] std::optional<std::uint64_t> count_total() const override { return parts_.size(); }

 private:
  struct Part {
    int fd;
    std::uint64_t offset, length;
    std::string header;
  };
  std::vector<os::UniqueFd> fds_;
  std::vector<Part> parts_;
  std::size_t next_ = 0;
};

} // namespace

/// --pipe --tee: the jobs of the arguments (`args`), each given all of stdin through a TeeDealer.
class TeeSource final : public JobSource {
 public:
  TeeSource(const Options& options, std::unique_ptr<JobSource> args)
      : args_(std::move(args)), data_(std::make_unique<StreamPipeSource>(options)) {
    const auto total = args_->count_total();
    if (!total) throw UsageError("--tee needs its arguments known in advance (::: or a regular file)");
    if (*total > options.jobs) throw UsageError("--tee requires --jobs to be higher. Try --jobs 0.");
    dealer_ = std::make_shared<TeeDealer>([this](PipeChunk& chunk) { return data_->read_chunk(chunk); },
                                          data_->wait_fd(), static_cast<std::size_t>(*total));
  }
  Result next(JobInput& job) override {
    const auto r = args_->next(job);
    if (r != Result::Job) return r;
    auto first = std::make_shared<PipeChunk>();  // empty: the job's feed takes the chunks from the dealer
    first->dealer = dealer_;
    first->dealer_job = started_++;
    job.chunk = std::move(first);
    return r;
  }
  [[nodiscard]] int wait_fd() const override { return args_->wait_fd(); }
  [[nodiscard]] std::optional<std::uint64_t> count_total() const override { return args_->count_total(); }
  [[nodiscard]] std::string command_for(const JobInput& job, unsigned slot) const override {
    return args_->command_for(job, slot);
  }

 private:
  std::unique_ptr<JobSource> args_;
  std::unique_ptr<StreamPipeSource> data_;
  std::shared_ptr<TeeDealer> dealer_;
  unsigned started_ = 0;
};

std::unique_ptr<JobSource> make_tee_source(const Options& options, std::unique_ptr<JobSource> args) {
  return std::make_unique<TeeSource>(options, std::move(args));
}

std::unique_ptr<JobSource> make_pipe_source(const Options& options) {
  if (options.pipe == PipeMode::Part) return std::make_unique<PartPipeSource>(options);
  return std::make_unique<StreamPipeSource>(options);
}

ChunkFeeds::~ChunkFeeds() {
  for (unsigned i = 0; i < feeds_.size(); ++i) close(i);
}

int ChunkFeeds::open(unsigned slot, std::shared_ptr<const PipeChunk> chunk) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
  (void)os::set_nonblocking(fds[1]);  // only procpool's end: the job reads as from any pipe
  // A pipe that holds the whole chunk (up to 1 MiB): written at once, instead of 64 KiB per round of
  // the poll loop as the job drains it.
  if (chunk->total() > kDefaultPipeSize && feeds_.size() <= kFeedPipeSlots)
    (void)::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(std::min<std::uint64_t>(chunk->total(), kFeedPipeSize)));
  Feed& feed = feeds_[slot];
  close(slot);
  feed.fd = fds[1];
  feed.dealer = chunk->dealer;
  feed.dealer_job = chunk->dealer_job;
  feed.chunk = std::move(chunk);
  feed.done = 0;
  pump();  // every feed: with --round-robin, this job's start may free another's waiting chunk
  return fds[0];
}

void ChunkFeeds::close(unsigned slot) {
  Feed& feed = feeds_[slot];
  close(feed);
  feed.chunk.reset();
  if (feed.dealer) feed.dealer->gone(feed.dealer_job);  // its job ended
  feed.dealer.reset();
}

void ChunkFeeds::close(Feed& feed) {
  if (feed.fd >= 0) ::close(feed.fd);
  feed.fd = -1;
  feed.starved = false;
}

void ChunkFeeds::add_poll_fds(std::vector<pollfd>& fds) const {
  for (const auto& feed : feeds_) {
    if (feed.fd < 0) continue;
    if (!feed.starved) fds.push_back({feed.fd, POLLOUT, 0});
    else if (feed.dealer->waiting_for_input()) fds.push_back({feed.dealer->fd(), POLLIN, 0});
    // else waiting for another job to take its chunk: that job's feed is polled
  }
}

void ChunkFeeds::pump() {
  // A feed that takes its waiting chunk may free the way for another: round again while chunks move.
  for (bool moved = true; moved;) {
    moved = false;
    for (auto& feed : feeds_)
      if (feed.fd >= 0 && pump(feed)) moved = true;
  }
}

bool ChunkFeeds::pump(Feed& feed) {
  bool took = false;
  for (;;) {
    const PipeChunk& c = *feed.chunk;
    const std::uint64_t header = c.header.size(), bytes_end = header + c.size;
    while (feed.done < c.total()) {
      ssize_t n = 0;
      if (feed.done < header) {
        n = ::write(feed.fd, c.header.data() + feed.done, header - feed.done);
      } else if (feed.done < bytes_end) {
        const std::uint64_t at = feed.done - header;
        n = ::write(feed.fd, c.bytes.get() + at, std::min<std::uint64_t>(c.size - at, kMaxWrite));
      } else {
        // --pipepart: page cache to pipe, never through procpool's memory.
        loff_t offset = static_cast<loff_t>(c.offset + (feed.done - bytes_end));
        const std::uint64_t left = c.total() - feed.done;
        n = ::splice(c.file_fd, &offset, feed.fd, nullptr, std::min<std::uint64_t>(left, kMaxWrite),
                     SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        if (n < 0 && errno == EINVAL) {  // a file system without splice: through a small buffer
          char buffer[64 * 1024];
          const ssize_t got = ::pread(c.file_fd, buffer, std::min<std::uint64_t>(left, sizeof buffer), offset);
          n = got <= 0 ? -1 : ::write(feed.fd, buffer, static_cast<std::size_t>(got));
          if (got == 0) errno = EPIPE;  // the file shrank: end the feed
        }
      }
      if (n > 0) {
        feed.done += static_cast<std::uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return took;
      // EPIPE (the job stopped reading), a file that shrank, an error: the job gets what it got.
      if (feed.dealer) feed.dealer->gone(feed.dealer_job);
      close(feed);
      return took;
    }
    if (!feed.dealer) break;
    // --round-robin, --tee: the job's next chunk, when there is one.
    std::shared_ptr<const PipeChunk> next;
    const auto r = feed.dealer->take(feed.dealer_job, next);
    if (r == ChunkDealer::Result::WouldBlock) {
      feed.starved = true;
      return took;
    }
    if (r == ChunkDealer::Result::End) break;
    feed.chunk = std::move(next);
    feed.done = 0;
    feed.starved = false;
    took = true;
  }
  close(feed);  // all written: the job sees the end of its input
  return took;
}

} // namespace procpool::cli
