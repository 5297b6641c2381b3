#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <cstdint>
#include <cstring>
#include <sstream>

#include <procpool/codec.hpp>

namespace {
struct Point {
  int x;
  double y;
};
struct Person {
  std::string name;
  std::vector<int> scores;
  template <class Archive>
  void serialize(Archive& ar) { ar(name, scores); }
};
} // namespace

TEST_CASE("Codec.RoundTrip.Trivial") {
  const Point p{3, 4.5};
  const std::string bytes = procpool::codec::encode(p);
  CHECK(bytes.size() == sizeof(Point));
  const auto q = procpool::codec::decode<Point>(bytes);
  CHECK(q.x == 3);
  CHECK(q.y == 4.5);
}

TEST_CASE("Codec.RoundTrip.Containers") {
  using Item = std::tuple<int, std::optional<std::string>, std::string>;
  const Item item{42, std::nullopt, "hello"};
  CHECK(procpool::codec::decode<Item>(procpool::codec::encode(item)) == item);
  using Map = std::map<std::string, std::vector<double>>;
  const Map m{{"a", {1.0, 2.0}}, {"b", {}}};
  CHECK(procpool::codec::decode<Map>(procpool::codec::encode(m)) == m);
  const std::string big(1 << 20, 'x');
  CHECK(procpool::codec::decode<std::string>(procpool::codec::encode(big)) == big);
}

TEST_CASE("Codec.RoundTrip.CerealMember") {
  const Person alice{"alice", {1, 2, 3}};
  const auto back = procpool::codec::decode<Person>(procpool::codec::encode(alice));
  CHECK(back.name == "alice");
  CHECK(back.scores == std::vector<int>{1, 2, 3});
}

TEST_CASE("Codec.Sequence.DecodeFromAdvances") {
  std::string bytes;
  procpool::codec::encode_to(bytes, 7);
  procpool::codec::encode_to(bytes, std::string("bob"));
  procpool::codec::encode_to(bytes, 2.5);
  std::string_view in = bytes;
  CHECK(procpool::codec::decode_from<int>(in) == 7);
  CHECK(procpool::codec::decode_from<std::string>(in) == "bob");
  CHECK(procpool::codec::decode_from<double>(in) == 2.5);
  CHECK(in.empty());
}

TEST_CASE("Codec.Errors.Truncated") {
  const std::string bytes = procpool::codec::encode(std::string("hello world"));
  CHECK_THROWS_AS((void)procpool::codec::decode<std::string>(bytes.substr(0, 10)), procpool::SerializationError);
  CHECK_THROWS_AS((void)procpool::codec::decode<int>(std::string("ab")), procpool::SerializationError);
  CHECK_THROWS_AS((void)procpool::codec::decode<int>(std::string("abcdef")), procpool::SerializationError);
}

TEST_CASE("Codec.Concepts") {
  CHECK(procpool::TriviallySendable<int>);
  CHECK(procpool::TriviallySendable<Point>);
  CHECK(procpool::ContiguousSendable<std::string>);
  CHECK(procpool::ContiguousSendable<std::vector<double>>);
  CHECK(procpool::ContiguousSendable<std::vector<Point>>);  // no serialize member needed
  CHECK_FALSE(procpool::ContiguousSendable<std::vector<bool>>);
  CHECK(procpool::CerealSendable<std::vector<bool>>);
  CHECK(procpool::CerealSendable<std::vector<std::string>>);
  CHECK(procpool::CerealSendable<Person>);
  CHECK_FALSE(procpool::Sendable<int*>);
  CHECK_FALSE(procpool::Sendable<const char*>);
  CHECK_FALSE(procpool::Sendable<std::unique_ptr<int>>);
}

TEST_CASE("Codec.Contiguous.SameBytesAsCerealOneCopyEachWay") {
  // A vector or string of trivially copyable elements skips cereal's streams but writes what its
  // binary archive writes (a u64 count, then the elements), behind the usual length prefix.
  const std::vector<double> values{1.5, -2.0, 1e300};
  std::ostringstream os(std::ios::binary);
  {
    cereal::BinaryOutputArchive archive(os);
    archive(values);
  }
  const std::string bytes = procpool::codec::encode(values);
  CHECK(bytes.substr(sizeof(std::uint64_t)) == os.str());
  CHECK(procpool::codec::decode<std::vector<double>>(bytes) == values);
  const std::vector<Point> points{{1, 2}, {3, 4}};
  const auto back = procpool::codec::decode<std::vector<Point>>(procpool::codec::encode(points));
  REQUIRE(back.size() == 2);
  CHECK(back[1].x == 3);
  CHECK(procpool::codec::decode<std::vector<int>>(procpool::codec::encode(std::vector<int>{})).empty());
  const std::string text(100000, 'z');
  CHECK(procpool::codec::decode<std::string>(procpool::codec::encode(text)) == text);
  // Nested: cereal writes the inner vectors, the same bytes again.
  const std::vector<std::vector<double>> nested{values, {}};
  CHECK(procpool::codec::decode<std::vector<std::vector<double>>>(procpool::codec::encode(nested)) == nested);
  // A count that does not match the length is refused, not trusted.
  std::string bad = bytes;
  const std::uint64_t huge = std::uint64_t{1} << 61;
  std::memcpy(bad.data() + sizeof(std::uint64_t), &huge, sizeof huge);
  CHECK_THROWS_AS((void)procpool::codec::decode<std::vector<double>>(bad), procpool::SerializationError);
}
